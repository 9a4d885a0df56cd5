package membership

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Decide returns the policy's plan for one round: at most one change, the
// dead voters, and notes on what was not done. The leader calls it once per
// round with its current view and proposes Plan.Action, if any; the next
// round sees the result. The rules, first applicable first:
//
//  1. Dead voters (not live, down for at least p.DeadAfter) are listed in
//     Plan.Dead, sorted by id.
//  2. With p.ReplaceDead and a dead voter: as long as the voters that are
//     not dead are fewer than the target, the caught-up learner with the
//     lowest id is promoted to replace it; once the voters, counting the
//     dead, exceed the target (a replacement is in place), the dead voter
//     with the lowest id is removed. With neither a caught-up learner nor a
//     voter to spare nothing is done. Either way the round ends here.
//     Without p.ReplaceDead dead voters are only reported.
//  3. Below the target, caught-up learners (live, not leaving, caught up
//     for more than zero and at least p.PromoteAfter) are promoted one per
//     round, lowest id first, so that the voter count goes from odd to odd:
//     an odd count grows only when a second caught-up learner can follow at
//     once, unless one more voter reaches an even target exactly.
//  4. Above the target nothing is done: voters are never demoted or
//     removed automatically except dead ones under rule 2.
//
// Leaving voters are left to the leave operation; leaving learners are never
// promoted. Every action passes Check without force; one that does not is
// replaced by a note.
func Decide(p Policy, s State) Plan {
	d := newDecider(p, s)
	if len(d.dead) > 0 {
		if p.ReplaceDead {
			d.replaceDead()
			return d.plan
		}
		d.note("%s and replace_dead is off; remove %s by hand with membership_remove",
			deadPhrase(d.dead), plural(len(d.dead), "it", "them"))
	}
	switch {
	case d.voters < d.target:
		d.promote()
	case d.voters > d.target:
		d.note("%d voters exceed the target of %d; demote by hand with membership_demote", d.voters, d.target)
	}
	return d.plan
}

// decider holds one round's view while Decide works through its rules.
type decider struct {
	p        Policy
	s        State
	target   int
	voters   int           // voters, dead or not
	learners []MemberState // by id
	dead     []MemberState // dead voters, by id
	caught   []MemberState // learners that may be promoted, by id
	plan     Plan
}

func newDecider(p Policy, s State) *decider {
	d := &decider{p: p, s: s, target: p.TargetVoters}
	if d.target <= 0 {
		d.target = DefaultTargetVoters
	}
	members := slices.Clone(s.Members)
	slices.SortFunc(members, func(a, b MemberState) int { return cmp.Compare(a.ID, b.ID) })
	for _, m := range members {
		switch m.Role {
		case Voter:
			d.voters++
			if !m.Live && m.DownFor >= p.DeadAfter {
				d.dead = append(d.dead, m)
				d.plan.Dead = append(d.plan.Dead, m.ID)
			}
		case Learner:
			d.learners = append(d.learners, m)
			if d.promotable(m) {
				d.caught = append(d.caught, m)
			}
		}
	}
	return d
}

// promotable reports whether learner m may be promoted: live, not leaving,
// and caught up (CaughtUpFor > 0) for at least PromoteAfter.
func (d *decider) promotable(m MemberState) bool {
	return m.Live && !m.Leaving && m.CaughtUpFor > 0 && m.CaughtUpFor >= d.p.PromoteAfter
}

// replaceDead applies rule 2: replace the dead voters, then remove them.
func (d *decider) replaceDead() {
	dv := d.dead[0]
	notDead := d.voters - len(d.dead)
	if notDead < d.target {
		if len(d.caught) > 0 {
			c := d.caught[0]
			replaced := fmt.Sprintf("dead voter %d (down %s)", dv.ID, dv.DownFor)
			if len(d.dead) > 1 {
				replaced = "one of the dead voters " + idList(d.dead)
			}
			if d.try(Action{Kind: Promote, ID: c.ID, Reason: fmt.Sprintf(
				"learner %d caught up for %s replaces %s; voters %d -> %d of target %d",
				c.ID, c.CaughtUpFor, replaced, d.voters, d.voters+1, d.target)}) {
				return
			}
		} else if d.voters <= d.target {
			d.note("%s; no caught-up learner to replace %s", deadPhrase(d.dead), plural(len(d.dead), "it", "them"))
			d.learnerNotes()
			return
		}
	}
	if d.voters > d.target {
		d.try(Action{Kind: Remove, ID: dv.ID, Reason: fmt.Sprintf(
			"voter %d is dead (down %s) and %d voters exceed the target of %d; voters %d -> %d",
			dv.ID, dv.DownFor, d.voters, d.target, d.voters, d.voters-1)})
	}
}

// promote applies rule 3: grow towards the target, odd count to odd count.
func (d *decider) promote() {
	defer d.learnerNotes()
	v := d.voters
	if len(d.caught) == 0 {
		d.note("%d %s of target %d; no caught-up learner to promote", v, plural(v, "voter", "voters"), d.target)
		return
	}
	c := d.caught[0]
	reason := fmt.Sprintf("learner %d caught up for %s; voters %d -> %d of target %d", c.ID, c.CaughtUpFor, v, v+1, d.target)
	if v%2 == 1 && v+1 < d.target {
		// v+1 would be an even count that is not the target: go on only
		// if a second learner can make it odd again next round.
		if len(d.caught) < 2 {
			d.note("learner %d waits for a second caught-up learner to keep the voter count odd (%d of target %d)", c.ID, v, d.target)
			return
		}
		reason += fmt.Sprintf(", learner %d follows to make the count odd again", d.caught[1].ID)
	}
	d.try(Action{Kind: Promote, ID: c.ID, Reason: reason})
}

// learnerNotes says why each learner that is not promotable is not.
func (d *decider) learnerNotes() {
	for _, m := range d.learners {
		switch {
		case m.Leaving:
			d.note("learner %d is leaving and is never promoted", m.ID)
		case !m.Live:
			d.note("learner %d is down (for %s) and is not promoted", m.ID, m.DownFor)
		case m.CaughtUpFor <= 0:
			d.note("learner %d is not caught up", m.ID)
		case m.CaughtUpFor < d.p.PromoteAfter:
			d.note("learner %d has been caught up for %s of the %s needed", m.ID, m.CaughtUpFor, d.p.PromoteAfter)
		}
	}
}

// try makes a the plan's action if Check accepts it without force, and
// notes the refusal otherwise.
func (d *decider) try(a Action) bool {
	if err := Check(d.s, a, false); err != nil {
		d.note("%s %d is refused: %v", a.Kind, a.ID, err)
		return false
	}
	d.plan.Action = &a
	return true
}

func (d *decider) note(format string, args ...any) {
	d.plan.Notes = append(d.plan.Notes, fmt.Sprintf(format, args...))
}

// deadPhrase is "voter 3 is dead (down 45s)" or "voters 3 and 5 are dead".
func deadPhrase(dead []MemberState) string {
	if len(dead) == 1 {
		return fmt.Sprintf("voter %d is dead (down %s)", dead[0].ID, dead[0].DownFor)
	}
	return "voters " + idList(dead) + " are dead"
}

// idList is "4 and 5" or "3, 4 and 5".
func idList(ms []MemberState) string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = fmt.Sprint(m.ID)
	}
	return strings.Join(ids[:len(ids)-1], ", ") + " and " + ids[len(ids)-1]
}
