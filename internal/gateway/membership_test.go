package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// adminMember is one member in the documented membership_status shape.
type adminMember struct {
	ID          uint64  `json:"id"`
	Name        string  `json:"name"`
	Address     string  `json:"address"`
	ClusterAddr string  `json:"clusterAddr"`
	RPCURL      string  `json:"rpcUrl"`
	Role        string  `json:"role"`
	Health      string  `json:"health"`
	Leaving     bool    `json:"leaving"`
	LastContact *string `json:"lastContact"`
	Match       uint64  `json:"match"`
	Lag         uint64  `json:"lag"`
	Applied     uint64  `json:"applied"`
	Height      uint64  `json:"height"`
}

func member(id uint64, rpcURL, health string) adminMember {
	contact := "2026-11-22T10:00:00Z"
	return adminMember{ID: id, Name: fmt.Sprintf("n%d", id), Address: "0x8f00000000000000000000000000000000000001",
		ClusterAddr: fmt.Sprintf("127.0.0.1:%d", 19544+id), RPCURL: rpcURL, Role: "voter", Health: health,
		LastContact: &contact, Match: 118, Lag: 2, Applied: 118, Height: 57}
}

func leaving(m adminMember) adminMember {
	m.Leaving = true
	return m
}

// Failure modes of a fake admin listener.
const (
	adminAnswer    = iota // membership_status with the members set
	adminHTTP500          // HTTP 500
	adminRPCError         // a JSON-RPC error
	adminGarbage          // not JSON
	adminNoMembers        // a status with an empty member list
)

// fakeAdmin is a node's admin listener on 127.0.0.1 that answers
// membership_status with the members the test sets.
type fakeAdmin struct {
	srv   *httptest.Server
	mode  atomic.Int32
	calls atomic.Int64
	auth  atomic.Pointer[string] // last Authorization header

	mu      sync.Mutex
	members []adminMember
	source  string // "source" field of the answer ("" = absent)
}

func newFakeAdmin(t *testing.T, members ...adminMember) *fakeAdmin {
	a := &fakeAdmin{members: members}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAdmin) set(members ...adminMember) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.members = members
}

func (a *fakeAdmin) setSource(s string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.source = s
}

func (a *fakeAdmin) serve(w http.ResponseWriter, r *http.Request) {
	a.calls.Add(1)
	auth := r.Header.Get("Authorization")
	a.auth.Store(&auth)
	var req rpcRequest
	_ = json.NewDecoder(r.Body).Decode(&req)
	w.Header().Set("Content-Type", "application/json")
	switch a.mode.Load() {
	case adminHTTP500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case adminRPCError:
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"not ready"}}`)
		return
	case adminGarbage:
		fmt.Fprint(w, `<html>gateway timeout</html>`)
		return
	}
	if r.Method != http.MethodPost || req.Method != "membership_status" {
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"method not found"}}`)
		return
	}
	a.mu.Lock()
	members := slices.Clone(a.members)
	source := a.source
	a.mu.Unlock()
	if a.mode.Load() == adminNoMembers {
		members = []adminMember{}
	}
	status := map[string]any{"self": 1, "leader": 1, "term": 3, "commit": 120, "nextId": len(members) + 1,
		"members": members, "deadVoters": []uint64{}}
	if source != "" {
		status["source"] = source
	}
	id := req.ID
	if len(id) == 0 {
		id = json.RawMessage("1")
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": status})
	w.Write(b)
}

// newMemberHarness is a harness whose upstreams come only from the
// membership of the given admin listeners; rounds run by h.discover.
func newMemberHarness(t *testing.T, nodes []*fakeNode, admins []*fakeAdmin, mutate func(*Config)) *harness {
	t.Helper()
	return newHarness(t, nodes, func(c *Config) {
		c.Upstreams = nil
		for _, a := range admins {
			c.Membership.AdminURLs = append(c.Membership.AdminURLs, a.srv.URL)
		}
		c.Membership.Labels = map[string]string{"cluster": "test"}
		if mutate != nil {
			mutate(c)
		}
	})
}

