//go:build linux

package gateway

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// wireAnswer is what a client sees of one HTTP answer.
type wireAnswer struct {
	status      int
	contentType string
	retryAfter  string
	close       bool
	body        string
}

// exchange writes raw to front and reads one answer.
func exchange(t *testing.T, front, raw string) wireAnswer {
	t.Helper()
	resp, b := rawRoundTrip(t, front, raw)
	return wireAnswer{resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Retry-After"), resp.Close, string(b)}
}

var millis = regexp.MustCompile(`(retry in |"retry_after_ms":)[0-9]+`)

func post(path, body string, headers ...string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s",
		path, strings.Join(headers, ""), len(body), body)
}

// TestLoopAnswersLikeFasthttp sends the same requests to a gateway served
// by the event loop and to one served by fasthttp alone: every answer
// (status, headers a client acts on, body) must be the same.
func TestLoopAnswersLikeFasthttp(t *testing.T) {
	nodes := threeNodes(t)
	mutate := func(loops int) func(*Config) {
		return func(c *Config) {
			c.Limits.FrontLoops = loops
			c.AllowAnonymous = false
			c.Limits.MaxBatch = 3
			c.Keys = []KeyConfig{
				{Name: "app", Key: "app-secret", Methods: []string{"eth_*"}},
				{Name: "tight", Key: "tight-secret", Methods: []string{"*"}, Rate: 0.001, Burst: 1},
			}
		}
	}
	loop := newHarness(t, nodes, mutate(0))
	fast := newHarness(t, nodes, mutate(-1))
	loop.poll(1)
	fast.poll(1)
	call := `{"jsonrpc":"2.0","id":9,"method":"eth_chainId","params":[]}`
	key := "X-API-Key: app-secret\r\n"
	cases := []struct{ name, raw string }{
		{"call", post("/", call, key)},
		{"key in path", post("/v1/app-secret", call)},
		{"id types", post("/", `{"jsonrpc":"2.0","id":"abc","method":"eth_chainId"}`, key)},
		{"no key", post("/", call)},
		{"unknown key", post("/", call, "X-API-Key: nope\r\n")},
		{"unknown path", post("/v2/x", call, key)},
		{"method not allowed", post("/", `{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion"}`, key)},
		{"malformed JSON", post("/", `{"jsonrpc":`, key)},
		{"not an object", post("/", `42`, key)},
		{"empty batch", post("/", `[]`, key)},
		{"batch", post("/", `[`+call+`,{"jsonrpc":"2.0","id":10,"method":"eth_chainId"}]`, key)},
		{"batch too large", post("/", `[`+call+`,`+call+`,`+call+`,`+call+`]`, key)},
		{"no method", post("/", `{"jsonrpc":"2.0","id":1}`, key)},
		{"connection close", post("/", call, key, "Connection: close\r\n")},
		{"empty body", post("/", ``, key)},
		{"chunked (handed over)", "POST / HTTP/1.1\r\nHost: gw\r\nX-API-Key: app-secret\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(call), call)},
		{"GET (handed over)", "GET / HTTP/1.1\r\nHost: gw\r\n\r\n"},
		{"HTTP/1.0 (handed over)", strings.Replace(post("/", call, key), "HTTP/1.1", "HTTP/1.0", 1)},
		{"rate limited, first", post("/", call, "X-API-Key: tight-secret\r\n")},
		{"rate limited, second", post("/", call, "X-API-Key: tight-secret\r\n")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := exchange(t, fast.front.URL, tc.raw)
			got := exchange(t, loop.front.URL, tc.raw)
			// A wait in milliseconds differs with the moment of asking.
			want.body = millis.ReplaceAllString(want.body, "${1}N")
			got.body = millis.ReplaceAllString(got.body, "${1}N")
			if got != want {
				t.Fatalf("event loop answered\n%+v\nfasthttp answered\n%+v", got, want)
			}
		})
	}
	// The loop answered the single calls itself and handed the rest on:
	// three batches, the chunked body, the GET and the HTTP/1.0 request.
	if n := metricValue(t, loop.g.metrics.FrontLoopRequests); n < 10 {
		t.Errorf("requests the loop answered: %v", n)
	}
	if n := metricValue(t, loop.g.metrics.FrontHandoffs); n != 6 {
		t.Errorf("connections handed to fasthttp: %v, want 6", n)
	}
	if n := metricValue(t, fast.g.metrics.FrontLoopRequests); n != 0 {
		t.Errorf("front_loops = -1 still ran a loop: %v requests", n)
	}
}

