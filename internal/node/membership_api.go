package node

import (
	"context"
	"encoding/json"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// MembershipStatus is the membership_status answer.
type MembershipStatus struct {
	Self       uint64         `json:"self"`   // the member that answered
	Leader     uint64         `json:"leader"` // 0 during an election
	Term       uint64         `json:"term"`
	Commit     uint64         `json:"commit"`
	NextID     uint64         `json:"nextId"`
	Members    []MemberStatus `json:"members"`
	DeadVoters []uint64       `json:"deadVoters"`
	// Source is "leader" when the leader's view (health, contact, lag) is
	// given, "local" when no leader could be asked (health "unknown").
	Source string `json:"source"`
}

// MemberStatus is one member in MembershipStatus.
type MemberStatus struct {
	ID          uint64         `json:"id"`
	Name        string         `json:"name"`
	Address     common.Address `json:"address"`
	ClusterAddr string         `json:"clusterAddr"`
	RPCURL      string         `json:"rpcUrl"`
	Role        string         `json:"role"`   // leader, voter or learner
	Health      string         `json:"health"` // up, catching-up, down or unknown
	Leaving     bool           `json:"leaving"`
	LastContact *time.Time     `json:"lastContact"`
	Match       uint64         `json:"match"`   // log index known replicated on it
	Lag         uint64         `json:"lag"`     // entries behind the leader's log
	Applied     uint64         `json:"applied"` // log index it applied (as last probed)
	Height      uint64         `json:"height"`  // its chain height (as last probed)
}

// status is the leader's full view.
func (m *members) status() MembershipStatus {
	now := time.Now()
	reg := m.n.registry()
	d := m.n.cluster.engine.Detail()
	out := MembershipStatus{Self: m.n.id, Leader: d.LeaderID, Term: d.Term, Commit: d.Commit, NextID: reg.NextID,
		Members: []MemberStatus{}, DeadVoters: []uint64{}, Source: "leader"}
	progress := map[uint64]uint64{}
	lags := map[uint64]uint64{}
	for _, p := range d.Peers {
		progress[p.ID], lags[p.ID] = p.Match, p.Lag
	}
	maxLag := m.n.cfg.Cluster.PromoteMaxLag
	m.viewMu.Lock()
	defer m.viewMu.Unlock()
	for _, mem := range reg.Members {
		ms := memberStatus(mem, reg, d.LeaderID)
		ms.Match, ms.Lag = progress[mem.ID], lags[mem.ID]
		if mem.ID == m.n.id {
			ms.Match, ms.Lag = d.LastIndex, 0
		}
		if v := m.views[mem.ID]; v != nil {
			if !v.lastContact.IsZero() {
				t := v.lastContact.UTC()
				ms.LastContact = &t
			}
			ms.Applied, ms.Height, ms.Leaving = v.probe.Applied, v.probe.Height, v.probe.Leaving
			live := !v.lastContact.IsZero() && now.Sub(v.lastContact) < 2*time.Second
			switch {
			case !live:
				ms.Health = "down"
			case v.probe.Syncing || ms.Lag > maxLag || d.Commit > v.probe.Applied+maxLag:
				ms.Health = "catching-up"
			default:
				ms.Health = "up"
			}
			if v.dead {
				out.DeadVoters = append(out.DeadVoters, mem.ID)
			}
		}
		out.Members = append(out.Members, ms)
	}
	return out
}

// localStatus is this node's registry without the leader's view.
func (m *members) localStatus() MembershipStatus {
	reg := m.n.registry()
	st := m.n.engine.Status()
	out := MembershipStatus{Self: m.n.id, Leader: st.LeaderID, Term: st.Term, Commit: st.Commit, NextID: reg.NextID,
		Members: []MemberStatus{}, DeadVoters: []uint64{}, Source: "local"}
	for _, mem := range reg.Members {
		ms := memberStatus(mem, reg, st.LeaderID)
		if mem.ID == m.n.id {
			ms.Applied, ms.Height, ms.Leaving = st.Applied, m.n.head.Load().Number.Uint64(), m.isLeaving()
		}
		out.Members = append(out.Members, ms)
	}
	return out
}

// memberStatus is what the registry alone says of mem: health unknown.
func memberStatus(mem Member, reg registry, leader uint64) MemberStatus {
	ms := MemberStatus{ID: mem.ID, Name: mem.Name, Address: mem.Address, ClusterAddr: mem.Addr, RPCURL: mem.RPC,
		Role: reg.role(mem.ID), Health: "unknown"}
	if mem.ID == leader {
		ms.Role = "leader"
	}
	return ms
}

// membershipAPI is the "membership" namespace on the admin listener.
type membershipAPI struct{ n *Node }

// Status returns every member's id, role, addresses, health, last contact,
// applied height and lag — the leader's view, asked of the leader when
// this node does not lead.
func (a *membershipAPI) Status(ctx context.Context) (MembershipStatus, error) {
	m := a.n.members
	if m.isLeader() {
		return m.status(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := m.toLeader(ctx, memberRequest{Kind: kindStatus})
	if err == nil {
		var st MembershipStatus
		if err := json.Unmarshal(resp, &st); err == nil {
			st.Self = a.n.id
			return st, nil
		}
	}
	return m.localStatus(), nil
}

// Remove removes member id (a dead or unwanted node). It is refused when
// fewer live voters than a quorum would remain, unless force is set; the
// leader is never removed this way (use leave on it).
func (a *membershipAPI) Remove(ctx context.Context, id uint64, force *bool) (bool, error) {
	return a.change(ctx, opRemove, id, force)
}

// Promote makes learner id a voter (subject to the quorum check).
func (a *membershipAPI) Promote(ctx context.Context, id uint64, force *bool) (bool, error) {
	return a.change(ctx, opPromote, id, force)
}

// Demote makes voter id a learner (subject to the quorum check).
func (a *membershipAPI) Demote(ctx context.Context, id uint64, force *bool) (bool, error) {
	return a.change(ctx, opDemote, id, force)
}

func (a *membershipAPI) change(ctx context.Context, op uint8, id uint64, force *bool) (bool, error) {
	_, err := a.n.members.toLeader(ctx, memberRequest{Kind: kindChange, Change: memberChange{Op: op, Member: Member{ID: id}}, Force: force != nil && *force})
	return err == nil, err
}

// Leave takes this node out of the cluster: it becomes unready (gateways
// drain it), hands leadership over if it leads, asks the leader to remove
// it, and stops. force overrides the quorum check.
func (a *membershipAPI) Leave(ctx context.Context, force *bool) (uint64, error) {
	if err := a.n.members.leave(ctx, force != nil && *force); err != nil {
		a.n.members.leaveMu.Lock()
		a.n.members.isLeave = false
		a.n.members.leaveMu.Unlock()
		return 0, err
	}
	return a.n.id, nil
}
