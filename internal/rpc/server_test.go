package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

// srvTestService is a trivial receiver for server tests, served as "eth".
type srvTestService struct{ release chan struct{} }

func (srvTestService) Echo(s string) string { return s }
func (srvTestService) Add(a, b int) int     { return a + b }
func (srvTestService) Big(n int) string     { return strings.Repeat("x", n) }
func (srvTestService) Fail() error          { return errors.New("boom") }
func (srvTestService) Slow(ctx context.Context) error {
	<-ctx.Done() // returns only when the call timeout cancels it
	return ctx.Err()
}

// Stuck ignores its context: it returns when the test closes the channel.
func (s srvTestService) Stuck() error {
	<-s.release
	return nil
}

// srvTestFilters is a second receiver under "eth".
type srvTestFilters struct{}

func (srvTestFilters) Other() string { return "other" }

// srvTestNamed serves a fixed string under any namespace.
type srvTestNamed struct{ name string }

func (n srvTestNamed) Name() string { return n.name }

func srvTestConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 4096
	cfg.MaxBatchItems = 5
	cfg.MaxResponseBytes = 2000
	cfg.CallTimeout = 300 * time.Millisecond
	return cfg
}

func newSrvTestServer(t *testing.T, cfg Config) (*Server, *prometheus.Registry, *httptest.Server) {
	t.Helper()
	reg := prometheus.NewRegistry()
	release := make(chan struct{})
	svc := Services{
		Eth: srvTestService{release}, Filters: srvTestFilters{},
		Net: srvTestNamed{"net"}, Web3: srvTestNamed{"web3"},
		Txpool: srvTestNamed{"txpool"}, Debug: srvTestNamed{"debug"},
	}
	s, err := NewServer(cfg, svc, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler()) // binds 127.0.0.1
	t.Cleanup(func() { close(release); s.Stop(); hs.Close() })
	return s, reg, hs
}

// srvPost sends body and returns the HTTP status and the raw answer.
func srvPost(t *testing.T, url, body string, chunked bool) (int, []byte) {
	t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

type srvTestResp struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func TestServerNamespaces(t *testing.T) {
	tests := []struct {
		name       string
		namespaces []string
		want       map[string]bool
	}{
		{"default", DefaultConfig().Namespaces, map[string]bool{"eth": true, "net": true, "web3": true, "txpool": true, "debug": false}},
		{"debug on", []string{"eth", "debug"}, map[string]bool{"eth": true, "net": false, "debug": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := srvTestConfig()
			cfg.Namespaces = tt.namespaces
			_, _, hs := newSrvTestServer(t, cfg)
			c, err := gethrpc.Dial(hs.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			mods, err := c.SupportedModules()
			if err != nil {
				t.Fatal(err)
			}
			for ns, want := range tt.want {
				if _, got := mods[ns]; got != want {
					t.Errorf("module %s served = %v, want %v (modules %v)", ns, got, want, mods)
				}
			}
			// Both receivers are reachable under eth.
			var a, b string
			if err := c.Call(&a, "eth_echo", "hi"); err != nil || a != "hi" {
				t.Errorf("eth_echo = %q, %v", a, err)
			}
			if err := c.Call(&b, "eth_other"); err != nil || b != "other" {
				t.Errorf("eth_other = %q, %v", b, err)
			}
			var d string
			err = c.Call(&d, "debug_name")
			if tt.want["debug"] != (err == nil) {
				t.Errorf("debug_name: err = %v, debug enabled = %v", err, tt.want["debug"])
			}
		})
	}
}

func TestNewServerRejectsBadConfig(t *testing.T) {
	cfg := srvTestConfig()
	cfg.Namespaces = []string{"admin"}
	if _, err := NewServer(cfg, Services{}, nil, nil); err == nil {
		t.Error("NewServer accepted namespace admin")
	}
	// A receiver without any suitable method cannot be registered.
	if _, err := NewServer(srvTestConfig(), Services{Net: struct{}{}}, nil, nil); err == nil {
		t.Error("NewServer accepted a receiver with no methods")
	}
}

// TestServerErrors checks what raw HTTP clients see for each kind of bad request.
func TestServerErrors(t *testing.T) {
	_, _, hs := newSrvTestServer(t, srvTestConfig())
	tests := []struct {
		name       string
		body       string
		chunked    bool
		status     int
		code       int
		msgContain string
		id         string
	}{
		{"ok", `{"jsonrpc":"2.0","id":1,"method":"eth_add","params":[2,3]}`, false, 200, 0, "", "1"},
		{"malformed", `{"jsonrpc":"2.0","id":1,"method":`, false, 200, -32700, "parse error", "null"},
		{"unknown method", `{"jsonrpc":"2.0","id":"a","method":"eth_nope","params":[]}`, false, 200, -32601, "the method eth_nope does not exist/is not available", `"a"`},
		{"wrong param type", `{"jsonrpc":"2.0","id":2,"method":"eth_add","params":["x",1]}`, false, 200, -32602, "invalid argument 0", "2"},
		{"method error", `{"jsonrpc":"2.0","id":3,"method":"eth_fail"}`, false, 200, -32000, "boom", "3"},
		{"response too large", `{"jsonrpc":"2.0","id":7,"method":"eth_big","params":[5000]}`, false, 200, -32003, "response too large", "7"},
		{"response just under", `{"jsonrpc":"2.0","id":8,"method":"eth_big","params":[1500]}`, false, 200, 0, "", "8"},
		{"timeout", `{"jsonrpc":"2.0","id":9,"method":"eth_slow"}`, false, 200, -32002, "request timed out", "9"},
		{"body too large", `{"jsonrpc":"2.0","id":1,"method":"eth_echo","params":["` + strings.Repeat("y", 5000) + `"]}`, false, 413, -32600, "content length too large", "null"},
		{"chunked body too large", `{"jsonrpc":"2.0","id":1,"method":"eth_echo","params":["` + strings.Repeat("y", 5000) + `"]}`, true, 413, -32600, "too large", "null"},
		{"chunked ok", `{"jsonrpc":"2.0","id":1,"method":"eth_echo","params":["z"]}`, true, 200, 0, "", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := srvPost(t, hs.URL, tt.body, tt.chunked)
			if status != tt.status {
				t.Fatalf("status %d, want %d (body %s)", status, tt.status, out)
			}
			var r srvTestResp
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatalf("answer is not one JSON-RPC object: %v: %s", err, out)
			}
			if r.Version != "2.0" || string(r.ID) != tt.id {
				t.Errorf("jsonrpc %q id %s, want 2.0 and %s", r.Version, r.ID, tt.id)
			}
			if tt.code == 0 {
				if r.Error != nil || len(r.Result) == 0 {
					t.Errorf("want a result, got %s", out)
				}
				return
			}
			if r.Error == nil {
				t.Fatalf("want error %d, got %s", tt.code, out)
			}
			if r.Error.Code != tt.code || !strings.Contains(r.Error.Message, tt.msgContain) {
				t.Errorf("error %d %q, want %d containing %q", r.Error.Code, r.Error.Message, tt.code, tt.msgContain)
			}
		})
	}
}

