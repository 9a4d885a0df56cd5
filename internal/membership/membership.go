// Package membership is the pure policy of cluster membership changes: which
// learner is promoted to voter, when a dead voter is replaced or removed, and
// whether a change keeps a live quorum.
//
// Everything here is a function of its inputs. The package does no I/O,
// starts no goroutines and reads no clock: how long a member has been down or
// caught up is given in the input as a duration. The node's leader builds a
// [State] from its own view of the cluster once per round, calls [Decide],
// and proposes at most the one [Action] of the [Plan] (Raft makes one
// configuration change at a time); an operator's request goes through [Check]
// before it is proposed.
//
// Invariants kept by this package:
//   - Decide returns at most one action, and only one that Check accepts
//     without force.
//   - Decide never demotes and never promotes a learner that is leaving, not
//     live, or not caught up for Policy.PromoteAfter.
//   - Check never lets a change leave the configuration without a voter or
//     remove or demote the leader, not even with force.
package membership

import (
	"errors"
	"time"
)

// Role is a member's part in the Raft configuration.
type Role string

// The roles of a member.
const (
	// Voter is a member that votes in elections and counts towards quorum.
	Voter Role = "voter"
	// Learner is a member that receives the log but neither votes nor counts
	// towards quorum.
	Learner Role = "learner"
)

// MemberState is the leader's view of one member.
type MemberState struct {
	// ID is the member's Raft id, unique in the configuration.
	ID uint64
	// Role is the member's current role.
	Role Role
	// Live reports whether the leader heard from the member within the
	// liveness window (the leader itself is always live).
	Live bool
	// DownFor is how long the member has not been heard from (0 when live).
	DownFor time.Duration
	// CaughtUpFor is how long the member's replication lag has stayed within
	// the allowed distance without interruption (0 when not caught up).
	CaughtUpFor time.Duration
	// Leaving reports that the member asked to leave; it is never promoted.
	Leaving bool
}

// State is the cluster as the leader sees it.
type State struct {
	// Leader is the id of the leader (the member building the State).
	Leader uint64
	// Members are all members of the configuration, voters and learners, in
	// any order.
	Members []MemberState
}

// DefaultTargetVoters is the number of voters a Policy aims for when its
// TargetVoters is not positive.
const DefaultTargetVoters = 3

// Policy configures automatic membership changes.
type Policy struct {
	// TargetVoters is the wanted number of voters; 0 or less means
	// DefaultTargetVoters. Odd counts are preferred on the way there.
	TargetVoters int
	// PromoteAfter is how long a learner must have been caught up to be
	// promoted; 0 promotes as soon as it is caught up at all.
	PromoteAfter time.Duration
	// DeadAfter is how long a voter must have been down to be dead; 0 makes
	// every voter that is not live dead.
	DeadAfter time.Duration
	// ReplaceDead lets Decide replace dead voters by caught-up learners and
	// then remove them.
	ReplaceDead bool
}

// ActionKind is the kind of a membership change.
type ActionKind string

// The kinds of membership change.
const (
	// Promote makes a learner a voter.
	Promote ActionKind = "promote"
	// Demote makes a voter a learner.
	Demote ActionKind = "demote"
	// Remove takes a member, voter or learner, out of the configuration.
	Remove ActionKind = "remove"
)

// Action is one membership change.
type Action struct {
	// Kind is what happens to the member.
	Kind ActionKind
	// ID is the member it happens to.
	ID uint64
	// Reason is one human sentence saying why, e.g. "learner 4 caught up
	// for 10s; voters 3 -> 4 of target 5". Check ignores it.
	Reason string
}

// Plan is the policy's decision for one round.
type Plan struct {
	// Action is the one change to make this round (one configuration change
	// at a time), or nil when there is nothing to do.
	Action *Action
	// Dead lists the voters down for at least Policy.DeadAfter, sorted by
	// id; it is filled even when nothing is done about them.
	Dead []uint64
	// Notes say, one sentence each, why nothing else was done.
	Notes []string
}

// Errors returned by Check, wrapped with the member and the numbers involved.
var (
	// ErrUnknownMember reports that the member is not in the configuration.
	ErrUnknownMember = errors.New("unknown member")
	// ErrNotLearner reports a promotion of a member that is not a learner.
	ErrNotLearner = errors.New("not a learner")
	// ErrNotVoter reports a demotion of a member that is not a voter.
	ErrNotVoter = errors.New("not a voter")
	// ErrLastVoter reports a removal or demotion of the only voter; the
	// configuration must keep at least one, and force does not override this.
	ErrLastVoter = errors.New("the configuration must keep at least one voter")
	// ErrLeader reports a removal or demotion of the leader, which must hand
	// leadership over to another voter first; force does not override this.
	ErrLeader = errors.New("the leader must hand leadership over first")
	// ErrBreaksQuorum reports a change after which fewer voters would be live
	// than the quorum of the new configuration; force overrides this.
	ErrBreaksQuorum = errors.New("the change breaks quorum; force overrides this check")
)

// Quorum is the number of votes a configuration of voters voters needs:
// voters/2+1, and 0 for no voters.
func Quorum(voters int) int {
	if voters <= 0 {
		return 0
	}
	return voters/2 + 1
}
