package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// rawRoundTrip writes raw bytes to the front and reads one HTTP response
// and its body.
func rawRoundTrip(t *testing.T, front, raw string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// rawExchange writes raw bytes to the front and reads one JSON-RPC answer.
func rawExchange(t *testing.T, front, raw string) (*http.Response, rpcResponse) {
	t.Helper()
	resp, b := rawRoundTrip(t, front, raw)
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("HTTP %d answer %q is not JSON-RPC: %v", resp.StatusCode, b, err)
	}
	return resp, out
}

// TestFrontHTTPErrors checks the answers to requests the front refuses
// before any call is read: each is a JSON-RPC error with its HTTP status,
// and the gateway serves the next request.
func TestFrontHTTPErrors(t *testing.T) {
	h := newHarness(t, threeNodes(t), func(c *Config) { c.Limits.MaxBodyBytes = 1024 })
	h.poll(1)
	call := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`
	tests := []struct {
		name   string
		raw    string
		status int
		msg    string
	}{
		{"header too large", "POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", frontHeaderBytes+1) + "\r\nContent-Length: 2\r\n\r\n{}",
			http.StatusRequestHeaderFieldsTooLarge, "request header too large"},
		{"declared body too large", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n" + strings.Repeat(" ", 1025),
			http.StatusRequestEntityTooLarge, "request body too large: limit 1024 bytes"},
		{"chunked body too large", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", 2000, strings.Repeat(" ", 2000)),
			http.StatusRequestEntityTooLarge, "request body too large"},
		{"GET without upgrade", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusMethodNotAllowed, "method not allowed"},
		{"websocket without key", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
			http.StatusBadRequest, "Sec-WebSocket-Key"},
		{"websocket old version", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
			http.StatusBadRequest, "unsupported version"},
		{"websocket POST", "POST / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nContent-Length: 0\r\n\r\n",
			http.StatusBadRequest, "not GET"},
		{"garbage", "BLAH\r\n\r\n", http.StatusBadRequest, "malformed HTTP request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, out := rawExchange(t, h.front.URL, tt.raw)
			if resp.StatusCode != tt.status || out.Error == nil || out.Error.Code != CodeInvalidRequest || !strings.Contains(out.Error.Message, tt.msg) {
				t.Fatalf("got HTTP %d %+v; want HTTP %d, code %d, message containing %q", resp.StatusCode, out.Error, tt.status, CodeInvalidRequest, tt.msg)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			// The next request is served.
			if _, ok := h.call("/", "eth_chainId", "", nil); ok.Error != nil {
				t.Fatalf("after the refusal: %+v", ok.Error)
			}
		})
	}
	// A chunked body within the limit is read whole.
	resp, out := rawExchange(t, h.front.URL, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"+
		fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 10, call[:10], len(call)-10, call[10:]))
	if resp.StatusCode != http.StatusOK || out.Error != nil || string(out.Result) != `"0x539"` {
		t.Fatalf("chunked call: HTTP %d %s %+v", resp.StatusCode, out.Result, out.Error)
	}
}

// TestFrontPipelinedRequests sends three calls on one connection without
// waiting and reads three answers in order.
func TestFrontPipelinedRequests(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)
	conn, err := net.Dial("tcp", strings.TrimPrefix(h.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var raw strings.Builder
	for i := range 3 {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_chainId","params":[]}`, 100+i)
		fmt.Fprintf(&raw, "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	if _, err := io.WriteString(conn, raw.String()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for i := range 3 {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		var out rpcResponse
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil || string(out.ID) != fmt.Sprint(100+i) || string(out.Result) != `"0x539"` {
			t.Fatalf("answer %d: id %s result %s err %v", i, out.ID, out.Result, err)
		}
	}
}

// TestFrontShutdownFinishesCalls stops the front while slow calls are in
// flight: they are answered, and new connections are refused.
func TestFrontShutdownFinishesCalls(t *testing.T) {
	nodes := threeNodes(t)
	slow := "web3_clientVersion"
	for _, n := range nodes {
		n.slowMethod.Store(&slow)
		n.slowDelay.Store(int64(300 * time.Millisecond))
	}
	cfg := testConfig(nodes)
	g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	g.pollOnce(t.Context(), time.Now())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.serveFront(ctx, ln) }()

	// A single call (the event loop forwards it) and a batch (on a
	// connection the loop hands to fasthttp) are in flight at once.
	bodies := []string{`{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion","params":[]}`,
		`[{"jsonrpc":"2.0","id":2,"method":"web3_clientVersion","params":[]}]`}
	answered := make(chan string, len(bodies))
	for _, body := range bodies {
		go func() {
			resp, err := http.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				answered <- "error: " + err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answered <- string(b)
		}()
	}
	// Wait until both calls reached an upstream, then stop.
	deadline := time.Now().Add(5 * time.Second)
	for inFlight(g) < int64(len(bodies)) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d calls reached an upstream", inFlight(g), len(bodies))
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	for range bodies {
		if got := <-answered; !strings.Contains(got, `"result"`) {
			t.Fatalf("in-flight call during shutdown: %s", got)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("serveFront: %v", err)
	}
	if _, err := http.Post(url, "application/json", strings.NewReader(`{}`)); err == nil {
		t.Fatal("a request after shutdown was served")
	}
}

// inFlight is the number of calls the gateway has sent upstream and not
// yet seen answered.
func inFlight(g *Gateway) int64 {
	var n int64
	for _, u := range g.snapshot() {
		n += u.inFlight.Load()
	}
	return n
}

// TestFrontTimeouts shortens the front's read and idle timeouts: a request
// that never completes is answered 408 and its connection closed, and an
// idle keep-alive connection is closed; with the event loops and with
// fasthttp alone.
func TestFrontTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	nodes := threeNodes(t)
	for _, front := range []struct {
		name  string
		loops int
	}{{"event loop", 0}, {"fasthttp", -1}} {
		t.Run(front.name, func(t *testing.T) {
			cfg := testConfig(nodes)
			cfg.Limits.FrontLoops = front.loops
			g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			g.frontRead, g.frontIdle = timeout, timeout
			g.pollOnce(t.Context(), time.Now())
			url := testFront(t, g)
			dial := func() (net.Conn, *bufio.Reader) {
				conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { conn.Close() })
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				return conn, bufio.NewReader(conn)
			}
			wantClosed := func(br *bufio.Reader, since time.Time) {
				t.Helper()
				if _, err := br.ReadByte(); err != io.EOF {
					t.Fatalf("connection not closed by the server: %v", err)
				}
				if d := time.Since(since); d < timeout {
					t.Fatalf("closed after %v, before the %v timeout", d, timeout)
				}
			}

			// Half a request: 408, then the connection closes.
			conn, br := dial()
			start := time.Now()
			if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\""); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "request not received in time") {
				t.Fatalf("half a request: HTTP %d %s", resp.StatusCode, b)
			}
			if d := time.Since(start); d < timeout {
				t.Fatalf("answered after %v, before the %v timeout", d, timeout)
			}
			wantClosed(br, start)

			// A kept-alive connection left idle after an answer closes.
			conn, br = dial()
			body := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`
			sent := time.Now() // before the server's idle wait starts
			fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"0x539"`) {
				t.Fatalf("call: HTTP %d %s", resp.StatusCode, b)
			}
			wantClosed(br, sent)
		})
	}
}