// TestLoopHandsOverWhatItDoesNotForward checks that a connection goes to
// fasthttp, with its request, when the loop would not forward the
// request itself: an upstream named by host name (the loop does not
// resolve names), a transaction send, a filter call. Each is answered.
func TestLoopHandsOverWhatItDoesNotForward(t *testing.T) {
	nodes := threeNodes(t)
	named := newHarness(t, nodes[:1], func(c *Config) {
		c.Upstreams[0].URL = strings.Replace(c.Upstreams[0].URL, "127.0.0.1", "localhost", 1)
	})
	if u := named.g.snapshot()[0]; u.loop != nil {
		t.Fatalf("upstream %s has a loop target", u.cfg.URL)
	}
	named.poll(1)
	for range 3 {
		if _, resp := named.call("/", "eth_chainId", "", nil); resp.Error != nil || string(resp.Result) != `"0x539"` {
			t.Fatalf("call: %s %+v", resp.Result, resp.Error)
		}
	}
	if n := metricValue(t, named.g.metrics.FrontLoopRequests); n != 0 {
		t.Errorf("requests the loop answered with a host-named upstream: %v, want 0", n)
	}
	if n := metricValue(t, named.g.metrics.FrontHandoffs); n < 1 {
		t.Errorf("connections handed over: %v", n)
	}

	h := newHarness(t, nodes, nil)
	h.poll(1)
	for i, tc := range []struct{ name, body, want string }{
		{"plain", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`, `"0x539"`},
		{"filter", `{"jsonrpc":"2.0","id":2,"method":"eth_newBlockFilter","params":[]}`, `"0x`},
		{"filter call", `{"jsonrpc":"2.0","id":3,"method":"eth_getFilterChanges","params":["0x1"]}`, `filter not found`},
		{"transaction send", `{"jsonrpc":"2.0","id":4,"method":"eth_sendRawTransaction","params":["0x00"]}`, `"error"`},
	} {
		got := exchange(t, h.front.URL, post("/", tc.body))
		if got.status != http.StatusOK || !strings.Contains(got.body, tc.want) {
			t.Fatalf("%s: %+v", tc.name, got)
		}
		handoffs := metricValue(t, h.g.metrics.FrontHandoffs)
		if want := float64(i); handoffs != want {
			t.Fatalf("after %s: %v connections handed over, want %v", tc.name, handoffs, want)
		}
	}
}

// TestLoopTargets checks which upstream URLs the loop dials itself.
func TestLoopTargets(t *testing.T) {
	for _, tc := range []struct {
		url      string
		batchMax int
		want     bool
	}{
		{"http://127.0.0.1:8545", 0, true},
		{"http://127.0.0.1:8545/rpc?x=1", 0, true},
		{"http://[::1]:8545", 0, true},
		{"http://10.0.0.1", 0, true},
		{"http://user:pw@10.0.0.1:8545", 0, true},
		{"https://127.0.0.1:8545", 0, false},
		{"http://localhost:8545", 0, false},
		{"http://node.example:8545", 0, false},
		{"http://127.0.0.1:8545", 8, false},
	} {
		u := newUpstream(UpstreamConfig{Name: "x", URL: tc.url, BatchMax: tc.batchMax}, "config", nil, nil, nil)
		if (u.loop != nil) != tc.want {
			t.Errorf("%s (batch_max %d): loop target %v, want %v", tc.url, tc.batchMax, u.loop != nil, tc.want)
		}
	}
	for url, want := range map[string]string{
		"http://user:pw@10.0.0.1:8545/rpc?x=1": "POST /rpc?x=1 HTTP/1.1\r\nHost: 10.0.0.1:8545\r\nUser-Agent: hansa-gateway\r\n" +
			"Content-Type: application/json\r\nAuthorization: Basic dXNlcjpwdw==\r\nContent-Length: ",
		// The Host header is the URL's host as written; the dial adds port 80.
		"http://10.0.0.1": "POST / HTTP/1.1\r\nHost: 10.0.0.1\r\nUser-Agent: hansa-gateway\r\nContent-Type: application/json\r\nContent-Length: ",
	} {
		u := newUpstream(UpstreamConfig{Name: "x", URL: url}, "config", nil, nil, nil)
		if got := string(u.loop.prefix); got != want {
			t.Errorf("%s: request prefix\n%q\nwant\n%q", url, got, want)
		}
	}
	if a, ok := newUpstream(UpstreamConfig{Name: "x", URL: "http://10.0.0.1"}, "config", nil, nil, nil).loop.addr.(*unix.SockaddrInet4); !ok || a.Port != 80 {
		t.Errorf("http://10.0.0.1 dials %+v, want port 80", a)
	}
}

// TestLoopResendsAfterAStaleConnection has the upstream close a kept-alive
// connection as soon as a second request arrives on it, without an
// answer. A read is then sent once more on a new connection and answered;
// a write that cannot be resent (eth_sendTransaction) is not, and the
// client learns that the upstream failed; on a new connection neither is
// resent.
func TestLoopResendsAfterAStaleConnection(t *testing.T) {
	type connKey struct{}
	var seen sync.Map // method -> *atomic.Int64: requests the upstream read
	count := func(method string) int64 {
		v, _ := seen.LoadOrStore(method, new(atomic.Int64))
		return v.(*atomic.Int64).Load()
	}
	var dropFirst atomic.Bool // also drop a connection's first request
	node := wireNode(t, "n0", newTxPool(), func(n *fakeNode, w http.ResponseWriter, r *http.Request, req *rpcRequest) bool {
		v, _ := seen.LoadOrStore(req.Method, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
		served := r.Context().Value(connKey{}).(*atomic.Int64).Add(1)
		if served > 1 || dropFirst.Load() {
			n.hijackClose(w)
			return true
		}
		return false
	}, func(s *http.Server) {
		s.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, new(atomic.Int64))
		}
	})
	h := newHarness(t, []*fakeNode{node}, func(c *Config) { c.Limits.Retries = 0 })
	h.poll(1)
	for _, tc := range []struct {
		method string
		sends  int64 // requests the upstream reads for the second call
		ok     bool
	}{
		{"eth_blockNumber", 2, true},
		{"eth_sendTransaction", 1, false},
	} {
		// The first call opens a connection and leaves it idle in the pool;
		// the second takes it, and the upstream drops it.
		if _, resp := h.call("/", "web3_clientVersion", "", nil); resp.Error != nil {
			t.Fatalf("first call: %+v", resp.Error)
		}
		before := count(tc.method)
		_, resp := h.call("/", tc.method, `[{}]`, nil)
		if got := count(tc.method) - before; got != tc.sends {
			t.Errorf("%s: the upstream read it %d times, want %d", tc.method, got, tc.sends)
		}
		if failed := resp.Error != nil && resp.Error.Code == CodeUnavailable; failed == tc.ok {
			t.Errorf("%s: answer %s %+v", tc.method, resp.Result, resp.Error)
		}
	}
	// A new connection that closes without an answer: nothing is resent.
	dropFirst.Store(true)
	before := count("eth_blockNumber")
	if _, resp := h.call("/", "eth_blockNumber", "", nil); resp.Error == nil || resp.Error.Code != CodeUnavailable {
		t.Fatalf("dropped on a new connection: %s %+v", resp.Result, resp.Error)
	}
	if got := count("eth_blockNumber") - before; got != 1 {
		t.Errorf("dropped on a new connection: read %d times, want 1", got)
	}
}

