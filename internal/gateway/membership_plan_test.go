package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Unit tests of the membership section: the pure planner, the decoder of
// membership_status answers, and the config. The scenarios against fake
// admin listeners and upstreams are in membership_test.go.

func TestPlanMembers(t *testing.T) {
	mc := DefaultConfig().Membership
	now := time.Unix(1000, 0)
	const urlA, urlB = "http://127.0.0.1:1001", "http://127.0.0.1:1002"
	ms := func(id uint64, url, health string, leaving bool) memberStatus {
		return memberStatus{ID: id, RPCURL: url, Health: health, Leaving: leaving}
	}
	tracked := func(id uint64, url string, mode memberMode, since time.Duration) memberState {
		c, err := memberUpstream(memberStatus{ID: id, RPCURL: url}, &mc)
		if err != nil {
			t.Fatal(err)
		}
		s := memberState{Upstream: c, Excluded: mode.excluded, Draining: mode.draining}
		if mode.draining {
			s.DrainSince = now.Add(-since)
		}
		return s
	}
	routable, excluded, draining := memberMode{}, memberMode{excluded: true}, memberMode{draining: true}
	tests := []struct {
		name     string
		prev     []memberState
		source   string
		members  []memberStatus
		inFlight map[string]int64
		events   []string // action:member
		next     map[uint64]memberMode
	}{
		{"up member added", nil, "", []memberStatus{ms(1, urlA, "up", false)},
			nil, []string{"add:1"}, map[uint64]memberMode{1: routable}},
		{"catching-up, down, unknown, leaving are not added", nil, "", []memberStatus{
			ms(1, urlA, "catching-up", false), ms(2, urlA, "down", false), ms(3, urlA, "unknown", false), ms(4, urlA, "up", true)},
			nil, nil, map[uint64]memberMode{}},
		{"added member down is excluded", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(1, urlA, "down", false)}, nil, []string{"exclude:1"}, map[uint64]memberMode{1: excluded}},
		{"unexpected health counts as not up", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(1, urlA, "degraded", false)}, nil, []string{"exclude:1"}, map[uint64]memberMode{1: excluded}},
		{"excluded member up again", []memberState{tracked(1, urlA, excluded, 0)}, "",
			[]memberStatus{ms(1, urlA, "up", false)}, nil, []string{"include:1"}, map[uint64]memberMode{1: routable}},
		{"leaving member drains but stays while listed", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(1, urlA, "up", true)}, nil, []string{"drain:1"}, map[uint64]memberMode{1: draining}},
		{"listed again and not leaving", []memberState{tracked(1, urlA, draining, time.Second)}, "",
			[]memberStatus{ms(1, urlA, "up", false)}, nil, []string{"undrain:1"}, map[uint64]memberMode{1: routable}},
		{"unlisted idle member drained and removed", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(2, urlB, "up", false)}, nil, []string{"add:2", "drain:1", "remove:1"}, map[uint64]memberMode{2: routable}},
		{"unlisted busy member kept", []memberState{tracked(1, urlA, draining, 29*time.Second)}, "",
			[]memberStatus{ms(2, urlB, "catching-up", false)}, map[string]int64{"member-1": 1}, nil, map[uint64]memberMode{1: draining}},
		{"drain timeout", []memberState{tracked(1, urlA, draining, 30*time.Second)}, "",
			[]memberStatus{ms(2, urlB, "catching-up", false)}, map[string]int64{"member-1": 1}, []string{"remove:1"}, map[uint64]memberMode{}},
		{"no rpc url: skipped, and drained if tracked", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(1, "", "up", false), ms(2, "ftp://x", "up", false)}, nil,
			[]string{"skip:1", "skip:2", "drain:1", "remove:1"}, map[uint64]memberMode{}},
		{"rpc url change replaces", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(1, urlB, "up", false)}, nil, []string{"replace:1"}, map[uint64]memberMode{1: routable}},
		{"rpc url change of a member catching up", []memberState{tracked(1, urlA, routable, 0)}, "",
			[]memberStatus{ms(1, urlB, "catching-up", false)}, nil, []string{"replace:1", "exclude:1"}, map[uint64]memberMode{1: excluded}},
		{"local view changes no exclusion", []memberState{tracked(1, urlA, routable, 0), tracked(2, urlB, excluded, 0)}, "local",
			[]memberStatus{ms(1, urlA, "unknown", false), ms(2, urlB, "unknown", false), ms(3, urlA, "unknown", false)}, nil,
			nil, map[uint64]memberMode{1: routable, 2: excluded}},
		{"local view still drains the leaving and the gone", []memberState{tracked(1, urlA, routable, 0), tracked(2, urlB, routable, 0)}, "local",
			[]memberStatus{ms(1, urlA, "unknown", true)}, nil, []string{"drain:1", "drain:2", "remove:2"}, map[uint64]memberMode{1: draining}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := map[uint64]memberState{}
			for _, s := range tt.prev {
				var id uint64
				fmt.Sscanf(s.Upstream.Labels["member"], "%d", &id)
				prev[id] = s
			}
			before := fmt.Sprint(prev)
			next, events := planMembers(prev, &membershipStatus{Members: tt.members, Source: tt.source}, &mc, tt.inFlight, now)
			var got []string
			for _, e := range events {
				got = append(got, fmt.Sprintf("%s:%d", e.Action, e.Member))
			}
			if !slices.Equal(got, tt.events) {
				t.Errorf("events %v, want %v", got, tt.events)
			}
			modes := map[uint64]memberMode{}
			for id, s := range next {
				modes[id] = memberMode{excluded: s.Excluded, draining: s.Draining}
				if s.Upstream.Name != fmt.Sprintf("member-%d", id) {
					t.Errorf("member %d tracked as %s", id, s.Upstream.Name)
				}
			}
			if fmt.Sprint(modes) != fmt.Sprint(tt.next) {
				t.Errorf("next %v, want %v", modes, tt.next)
			}
			if fmt.Sprint(prev) != before {
				t.Error("planMembers changed its input")
			}
		})
	}
}