// discover runs one membership round at the harness's clock.
func (h *harness) discover() error { return h.g.membershipOnce(h.t.Context(), h.now) }

func (h *harness) mustDiscover() {
	h.t.Helper()
	if err := h.discover(); err != nil {
		h.t.Fatal(err)
	}
}

// upstreamNamed returns the listed upstream called name.
func (h *harness) upstreamNamed(name string) (UpstreamStatus, bool) {
	for _, u := range h.g.Upstreams() {
		if u.Name == name {
			return u, true
		}
	}
	return UpstreamStatus{}, false
}

func (h *harness) upstreamNames() []string {
	var names []string
	for _, u := range h.g.Upstreams() {
		names = append(names, u.Name)
	}
	slices.Sort(names)
	return names
}

// spread makes n calls and counts them by the node that answered.
func (h *harness) spread(n int) map[string]int {
	h.t.Helper()
	served := map[string]int{}
	for i := range n {
		who, err := h.clientVersion()
		if err != nil {
			h.t.Fatalf("call %d: %v", i, err)
		}
		served[who]++
	}
	return served
}

// reachesEventually calls until node answers one call (at most 300 calls).
func (h *harness) reachesEventually(node string) {
	h.t.Helper()
	for i := range 300 {
		who, err := h.clientVersion()
		if err != nil {
			h.t.Fatalf("call %d: %v", i, err)
		}
		if who == node {
			return
		}
	}
	h.t.Fatalf("no call reached %s in 300 calls", node)
}

// callResult is the outcome of a call made off the test goroutine.
type callResult struct {
	resp rpcResponse
	err  error
}

// callAsync sends one call from another goroutine.
func (h *harness) callAsync(method, params string) <-chan callResult {
	out := make(chan callResult, 1)
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":9,"method":%q,"params":%s}`, method, params)
	go func() {
		var r callResult
		req, err := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.front.URL+"/", strings.NewReader(body))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				err = json.NewDecoder(resp.Body).Decode(&r.resp)
				resp.Body.Close()
			}
		}
		r.err = err
		out <- r
	}()
	return out
}

// gatedServer serves node behind a gate: its eth_call answers wait until
// release is called; entered gets a value as each eth_call arrives.
func gatedServer(t *testing.T, node *fakeNode) (url string, entered <-chan struct{}, release func()) {
	in := make(chan struct{}, 16)
	gate := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte(`"eth_call"`)) {
			in <- struct{}{}
			select {
			case <-gate:
			case <-r.Context().Done():
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		node.serve(w, r)
	}))
	t.Cleanup(srv.Close)
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // runs before srv.Close: no handler left waiting
	return srv.URL, in, release
}

func waitEntered(t *testing.T, entered <-chan struct{}) {
	t.Helper()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never reached the gated upstream")
	}
}