// garbageNode is an upstream that answers the health poll properly and
// every other request with random bytes, then closes the connection.
func garbageNode(t *testing.T, rnd *rand.Rand) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				br := bufio.NewReader(conn)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					body, _ := io.ReadAll(req.Body)
					if len(body) > 0 && body[0] == '[' {
						answer := `[{"jsonrpc":"2.0","id":1,"result":"0x539"},{"jsonrpc":"2.0","id":2,"result":"0x64"},{"jsonrpc":"2.0","id":3,"result":false}]`
						fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer)
						continue
					}
					mu.Lock()
					junk := make([]byte, rnd.IntN(300))
					for i := range junk {
						junk[i] = byte(rnd.IntN(256))
					}
					if rnd.IntN(2) == 0 { // sometimes garbage after a valid start
						junk = append([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5"), junk...)
					}
					mu.Unlock()
					_, _ = conn.Write(junk)
					return
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// TestLoopSurvivesGarbage has clients send random bytes to the front and an
// upstream answer calls with random bytes: the clients get errors (or
// nothing), calls routed to the garbage upstream are retried on the good
// one, and the gateway keeps serving throughout.
func TestLoopSurvivesGarbage(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	good := newFakeNode(t, "good", newTxPool())
	h := newHarness(t, []*fakeNode{good}, func(c *Config) {
		c.Upstreams = append(c.Upstreams, UpstreamConfig{Name: "junk", URL: garbageNode(t, rand.New(rand.NewPCG(3, 4))), Role: RolePrimary})
	})
	h.poll(1)
	addr := strings.TrimPrefix(h.front.URL, "http://")
	for i := range 200 {
		junk := make([]byte, 1+rnd.IntN(400))
		for j := range junk {
			junk[j] = byte(rnd.IntN(256))
		}
		if i%3 == 0 { // a valid start, then garbage
			junk = append([]byte("POST / HTTP/1.1\r\n"), junk...)
		}
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = conn.Write(junk)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		// Whatever comes back (an error answer, or a close) is fine; the
		// read must end, not hang.
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Fatalf("garbage %d: the front neither answered nor closed: %v", i, err)
		}
		conn.Close()
	}
	for i := range 30 {
		_, resp := h.call("/", "eth_chainId", "", nil)
		if resp.Error != nil || string(resp.Result) != `"0x539"` {
			t.Fatalf("call %d after the garbage: %s %+v", i, resp.Result, resp.Error)
		}
	}
	// Some calls went to the garbage upstream first and were retried.
	if n := metricValue(t, h.g.metrics.UpstreamRequests.WithLabelValues("junk", "failed")); n == 0 {
		t.Error("no call reached the garbage upstream")
	}
	if n := metricValue(t, h.g.metrics.Retries.WithLabelValues("eth_chainId")); n == 0 {
		t.Error("no call was retried")
	}
}
