package gateway

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const adminToken = "admin-token-0123456789"

func adminDo(t *testing.T, base, method, path, body, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestAdminUpstreamsPersist adds and removes upstreams through the admin
// API and checks that a new gateway on the same state file keeps them.
func TestAdminUpstreamsPersist(t *testing.T) {
	nodes := threeNodes(t)
	state := filepath.Join(t.TempDir(), "state.json")
	mutate := func(c *Config) {
		c.Upstreams = c.Upstreams[:1] // n0 from the config file
		c.StateFile, c.AdminToken = state, adminToken
	}
	h := newHarness(t, nodes, mutate)
	admin := httptest.NewServer(h.g.AdminHandler())
	defer admin.Close()

	if code, _ := adminDo(t, admin.URL, "GET", "/v1/upstreams", "", ""); code != 401 {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := adminDo(t, admin.URL, "GET", "/v1/upstreams", "", "wrong-token-wrong-token"); code != 401 {
		t.Fatalf("wrong token: %d, want 401", code)
	}
	add := func(name, url, role string) (int, []byte) {
		return adminDo(t, admin.URL, "POST", "/v1/upstreams",
			`{"name":"`+name+`","url":"`+url+`","role":"`+role+`","labels":{"region":"eu"}}`, adminToken)
	}
	if code, b := add("n1", nodes[1].url(), "primary"); code != 201 {
		t.Fatalf("add n1: %d %s", code, b)
	}
	if code, b := add("fb2", nodes[2].url(), "fallback"); code != 201 {
		t.Fatalf("add fb2: %d %s", code, b)
	}
	if code, _ := add("n1", nodes[1].url(), "primary"); code != 409 {
		t.Fatalf("duplicate add: %d, want 409", code)
	}
	if code, _ := add("bad", "ftp://x", "primary"); code != 400 {
		t.Fatalf("bad url: %d, want 400", code)
	}
	if code, _ := add("bad", nodes[1].url(), "leader"); code != 400 {
		t.Fatalf("bad role: %d, want 400", code)
	}
	if code, _ := adminDo(t, admin.URL, "DELETE", "/v1/upstreams/n0", "", adminToken); code != 409 {
		t.Fatalf("delete a config upstream: %d, want 409", code)
	}
	if code, _ := adminDo(t, admin.URL, "DELETE", "/v1/upstreams/nope", "", adminToken); code != 404 {
		t.Fatalf("delete unknown: %d, want 404", code)
	}

	// The added primary takes traffic after its first poll.
	h.poll(1)
	h.resetCalls()
	for i := 0; nodes[1].calls.Load() == 0; i++ {
		if i == 300 {
			t.Fatal("added upstream n1 got no traffic")
		}
		if _, err := h.clientVersion(); err != nil {
			t.Fatal(err)
		}
	}
	if nodes[2].calls.Load() != 0 {
		t.Error("the added fallback took traffic while primaries are healthy")
	}

	// Restart: a new gateway on the same state file keeps the added upstreams.
	cfg := testConfig(nodes)
	mutate(&cfg)
	g2, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]UpstreamStatus{}
	for _, u := range g2.Upstreams() {
		got[u.Name] = u
	}
	if len(got) != 3 || got["n1"].Source != "admin" || got["fb2"].Role != RoleFallback ||
		got["n1"].Labels["region"] != "eu" || got["n0"].Source != "config" {
		t.Fatalf("after restart: %+v", got)
	}

	if code, b := adminDo(t, admin.URL, "DELETE", "/v1/upstreams/n1", "", adminToken); code != 204 {
		t.Fatalf("delete n1: %d %s", code, b)
	}
	code, b := adminDo(t, admin.URL, "GET", "/v1/upstreams", "", adminToken)
	var list []UpstreamStatus
	if code != 200 || json.Unmarshal(b, &list) != nil || len(list) != 2 {
		t.Fatalf("list after delete: %d %s", code, b)
	}
	data, _ := os.ReadFile(state)
	if strings.Contains(string(data), `"n1"`) || !strings.Contains(string(data), `"fb2"`) {
		t.Errorf("state file after delete: %s", data)
	}
}

// TestReload swaps keys atomically and keeps the old config when the new
// one is invalid.
func TestReload(t *testing.T) {
	nodes := threeNodes(t)
	keys := func(secret string) []KeyConfig {
		return []KeyConfig{{Name: "k", Key: secret, Methods: []string{"web3_*"}}}
	}
	h := newHarness(t, nodes, func(c *Config) { c.AllowAnonymous, c.Keys = false, keys("first-secret") })
	h.poll(1)
	ok := func(secret string) bool {
		_, resp := h.call("/v1/"+secret, "web3_clientVersion", "", nil)
		return resp.Error == nil
	}
	if !ok("first-secret") {
		t.Fatal("first key refused")
	}
	bad := testConfig(nodes)
	bad.Keys = []KeyConfig{{Name: "k", Key: "short"}}
	if err := h.g.Reload(bad); err == nil {
		t.Fatal("invalid config accepted")
	}
	if !ok("first-secret") {
		t.Fatal("old key refused after a failed reload")
	}
	good := testConfig(nodes)
	good.AllowAnonymous, good.Keys = false, keys("second-secret")
	good.Upstreams = good.Upstreams[:2]
	if err := h.g.Reload(good); err != nil {
		t.Fatal(err)
	}
	if ok("first-secret") || !ok("second-secret") {
		t.Fatal("reload did not swap the keys")
	}
	if n := len(h.g.Upstreams()); n != 2 {
		t.Fatalf("%d upstreams after reload, want 2", n)
	}
	// Upstreams kept across the reload keep their health: no cold start.
	if !h.g.Upstreams()[0].Healthy {
		t.Error("kept upstream lost its health on reload")
	}
	// The body limit is the front's, fixed at start: a reload keeps it.
	bigger := good
	bigger.Limits.MaxBodyBytes = 2 * good.Limits.MaxBodyBytes
	if err := h.g.Reload(bigger); err != nil {
		t.Fatal(err)
	}
	if got := h.g.rt.Load().cfg.Limits.MaxBodyBytes; got != good.Limits.MaxBodyBytes {
		t.Errorf("max_body_bytes %d after reload, want the start value %d", got, good.Limits.MaxBodyBytes)
	}
	// direct_calls takes effect at once, and 0 turns blocking sockets off.
	if !h.g.direct.enter() {
		t.Error("default direct_calls admitted no call to a blocking socket")
	}
	h.g.direct.leave()
	off := bigger
	off.Limits.DirectCalls = 0
	if err := h.g.Reload(off); err != nil {
		t.Fatal(err)
	}
	if h.g.direct.enter() {
		t.Error("direct_calls = 0 after reload, yet a call was admitted to a blocking socket")
	}
}

// TestRunAlertsAndProbes runs the whole gateway on loopback with a fast poll
// and a webhook: it becomes ready, exposes metrics, and alerts when an
// upstream goes down.
func TestRunAlertsAndProbes(t *testing.T) {
	var mu sync.Mutex
	var alerts []string
	got := make(chan struct{}, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct{ Text string }
		json.NewDecoder(r.Body).Decode(&msg)
		mu.Lock()
		alerts = append(alerts, msg.Text)
		mu.Unlock()
		got <- struct{}{}
	}))
	defer hook.Close()

	nodes := threeNodes(t)
	cfg := testConfig(nodes)
	cfg.OpsAddr, cfg.AdminAddr, cfg.AdminToken = "127.0.0.1:0", "127.0.0.1:0", adminToken
	cfg.Health.PollInterval = Duration(20 * time.Millisecond)
	cfg.Alerts = AlertConfig{WebhookURL: hook.URL, MinHealthy: 3}
	g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
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
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor("readyz", func() bool { c, _ := get("http://" + addrs.Ops + "/readyz"); return c == 200 })
	if c, _ := adminDo(t, "http://"+addrs.Admin, "GET", "/v1/upstreams", "", adminToken); c != 200 {
		t.Errorf("admin list on its own listener: %d", c)
	}
	nodes[1].fail500.Store(true)
	waitFor("an alert about n1", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range alerts {
			if strings.Contains(a, "upstream n1 is unhealthy") {
				return true
			}
		}
		return false
	})
	waitFor("a healthy-count alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range alerts {
			if strings.Contains(a, "2 healthy upstreams, below the threshold of 3") {
				return true
			}
		}
		return false
	})
	_, metrics := get("http://" + addrs.Ops + "/metrics")
	for _, want := range []string{
		"hansa_gateway_healthy_upstreams 2", `hansa_gateway_upstream_healthy{upstream="n1"} 0`,
		"hansa_gateway_upstream_lag_blocks", "hansa_gateway_corroborated_head 100", "hansa_gateway_failovers_total 1",
		`hansa_gateway_alerts_total{outcome="sent"}`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}
