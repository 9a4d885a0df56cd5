package membership

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the scripts in testdata/*.txt")

// TestScripts runs the scripts in testdata/*.txt and compares their output
// with testdata/*.golden. A script is a sequence of cases; the output is the
// script with each command's result indented below it.
//
//	# case: <title>          starts a new case: default policy, no leader, no members
//	# <text>                 a comment
//	policy [target=N] [promote_after=D] [dead_after=D] [replace_dead=BOOL]
//	leader ID
//	member ID voter|learner live|down=D [caught_up=D] [leaving]
//	                         adds the member, or replaces the one with that id
//	decide                   prints Decide's plan: action, dead voters, notes
//	apply                    applies the last plan's action to the state
//	check promote|demote|remove ID [force]
//	                         prints ok or Check's error with its sentinel
//
// Durations are Go durations (10s, 1m30s). Omitted policy keys are zero.
func TestScripts(t *testing.T) {
	scripts, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scripts in testdata")
	}
	for _, path := range scripts {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			in, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runScript(string(in))
			if err != nil {
				t.Fatalf("%s:%v", path, err)
			}
			golden := strings.TrimSuffix(path, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/membership -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the output (run with -update to rewrite it, then review the diff):\n%s",
					golden, firstDifference(string(want), got))
			}
		})
	}
}

// script is the state of a running script.
type script struct {
	policy Policy
	state  State
	plan   *Plan // the last decide's plan
	out    strings.Builder
}

// runScript runs one script and returns its output.
func runScript(in string) (string, error) {
	var sc script
	for i, line := range strings.Split(strings.TrimSuffix(in, "\n"), "\n") {
		sc.out.WriteString(line + "\n")
		if err := sc.run(strings.TrimSpace(line)); err != nil {
			return "", fmt.Errorf("%d: %q: %v", i+1, line, err)
		}
	}
	return sc.out.String(), nil
}

// run executes one line.
func (sc *script) run(line string) error {
	if title, ok := strings.CutPrefix(line, "# case:"); ok {
		if strings.TrimSpace(title) == "" {
			return errors.New("case without a title")
		}
		*sc = script{out: sc.out}
		return nil
	}
	fields := strings.Fields(line)
	if len(fields) == 0 || strings.HasPrefix(line, "#") {
		return nil
	}
	cmd, args := fields[0], fields[1:]
	switch cmd {
	case "policy":
		return sc.setPolicy(args)
	case "leader":
		if len(args) != 1 {
			return errors.New("want leader ID")
		}
		id, err := strconv.ParseUint(args[0], 10, 64)
		sc.state.Leader = id
		return err
	case "member":
		return sc.setMember(args)
	case "decide":
		if len(args) != 0 {
			return errors.New("decide takes no arguments")
		}
		plan := Decide(sc.policy, sc.state)
		sc.plan = &plan
		sc.printPlan(plan)
		return nil
	case "apply":
		return sc.apply()
	case "check":
		return sc.check(args)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func (sc *script) setPolicy(args []string) error {
	sc.policy = Policy{}
	for _, arg := range args {
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return fmt.Errorf("want key=value, got %q", arg)
		}
		var err error
		switch key {
		case "target":
			sc.policy.TargetVoters, err = strconv.Atoi(value)
		case "promote_after":
			sc.policy.PromoteAfter, err = time.ParseDuration(value)
		case "dead_after":
			sc.policy.DeadAfter, err = time.ParseDuration(value)
		case "replace_dead":
			sc.policy.ReplaceDead, err = strconv.ParseBool(value)
		default:
			return fmt.Errorf("unknown policy key %q", key)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (sc *script) setMember(args []string) error {
	if len(args) < 3 {
		return errors.New("want member ID voter|learner live|down=D [caught_up=D] [leaving]")
	}
	id, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil {
		return err
	}
	m := MemberState{ID: id, Role: Role(args[1])}
	if m.Role != Voter && m.Role != Learner {
		return fmt.Errorf("unknown role %q", args[1])
	}
	liveness := false
	for _, arg := range args[2:] {
		key, value, _ := strings.Cut(arg, "=")
		switch key {
		case "live":
			m.Live, liveness = true, true
		case "down":
			m.DownFor, err = time.ParseDuration(value)
			liveness = true
		case "caught_up":
			m.CaughtUpFor, err = time.ParseDuration(value)
		case "leaving":
			m.Leaving = true
		default:
			return fmt.Errorf("unknown member attribute %q", arg)
		}
		if err != nil {
			return err
		}
	}
	if !liveness || (m.Live && m.DownFor != 0) {
		return errors.New("a member is either live or down=D")
	}
	if i := slices.IndexFunc(sc.state.Members, func(o MemberState) bool { return o.ID == id }); i >= 0 {
		sc.state.Members[i] = m
	} else {
		sc.state.Members = append(sc.state.Members, m)
	}
	return nil
}

func (sc *script) printPlan(p Plan) {
	if p.Action == nil {
		sc.out.WriteString("  action: none\n")
	} else {
		fmt.Fprintf(&sc.out, "  action: %s %d: %s\n", p.Action.Kind, p.Action.ID, p.Action.Reason)
	}
	if len(p.Dead) == 0 {
		sc.out.WriteString("  dead: none\n")
	} else {
		fmt.Fprintf(&sc.out, "  dead: %s\n", joinIDs(p.Dead))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(&sc.out, "  note: %s\n", n)
	}
}

// apply makes the last plan's action, so that a case can follow a change
// over several rounds.
func (sc *script) apply() error {
	if sc.plan == nil {
		return errors.New("apply before decide")
	}
	a := sc.plan.Action
	sc.plan = nil
	if a == nil {
		sc.out.WriteString("  nothing to apply\n")
		return nil
	}
	i := slices.IndexFunc(sc.state.Members, func(m MemberState) bool { return m.ID == a.ID })
	if i < 0 {
		return fmt.Errorf("member %d of the action is gone", a.ID)
	}
	switch a.Kind {
	case Promote:
		sc.state.Members[i].Role = Voter
	case Demote:
		sc.state.Members[i].Role = Learner
	case Remove:
		sc.state.Members = slices.Delete(sc.state.Members, i, i+1)
	}
	var voters, learners []uint64
	for _, m := range sc.state.Members {
		if m.Role == Voter {
			voters = append(voters, m.ID)
		} else {
			learners = append(learners, m.ID)
		}
	}
	fmt.Fprintf(&sc.out, "  applied %s %d: voters %s; learners %s\n", a.Kind, a.ID, joinIDs(voters), joinIDs(learners))
	return nil
}

func (sc *script) check(args []string) error {
	if len(args) < 2 || len(args) > 3 || (len(args) == 3 && args[2] != "force") {
		return errors.New("want check promote|demote|remove ID [force]")
	}
	id, err := strconv.ParseUint(args[1], 10, 64)
	if err != nil {
		return err
	}
	err = Check(sc.state, Action{Kind: ActionKind(args[0]), ID: id}, len(args) == 3)
	if err == nil {
		sc.out.WriteString("  ok\n")
	} else {
		fmt.Fprintf(&sc.out, "  error %s: %v\n", sentinelName(err), err)
	}
	return nil
}

// sentinels are the package's errors by name.
var sentinels = []struct {
	name string
	err  error
}{
	{"ErrUnknownMember", ErrUnknownMember},
	{"ErrNotLearner", ErrNotLearner},
	{"ErrNotVoter", ErrNotVoter},
	{"ErrLastVoter", ErrLastVoter},
	{"ErrLeader", ErrLeader},
	{"ErrBreaksQuorum", ErrBreaksQuorum},
}

// sentinelName names the one sentinel err wraps, or says it wraps none.
func sentinelName(err error) string {
	var names []string
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		return "(no sentinel)"
	}
	return strings.Join(names, "+")
}

func joinIDs(ids []uint64) string {
	if len(ids) == 0 {
		return "none"
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.FormatUint(id, 10)
	}
	return strings.Join(s, " ")
}

// firstDifference shows the first line where want and got differ.
func firstDifference(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  golden: %q\n  got:    %q", i+1, wl, gl)
		}
	}
	return "(no line differs)"
}

func TestQuorum(t *testing.T) {
	for _, tc := range []struct{ voters, want int }{
		{-1, 0}, {0, 0}, {1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {6, 4}, {7, 4},
	} {
		if got := Quorum(tc.voters); got != tc.want {
			t.Errorf("Quorum(%d) = %d, want %d", tc.voters, got, tc.want)
		}
	}
}

// cluster builds a State led by member 1 from "v" (live voter), "V" (voter
// down for a minute), "l" (live learner) and "L" (learner down for a minute),
// numbering the members from 1.
func cluster(spec string) State {
	s := State{Leader: 1}
	for i, c := range spec {
		m := MemberState{ID: uint64(i + 1), Role: Voter, Live: true}
		switch c {
		case 'V':
			m.Live, m.DownFor = false, time.Minute
		case 'l':
			m.Role, m.CaughtUpFor = Learner, time.Minute
		case 'L':
			m.Role, m.Live, m.DownFor = Learner, false, time.Minute
		}
		s.Members = append(s.Members, m)
	}
	return s
}

func TestCheckErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state string
		kind  ActionKind
		id    uint64
		force bool
		want  error // nil: allowed
	}{
		{"unknown member", "vvv", Remove, 9, false, ErrUnknownMember},
		{"unknown member forced", "vvv", Remove, 9, true, ErrUnknownMember},
		{"promote a voter", "vvv", Promote, 2, false, ErrNotLearner},
		{"promote a voter forced", "vvv", Promote, 2, true, ErrNotLearner},
		{"demote a learner", "vvvl", Demote, 4, false, ErrNotVoter},
		{"promote a live learner", "vvvl", Promote, 4, false, nil},
		{"remove a learner", "vvvl", Remove, 4, false, nil},
		{"remove a down learner while quorum is lost", "vVVL", Remove, 4, false, nil},
		{"remove a live voter", "vvv", Remove, 2, false, nil},
		{"demote a live voter", "vvv", Demote, 3, false, nil},
		{"remove the only other live voter", "vvV", Remove, 2, false, ErrBreaksQuorum},
		{"remove the only other live voter forced", "vvV", Remove, 2, true, nil},
		{"demote the only other live voter", "vvV", Demote, 2, false, ErrBreaksQuorum},
		{"remove a dead voter of 3", "vvV", Remove, 3, false, nil},
		{"remove a dead voter of 2", "vV", Remove, 2, false, nil},
		{"remove a dead voter of 3 with 1 live", "vVV", Remove, 3, false, ErrBreaksQuorum},
		{"remove a dead voter of 3 with 1 live forced", "vVV", Remove, 3, true, nil},
		{"promote a dead learner", "vvVL", Promote, 4, false, ErrBreaksQuorum},
		{"promote a dead learner forced", "vvVL", Promote, 4, true, nil},
		{"promote a dead learner to a single voter", "vL", Promote, 2, false, ErrBreaksQuorum},
		{"promote a dead learner to 3 live voters", "vvvL", Promote, 4, false, nil},
		{"remove the last voter", "v", Remove, 1, false, ErrLastVoter},
		{"remove the last voter forced", "vl", Remove, 1, true, ErrLastVoter},
		{"demote the last voter forced", "v", Demote, 1, true, ErrLastVoter},
		{"remove the leader", "vvv", Remove, 1, false, ErrLeader},
		{"remove the leader forced", "vvv", Remove, 1, true, ErrLeader},
		{"demote the leader forced", "vvv", Demote, 1, true, ErrLeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(cluster(tc.state), Action{Kind: tc.kind, ID: tc.id}, tc.force)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			for _, s := range sentinels {
				if s.err != tc.want && errors.Is(err, s.err) {
					t.Errorf("Check = %v also matches %s", err, s.name)
				}
			}
		})
	}
	if err := Check(cluster("vvv"), Action{Kind: "rename", ID: 2}, true); err == nil {
		t.Error("Check accepted an unknown action kind")
	}
}

func TestCheckMessage(t *testing.T) {
	err := Check(cluster("vvV"), Action{Kind: Remove, ID: 2}, false)
	want := "member 2's removal would leave 1 live voter of 2, below the quorum of 2: " + ErrBreaksQuorum.Error()
	if err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %q", err, want)
	}
}
