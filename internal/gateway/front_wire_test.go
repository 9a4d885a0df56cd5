package gateway

// Wire-level tests of the JSON-RPC front. They speak raw HTTP/1.1 (or
// HTTP/1.0) over TCP and check only what any front must do, whatever reads
// the bytes: fasthttp today, an event loop that parses HTTP itself and
// hands unusual requests to fasthttp later. They never measure speed; the
// deadlines on connections only keep a broken front from hanging a test.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wireTimeout bounds every exchange of these tests (a failure bound, not a
// speed requirement).
const wireTimeout = 5 * time.Second

// wireDial opens a TCP connection to the front with a deadline; the test
// closes it at the end.
func wireDial(t *testing.T, front string) net.Conn {
	t.Helper()
	var d net.Dialer
	conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(wireTimeout))
	t.Cleanup(func() { conn.Close() })
	return conn
}

// wireBody is one JSON-RPC call; id is a JSON literal.
func wireBody(id, method, params string) string {
	if params == "" {
		params = "[]"
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":%s}`, id, method, params)
}

// wirePost is a raw HTTP/1.1 POST of body to path with extra header lines
// ("Name: value").
func wirePost(path, body string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, len(body))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return b.String()
}

// wireWrite writes s in one write.
func wireWrite(t *testing.T, conn net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(conn, s); err != nil {
		t.Fatal(err)
	}
}

// wireRead reads one final response (1xx interim responses are skipped)
// and its body.
func wireRead(t *testing.T, br *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading a response: %v", err)
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading a response body: %v", err)
		}
		return resp, b
	}
}

// wireDecode decodes a single JSON-RPC answer.
func wireDecode(t *testing.T, b []byte) rpcResponse {
	t.Helper()
	var out rpcResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %q is not JSON-RPC: %v", b, err)
	}
	return out
}

// wireWantResult checks an HTTP 200 answer with id and result.
func wireWantResult(t *testing.T, resp *http.Response, b []byte, id, result string) {
	t.Helper()
	out := wireDecode(t, b)
	if resp.StatusCode != http.StatusOK || out.Error != nil || string(out.ID) != id || string(out.Result) != result {
		t.Fatalf("HTTP %d %s; want HTTP 200 with id %s and result %s", resp.StatusCode, b, id, result)
	}
}

// wireWantClosed checks that the server closed the connection: the next
// read ends (EOF, or a reset if bytes the server never read were pending)
// without any byte.
func wireWantClosed(t *testing.T, conn net.Conn, br *bufio.Reader) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(wireTimeout))
	n, err := br.Read(make([]byte, 1))
	if n != 0 || err == nil {
		t.Fatalf("read %d bytes after the last answer (err %v); want the connection closed", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the last answer: %v; want EOF", err)
	}
}

// wireNode is a fake node whose server first offers each single call to
// hook; hook returns true when it answered (or broke the connection),
// false to let the fake node answer. Batches (the health poll) and
// WebSocket upgrades always go to the fake node. configure, when given,
// adjusts the node's server before it starts.
func wireNode(t *testing.T, name string, pool *txPool, hook func(n *fakeNode, w http.ResponseWriter, r *http.Request, req *rpcRequest) bool,
	configure ...func(*http.Server)) *fakeNode {
	t.Helper()
	n := &fakeNode{name: name, pool: pool, filters: map[string]bool{}, wsConns: map[*websocket.Conn]bool{}}
	n.chainID.Store(1337)
	n.head.Store(100)
	n.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !websocket.IsWebSocketUpgrade(r) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var req rpcRequest
			if json.Unmarshal(body, &req) == nil && req.Method != "" && hook(n, w, r, &req) {
				return
			}
		}
		n.serve(w, r)
	}))
	for _, c := range configure {
		c(n.srv.Config)
	}
	n.srv.Start()
	t.Cleanup(n.srv.Close)
	return n
}

// wireHijackWrite takes over an upstream connection, writes raw bytes and
// closes it.
func wireHijackWrite(w http.ResponseWriter, raw string) {
	conn, bw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	_ = bw.Flush()
	_, _ = io.WriteString(conn, raw)
	conn.Close()
}