func waitResult(t *testing.T, c <-chan callResult) callResult {
	t.Helper()
	select {
	case r := <-c:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never finished")
		return callResult{}
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const ethCallParams = `[{"to":"0x0000000000000000000000000000000000000001"},"latest"]`

// TestMembershipRoutesOnlyToUpMembers: a member catching up or down gets
// no calls; once up it does; an added member that goes down is excluded
// although its own health checks still pass.
func TestMembershipRoutesOnlyToUpMembers(t *testing.T) {
	nodes := threeNodes(t)
	admin := newFakeAdmin(t, member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "catching-up"),
		member(3, nodes[2].url(), "down"))
	h := newMemberHarness(t, nodes, []*fakeAdmin{admin}, nil)
	h.mustDiscover()
	h.poll(1)

	if got := h.upstreamNames(); !slices.Equal(got, []string{"member-1"}) {
		t.Fatalf("upstreams %v; want only member-1 (the others are not up)", got)
	}
	u, _ := h.upstreamNamed("member-1")
	if u.Source != "membership" || u.URL != nodes[0].url() || u.Role != RolePrimary ||
		u.WSURL != "ws://"+strings.TrimPrefix(nodes[0].url(), "http://") ||
		u.Labels["source"] != "membership" || u.Labels["member"] != "1" || u.Labels["cluster"] != "test" {
		t.Errorf("member-1 listed as %+v", u)
	}
	if served := h.spread(30); served["n0"] != 30 {
		t.Fatalf("calls served by %v; want all by n0", served)
	}
	if c1, c2 := nodes[1].calls.Load(), nodes[2].calls.Load(); c1 != 0 || c2 != 0 {
		t.Fatalf("calls reached members not up: n1 %d, n2 %d", c1, c2)
	}

	admin.set(member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "up"), member(3, nodes[2].url(), "down"))
	h.mustDiscover()
	h.poll(1)
	h.reachesEventually("n1")
	if c := nodes[2].calls.Load(); c != 0 {
		t.Fatalf("%d calls reached n2, which is down", c)
	}

	// member 2 goes down while the gateway still finds it healthy.
	admin.set(member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "down"), member(3, nodes[2].url(), "up"))
	h.mustDiscover()
	h.poll(1)
	u, ok := h.upstreamNamed("member-2")
	if !ok || !u.Excluded || !u.Healthy || u.Draining {
		t.Fatalf("member-2 after going down: %+v (listed %v); want kept, excluded, healthy by its own checks", u, ok)
	}
	if got := metricValue(t, h.g.metrics.HealthyCount); got != 2 {
		t.Errorf("healthy_upstreams = %v, want 2 (member 2 is excluded)", got)
	}
	h.resetCalls()
	h.reachesEventually("n2")
	h.spread(30)
	if c := nodes[1].calls.Load(); c != 0 {
		t.Fatalf("%d calls reached excluded member 2", c)
	}
	for health, want := range map[string]float64{"up": 2, "down": 1, "catching-up": 0, "unknown": 0} {
		if got := metricValue(t, h.g.metrics.MembershipMembers.WithLabelValues(health)); got != want {
			t.Errorf("membership_members{health=%q} = %v, want %v", health, got, want)
		}
	}

	admin.set(member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "up"), member(3, nodes[2].url(), "up"))
	h.mustDiscover()
	h.resetCalls()
	h.reachesEventually("n1")
}