func TestServerBatch(t *testing.T) {
	_, _, hs := newSrvTestServer(t, srvTestConfig())

	t.Run("within limit", func(t *testing.T) {
		c, err := gethrpc.Dial(hs.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var sum int
		var echo string
		batch := []gethrpc.BatchElem{
			{Method: "eth_add", Args: []any{1, 2}, Result: &sum},
			{Method: "eth_echo", Args: []any{"b"}, Result: &echo},
			{Method: "eth_nope", Result: new(string)},
		}
		if err := c.BatchCall(batch); err != nil {
			t.Fatal(err)
		}
		if batch[0].Error != nil || sum != 3 || batch[1].Error != nil || echo != "b" {
			t.Errorf("batch results: %d %v, %q %v", sum, batch[0].Error, echo, batch[1].Error)
		}
		var rerr gethrpc.Error
		if !errors.As(batch[2].Error, &rerr) || rerr.ErrorCode() != -32601 {
			t.Errorf("unknown method in batch: %v", batch[2].Error)
		}
	})
	t.Run("over item limit", func(t *testing.T) {
		items := make([]string, 6)
		for i := range items {
			items[i] = `{"jsonrpc":"2.0","id":` + string(rune('1'+i)) + `,"method":"eth_add","params":[1,1]}`
		}
		status, out := srvPost(t, hs.URL, "["+strings.Join(items, ",")+"]", false)
		var rs []srvTestResp
		if err := json.Unmarshal(out, &rs); err != nil || status != 200 {
			t.Fatalf("status %d, answer %s: %v", status, out, err)
		}
		if len(rs) != 1 || rs[0].Error == nil || rs[0].Error.Code != -32600 || rs[0].Error.Message != "batch too large" || string(rs[0].ID) != "1" {
			t.Errorf("answer %s, want one -32600 batch too large error with id 1", out)
		}
	})
	t.Run("empty batch", func(t *testing.T) {
		_, out := srvPost(t, hs.URL, "[]", false)
		var r srvTestResp
		if err := json.Unmarshal(out, &r); err != nil || r.Error == nil || r.Error.Code != -32600 {
			t.Errorf("empty batch answer %s (%v)", out, err)
		}
	})
	t.Run("response over limit", func(t *testing.T) {
		body := `[{"jsonrpc":"2.0","id":1,"method":"eth_big","params":[1500]},{"jsonrpc":"2.0","id":2,"method":"eth_big","params":[1500]},{"jsonrpc":"2.0","id":3,"method":"eth_add","params":[1,1]}]`
		_, out := srvPost(t, hs.URL, body, false)
		var rs []srvTestResp
		if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 3 {
			t.Fatalf("answer %s (%v)", out, err)
		}
		if rs[0].Error != nil {
			t.Errorf("first item should fit: %s", out)
		}
		if len(out) > srvTestConfig().MaxResponseBytes {
			t.Errorf("batch answer is %d bytes, over the limit", len(out))
		}
		for _, r := range rs[1:] {
			if r.Error == nil || r.Error.Code != -32003 {
				t.Errorf("item %s: want -32003, got %s", r.ID, out)
			}
		}
	})
}

func TestServerWebSocket(t *testing.T) {
	_, reg, hs := newSrvTestServer(t, srvTestConfig())
	wsURL := "ws" + strings.TrimPrefix(hs.URL, "http")
	c, err := gethrpc.DialContext(t.Context(), wsURL)
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := c.Call(&s, "eth_echo", "ws"); err != nil || s != "ws" {
		t.Fatalf("eth_echo over ws = %q, %v", s, err)
	}
	if got := srvGauge(t, reg, "hansa_rpc_ws_connections"); got != 1 {
		t.Errorf("ws connections = %v, want 1", got)
	}
	// A message over MaxRequestBytes closes the connection.
	err = c.Call(&s, "eth_echo", strings.Repeat("q", 5000))
	if err == nil {
		t.Error("oversized ws message was answered")
	}
	c.Close()

	// A fresh connection still works.
	c2, err := gethrpc.DialContext(t.Context(), wsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if err := c2.Call(&s, "eth_echo", "again"); err != nil || s != "again" {
		t.Errorf("eth_echo on second connection = %q, %v", s, err)
	}
	if got := srvCounter(t, reg, "hansa_rpc_ws_connections_total", nil); got != 2 {
		t.Errorf("ws connections total = %v, want 2", got)
	}
}

func TestServerTimeoutViaClient(t *testing.T) {
	_, _, hs := newSrvTestServer(t, srvTestConfig())
	c, err := gethrpc.Dial(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Both a method that honours its context and one that ignores it: the
	// client gets the timeout answer either way.
	for _, m := range []string{"eth_slow", "eth_stuck"} {
		err = c.Call(nil, m)
		var rerr gethrpc.Error
		if !errors.As(err, &rerr) || rerr.ErrorCode() != -32002 || rerr.Error() != "request timed out" {
			t.Errorf("%s: %v, want -32002 request timed out", m, err)
		}
	}
}

func TestServerHTTPStatusPassThrough(t *testing.T) {
	_, _, hs := newSrvTestServer(t, srvTestConfig())
	// Health-check GET: go-ethereum answers 200 with an empty body.
	resp, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET = %d", resp.StatusCode)
	}
	// Wrong content type: 415 from go-ethereum.
	resp, err = http.Post(hs.URL, "text/plain", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST = %d, want 415", resp.StatusCode)
	}
}

func TestServerBatchTimeout(t *testing.T) {
	_, _, hs := newSrvTestServer(t, srvTestConfig())
	body := `[{"jsonrpc":"2.0","id":1,"method":"eth_add","params":[1,2]},{"jsonrpc":"2.0","id":2,"method":"eth_slow"},{"jsonrpc":"2.0","id":3,"method":"eth_add","params":[2,2]}]`
	_, out := srvPost(t, hs.URL, body, false)
	var rs []srvTestResp
	if err := json.Unmarshal(out, &rs); err != nil || len(rs) != 3 {
		t.Fatalf("answer %s (%v)", out, err)
	}
	// The completed call keeps its result; the slow one and the one after it
	// are answered with errors (go-ethereum's batch timeout), the one never
	// started with -32002.
	byID := map[string]srvTestResp{}
	for _, r := range rs {
		byID[string(r.ID)] = r
	}
	if string(byID["1"].Result) != "3" {
		t.Errorf("first result %s, want 3", byID["1"].Result)
	}
	if byID["2"].Error == nil || byID["3"].Error == nil || byID["3"].Error.Code != -32002 {
		t.Errorf("want errors for items 2 and 3 (3 = -32002): %s", out)
	}
}

func TestCallContextTimeoutIsDeadlineExceeded(t *testing.T) {
	c := newCallContext(t.Context())
	child, cancel := context.WithTimeout(c, time.Hour)
	defer cancel()
	if _, ok := c.Deadline(); ok {
		t.Error("callContext reports a deadline")
	}
	c.finish(context.DeadlineExceeded)
	<-child.Done()
	if !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("errs %v / %v, want deadline exceeded", c.Err(), child.Err())
	}
	c.release() // idempotent after finish
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Errorf("release changed err to %v", c.Err())
	}

	parent, pcancel := context.WithCancel(t.Context())
	c2 := newCallContext(parent)
	pcancel()
	<-c2.Done()
	if !errors.Is(c2.Err(), context.Canceled) {
		t.Errorf("parent cancel gave %v", c2.Err())
	}
}

