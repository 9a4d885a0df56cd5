package node

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/consensus"
	"github.com/hansa-chain/hansa/internal/transport"
)

// Member is one member of the cluster as the replicated membership records
// it. Its role (voter or learner) comes from Raft's configuration.
type Member struct {
	ID      uint64
	Name    string
	Address common.Address // the node key's address: its identity
	Addr    string         // cluster address (host:port) the member advertised; "" until it did
	RPC     string         // public JSON-RPC URL the member advertised (for gateways); may be ""
}

// registry is the replicated membership: every member's record, the current
// voters and learners, and the next member id. Ids are assigned in
// increasing order and never reused, so an id below NextID that is not a
// member was removed and can never come back.
type registry struct {
	Members  []Member // by ID
	Voters   []uint64
	Learners []uint64
	NextID   uint64
}

// membershipRecord is what a node stores: its own id and the registry as
// of its applied index.
type membershipRecord struct {
	Self     uint64
	Registry registry
}

// memberChange is the context of a Raft membership change: what the
// registry learns besides the Raft configuration.
type memberChange struct {
	Op     uint8
	Member Member
}

// Membership change operations.
const (
	opAdd     = 1 // add a learner (Member is complete)
	opUpdate  = 2 // update a member's addresses or name
	opPromote = 3 // learner to voter
	opDemote  = 4 // voter to learner
	opRemove  = 5 // remove a member
)

func opName(op uint8) string {
	switch op {
	case opAdd:
		return "add"
	case opUpdate:
		return "update"
	case opPromote:
		return "promote"
	case opDemote:
		return "demote"
	case opRemove:
		return "remove"
	}
	return fmt.Sprintf("op %d", op)
}

// genesisRegistry is the membership of a cluster founded from genesis
// members: every one a voter. Addresses are empty — identical on every
// member — until each member advertises its own.
func genesisRegistry(members []chain.Member) registry {
	var r registry
	for _, m := range members {
		r.Members = append(r.Members, Member{ID: m.ID, Name: m.Name, Address: m.Address})
		r.Voters = append(r.Voters, m.ID)
		r.NextID = max(r.NextID, m.ID+1)
	}
	r.sort()
	return r
}

func (r *registry) sort() {
	slices.SortFunc(r.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	slices.Sort(r.Voters)
	slices.Sort(r.Learners)
}

// clone returns a deep copy.
func (r registry) clone() registry {
	return registry{Members: slices.Clone(r.Members), Voters: slices.Clone(r.Voters), Learners: slices.Clone(r.Learners), NextID: r.NextID}
}

// member returns the member with id.
func (r registry) member(id uint64) (Member, bool) {
	for _, m := range r.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// byAddress returns the member whose node key has address a.
func (r registry) byAddress(a common.Address) (Member, bool) {
	for _, m := range r.Members {
		if m.Address == a {
			return m, true
		}
	}
	return Member{}, false
}

// role returns "voter", "learner" or "".
func (r registry) role(id uint64) string {
	switch {
	case slices.Contains(r.Voters, id):
		return "voter"
	case slices.Contains(r.Learners, id):
		return "learner"
	}
	return ""
}

// removed reports whether id was a member once and is no more.
func (r registry) removed(id uint64) bool {
	_, ok := r.member(id)
	return id != 0 && id < r.NextID && !ok
}

// apply returns the registry after a committed change, with the Raft
// configuration cfg in force after it. Every member computes the same
// result from the same log.
func (r registry) apply(c memberChange, cfg *consensus.Config) registry {
	out := r.clone()
	if !cfg.Rejected {
		switch c.Op {
		case opAdd:
			out.Members = slices.DeleteFunc(out.Members, func(m Member) bool { return m.ID == c.Member.ID })
			out.Members = append(out.Members, c.Member)
			out.NextID = max(out.NextID, c.Member.ID+1)
		case opUpdate:
			for i, m := range out.Members {
				if m.ID == c.Member.ID {
					out.Members[i].Addr, out.Members[i].RPC = c.Member.Addr, c.Member.RPC
					if c.Member.Name != "" {
						out.Members[i].Name = c.Member.Name
					}
				}
			}
		}
	}
	out.Voters, out.Learners = slices.Clone(cfg.Voters), slices.Clone(cfg.Learners)
	// Raft's configuration is the authority on who is a member.
	out.Members = slices.DeleteFunc(out.Members, func(m Member) bool { return !cfg.Has(m.ID) })
	out.sort()
	return out
}

// peers is the transport's peer set: every member but self with a known
// address (its advertised one, else the one configured locally).
func (r registry) peers(self uint64, configured map[uint64]string) []transport.Peer {
	var out []transport.Peer
	for _, m := range r.Members {
		addr := m.Addr
		if addr == "" {
			addr = configured[m.ID]
		}
		if m.ID == self || addr == "" {
			continue
		}
		out = append(out, transport.Peer{ID: m.ID, Address: m.Address, Addr: addr})
	}
	return out
}

func encodeRecord(rec membershipRecord) ([]byte, error) { return rlp.EncodeToBytes(&rec) }

func decodeRecord(data []byte) (membershipRecord, error) {
	var rec membershipRecord
	if len(data) == 0 {
		return rec, errors.New("empty membership record")
	}
	err := rlp.DecodeBytes(data, &rec)
	return rec, err
}