// TestFrontWireByteAtATime sends requests one byte per write (with
// TCP_NODELAY, so the bytes arrive in separate segments): the front must
// assemble the request line, headers and body across many reads.
func TestFrontWireByteAtATime(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)
	conn := wireDial(t, h.front.URL)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	br := bufio.NewReader(conn)
	trickle := func(raw string) {
		t.Helper()
		for i := range len(raw) {
			wireWrite(t, conn, raw[i:i+1])
			if i%4 == 3 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	trickle(wirePost("/", wireBody("11", "eth_chainId", "")))
	resp, b := wireRead(t, br)
	wireWantResult(t, resp, b, "11", `"0x539"`)

	// The connection is in a clean state: a whole request in one write,
	// then a batch trickled again.
	wireWrite(t, conn, wirePost("/", wireBody(`"twelve"`, "eth_blockNumber", "")))
	resp, b = wireRead(t, br)
	wireWantResult(t, resp, b, `"twelve"`, `"0x64"`)

	trickle(wirePost("/", "["+wireBody("13", "eth_chainId", "")+","+wireBody("14", "eth_blockNumber", "")+"]"))
	resp, b = wireRead(t, br)
	var outs []rpcResponse
	if err := json.Unmarshal(b, &outs); err != nil || resp.StatusCode != http.StatusOK || len(outs) != 2 ||
		string(outs[0].ID) != "13" || string(outs[0].Result) != `"0x539"` || string(outs[1].ID) != "14" || string(outs[1].Result) != `"0x64"` {
		t.Fatalf("trickled batch: HTTP %d %s (%v)", resp.StatusCode, b, err)
	}
}

// wireCase is one request of a pipeline and the check of its answer.
type wireCase struct {
	raw   string
	check func(t *testing.T, resp *http.Response, b []byte)
}

// wireWantError checks an answer carrying one JSON-RPC error.
func wireWantError(status int, id string, code int, msg string) func(*testing.T, *http.Response, []byte) {
	return func(t *testing.T, resp *http.Response, b []byte) {
		t.Helper()
		out := wireDecode(t, b)
		if resp.StatusCode != status || string(out.ID) != id || out.Error == nil || out.Error.Code != code || !strings.Contains(out.Error.Message, msg) {
			t.Fatalf("HTTP %d %s; want HTTP %d, id %s, error %d containing %q", resp.StatusCode, b, status, id, code, msg)
		}
	}
}

func wireWantOK(id, result string) func(*testing.T, *http.Response, []byte) {
	return func(t *testing.T, resp *http.Response, b []byte) {
		t.Helper()
		wireWantResult(t, resp, b, id, result)
	}
}

// wirePipelineCases builds n requests of mixed kinds with distinct ids:
// single calls, batches, calls the key policy refuses, malformed bodies,
// unknown keys, keys in the path and in a header, headers in lower case
// with extra spaces. With handovers, a few requests a front may hand to
// another server (GET, chunked body) sit in the middle.
func wirePipelineCases(n int, handovers bool) []wireCase {
	var cases []wireCase
	for i := range n {
		id := fmt.Sprint(1000 + i)
		if i%5 == 4 {
			id = fmt.Sprintf(`"s-%d"`, i)
		}
		var c wireCase
		switch i % 10 {
		case 0:
			c = wireCase{wirePost("/", wireBody(id, "eth_chainId", "")), wireWantOK(id, `"0x539"`)}
		case 1:
			c = wireCase{wirePost("/", wireBody(id, "web3_clientVersion", "")), func(t *testing.T, resp *http.Response, b []byte) {
				t.Helper()
				out := wireDecode(t, b)
				if resp.StatusCode != 200 || out.Error != nil || string(out.ID) != id || !slices.Contains([]string{`"n0"`, `"n1"`, `"n2"`}, string(out.Result)) {
					t.Fatalf("HTTP %d %s; want id %s and a node name", resp.StatusCode, b, id)
				}
			}}
		case 2:
			ids := []string{fmt.Sprint(2000 + 3*i), fmt.Sprint(2001 + 3*i), fmt.Sprintf(`"b-%d"`, i)}
			body := "[" + wireBody(ids[0], "eth_chainId", "") + "," + wireBody(ids[1], "eth_blockNumber", "") + "," + wireBody(ids[2], "admin_peers", "") + "]"
			c = wireCase{wirePost("/", body), func(t *testing.T, resp *http.Response, b []byte) {
				t.Helper()
				var outs []rpcResponse
				if err := json.Unmarshal(b, &outs); err != nil || resp.StatusCode != 200 || len(outs) != 3 {
					t.Fatalf("batch: HTTP %d %s (%v)", resp.StatusCode, b, err)
				}
				if string(outs[0].ID) != ids[0] || string(outs[0].Result) != `"0x539"` ||
					string(outs[1].ID) != ids[1] || string(outs[1].Result) != `"0x64"` ||
					string(outs[2].ID) != ids[2] || outs[2].Error == nil || outs[2].Error.Code != CodeMethodDenied {
					t.Fatalf("batch %v: %s", ids, b)
				}
			}}
		case 3:
			c = wireCase{wirePost("/", wireBody(id, "admin_peers", "")), wireWantError(200, id, CodeMethodDenied, "is not allowed for this key")}
		case 4:
			c = wireCase{wirePost("/", `{"jsonrpc":"2.0","id":`+id+`,"method":`), wireWantError(400, "null", CodeParseError, "parse error")}
		case 5:
			c = wireCase{wirePost("/", wireBody(id, "eth_nope", "")), wireWantError(200, id, -32601, "the method eth_nope does not exist")}
		case 6:
			c = wireCase{wirePost("/v1/not-a-key-at-all", wireBody(id, "eth_chainId", "")), wireWantError(401, "null", CodeUnauthorized, "unknown API key")}
		case 7:
			c = wireCase{wirePost("/v1/wire-key-1", wireBody(id, "admin_peers", "")), wireWantError(200, id, -32601, "the method admin_peers does not exist")}
		case 8:
			c = wireCase{wirePost("/", wireBody(id, "admin_peers", ""), "X-API-Key: wire-key-1"), wireWantError(200, id, -32601, "the method admin_peers does not exist")}
		case 9:
			body := wireBody(id, "eth_blockNumber", "")
			raw := fmt.Sprintf("POST / HTTP/1.1\r\nhost:gw\r\ncontent-type:   application/json\r\nx-api-key: wire-key-1\r\ncontent-length:   %d\r\n\r\n%s", len(body), body)
			c = wireCase{raw, wireWantOK(id, `"0x64"`)}
		}
		if handovers {
			switch i {
			case 17:
				c = wireCase{"GET / HTTP/1.1\r\nHost: gw\r\n\r\n", wireWantError(405, "null", CodeInvalidRequest, "method not allowed")}
			case 29:
				body := wireBody(id, "eth_chainId", "")
				raw := "POST / HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
					fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n", 7, body[:7], len(body)-7, body[7:])
				c = wireCase{raw, wireWantOK(id, `"0x539"`)}
			case 38:
				// A request carrying a body that looks like an HTTP request.
				body := wireBody(id, "eth_call", `["POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello"]`)
				c = wireCase{wirePost("/", body), func(t *testing.T, resp *http.Response, b []byte) {
					t.Helper()
					out := wireDecode(t, b)
					if resp.StatusCode != 200 || out.Error != nil || string(out.ID) != id || !strings.HasPrefix(string(out.Result), `"0x6e`) {
						t.Fatalf("HTTP %d %s; want id %s and an eth_call result", resp.StatusCode, b, id)
					}
				}}
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// TestFrontWirePipelined sends 50 requests of mixed kinds in one write on
// one connection and reads 50 answers, in order, each with its own id.
func TestFrontWirePipelined(t *testing.T) {
	h := newHarness(t, threeNodes(t), func(c *Config) {
		c.Anonymous.Methods = []string{"eth_*", "net_*", "web3_*"}
		c.Keys = []KeyConfig{{Name: "wire", Key: "wire-key-1", Methods: []string{"*"}}}
	})
	h.poll(1)
	for _, handovers := range []bool{false, true} {
		t.Run(fmt.Sprintf("handovers=%v", handovers), func(t *testing.T) {
			cases := wirePipelineCases(50, handovers)
			var raw strings.Builder
			for _, c := range cases {
				raw.WriteString(c.raw)
			}
			conn := wireDial(t, h.front.URL)
			wireWrite(t, conn, raw.String())
			br := bufio.NewReader(conn)
			for i, c := range cases {
				resp, b := wireRead(t, br)
				t.Run(fmt.Sprint(i), func(t *testing.T) { c.check(t, resp, b) })
			}
			// The connection still serves.
			wireWrite(t, conn, wirePost("/", wireBody("99", "eth_chainId", "")))
			resp, b := wireRead(t, br)
			wireWantResult(t, resp, b, "99", `"0x539"`)
		})
	}
}

// TestFrontWireExpectContinue sends requests with Expect: 100-continue:
// raw, waiting for the interim answer before the body (as curl does); raw,
// sending the body at once; and through Go's client with a body over 1 KiB.
func TestFrontWireExpectContinue(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)

	t.Run("wait for 100 Continue", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		for k := range 2 { // twice on one connection
			id := fmt.Sprint(20 + k)
			body := wireBody(id, "eth_chainId", "")
			head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", len(body))
			wireWrite(t, conn, head)
			// A client sends the body after an interim 100 or, failing
			// one, after a while (curl: 1 s).
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			resp, err := http.ReadResponse(br, nil)
			var ne net.Error
			switch {
			case err == nil && resp.StatusCode == http.StatusContinue:
			case errors.As(err, &ne) && ne.Timeout():
				t.Log("no interim 100 Continue; sending the body anyway")
			case err != nil:
				t.Fatalf("waiting for 100 Continue: %v", err)
			default:
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("answered HTTP %d %s before the body was sent", resp.StatusCode, b)
			}
			_ = conn.SetReadDeadline(time.Now().Add(wireTimeout))
			wireWrite(t, conn, body)
			resp, b := wireRead(t, br)
			wireWantResult(t, resp, b, id, `"0x539"`)
		}
	})

	t.Run("body sent at once", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		body := wireBody("30", "eth_blockNumber", "")
		wireWrite(t, conn, wirePost("/", body, "Expect: 100-continue")+wirePost("/", wireBody("31", "eth_chainId", "")))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "30", `"0x64"`)
		resp, b = wireRead(t, br)
		wireWantResult(t, resp, b, "31", `"0x539"`)
	})

	t.Run("Go client, large body", func(t *testing.T) {
		tr := &http.Transport{ExpectContinueTimeout: time.Second}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: wireTimeout}
		// A batch of 40 calls (~2.4 KiB) and one call with 3 KiB of params.
		var calls []string
		for i := range 40 {
			calls = append(calls, wireBody(fmt.Sprint(i), "eth_chainId", ""))
		}
		bodies := []string{
			"[" + strings.Join(calls, ",") + "]",
			wireBody("41", "eth_call", `[{"to":"0x00000000000000000000000000000000000000aa","data":"0x`+strings.Repeat("ab", 1500)+`"},"latest"]`),
		}
		for _, expect := range []bool{true, false} {
			for bi, body := range bodies {
				if len(body) <= 1024 {
					t.Fatalf("body %d is only %d bytes", bi, len(body))
				}
				req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, h.front.URL+"/", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if expect {
					req.Header.Set("Expect", "100-continue")
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("expect=%v body %d: %v", expect, bi, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("expect=%v body %d: HTTP %d %s", expect, bi, resp.StatusCode, b)
				}
				if bi == 0 {
					var outs []rpcResponse
					if err := json.Unmarshal(b, &outs); err != nil || len(outs) != 40 {
						t.Fatalf("batch answer %s: %v", b, err)
					}
					for i, o := range outs {
						if string(o.ID) != fmt.Sprint(i) || string(o.Result) != `"0x539"` {
							t.Fatalf("batch answer %d: %+v", i, o)
						}
					}
					continue
				}
				out := wireDecode(t, b)
				if string(out.ID) != "41" || out.Error != nil || !strings.HasPrefix(string(out.Result), `"0x6e`) {
					t.Fatalf("eth_call answer %s", b)
				}
			}
		}
	})
}

// TestFrontWireHTTP10 sends HTTP/1.0 requests: without keep-alive the
// answer is followed by the server closing the connection; with
// keep-alive, a server that keeps the connection open serves the next
// request on it.
func TestFrontWireHTTP10(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)
	req10 := func(id string, extra string) string {
		body := wireBody(id, "eth_chainId", "")
		return fmt.Sprintf("POST / HTTP/1.0\r\nHost: gw\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", extra, len(body), body)
	}

	t.Run("close", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, req10("1", ""))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "1", `"0x539"`)
		wireWantClosed(t, conn, br)
	})

	t.Run("keep-alive", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, req10("2", "Connection: keep-alive\r\n"))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "2", `"0x539"`)
		if resp.Close {
			// The server may refuse keep-alive, but then it must close.
			wireWantClosed(t, conn, br)
			return
		}
		wireWrite(t, conn, req10("3", "Connection: keep-alive\r\n"))
		resp, b = wireRead(t, br)
		wireWantResult(t, resp, b, "3", `"0x539"`)
	})
}