// TestMembershipLeavingDrains: a leaving member gets no new call, a call in
// flight to it completes, and it is removed once unlisted and idle.
func TestMembershipLeavingDrains(t *testing.T) {
	pool := newTxPool()
	n0, n1 := newFakeNode(t, "n0", pool), newFakeNode(t, "n1", pool)
	slowURL, entered, release := gatedServer(t, n1)
	// Only member 2 is up at first, so the slow call goes to it.
	admin := newFakeAdmin(t, member(1, n0.url(), "catching-up"), member(2, slowURL, "up"))
	h := newMemberHarness(t, []*fakeNode{n0, n1}, []*fakeAdmin{admin}, nil)
	h.mustDiscover()
	h.poll(1)

	slow := h.callAsync("eth_call", ethCallParams)
	waitEntered(t, entered)
	if u, _ := h.upstreamNamed("member-2"); u.InFlight != 1 {
		t.Fatalf("member-2 has %d calls in flight, want 1", u.InFlight)
	}

	// Leaving while member 1 still catches up: no member may take a call.
	admin.set(member(1, n0.url(), "catching-up"), leaving(member(2, slowURL, "up")))
	h.mustDiscover()
	if _, err := h.clientVersion(); err == nil {
		t.Fatal("a new call was served with the only member up leaving")
	}
	if err := h.g.Ready(); err == nil {
		t.Error("ready with the only member up leaving")
	}
	if c := n1.calls.Load(); c != 0 {
		t.Fatalf("%d new calls reached the draining member", c)
	}

	admin.set(member(1, n0.url(), "up"), leaving(member(2, slowURL, "up")))
	h.mustDiscover()
	h.poll(1)
	u, ok := h.upstreamNamed("member-2")
	if !ok || !u.Draining || u.InFlight != 1 {
		t.Fatalf("leaving member-2: %+v (listed %v); want draining with its call in flight", u, ok)
	}
	if got := metricValue(t, h.g.metrics.DrainingUpstreams); got != 1 {
		t.Errorf("draining_upstreams = %v, want 1", got)
	}
	if served := h.spread(30); served["n0"] != 30 {
		t.Fatalf("calls after the drain began served by %v; want all by n0", served)
	}
	if c := n1.calls.Load(); c != 0 {
		t.Fatalf("%d new calls reached the draining member", c)
	}

	// Unlisted while its call is in flight: kept until the call ends.
	admin.set(member(1, n0.url(), "up"))
	h.mustDiscover()
	if _, ok := h.upstreamNamed("member-2"); !ok {
		t.Fatal("member-2 removed while a call to it was in flight")
	}

	release()
	r := waitResult(t, slow)
	var got string
	if r.err != nil || r.resp.Error != nil || json.Unmarshal(r.resp.Result, &got) != nil || got != "0x6e31" {
		t.Fatalf("in-flight call: %+v %v; want n1's answer 0x6e31", r.resp, r.err)
	}
	eventually(t, "member-2's call to end", func() bool { u, _ := h.upstreamNamed("member-2"); return u.InFlight == 0 })
	h.mustDiscover()
	if got := h.upstreamNames(); !slices.Equal(got, []string{"member-1"}) {
		t.Fatalf("upstreams %v after member 2 left; want [member-1]", got)
	}
	if got := metricValue(t, h.g.metrics.DrainingUpstreams); got != 0 {
		t.Errorf("draining_upstreams = %v after removal, want 0", got)
	}
	if c := n1.calls.Load(); c != 1 {
		t.Errorf("n1 served %d calls; want only the one in flight when it began to leave", c)
	}
}

// TestMembershipDrainTimeout removes an unlisted member after the drain
// timeout although a call to it is still in flight; that call still ends
// well.
func TestMembershipDrainTimeout(t *testing.T) {
	pool := newTxPool()
	n0, n1 := newFakeNode(t, "n0", pool), newFakeNode(t, "n1", pool)
	slowURL, entered, release := gatedServer(t, n1)
	admin := newFakeAdmin(t, member(2, slowURL, "up"))
	h := newMemberHarness(t, []*fakeNode{n0, n1}, []*fakeAdmin{admin}, func(c *Config) {
		c.Membership.DrainTimeout = Duration(10 * time.Second)
	})
	h.mustDiscover()
	h.poll(1)
	slow := h.callAsync("eth_call", ethCallParams)
	waitEntered(t, entered)

	admin.set(member(1, n0.url(), "up"))
	h.mustDiscover()
	if u, ok := h.upstreamNamed("member-2"); !ok || !u.Draining {
		t.Fatalf("member-2 just unlisted with a call in flight: %+v (listed %v); want draining", u, ok)
	}
	h.now = h.now.Add(9 * time.Second)
	h.mustDiscover()
	if _, ok := h.upstreamNamed("member-2"); !ok {
		t.Fatal("member-2 removed before the drain timeout")
	}
	h.now = h.now.Add(time.Second)
	h.mustDiscover()
	if _, ok := h.upstreamNamed("member-2"); ok {
		t.Fatal("member-2 kept after the drain timeout")
	}
	release()
	if r := waitResult(t, slow); r.err != nil || r.resp.Error != nil {
		t.Fatalf("call in flight at removal: %+v %v", r.resp, r.err)
	}
}

