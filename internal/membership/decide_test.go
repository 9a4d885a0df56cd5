package membership

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// shapes are the kinds of member the generated states are built from, for a
// policy with PromoteAfter 10s and DeadAfter 30s (under the zero policy every
// member that is down is dead and every caught-up learner is promotable).
var shapes = []MemberState{
	{Role: Voter, Live: true},
	{Role: Voter, DownFor: 5 * time.Second},                              // down, not yet dead
	{Role: Voter, DownFor: time.Minute},                                  // dead
	{Role: Learner, Live: true, CaughtUpFor: 20 * time.Second},           // promotable
	{Role: Learner, Live: true, CaughtUpFor: 5 * time.Second},            // not caught up long enough
	{Role: Learner, Live: true},                                          // not caught up
	{Role: Learner, Live: true, CaughtUpFor: time.Minute, Leaving: true}, // leaving
	{Role: Learner, DownFor: time.Minute},                                // down
	{Role: Learner, DownFor: 5 * time.Second, CaughtUpFor: time.Minute},  // down, stale catch-up
}

// generatedStates calls f with every state of 1 to maxMembers members built
// from shapes, led by its first live voter (states without one are skipped:
// the leader is always a live voter).
func generatedStates(maxMembers int, f func(State)) {
	var build func(State)
	build = func(s State) {
		if len(s.Members) > 0 {
			if i := slices.IndexFunc(s.Members, func(m MemberState) bool { return m.Role == Voter && m.Live }); i >= 0 {
				s.Leader = s.Members[i].ID
				f(s)
			}
		}
		if len(s.Members) == maxMembers {
			return
		}
		for _, shape := range shapes {
			m := shape
			m.ID = uint64(len(s.Members) + 1)
			next := State{Members: append(slices.Clip(s.Members), m)}
			build(next)
		}
	}
	build(State{})
}

// policies are the policies the generated states are decided under.
func policies() []Policy {
	var ps []Policy
	for _, target := range []int{0, 1, 2, 3, 4, 5} {
		for _, replace := range []bool{false, true} {
			ps = append(ps,
				Policy{TargetVoters: target, PromoteAfter: 10 * time.Second, DeadAfter: 30 * time.Second, ReplaceDead: replace},
				Policy{TargetVoters: target, ReplaceDead: replace})
		}
	}
	return ps
}

// TestDecideInvariants checks, over every generated state and policy, that
// Decide only proposes what Check accepts without force, never demotes,
// promotes only promotable learners, removes only dead voters under
// ReplaceDead, reports the dead voters, explains inaction, and does not
// depend on the order of the members.
func TestDecideInvariants(t *testing.T) {
	maxMembers := 5
	if testing.Short() {
		maxMembers = 4
	}
	for _, p := range policies() {
		t.Run(fmt.Sprintf("%+v", p), func(t *testing.T) {
			t.Parallel()
			failures := 0
			generatedStates(maxMembers, func(s State) {
				if failures > 10 {
					return
				}
				if err := decideInvariants(p, s); err != nil {
					failures++
					t.Errorf("state %+v: %v", s, err)
				}
			})
		})
	}
}

func decideInvariants(p Policy, s State) error {
	plan := Decide(p, s)
	target := p.TargetVoters
	if target <= 0 {
		target = DefaultTargetVoters
	}
	var dead []uint64
	voters := 0
	for _, m := range s.Members {
		if m.Role == Voter {
			voters++
			if !m.Live && m.DownFor >= p.DeadAfter {
				dead = append(dead, m.ID)
			}
		}
	}
	if !slices.Equal(plan.Dead, dead) {
		return fmt.Errorf("Dead = %v, want %v", plan.Dead, dead)
	}
	if a := plan.Action; a != nil {
		if err := Check(s, *a, false); err != nil {
			return fmt.Errorf("Decide proposed %+v, which Check refuses: %v", *a, err)
		}
		if a.Reason == "" {
			return fmt.Errorf("action %+v without a reason", *a)
		}
		m, _ := find(s.Members, a.ID)
		switch a.Kind {
		case Promote:
			if m.Role != Learner || !m.Live || m.Leaving || m.CaughtUpFor <= 0 || m.CaughtUpFor < p.PromoteAfter {
				return fmt.Errorf("promotes %+v, which is not promotable", m)
			}
		case Remove:
			if !p.ReplaceDead || !slices.Contains(dead, a.ID) {
				return fmt.Errorf("removes %+v, which is not a dead voter to replace", m)
			}
		default:
			return fmt.Errorf("unexpected action %+v", *a)
		}
	} else if (voters < target && slices.ContainsFunc(s.Members, func(m MemberState) bool { return m.Role == Learner })) ||
		voters > target || len(dead) > 0 {
		if len(plan.Notes) == 0 {
			return fmt.Errorf("no action and no note (%d voters, target %d, dead %v)", voters, target, dead)
		}
	}
	reversed := State{Leader: s.Leader, Members: slices.Clone(s.Members)}
	slices.Reverse(reversed.Members)
	if other := Decide(p, reversed); !reflect.DeepEqual(other, plan) {
		return fmt.Errorf("the order of the members changes the plan: %+v and %+v", plan, other)
	}
	return nil
}

// TestDecideSettles applies Decide's actions to every generated state of up
// to 4 members until it has nothing to do. Each action takes a learner or a
// member away, so it must settle; it must not end with more voters than it
// started with or than the target, and must not overshoot the target by
// promotion alone.
func TestDecideSettles(t *testing.T) {
	failures := 0
	generatedStates(4, func(start State) {
		for _, p := range policies() {
			if failures > 10 {
				return
			}
			target := p.TargetVoters
			if target <= 0 {
				target = DefaultTargetVoters
			}
			s := State{Leader: start.Leader, Members: slices.Clone(start.Members)}
			initial, _ := countVoters(s.Members)
			var trail []string
			for round := 0; ; round++ {
				if round > 2*len(start.Members) {
					failures++
					t.Errorf("policy %+v, state %+v: no end after %v", p, start, trail)
					break
				}
				a := Decide(p, s).Action
				if a == nil {
					break
				}
				trail = append(trail, fmt.Sprintf("%s %d", a.Kind, a.ID))
				i := slices.IndexFunc(s.Members, func(m MemberState) bool { return m.ID == a.ID })
				if a.Kind == Remove {
					s.Members = slices.Delete(s.Members, i, i+1)
				} else {
					s.Members[i].Role = Voter
				}
				if v, _ := countVoters(s.Members); v > max(initial, target)+1 {
					failures++
					t.Errorf("policy %+v, state %+v: %d voters after %v", p, start, v, trail)
					break
				}
			}
			if v, _ := countVoters(s.Members); v > max(initial, target) {
				failures++
				t.Errorf("policy %+v, state %+v: ends with %d voters after %v", p, start, v, trail)
			}
		}
	})
}