// TestFrontWireConnectionClose sends HTTP/1.1 requests with Connection:
// close: the answer comes, then the server closes the connection; a
// request pipelined after the closing one is not answered.
func TestFrontWireConnectionClose(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)

	t.Run("alone", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, wirePost("/", wireBody("1", "eth_chainId", ""), "Connection: close"))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "1", `"0x539"`)
		wireWantClosed(t, conn, br)
	})

	t.Run("after keep-alive requests", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, wirePost("/", wireBody("2", "eth_chainId", "")))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "2", `"0x539"`)
		wireWrite(t, conn, wirePost("/", wireBody("3", "web3_clientVersion", ""), "Connection: close"))
		resp, b = wireRead(t, br)
		if out := wireDecode(t, b); resp.StatusCode != 200 || string(out.ID) != "3" || out.Error != nil {
			t.Fatalf("HTTP %d %s", resp.StatusCode, b)
		}
		wireWantClosed(t, conn, br)
	})

	t.Run("pipelined", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, wirePost("/", wireBody("4", "eth_chainId", ""))+
			wirePost("/", wireBody("5", "eth_blockNumber", ""), "Connection: close")+
			wirePost("/", wireBody("6", "eth_chainId", "")))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "4", `"0x539"`)
		resp, b = wireRead(t, br)
		wireWantResult(t, resp, b, "5", `"0x64"`)
		wireWantClosed(t, conn, br)
	})
}

