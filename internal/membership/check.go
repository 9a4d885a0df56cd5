package membership

import "fmt"

// Check reports whether the change a may be made to the configuration s,
// both for an operator's request and for Decide's own actions. It returns nil
// or an error wrapping one of the package's sentinel errors:
//
//   - ErrUnknownMember when a.ID is not a member;
//   - ErrNotLearner when a promotion names a member that is not a learner,
//     ErrNotVoter when a demotion names one that is not a voter (a removal
//     takes either role);
//   - ErrLastVoter when the change would leave no voter, and ErrLeader when
//     it removes or demotes s.Leader, whatever force says;
//   - ErrBreaksQuorum when, after the change, fewer voters would be live
//     than Quorum of the new voter count, unless force is true. A promoted
//     learner that is not live counts as a voter that is not live. Removing
//     a learner leaves the voters as they are and is always allowed.
func Check(s State, a Action, force bool) error {
	m, ok := find(s.Members, a.ID)
	if !ok {
		return fmt.Errorf("member %d is not in the configuration: %w", a.ID, ErrUnknownMember)
	}
	voters, live := countVoters(s.Members)
	votersAfter, liveAfter := voters, live
	var change string // "removal", "demotion", "promotion"
	switch a.Kind {
	case Promote:
		if m.Role != Learner {
			return fmt.Errorf("member %d is %s: %w", a.ID, describeRole(m.Role), ErrNotLearner)
		}
		change = "promotion"
		votersAfter++
		if m.Live {
			liveAfter++
		}
	case Demote, Remove:
		change = "removal"
		if a.Kind == Demote {
			change = "demotion"
			if m.Role != Voter {
				return fmt.Errorf("member %d is %s: %w", a.ID, describeRole(m.Role), ErrNotVoter)
			}
		}
		if m.Role == Voter {
			votersAfter--
			if m.Live {
				liveAfter--
			}
			if votersAfter == 0 {
				return fmt.Errorf("member %d is the only voter: %w", a.ID, ErrLastVoter)
			}
		}
		if a.ID == s.Leader {
			return fmt.Errorf("member %d is the leader: %w", a.ID, ErrLeader)
		}
	default:
		return fmt.Errorf("unknown membership action %q for member %d", a.Kind, a.ID)
	}
	if votersAfter == voters || force || liveAfter >= Quorum(votersAfter) {
		return nil
	}
	subject := fmt.Sprintf("member %d's %s", a.ID, change)
	if a.Kind == Promote && !m.Live {
		subject = fmt.Sprintf("member %d is not live, so its promotion", a.ID)
	}
	return fmt.Errorf("%s would leave %d live %s of %d, below the quorum of %d: %w",
		subject, liveAfter, plural(liveAfter, "voter", "voters"), votersAfter, Quorum(votersAfter), ErrBreaksQuorum)
}

// find returns the member with the given id.
func find(members []MemberState, id uint64) (MemberState, bool) {
	for _, m := range members {
		if m.ID == id {
			return m, true
		}
	}
	return MemberState{}, false
}

// countVoters returns the number of voters and of live voters.
func countVoters(members []MemberState) (voters, live int) {
	for _, m := range members {
		if m.Role == Voter {
			voters++
			if m.Live {
				live++
			}
		}
	}
	return voters, live
}

// describeRole completes "member 3 is ..." for an error message.
func describeRole(r Role) string {
	switch r {
	case Voter:
		return "a voter"
	case Learner:
		return "a learner"
	case "":
		return "without a role"
	}
	return fmt.Sprintf("of unknown role %q", string(r))
}

// plural returns one when n is 1 and many otherwise.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