// TestDecodeMembershipStatus decodes the documented answer (comments
// removed) and refuses answers that must not change the upstream set.
func TestDecodeMembershipStatus(t *testing.T) {
	doc := `{"jsonrpc":"2.0","id":1,"result":{
  "self": 2, "leader": 1, "term": 3, "commit": 120, "nextId": 6,
  "members": [
    {"id": 1, "name": "n1", "address": "0x8f...", "clusterAddr": "127.0.0.1:19545",
     "rpcUrl": "http://127.0.0.1:18545", "role": "leader", "health": "up", "leaving": false,
     "lastContact": "2026-11-22T10:00:00Z", "match": 118, "lag": 2, "applied": 118, "height": 57},
    {"id": 5, "name": "n5", "address": "0x9a...", "clusterAddr": "127.0.0.1:19549",
     "rpcUrl": "", "role": "learner", "health": "catching-up", "leaving": false,
     "lastContact": null, "match": 0, "lag": 120, "applied": 0, "height": 0}
  ],
  "deadVoters": []}}`
	st, err := decodeMembershipStatus([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if st.Self != 2 || st.Leader != 1 || len(st.Members) != 2 {
		t.Fatalf("decoded %+v", st)
	}
	if m := st.Members[0]; m.ID != 1 || m.RPCURL != "http://127.0.0.1:18545" || m.Health != "up" || m.Leaving || m.Role != "leader" {
		t.Errorf("member 1 decoded as %+v", m)
	}
	for _, bad := range []string{
		``, `{}`, `[]`, `{"jsonrpc":"2.0","id":1,"result":null}`,
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"members":[]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"members":[{"id":0}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"members":[{"id":1},{"id":1}]}}`,
		`{"jsonrpc":"2.0","id":1,"result":{"members":"all"}}`,
	} {
		if _, err := decodeMembershipStatus([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// FuzzDecodeMembershipStatus checks that no answer panics the decoder and
// that every accepted answer lists members with distinct non-zero ids.
func FuzzDecodeMembershipStatus(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"members":[{"id":1,"rpcUrl":"http://127.0.0.1:1","health":"up"}]}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"members":[{"id":1},{"id":2,"leaving":true}],"source":"local"}}`))
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"x"}}`))
	f.Add([]byte(`{"result":{"members":[{"id":18446744073709551615}]}}`))
	mc := DefaultConfig().Membership
	f.Fuzz(func(t *testing.T, body []byte) {
		st, err := decodeMembershipStatus(body)
		if err != nil {
			return
		}
		seen := map[uint64]bool{}
		for _, m := range st.Members {
			if m.ID == 0 || seen[m.ID] {
				t.Fatalf("accepted member id %d (zero or repeated)", m.ID)
			}
			seen[m.ID] = true
		}
		if len(seen) == 0 {
			t.Fatal("accepted an answer without members")
		}
		next, _ := planMembers(nil, st, &mc, nil, time.Unix(0, 0))
		for _, s := range next {
			if err := s.Upstream.Validate(); err != nil {
				t.Fatalf("planned an invalid upstream: %v", err)
			}
		}
	})
}

func TestMembershipConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.AdminAddr = ""
		c.Membership.AdminURLs = []string{"http://127.0.0.1:19645", "https://node2.example:19645"}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"valid", func(*Config) {}, ""},
		{"off by default", func(c *Config) { c.Membership = DefaultConfig().Membership }, ""},
		{"role defaults to primary", func(c *Config) { c.Membership.Role = "" }, ""},
		{"fallback role", func(c *Config) { c.Membership.Role = RoleFallback }, ""},
		{"admin url without scheme", func(c *Config) { c.Membership.AdminURLs = []string{"127.0.0.1:19645"} }, "not an http(s) URL"},
		{"admin url ws", func(c *Config) { c.Membership.AdminURLs = []string{"ws://127.0.0.1:19645"} }, "not an http(s) URL"},
		{"admin url without host", func(c *Config) { c.Membership.AdminURLs = []string{"http://"} }, "not an http(s) URL"},
		{"admin url twice", func(c *Config) { c.Membership.AdminURLs = []string{"http://a:1", "http://a:1"} }, "listed twice"},
		{"zero interval", func(c *Config) { c.Membership.Interval = 0 }, "membership.interval"},
		{"negative interval", func(c *Config) { c.Membership.Interval = Duration(-time.Second) }, "membership.interval"},
		{"zero drain timeout", func(c *Config) { c.Membership.DrainTimeout = 0 }, "drain_timeout"},
		{"bad role", func(c *Config) { c.Membership.Role = "leader" }, "membership.role"},
		{"reserved label", func(c *Config) { c.Membership.Labels = map[string]string{"member": "x"} }, "set by the gateway"},
		{"token with a newline", func(c *Config) { c.Membership.Token = "abc\nX-Evil: 1" }, "membership.token"},
		{"token without admin urls", func(c *Config) { c.Membership.AdminURLs, c.Membership.Token = nil, "tok" }, "admin_urls is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Membership.Enabled() && c.Membership.Role == "" {
					t.Error("role not defaulted")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestLoadMembershipConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.toml")
	os.WriteFile(path, []byte(`admin_addr = ""
[membership]
admin_urls = ["http://127.0.0.1:19645", "http://127.0.0.1:19646"]
interval = "500ms"
token = "secret-token"
role = "fallback"
labels = { cluster = "eu" }
`), 0o644)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := cfg.Membership
	if !m.Enabled() || len(m.AdminURLs) != 2 || m.Interval.Std() != 500*time.Millisecond || m.Token != "secret-token" ||
		m.Role != RoleFallback || m.Labels["cluster"] != "eu" || m.DrainTimeout.Std() != 30*time.Second {
		t.Errorf("membership section loaded as %+v", m)
	}
}

// TestReloadKeepsMembershipSwitch: turning the membership section on (or
// off) needs a restart; a reload leaves it as it was.
func TestReloadKeepsMembershipSwitch(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, nil)
	cfg := testConfig(nodes)
	cfg.Membership.AdminURLs = []string{"http://127.0.0.1:19645"}
	if err := h.g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if h.g.rt.Load().cfg.Membership.Enabled() {
		t.Error("a reload turned the membership section on")
	}
}