// wireSlowReader hands out at most chunk bytes per Read and pauses every
// pauseEvery reads, like a client on a slow link.
type wireSlowReader struct {
	r          io.Reader
	chunk      int
	pauseEvery int
	reads      int
}

func (s *wireSlowReader) Read(p []byte) (int, error) {
	s.reads++
	if s.reads%s.pauseEvery == 0 {
		time.Sleep(time.Millisecond)
	}
	return s.r.Read(p[:min(len(p), s.chunk)])
}

// TestFrontWireLargeAnswer has the only upstream answer large results,
// chunked (flushed in pieces) or with Content-Length; clients get every
// byte. A client with a small receive buffer reads a 6 MiB answer slowly:
// that is more than Linux's largest TCP send buffer (tcp_wmem max, 4 MiB
// by default), so the front's writes are partial and it must resume them.
func TestFrontWireLargeAnswer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const hexDigits = "0123456789abcdef"
	digits := make([]byte, 6<<20)
	for i := 0; i < len(digits); i += 16 {
		for k, x := 0, rng.Uint64(); k < 16; k, x = k+1, x>>4 {
			digits[i+k] = hexDigits[x&15]
		}
	}
	results := map[string]string{
		"big":  `"0x` + string(digits[:2<<20]) + `"`, // ~2 MiB
		"huge": `"0x` + string(digits) + `"`,         // ~6 MiB
	}
	node := wireNode(t, "n0", newTxPool(), func(_ *fakeNode, w http.ResponseWriter, _ *http.Request, req *rpcRequest) bool {
		size, framing, ok := strings.Cut(strings.TrimPrefix(req.Method, "wire_"), "_")
		if !ok || results[size] == "" {
			return false
		}
		answer := encodeResult(req.ID, json.RawMessage(results[size]))
		w.Header().Set("Content-Type", "application/json")
		if framing == "length" {
			w.Header().Set("Content-Length", fmt.Sprint(len(answer)))
		}
		w.WriteHeader(http.StatusOK)
		for len(answer) > 0 { // without Content-Length, each flush is a chunk
			n := min(len(answer), 300_001)
			_, _ = w.Write(answer[:n])
			answer = answer[n:]
			w.(http.Flusher).Flush()
		}
		return true
	})
	h := newHarness(t, []*fakeNode{node}, nil)
	h.poll(1)

	for _, framing := range []string{"chunked", "length"} {
		t.Run("Go client "+framing, func(t *testing.T) {
			method := "wire_big_" + framing
			status, _, b := h.post("/", wireBody(`"big"`, method, ""), nil)
			out := wireDecode(t, b)
			if status != 200 || out.Error != nil || string(out.ID) != `"big"` {
				t.Fatalf("HTTP %d, id %s, error %v", status, out.ID, out.Error)
			}
			if !bytes.Equal(out.Result, []byte(results["big"])) {
				t.Fatalf("result of %d bytes differs from the upstream's %d bytes", len(out.Result), len(results["big"]))
			}
		})
		t.Run("slow reader "+framing, func(t *testing.T) {
			method, result := "wire_huge_"+framing, []byte(results["huge"])
			d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
				var serr error
				if err := c.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				}); err != nil {
					return err
				}
				return serr
			}}
			conn, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(h.front.URL, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(wireTimeout))
			// Two calls on the connection: the second shows the front
			// finished the first answer cleanly.
			wireWrite(t, conn, wirePost("/", wireBody("1", method, ""))+wirePost("/", wireBody("2", "eth_chainId", "")))
			time.Sleep(50 * time.Millisecond) // let the front fill the socket buffers
			br := bufio.NewReaderSize(&wireSlowReader{r: conn, chunk: 2048, pauseEvery: 64}, 4096)
			resp, b := wireRead(t, br)
			out := wireDecode(t, b)
			if resp.StatusCode != 200 || out.Error != nil || string(out.ID) != "1" || !bytes.Equal(out.Result, result) {
				t.Fatalf("HTTP %d, id %s, error %v, result of %d bytes (want %d, equal: %v)",
					resp.StatusCode, out.ID, out.Error, len(out.Result), len(result), bytes.Equal(out.Result, result))
			}
			resp, b = wireRead(t, br)
			wireWantResult(t, resp, b, "2", `"0x539"`)
		})
	}
}

