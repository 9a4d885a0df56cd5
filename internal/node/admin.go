package node

import (
	"net/http"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/consensus/raft"
	"github.com/hansa-chain/hansa/internal/version"
)

// adminAPI is the "admin" namespace, served only on the admin listener.
type adminAPI struct{ n *Node }

// NodeInfo describes this node.
type NodeInfo struct {
	ID       uint64         `json:"id"`
	Address  common.Address `json:"address"`
	Version  string         `json:"version"`
	ChainID  hexutil.Uint64 `json:"chainId"`
	Genesis  common.Hash    `json:"genesis"`
	Head     common.Hash    `json:"head"`
	Height   hexutil.Uint64 `json:"height"`
	Leader   uint64         `json:"leader"`
	Diverged bool           `json:"diverged"`
}

// NodeInfo returns this node's identity and chain position.
func (a *adminAPI) NodeInfo() NodeInfo {
	head := a.n.head.Load()
	st := a.n.engine.Status()
	return NodeInfo{
		ID:       a.n.id,
		Address:  a.n.address,
		Version:  version.ClientVersion(),
		ChainID:  hexutil.Uint64(a.n.genesis.ChainID),
		Genesis:  a.n.db.HeaderByNumber(0).Hash(),
		Head:     head.Hash(),
		Height:   hexutil.Uint64(head.Number.Uint64()),
		Leader:   st.LeaderID,
		Diverged: a.n.diverged.Load(),
	}
}

func newAdminHandler(n *Node) (http.Handler, error) {
	srv := gethrpc.NewServer()
	if err := srv.RegisterName("admin", &adminAPI{n: n}); err != nil {
		return nil, err
	}
	if err := srv.RegisterName("raft", &raftAPI{n: n}); err != nil {
		return nil, err
	}
	if n.members != nil {
		if err := srv.RegisterName("membership", &membershipAPI{n: n}); err != nil {
			return nil, err
		}
	}
	if n.cluster != nil && n.cfg.Cluster.FaultInjection {
		if b, ok := n.cluster.t.(blocker); ok {
			n.logger.Warn("fault injection is on: the admin API can cut this node's links (for tests only)")
			if err := srv.RegisterName("fault", &faultAPI{b: b}); err != nil {
				return nil, err
			}
		}
	}
	return srv, nil
}

// raftAPI is the "raft" namespace: the consensus view of the cluster.
type raftAPI struct{ n *Node }

// ClusterMember is one member of the cluster configuration.
type ClusterMember struct {
	ID      uint64         `json:"id"`
	Name    string         `json:"name"`
	Address common.Address `json:"address"`
	Addr    string         `json:"addr,omitempty"` // cluster address (advertised, else configured on this node)
	Role    string         `json:"role"`           // voter or learner
	Leader  bool           `json:"leader"`
	Self    bool           `json:"self"`
}

// Cluster lists the members.
func (a *raftAPI) Cluster() []ClusterMember {
	st := a.n.engine.Status()
	if a.n.members == nil {
		out := make([]ClusterMember, 0, len(a.n.genesis.Members))
		for _, m := range a.n.genesis.Members {
			out = append(out, ClusterMember{ID: m.ID, Name: m.Name, Address: m.Address, Role: "voter", Leader: m.ID == st.LeaderID, Self: m.ID == a.n.id})
		}
		return out
	}
	configured := map[uint64]string{}
	for _, p := range a.n.cfg.Cluster.Peers {
		configured[p.ID] = p.Addr
	}
	reg := a.n.registry()
	out := make([]ClusterMember, 0, len(reg.Members))
	for _, m := range reg.Members {
		addr := m.Addr
		if addr == "" {
			addr = configured[m.ID]
		}
		out = append(out, ClusterMember{ID: m.ID, Name: m.Name, Address: m.Address, Addr: addr, Role: reg.role(m.ID),
			Leader: m.ID == st.LeaderID, Self: m.ID == a.n.id})
	}
	return out
}

// Leader returns the leader's member id (0 during an election).
func (a *raftAPI) Leader() uint64 { return a.n.engine.Status().LeaderID }

// Role returns this member's role: leader, follower, candidate,
// pre-candidate or learner.
func (a *raftAPI) Role() string { return a.n.engine.Status().Role }

// RaftStatus is the raft_status answer.
type RaftStatus struct {
	ID            uint64            `json:"id"`
	Leader        uint64            `json:"leader"`
	Role          string            `json:"role"`
	Term          uint64            `json:"term"`
	Commit        uint64            `json:"commit"`
	Applied       uint64            `json:"applied"`
	LastIndex     uint64            `json:"lastIndex"`
	FirstIndex    uint64            `json:"firstIndex"`
	SnapshotIndex uint64            `json:"snapshotIndex"`
	Height        hexutil.Uint64    `json:"height"`
	Syncing       bool              `json:"syncing"`
	Voters        []uint64          `json:"voters"`
	Learners      []uint64          `json:"learners"`
	Peers         []raft.PeerStatus `json:"peers"` // replication progress, on the leader
}

// Status returns the engine's full view.
func (a *raftAPI) Status() RaftStatus {
	n := a.n
	out := RaftStatus{Height: hexutil.Uint64(n.head.Load().Number.Uint64()), Syncing: n.syncing.Load(), Peers: []raft.PeerStatus{}}
	if n.cluster == nil {
		st := n.engine.Status()
		out.ID, out.Leader, out.Role, out.Term, out.Commit, out.Applied = st.ID, st.LeaderID, st.Role, st.Term, st.Commit, st.Applied
		out.LastIndex, out.Voters, out.Learners = st.Commit, []uint64{n.id}, []uint64{}
		return out
	}
	d := n.cluster.engine.Detail()
	out.ID, out.Leader, out.Role, out.Term, out.Commit, out.Applied = d.ID, d.LeaderID, d.Role, d.Term, d.Commit, d.Applied
	out.LastIndex, out.FirstIndex, out.SnapshotIndex = d.LastIndex, d.FirstIndex, d.SnapshotIndex
	out.Voters, out.Learners = d.Voters, d.Learners
	if out.Learners == nil {
		out.Learners = []uint64{}
	}
	if d.Peers != nil {
		out.Peers = d.Peers
	}
	return out
}

// blocker is a transport that can cut links (fault injection).
type blocker interface {
	Block(ids ...uint64)
	Unblock(ids ...uint64)
}

// faultAPI is the "fault" namespace, on the admin listener and only with
// cluster.fault_injection: partition tests across processes.
type faultAPI struct{ b blocker }

// Block drops all traffic to and from the given members.
func (f *faultAPI) Block(ids []uint64) bool { f.b.Block(ids...); return true }

// Unblock restores traffic with the given members (all when empty).
func (f *faultAPI) Unblock(ids []uint64) bool { f.b.Unblock(ids...); return true }