func TestServerStopped(t *testing.T) {
	s, _, hs := newSrvTestServer(t, srvTestConfig())
	s.Stop()
	status, out := srvPost(t, hs.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_add","params":[1,2]}`, false)
	var r srvTestResp
	if err := json.Unmarshal(out, &r); err != nil || status != 503 || r.Error == nil {
		t.Errorf("after Stop: %d %s (%v)", status, out, err)
	}
}

func TestServerMetrics(t *testing.T) {
	_, reg, hs := newSrvTestServer(t, srvTestConfig())
	calls := []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_add","params":[1,2]}`,
		`{"jsonrpc":"2.0","id":2,"method":"eth_add","params":[1,2]}`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_fail"}`,
		`{"jsonrpc":"2.0","id":4,"method":"eth_doesNotExist1"}`,
		`{"jsonrpc":"2.0","id":5,"method":"eth_doesNotExist2"}`,
		`{"jsonrpc":"2.0","id":6,"method":"eth_slow"}`,
		`{"jsonrpc":"2.0","id":7,"method":"eth_big","params":[5000]}`,
		`{"jsonrpc":"2.0","id":8,"method":`,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_echo","params":["a"]},{"jsonrpc":"2.0","id":2,"method":"eth_fail"},{"jsonrpc":"2.0","method":"eth_echo","params":["n"]}]`,
	}
	for _, b := range calls {
		srvPost(t, hs.URL, b, false)
	}
	srvPost(t, hs.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_echo","params":["`+strings.Repeat("y", 5000)+`"]}`, false)

	tests := []struct {
		method, outcome string
		want            float64
	}{
		{"eth_add", "ok", 2},
		{"eth_fail", "error", 2},
		{"unknown", "error", 2},
		{"eth_slow", "timeout", 1},
		{"eth_big", "too_large", 1},
		{"unknown", "invalid", 1},
		{"eth_echo", "ok", 2},
		{"unknown", "too_large", 1},
	}
	for _, tt := range tests {
		got := srvCounter(t, reg, "hansa_rpc_requests_total", map[string]string{"method": tt.method, "outcome": tt.outcome})
		if got != tt.want {
			t.Errorf("requests_total{method=%s,outcome=%s} = %v, want %v", tt.method, tt.outcome, got, tt.want)
		}
	}
	// Unregistered names never become label values.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "doesNotExist") {
					t.Errorf("%s has label value %q", mf.GetName(), l.GetValue())
				}
			}
		}
	}
	if n := srvHistCount(t, reg, "hansa_rpc_batch_size"); n != 1 {
		t.Errorf("batch_size count = %d, want 1", n)
	}
	if n := srvHistCount(t, reg, "hansa_rpc_request_duration_seconds"); n < 8 {
		t.Errorf("request_duration count = %d, want >= 8", n)
	}
	if got := srvGauge(t, reg, "hansa_rpc_inflight"); got != 0 {
		t.Errorf("inflight = %v after all requests returned", got)
	}
}

func TestNewServerDuplicateRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := NewServer(srvTestConfig(), Services{}, reg, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(srvTestConfig(), Services{}, reg, nil); err == nil {
		t.Error("second server registered the same metrics without error")
	}
}

func srvCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func srvGauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func srvHistCount(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

// ExampleNewServer serves JSON-RPC over HTTP and WebSocket on one listener.
func ExampleNewServer() {
	cfg := DefaultConfig()
	cfg.Namespaces = []string{"web3"}
	s, err := NewServer(cfg, Services{Web3: srvTestNamed{"hansa"}}, prometheus.NewRegistry(), nil)
	if err != nil {
		panic(err)
	}
	defer s.Stop()
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	c, err := gethrpc.Dial("ws" + strings.TrimPrefix(hs.URL, "http"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	var name string
	if err := c.Call(&name, "web3_name"); err != nil {
		panic(err)
	}
	fmt.Println(name)
	// Output: hansa
}