// TestFrontWireUpstreamDiesMidAnswer has one upstream break its
// connection in the middle of each answer to web3_clientVersion (in the
// headers, in a Content-Length body, in a chunked body): every call is
// retried on a healthy upstream and answered; when every upstream breaks,
// the client gets a JSON-RPC error with its id; the gateway keeps serving.
func TestFrontWireUpstreamDiesMidAnswer(t *testing.T) {
	pool := newTxPool()
	var broken atomic.Int64
	breakAnswer := func(w http.ResponseWriter, req *rpcRequest) {
		answer := string(encodeResult(req.ID, json.RawMessage(`"broken"`)))
		switch broken.Add(1) % 3 {
		case 0:
			wireHijackWrite(w, "HTTP/1.1 200 OK\r\nContent-Ty")
		case 1:
			wireHijackWrite(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
				len(answer), answer[:len(answer)/2]))
		case 2:
			wireHijackWrite(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s",
				10, answer[:10], len(answer)-10, answer[10:len(answer)-3]))
		}
	}
	hook := func(n *fakeNode, w http.ResponseWriter, _ *http.Request, req *rpcRequest) bool {
		if req.Method == "wire_break" || (n.name == "n0" && req.Method == "web3_clientVersion") {
			breakAnswer(w, req)
			return true
		}
		return false
	}
	nodes := []*fakeNode{wireNode(t, "n0", pool, hook), wireNode(t, "n1", pool, hook), wireNode(t, "n2", pool, hook)}
	h := newHarness(t, nodes, nil)
	h.poll(1)

	conn := wireDial(t, h.front.URL)
	br := bufio.NewReader(conn)
	for i := 0; broken.Load() < 6; i++ {
		if i == 100 {
			t.Fatalf("the breaking upstream got only %d of 100 calls", broken.Load())
		}
		id := fmt.Sprint(i)
		wireWrite(t, conn, wirePost("/", wireBody(id, "web3_clientVersion", "")))
		resp, b := wireRead(t, br)
		out := wireDecode(t, b)
		if resp.StatusCode != 200 || out.Error != nil || string(out.ID) != id || (string(out.Result) != `"n1"` && string(out.Result) != `"n2"`) {
			t.Fatalf("call %d: HTTP %d %s; want n1 or n2", i, resp.StatusCode, b)
		}
	}

	// No upstream answers: an error in place of the answer.
	before := broken.Load()
	wireWrite(t, conn, wirePost("/", wireBody(`"all-broken"`, "wire_break", "")))
	resp, b := wireRead(t, br)
	wireWantError(200, `"all-broken"`, CodeUnavailable, "upstream unavailable")(t, resp, b)
	if broken.Load() == before {
		t.Fatal("the call reached no upstream")
	}

	// The gateway keeps serving, on this connection and a new one.
	wireWrite(t, conn, wirePost("/", wireBody("200", "eth_chainId", "")))
	resp, b = wireRead(t, br)
	wireWantResult(t, resp, b, "200", `"0x539"`)
	for range 5 {
		if v, err := h.clientVersion(); err != nil || v == "n0" {
			t.Fatalf("after the breaks: %q %v", v, err)
		}
	}
}

