// Package consensus defines the ordering contract a node drives: proposals go
// in on the leader, committed entries come out on every member in one total
// order. Engines (the single-voter orderer in package solo, Raft next) order
// opaque bytes; they never execute, store blocks or serve RPC.
//
// Invariants every engine keeps: an entry is delivered by Committed only once
// it is durable under the engine's fault model; every member sees the same
// entries at the same indexes; indexes increase by one with no gaps.
package consensus

import (
	"context"
	"errors"
	"slices"
	"time"
)

// ErrNotLeader is returned by Propose on a member that is not the leader.
var ErrNotLeader = errors.New("not the leader")

// ErrStopped is returned by Propose after the engine stopped.
var ErrStopped = errors.New("consensus engine stopped")

// Entry is one committed entry of the ordered log, or a snapshot.
//
// A snapshot entry (Snapshot true) replaces every entry up to Index: its Data
// is what the node passed to Checkpoint on the member that took it. The node
// must bring its state to that point (fetching what it lacks from peers)
// before it applies the entries that follow.
type Entry struct {
	Index     uint64    // position in the log, starting at 1
	Term      uint64    // leadership term the entry was proposed in
	Data      []byte    // the proposal bytes, or the snapshot's checkpoint data
	Snapshot  bool      // a snapshot rather than one entry
	Committed time.Time // when the engine learnt the entry was committed
	// Config is set on a membership change entry (Data is the change's
	// context, as proposed) and on a snapshot: the membership in force
	// after it.
	Config *Config
}

// Config is the cluster's membership as the engine applies it.
type Config struct {
	Voters   []uint64
	Learners []uint64
	// Rejected is set on a change entry the engine refused to apply (it
	// would have removed the last voter): the membership is unchanged.
	Rejected bool
}

// Has reports whether id is a voter or a learner.
func (c *Config) Has(id uint64) bool {
	return c != nil && (slices.Contains(c.Voters, id) || slices.Contains(c.Learners, id))
}

// Status is a snapshot of the engine's view of the cluster.
type Status struct {
	ID       uint64 // this member's id
	LeaderID uint64 // 0 when there is no known leader
	Term     uint64
	Commit   uint64 // highest committed index
	Applied  uint64 // highest index the node reported applied
	Role     string // "leader", "follower", "candidate", "pre-candidate" or "learner"
}

// IsLeader reports whether this member leads.
func (s Status) IsLeader() bool { return s.LeaderID != 0 && s.LeaderID == s.ID }

// Engine orders proposals.
//
// Concurrency: Propose, Applied and Status are safe for concurrent use. The
// node is the only reader of Committed and must apply entries in the order
// delivered. Run owns the engine's goroutines and returns when ctx ends.
type Engine interface {
	// Propose submits data for ordering. It returns when the proposal has
	// been accepted for replication (not when it is committed), ErrNotLeader
	// on a member that cannot propose, or ctx's error.
	Propose(ctx context.Context, data []byte) error
	// Committed delivers committed entries in log order, starting after the
	// applied index the engine was opened with.
	Committed() <-chan Entry
	// Applied records that the node durably applied entries up to index.
	Applied(index uint64)
	// Checkpoint tells the engine that the node's durable state after
	// applying index is described by data, so the log up to index may be
	// replaced by a snapshot carrying data.
	Checkpoint(index uint64, data []byte)
	// Status returns the engine's current view.
	Status() Status
	// Run drives the engine until ctx ends.
	Run(ctx context.Context) error
}