// TestMembershipDrainMovesFiltersAndSubscriptions: a filter on a leaving
// member is reported gone (the client creates it again elsewhere), and a
// WebSocket subscription moves to another member under the same id.
func TestMembershipDrainMovesFiltersAndSubscriptions(t *testing.T) {
	nodes := threeNodes(t)[:2]
	admin := newFakeAdmin(t, member(1, nodes[0].url(), "catching-up"), member(2, nodes[1].url(), "up"))
	h := newMemberHarness(t, nodes, []*fakeAdmin{admin}, nil)
	h.mustDiscover()
	h.poll(1)

	newFilter := func() string {
		t.Helper()
		_, resp := h.call("/", "eth_newBlockFilter", "", nil)
		var id string
		if resp.Error != nil || json.Unmarshal(resp.Result, &id) != nil {
			t.Fatalf("new filter: %s %v", resp.Result, resp.Error)
		}
		return id
	}
	changes := func(id string) ([]string, *rpcError) {
		_, resp := h.call("/", "eth_getFilterChanges", `["`+id+`"]`, nil)
		var out []string
		json.Unmarshal(resp.Result, &out)
		return out, resp.Error
	}
	filter := newFilter()
	if got, err := changes(filter); err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "n1/") {
		t.Fatalf("filter changes %v %v; want the filter on n1", got, err)
	}

	conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(h.front.URL, "http")+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	type note struct {
		ID     json.RawMessage
		Result json.RawMessage
		Method string
		Params struct {
			Subscription string
			Result       struct{ Node string }
		}
	}
	read := func() note {
		t.Helper()
		_, b, err := conn.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m note
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`)); err != nil {
		t.Fatal(err)
	}
	var subID string
	for subID == "" {
		if m := read(); string(m.ID) == "1" {
			if json.Unmarshal(m.Result, &subID) != nil {
				t.Fatalf("subscribe answered %s", m.Result)
			}
		}
	}
	for {
		if m := read(); m.Method == "eth_subscription" {
			if m.Params.Result.Node != "n1" {
				t.Fatalf("first notification from %q, want n1 (the only member up)", m.Params.Result.Node)
			}
			break
		}
	}

	admin.set(member(1, nodes[0].url(), "up"), leaving(member(2, nodes[1].url(), "up")))
	h.mustDiscover()
	h.poll(1)

	for {
		m := read()
		if m.Method != "eth_subscription" {
			continue
		}
		if m.Params.Subscription != subID {
			t.Fatalf("notification for %q after the drain, want %q", m.Params.Subscription, subID)
		}
		if m.Params.Result.Node == "n0" {
			break // moved off the leaving member under the same id
		}
	}
	if _, err := changes(filter); err == nil || err.Message != "filter not found" {
		t.Fatalf("filter on the leaving member: %v; want filter not found", err)
	}
	if got, err := changes(newFilter()); err != nil || len(got) != 1 || !strings.HasPrefix(got[0], "n0/") {
		t.Fatalf("new filter's changes %v %v; want the filter on n0", got, err)
	}
}

// TestMembershipAdminFailureKeepsUpstreams: when the admin URL gives no
// usable answer the upstream set stays as it was and the failure counts.
func TestMembershipAdminFailureKeepsUpstreams(t *testing.T) {
	tests := []struct {
		name   string
		inject func(a *fakeAdmin)
	}{
		{"HTTP 500", func(a *fakeAdmin) { a.mode.Store(adminHTTP500) }},
		{"JSON-RPC error", func(a *fakeAdmin) { a.mode.Store(adminRPCError) }},
		{"not JSON", func(a *fakeAdmin) { a.mode.Store(adminGarbage) }},
		{"no members", func(a *fakeAdmin) { a.mode.Store(adminNoMembers) }},
		{"duplicate member", func(a *fakeAdmin) {
			a.set(member(1, "http://127.0.0.1:1", "up"), member(1, "http://127.0.0.1:2", "up"))
		}},
		{"connection refused", func(a *fakeAdmin) { a.srv.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := threeNodes(t)[:2]
			admin := newFakeAdmin(t, member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "up"))
			h := newMemberHarness(t, nodes, []*fakeAdmin{admin}, nil)
			h.mustDiscover()
			h.poll(1)
			before := h.g.Upstreams()

			tt.inject(admin)
			for range 3 {
				if err := h.discover(); err == nil {
					t.Fatal("a failed membership poll reported success")
				}
			}
			h.poll(1)
			after := h.g.Upstreams()
			if len(after) != 2 || len(before) != 2 {
				t.Fatalf("upstreams %d before, %d after the failures; want 2 and 2", len(before), len(after))
			}
			for i := range after {
				if after[i].Name != before[i].Name || after[i].URL != before[i].URL || after[i].Excluded || after[i].Draining || !after[i].Healthy {
					t.Errorf("upstream changed by a failed poll: %+v, was %+v", after[i], before[i])
				}
			}
			h.reachesEventually("n0")
			h.reachesEventually("n1")
			if got := metricValue(t, h.g.metrics.MembershipPolls.WithLabelValues("error")); got != 3 {
				t.Errorf("membership_polls_total{result=error} = %v, want 3", got)
			}
			if got := metricValue(t, h.g.metrics.MembershipPolls.WithLabelValues("ok")); got != 1 {
				t.Errorf("membership_polls_total{result=ok} = %v, want 1", got)
			}
		})
	}
}

// TestMembershipAdminURLFallback: the first admin URL fails, the second
// answers and is asked first from then on; when it fails in turn, the
// first is asked again. The bearer token is sent.
func TestMembershipAdminURLFallback(t *testing.T) {
	nodes := threeNodes(t)[:2]
	first := newFakeAdmin(t, member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "up"))
	second := newFakeAdmin(t, member(1, nodes[0].url(), "up"))
	first.mode.Store(adminHTTP500)
	h := newMemberHarness(t, nodes, []*fakeAdmin{first, second}, func(c *Config) { c.Membership.Token = "tok-123" })

	h.mustDiscover()
	if got := h.upstreamNames(); !slices.Equal(got, []string{"member-1"}) {
		t.Fatalf("upstreams %v; want second's view [member-1]", got)
	}
	if f, s := first.calls.Load(), second.calls.Load(); f != 1 || s != 1 {
		t.Fatalf("admin calls first %d second %d; want 1 and 1", f, s)
	}
	if a := second.auth.Load(); a == nil || *a != "Bearer tok-123" {
		t.Errorf("Authorization %v; want Bearer tok-123", a)
	}
	h.mustDiscover()
	if f, s := first.calls.Load(), second.calls.Load(); f != 1 || s != 2 {
		t.Fatalf("admin calls first %d second %d; want the last good one asked first (1 and 2)", f, s)
	}

	first.mode.Store(adminAnswer)
	second.mode.Store(adminHTTP500)
	h.mustDiscover()
	if got := h.upstreamNames(); !slices.Equal(got, []string{"member-1", "member-2"}) {
		t.Fatalf("upstreams %v; want first's view [member-1 member-2]", got)
	}
	h.mustDiscover()
	if f, s := first.calls.Load(), second.calls.Load(); f != 3 || s != 3 {
		t.Fatalf("admin calls first %d second %d; want 3 and 3", f, s)
	}
	if got := metricValue(t, h.g.metrics.MembershipPolls.WithLabelValues("error")); got != 0 {
		t.Errorf("%v polls counted as errors; one admin URL answered each time", got)
	}
}

// TestMembershipPrefersLeaderView: a node that cannot reach the leader
// answers with its local view (health unknown); another admin URL's leader
// view wins, and a local view alone excludes nobody.
func TestMembershipPrefersLeaderView(t *testing.T) {
	nodes := threeNodes(t)[:2]
	local := newFakeAdmin(t, member(1, nodes[0].url(), "unknown"), member(2, nodes[1].url(), "unknown"))
	local.setSource("local")
	leader := newFakeAdmin(t, member(1, nodes[0].url(), "up"), member(2, nodes[1].url(), "up"))
	leader.setSource("leader")
	h := newMemberHarness(t, nodes, []*fakeAdmin{local, leader}, nil)
	h.mustDiscover()
	if got := h.upstreamNames(); !slices.Equal(got, []string{"member-1", "member-2"}) {
		t.Fatalf("upstreams %v; want the leader's view", got)
	}
	h.poll(1)
	leader.mode.Store(adminHTTP500)
	h.mustDiscover()
	for _, u := range h.g.Upstreams() {
		if u.Excluded || u.Draining {
			t.Errorf("%s excluded or draining on a local view: %+v", u.Name, u)
		}
	}
	h.reachesEventually("n0")
	h.reachesEventually("n1")
}

// TestMembershipRPCURLChange replaces the upstream of a member whose rpcUrl
// changed; the replacement starts with a fresh health judgement.
func TestMembershipRPCURLChange(t *testing.T) {
	nodes := threeNodes(t)[:2]
	admin := newFakeAdmin(t, member(1, nodes[0].url(), "up"))
	h := newMemberHarness(t, nodes, []*fakeAdmin{admin}, nil)
	h.mustDiscover()
	h.poll(1)
	if served := h.spread(5); served["n0"] != 5 {
		t.Fatalf("served by %v, want n0", served)
	}

	admin.set(member(1, nodes[1].url(), "up"))
	h.mustDiscover()
	u, ok := h.upstreamNamed("member-1")
	if !ok || u.URL != nodes[1].url() || u.WSURL != "ws://"+strings.TrimPrefix(nodes[1].url(), "http://") {
		t.Fatalf("member-1 after the rpcUrl change: %+v (listed %v)", u, ok)
	}
	if n := len(h.g.Upstreams()); n != 1 {
		t.Fatalf("%d upstreams; want the old one replaced, not kept", n)
	}
	h.poll(1)
	h.resetCalls()
	if served := h.spread(10); served["n1"] != 10 {
		t.Fatalf("served by %v, want n1", served)
	}
	if c := nodes[0].calls.Load(); c != 0 {
		t.Fatalf("%d calls reached the old URL", c)
	}

	// Moved to an address where nothing answers: the first poll judges it
	// unhealthy, without the old upstream's good record.
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	admin.set(member(1, dead.URL, "up"))
	h.mustDiscover()
	h.poll(1)
	if u, _ := h.upstreamNamed("member-1"); u.Healthy || u.URL != dead.URL {
		t.Fatalf("member-1 at a dead URL: %+v; want unhealthy at once", u)
	}
	if _, err := h.clientVersion(); err == nil {
		t.Fatal("a call succeeded with the only member at a dead URL")
	}
}

// TestMembershipUpstreamsNotPersisted: members are listed by the admin API
// with their source, never written to the state file, and cannot be
// removed or shadowed through it.
func TestMembershipUpstreamsNotPersisted(t *testing.T) {
	nodes := threeNodes(t)
	admin := newFakeAdmin(t, member(1, nodes[0].url(), "up"))
	state := filepath.Join(t.TempDir(), "state.json")
	h := newMemberHarness(t, nodes, []*fakeAdmin{admin}, func(c *Config) { c.StateFile, c.AdminToken = state, adminToken })
	h.mustDiscover()
	api := httptest.NewServer(h.g.AdminHandler())
	defer api.Close()

	code, body := adminDo(t, api.URL, "GET", "/v1/upstreams", "", adminToken)
	var list []UpstreamStatus
	if code != 200 || json.Unmarshal(body, &list) != nil || len(list) != 1 || list[0].Name != "member-1" || list[0].Source != "membership" {
		t.Fatalf("admin list: %d %s", code, body)
	}
	if code, b := adminDo(t, api.URL, "POST", "/v1/upstreams", `{"name":"extra","url":"`+nodes[1].url()+`"}`, adminToken); code != 201 {
		t.Fatalf("add extra: %d %s", code, b)
	}
	if code, _ := adminDo(t, api.URL, "POST", "/v1/upstreams", `{"name":"member-9","url":"`+nodes[2].url()+`"}`, adminToken); code != 400 {
		t.Errorf("adding a member- name through the admin API: %d, want 400", code)
	}
	if code, _ := adminDo(t, api.URL, "DELETE", "/v1/upstreams/member-1", "", adminToken); code != 409 {
		t.Errorf("deleting a membership upstream: %d, want 409", code)
	}
	h.mustDiscover()
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"extra"`) || strings.Contains(string(data), "member-") {
		t.Errorf("state file: %s; want extra and no member upstream", data)
	}
	if got := h.upstreamNames(); !slices.Equal(got, []string{"extra", "member-1"}) {
		t.Errorf("upstreams %v; want [extra member-1]", got)
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMembershipRun runs the whole gateway with the membership runner on
// loopback: members that are up serve calls, one without an rpcUrl is
// skipped with one warning, metrics are exposed, and an admin outage
// leaves the upstreams in place.
func TestMembershipRun(t *testing.T) {
	nodes := threeNodes(t)
	admin := newFakeAdmin(t, member(1, nodes[0].url(), "up"), member(2, "", "up"), member(3, nodes[2].url(), "catching-up"))
	cfg := testConfig(nil)
	cfg.OpsAddr = "127.0.0.1:0"
	cfg.Health.PollInterval = Duration(20 * time.Millisecond)
	cfg.Membership.AdminURLs = []string{admin.srv.URL}
	cfg.Membership.Interval = Duration(20 * time.Millisecond)
	logs := &syncBuffer{}
	g, err := New(cfg, slog.New(slog.NewTextHandler(logs, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	addrs, err := g.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	call := func() (string, error) {
		resp, err := http.Post("http://"+addrs.HTTP+"/", "application/json",
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion"}`))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var r rpcResponse
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			return "", err
		}
		if r.Error != nil {
			return "", r.Error
		}
		var who string
		json.Unmarshal(r.Result, &who)
		return who, nil
	}
	eventually(t, "a call served by member 1", func() bool { who, err := call(); return err == nil && who == "n0" })
	polls := func(result string) float64 { return metricValue(t, g.metrics.MembershipPolls.WithLabelValues(result)) }
	eventually(t, "five membership polls", func() bool { return polls("ok") >= 5 })
	if n := strings.Count(logs.String(), "cluster member skipped"); n != 1 {
		t.Errorf("member without rpcUrl warned about %d times, want once", n)
	}
	for range 10 {
		if who, err := call(); err != nil || who != "n0" {
			t.Fatalf("call served by %q (%v); want n0, the only member up with an rpcUrl", who, err)
		}
	}
	resp, err := http.Get("http://" + addrs.Ops + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`hansa_gateway_membership_polls_total{result="ok"}`, `hansa_gateway_membership_members{health="up"} 2`,
		`hansa_gateway_membership_members{health="catching-up"} 1`, "hansa_gateway_draining_upstreams 0",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	admin.mode.Store(adminHTTP500)
	eventually(t, "three failed membership polls", func() bool { return polls("error") >= 3 })
	if who, err := call(); err != nil || who != "n0" {
		t.Fatalf("during the admin outage: served by %q (%v); want n0 still", who, err)
	}
	if n := strings.Count(logs.String(), "membership poll failed"); n != 1 {
		t.Errorf("admin outage warned about %d times, want once (rate-limited)", n)
	}
	admin.mode.Store(adminAnswer)
	eventually(t, "the recovery log", func() bool { return strings.Contains(logs.String(), "membership poll answered again") })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