// TestFrontWireUpstreamClosesConnections has the only upstream close its
// connection after every answer, announced (Connection: close) or not, or
// close idle connections soon: 20 consecutive calls all succeed.
//
// Both fronts must cope: a kept-alive connection the upstream closed is
// noticed when the gateway's write or read fails before any answer byte,
// and the request is sent again on a new connection (the event loop does
// it for any method, as net/http does; the goroutine path, which cannot
// tell a reused connection from a new one, only for calls it would retry
// anyway: see resendSafe). Found when this test failed every second call.
func TestFrontWireUpstreamClosesConnections(t *testing.T) {
	// Before each call the test waits until the upstream has closed the
	// previous call's connection (after the answer, or once idle), so the
	// gateway has had the upstream's FIN before it sends the next call.
	// Whether a client copes with a close that races with its next request
	// is another matter (it could only retry), not tested here.
	var began, closed atomic.Int64 // answers begun and connections closed by the second case
	tests := []struct {
		name   string
		idle   time.Duration // the upstream's idle timeout (0: none)
		settle string        // what to wait for between calls: "closed" (began == closed) or "idle" (no connection open)
		hook   func(n *fakeNode, w http.ResponseWriter, r *http.Request, req *rpcRequest) bool
	}{
		{"Connection: close", 0, "", func(_ *fakeNode, w http.ResponseWriter, _ *http.Request, _ *rpcRequest) bool {
			w.Header().Set("Connection", "close")
			return false // the fake node answers; net/http then closes
		}},
		{"closed after the answer", 0, "closed", func(n *fakeNode, w http.ResponseWriter, r *http.Request, req *rpcRequest) bool {
			began.Add(1)
			out, _ := n.answer(r, req)
			wireHijackWrite(w, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(out), out))
			closed.Add(1)
			return true
		}},
		{"short idle timeout", 5 * time.Millisecond, "idle", func(*fakeNode, http.ResponseWriter, *http.Request, *rpcRequest) bool {
			return false
		}},
	}
	for _, front := range []struct {
		name  string
		loops int
	}{{"event loop", 0}, {"fasthttp", -1}} {
		for _, tt := range tests {
			t.Run(front.name+"/"+tt.name, func(t *testing.T) {
				testUpstreamCloses(t, front.loops, tt.idle, tt.settle, tt.hook, began.Load, closed.Load)
			})
		}
	}
}

// testUpstreamCloses makes 20 calls through a front with the given
// loops to one upstream that closes connections as hook and idle say,
// waiting for settle before each.
func testUpstreamCloses(t *testing.T, loops int, idle time.Duration, settle string,
	hook func(n *fakeNode, w http.ResponseWriter, r *http.Request, req *rpcRequest) bool, began, closed func() int64) {
	var open atomic.Int64 // the upstream's connections not yet closed
	node := wireNode(t, "n0", newTxPool(), hook, func(s *http.Server) {
		s.IdleTimeout = idle
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		}
	})
	h := newHarness(t, []*fakeNode{node}, func(c *Config) { c.Limits.FrontLoops = loops })
	h.poll(1)
	conn := wireDial(t, h.front.URL)
	br := bufio.NewReader(conn)
	settled := func() bool {
		switch settle {
		case "closed":
			return closed() == began()
		case "idle":
			return open.Load() == 0
		}
		return true
	}
	failed := 0
	deadline := time.Now().Add(wireTimeout)
	for i := range 20 {
		for !settled() {
			if time.Now().After(deadline) {
				t.Fatal("the upstream never closed its connections")
			}
			time.Sleep(100 * time.Microsecond)
		}
		id := fmt.Sprint(i)
		wireWrite(t, conn, wirePost("/", wireBody(id, "web3_clientVersion", "")))
		resp, b := wireRead(t, br)
		out := wireDecode(t, b)
		if resp.StatusCode != 200 || out.Error != nil || string(out.ID) != id || string(out.Result) != `"n0"` {
			t.Errorf("call %d: HTTP %d %s", i, resp.StatusCode, b)
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of 20 calls failed", failed)
	}
}

// TestFrontWireClientLeavesMidCall closes a client connection while its
// call waits on a slow upstream: other clients are served meanwhile, and
// the call stops counting as in flight once the upstream answered.
func TestFrontWireClientLeavesMidCall(t *testing.T) {
	nodes := threeNodes(t)
	slow := "web3_clientVersion"
	for _, n := range nodes {
		n.slowMethod.Store(&slow)
		n.slowDelay.Store(int64(400 * time.Millisecond))
	}
	h := newHarness(t, nodes, nil)
	h.poll(1)

	conn := wireDial(t, h.front.URL)
	wireWrite(t, conn, wirePost("/", wireBody("1", "web3_clientVersion", "")))
	deadline := time.Now().Add(wireTimeout)
	for inFlight(h.g) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the call never reached an upstream")
		}
		time.Sleep(time.Millisecond)
	}
	conn.Close()

	// Other clients are served while the abandoned call is pending.
	other := wireDial(t, h.front.URL)
	br := bufio.NewReader(other)
	for i := range 5 {
		id := fmt.Sprint(10 + i)
		wireWrite(t, other, wirePost("/", wireBody(id, "eth_chainId", "")))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, id, `"0x539"`)
	}
	if _, resp := h.call("/", "eth_blockNumber", "", nil); resp.Error != nil {
		t.Fatalf("another client: %v", resp.Error)
	}

	for inFlight(h.g) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still in flight after the upstream answered", inFlight(h.g))
		}
		time.Sleep(time.Millisecond)
	}
	// The upstreams serve new slow calls as before.
	for _, n := range nodes {
		n.slowDelay.Store(0)
	}
	if v, err := h.clientVersion(); err != nil || v == "" {
		t.Fatalf("after the abandoned call: %q %v", v, err)
	}
}

