package membership_test

import (
	"fmt"
	"time"

	"github.com/hansa-chain/hansa/internal/membership"
)

// A leader with two voters and a learner caught up for long enough promotes
// the learner: two voters become three.
func ExampleDecide() {
	policy := membership.Policy{TargetVoters: 3, PromoteAfter: 10 * time.Second, DeadAfter: 30 * time.Second}
	state := membership.State{Leader: 1, Members: []membership.MemberState{
		{ID: 1, Role: membership.Voter, Live: true},
		{ID: 2, Role: membership.Voter, Live: true},
		{ID: 3, Role: membership.Learner, Live: true, CaughtUpFor: 12 * time.Second},
	}}
	plan := membership.Decide(policy, state)
	fmt.Println(plan.Action.Kind, plan.Action.ID)
	fmt.Println(plan.Action.Reason)
	// Output:
	// promote 3
	// learner 3 caught up for 12s; voters 2 -> 3 of target 3
}

// Removing the second live voter of three while the third is down leaves
// one live voter of two: refused unless forced.
func ExampleCheck() {
	state := membership.State{Leader: 1, Members: []membership.MemberState{
		{ID: 1, Role: membership.Voter, Live: true},
		{ID: 2, Role: membership.Voter, Live: true},
		{ID: 3, Role: membership.Voter, DownFor: 5 * time.Second},
	}}
	remove := membership.Action{Kind: membership.Remove, ID: 2}
	fmt.Println(membership.Check(state, remove, false))
	fmt.Println(membership.Check(state, remove, true))
	// Output:
	// member 2's removal would leave 1 live voter of 2, below the quorum of 2: the change breaks quorum; force overrides this check
	// <nil>
}