// wireWSURL is the WebSocket URL of the front.
func wireWSURL(front, path string) string { return "ws" + strings.TrimPrefix(front, "http") + path }

// wireWSExercise makes a call and opens a subscription on a WebSocket and
// waits for one of its notifications.
func wireWSExercise(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(wireTimeout))
	read := func() map[string]json.RawMessage {
		t.Helper()
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	answer := func(id string) map[string]json.RawMessage {
		t.Helper()
		for {
			if m := read(); string(m["id"]) == id {
				return m
			}
		}
	}
	send := func(s string) {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(wireBody("1", "eth_chainId", ""))
	if m := answer("1"); string(m["result"]) != `"0x539"` {
		t.Fatalf("eth_chainId over WebSocket: %v", m)
	}
	send(wireBody("2", "eth_subscribe", `["newHeads"]`))
	var sub string
	if m := answer("2"); json.Unmarshal(m["result"], &sub) != nil || sub == "" {
		t.Fatalf("eth_subscribe: %v", m)
	}
	for {
		m := read()
		var p struct{ Subscription string }
		if string(m["method"]) == `"eth_subscription"` && json.Unmarshal(m["params"], &p) == nil && p.Subscription == sub {
			break
		}
	}
	send(wireBody("3", "eth_unsubscribe", `["`+sub+`"]`))
	if m := answer("3"); string(m["result"]) != "true" {
		t.Fatalf("eth_unsubscribe: %v", m)
	}
}

// TestFrontWireWebSocket opens WebSocket sessions: on a fresh connection,
// on a connection that first served a plain POST, and next to a plain POST
// in flight on another connection.
func TestFrontWireWebSocket(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, nil)
	h.poll(1)
	ctx, cancel := context.WithTimeout(t.Context(), wireTimeout)
	defer cancel()

	t.Run("fresh connection", func(t *testing.T) {
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, wireWSURL(h.front.URL, "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		wireWSExercise(t, ws)
	})

	t.Run("after a POST on the same connection", func(t *testing.T) {
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, wirePost("/", wireBody("5", "eth_chainId", "")))
		resp, b := wireRead(t, br)
		wireWantResult(t, resp, b, "5", `"0x539"`)
		if br.Buffered() != 0 {
			t.Fatalf("%d unexpected bytes after the answer", br.Buffered())
		}
		d := websocket.Dialer{NetDialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		ws, _, err := d.DialContext(ctx, wireWSURL(h.front.URL, "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		wireWSExercise(t, ws)
	})

	t.Run("next to a POST in flight", func(t *testing.T) {
		slow := "web3_clientVersion"
		for _, n := range nodes {
			n.slowMethod.Store(&slow)
			n.slowDelay.Store(int64(300 * time.Millisecond))
		}
		defer func() {
			for _, n := range nodes {
				n.slowDelay.Store(0)
			}
		}()
		conn := wireDial(t, h.front.URL)
		br := bufio.NewReader(conn)
		wireWrite(t, conn, wirePost("/", wireBody("6", "web3_clientVersion", "")))
		deadline := time.Now().Add(wireTimeout)
		for inFlight(h.g) == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the POST never reached an upstream")
			}
			time.Sleep(time.Millisecond)
		}
		ws, _, err := websocket.DefaultDialer.DialContext(ctx, wireWSURL(h.front.URL, "/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		wireWSExercise(t, ws)
		resp, b := wireRead(t, br)
		if out := wireDecode(t, b); resp.StatusCode != 200 || out.Error != nil || string(out.ID) != "6" || !strings.HasPrefix(string(out.Result), `"n`) {
			t.Fatalf("POST next to the WebSocket: HTTP %d %s", resp.StatusCode, b)
		}
		// The POST's connection still serves.
		wireWrite(t, conn, wirePost("/", wireBody("7", "eth_chainId", "")))
		resp, b = wireRead(t, br)
		wireWantResult(t, resp, b, "7", `"0x539"`)
	})
}

// TestFrontWireManyConnections opens 300 connections at once; each sends 5
// calls one after another on its connection, and every answer is right.
func TestFrontWireManyConnections(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)
	const conns, calls = 300, 5
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, conns)
	var served atomic.Int64
	addr := strings.TrimPrefix(h.front.URL, "http://")
	for c := range conns {
		ready.Add(1)
		done.Go(func() {
			var d net.Dialer
			conn, err := d.DialContext(t.Context(), "tcp", addr)
			ready.Done()
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			<-start
			_ = conn.SetDeadline(time.Now().Add(2 * wireTimeout))
			br := bufio.NewReader(conn)
			for k := range calls {
				id := fmt.Sprint(c*100 + k)
				method, want := "eth_chainId", `"0x539"`
				if k%2 == 1 {
					method, want = "eth_blockNumber", `"0x64"`
				}
				if _, err := io.WriteString(conn, wirePost("/", wireBody(id, method, ""))); err != nil {
					errs <- fmt.Errorf("connection %d call %d: %w", c, k, err)
					return
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					errs <- fmt.Errorf("connection %d call %d: %w", c, k, err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				var out rpcResponse
				if err != nil || json.Unmarshal(b, &out) != nil || resp.StatusCode != 200 || string(out.ID) != id || string(out.Result) != want {
					errs <- fmt.Errorf("connection %d call %d: HTTP %d %s (%v)", c, k, resp.StatusCode, b, err)
					return
				}
				served.Add(1)
			}
		})
	}
	ready.Wait()
	close(start)
	done.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Error(err)
		}
	}
	if got := served.Load(); got != conns*calls {
		t.Fatalf("%d of %d calls answered correctly (%d errors)", got, conns*calls, n)
	}
}

// TestFrontWireSplitRequest writes a request in pieces with pauses: the
// head, then the body 50 ms later; and splits inside the blank line and
// inside the body.
func TestFrontWireSplitRequest(t *testing.T) {
	h := newHarness(t, threeNodes(t), nil)
	h.poll(1)
	raw := wirePost("/", wireBody("1", "eth_chainId", ""))
	headEnd := strings.Index(raw, "\r\n\r\n") + 4
	tests := []struct {
		name   string
		pieces []string
	}{
		{"head then body", []string{raw[:headEnd], raw[headEnd:]}},
		{"inside the blank line", []string{raw[:headEnd-1], raw[headEnd-1 : headEnd+10], raw[headEnd+10:]}},
		{"inside the request line", []string{raw[:6], raw[6:headEnd], raw[headEnd:]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn := wireDial(t, h.front.URL)
			br := bufio.NewReader(conn)
			for range 2 { // twice on the connection
				for i, p := range tt.pieces {
					if i > 0 {
						time.Sleep(50 * time.Millisecond)
					}
					wireWrite(t, conn, p)
				}
				resp, b := wireRead(t, br)
				wireWantResult(t, resp, b, "1", `"0x539"`)
			}
		})
	}
}

// TestFrontWireUpstreamNotJSONRPC has upstreams answer HTTP 200 with an
// HTML page: when all do, the client gets a JSON-RPC error carrying its
// id (alone or in a batch); when one does, the call is retried elsewhere;
// the gateway keeps serving.
func TestFrontWireUpstreamNotJSONRPC(t *testing.T) {
	pool := newTxPool()
	var htmlHits atomic.Int64
	hook := func(n *fakeNode, w http.ResponseWriter, _ *http.Request, req *rpcRequest) bool {
		if req.Method == "wire_html" || (n.name == "n0" && req.Method == "web3_clientVersion") {
			htmlHits.Add(1)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "<html><body>It works!</body></html>\n")
			return true
		}
		return false
	}
	nodes := []*fakeNode{wireNode(t, "n0", pool, hook), wireNode(t, "n1", pool, hook), wireNode(t, "n2", pool, hook)}
	h := newHarness(t, nodes, nil)
	h.poll(1)
	conn := wireDial(t, h.front.URL)
	br := bufio.NewReader(conn)

	// Every upstream answers HTML.
	wireWrite(t, conn, wirePost("/", wireBody(`"abc"`, "wire_html", "")))
	resp, b := wireRead(t, br)
	wireWantError(200, `"abc"`, CodeUnavailable, "upstream unavailable")(t, resp, b)
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}

	// In a batch, the error takes the call's place.
	wireWrite(t, conn, wirePost("/", "["+wireBody("1", "wire_html", "")+","+wireBody("2", "eth_chainId", "")+"]"))
	resp, b = wireRead(t, br)
	var outs []rpcResponse
	if err := json.Unmarshal(b, &outs); err != nil || resp.StatusCode != 200 || len(outs) != 2 ||
		string(outs[0].ID) != "1" || outs[0].Error == nil || outs[0].Error.Code != CodeUnavailable ||
		string(outs[1].ID) != "2" || string(outs[1].Result) != `"0x539"` {
		t.Fatalf("batch: HTTP %d %s (%v)", resp.StatusCode, b, err)
	}

	// One upstream answers HTML: retried on another.
	htmlHits.Store(0)
	for i := 0; htmlHits.Load() < 3; i++ {
		if i == 100 {
			t.Fatalf("the HTML upstream got only %d of 100 calls", htmlHits.Load())
		}
		id := fmt.Sprint(100 + i)
		wireWrite(t, conn, wirePost("/", wireBody(id, "web3_clientVersion", "")))
		resp, b := wireRead(t, br)
		out := wireDecode(t, b)
		if resp.StatusCode != 200 || out.Error != nil || string(out.ID) != id || (string(out.Result) != `"n1"` && string(out.Result) != `"n2"`) {
			t.Fatalf("call %d: HTTP %d %s; want n1 or n2", i, resp.StatusCode, b)
		}
	}

	// The gateway keeps serving.
	wireWrite(t, conn, wirePost("/", wireBody("300", "eth_chainId", "")))
	resp, b = wireRead(t, br)
	wireWantResult(t, resp, b, "300", `"0x539"`)
	if _, resp := h.call("/", "eth_blockNumber", "", nil); resp.Error != nil || string(resp.Result) != `"0x64"` {
		t.Fatalf("new client: %s %v", resp.Result, resp.Error)
	}
}
