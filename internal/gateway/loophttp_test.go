package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// Tests of the event loop front's HTTP/1.1 parsers (loophttp.go). Heads
// the loop accepts are checked against two real parsers: net/http's and
// fasthttp's (the server the loop hands everything else to), read with
// the front's header buffer size.

const lhMaxBody = 1 << 20

// lhHead joins a request or status line and header lines into a head.
func lhHead(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// lhPost is a POST head with the given path and header lines after Host.
func lhPost(path string, headers ...string) string {
	return lhHead(append([]string{"POST " + path + " HTTP/1.1", "Host: gw.example"}, headers...)...)
}

type lhReqWant struct {
	path    string
	apiKey  *string // nil: no X-API-Key header
	bodyLen int
	close   bool
}

func lhStr(s string) *string { return &s }

func lhCheckHead(t testing.TB, in string, n, wantN int, h *reqHead, w lhReqWant) {
	t.Helper()
	if n != wantN {
		t.Fatalf("parseReqHead(%q) = %d, want %d", lhShort(in), n, wantN)
	}
	if string(h.path) != w.path {
		t.Errorf("path %q, want %q", h.path, w.path)
	}
	// An empty X-API-Key is no key: nil and empty are alike.
	switch {
	case w.apiKey == nil && len(h.apiKey) != 0:
		t.Errorf("apiKey %q, want none", h.apiKey)
	case w.apiKey != nil && string(h.apiKey) != *w.apiKey:
		t.Errorf("apiKey %q, want %q", h.apiKey, *w.apiKey)
	}
	if h.bodyLen != w.bodyLen {
		t.Errorf("bodyLen %d, want %d", h.bodyLen, w.bodyLen)
	}
	if h.close != w.close {
		t.Errorf("close %v, want %v", h.close, w.close)
	}
}

func lhShort(s string) string {
	if len(s) > 300 {
		return s[:150] + fmt.Sprintf("...(%d bytes)...", len(s)-300) + s[len(s)-150:]
	}
	return s
}

// lhPaddedHead is a head made of lines and an X-Pad header line that
// brings it to exactly size bytes.
func lhPaddedHead(size int, lines ...string) string {
	base := lhHead(append(lines, "X-Pad: ")...)
	return lhHead(append(lines, "X-Pad: "+strings.Repeat("p", size-len(base)))...)
}

type lhAccepted struct {
	name string
	head string // the whole head
	tail string // bytes after the head (body, next request)
	want lhReqWant
}

func lhAcceptedCases() []lhAccepted {
	json2 := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`
	cl := "Content-Length: " + strconv.Itoa(len(json2))
	return []lhAccepted{
		{"root", lhPost("/", "Content-Type: application/json", cl), json2,
			lhReqWant{path: "/", bodyLen: len(json2)}},
		{"v1 key", lhPost("/v1/KEY", cl), json2,
			lhReqWant{path: "/v1/KEY", bodyLen: len(json2)}},
		{"v1 key chars", lhPost("/v1/Ab-9_x.y~z", "Content-Length: 0"), "",
			lhReqWant{path: "/v1/Ab-9_x.y~z"}},
		{"other path", lhPost("/a/b/c", "Content-Length: 0"), "",
			lhReqWant{path: "/a/b/c"}},
		{"X-API-Key", lhPost("/", "X-API-Key: k1", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", apiKey: lhStr("k1"), bodyLen: 2}},
		{"x-api-key lower", lhPost("/", "x-api-key: k1", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", apiKey: lhStr("k1"), bodyLen: 2}},
		{"X-Api-Key mixed", lhPost("/", "X-Api-Key: k1", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", apiKey: lhStr("k1"), bodyLen: 2}},
		{"X-API-KEY upper no space", lhPost("/", "X-API-KEY:k1", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", apiKey: lhStr("k1"), bodyLen: 2}},
		{"x-aPi-kEy OWS", lhPost("/v1/PATHKEY", "x-aPi-kEy: \t k1 \t ", "Content-Length: 2"), "{}",
			lhReqWant{path: "/v1/PATHKEY", apiKey: lhStr("k1"), bodyLen: 2}},
		{"X-API-Key empty", lhPost("/v1/K", "X-API-Key:", "Content-Length: 2"), "{}",
			lhReqWant{path: "/v1/K", apiKey: lhStr(""), bodyLen: 2}},
		{"X-API-Key twice first wins", lhPost("/", "X-API-Key: first", "X-Api-Key: second", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", apiKey: lhStr("first"), bodyLen: 2}},
		{"X-API-Key before Host", lhHead("POST / HTTP/1.1", "X-API-Key: k", "Host: h", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", apiKey: lhStr("k"), bodyLen: 2}},
		{"Connection close", lhPost("/", "Connection: close", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2, close: true}},
		{"connection CLOSE", lhPost("/", "connection: CLOSE", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2, close: true}},
		{"Connection keep-alive", lhPost("/", "Connection: keep-alive", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
		{"Connection keep-alive, close", lhPost("/", "Connection: keep-alive , close", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2, close: true}},
		{"Connection twice", lhPost("/", "Connection: keep-alive", "Connection: close", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2, close: true}},
		{"Content-Length spaces", lhPost("/", "Content-Length:    2   "), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
		{"Content-Length tabs", lhPost("/", "content-length:\t2\t"), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
		{"Content-Length no space", lhPost("/", "CONTENT-LENGTH:2"), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
		{"Content-Length leading zeros", lhPost("/", "Content-Length: 002"), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
		{"Content-Length zero", lhPost("/", "Content-Length: 0"), "",
			lhReqWant{path: "/"}},
		{"Content-Length at limit", lhPost("/", "Content-Length: "+strconv.Itoa(lhMaxBody)), "",
			lhReqWant{path: "/", bodyLen: lhMaxBody}},
		{"no Host", lhHead("POST / HTTP/1.1", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
		{"extra headers", lhPost("/v1/KEY", "User-Agent: curl/8.5.0", "Accept: */*", "Accept-Encoding: gzip, deflate",
			"Content-Type: application/json; charset=utf-8", "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
			"Cookie: a=b; c=d", "Authorization: Bearer xyz", "X-Empty:", "Weird!#$%&'*+-.^_`|~: v", "Obs-Text: caf\xc3\xa9", cl),
			json2, lhReqWant{path: "/v1/KEY", bodyLen: len(json2)}},
		{"pipelined", lhPost("/", "Content-Length: 2"), "{}" + lhPost("/v1/x", "Content-Length: 2") + "[]",
			lhReqWant{path: "/", bodyLen: 2}},
		{"body with bare LF and CRLFCRLF", lhPost("/", "Content-Length: 8"), "\n\r\n\r\n\n\n\n",
			lhReqWant{path: "/", bodyLen: 8}},
		{"large body buffered", lhPost("/", "Content-Length: 40000"), strings.Repeat("x", 40000),
			lhReqWant{path: "/", bodyLen: 40000}},
		{"head exactly frontHeaderBytes", lhPaddedHead(frontHeaderBytes, "POST / HTTP/1.1", "Host: h", "Content-Length: 2"), "{}",
			lhReqWant{path: "/", bodyLen: 2}},
	}
}

func TestParseReqHeadAccepted(t *testing.T) {
	for _, c := range lhAcceptedCases() {
		t.Run(c.name, func(t *testing.T) {
			in := c.head + c.tail
			var h reqHead
			n := parseReqHead([]byte(in), lhMaxBody, &h)
			lhCheckHead(t, in, n, len(c.head), &h, c.want)
			if t.Failed() {
				return
			}
			lhAgreeNetHTTP(t, []byte(in), n, &h)
			lhAgreeFasthttp(t, []byte(in), n, &h)
		})
	}
}

// TestParseReqHeadIncomplete: every proper prefix of an accepted head is
// incomplete, and the prefix is not mistaken for a hand-off.
func TestParseReqHeadIncomplete(t *testing.T) {
	for _, c := range lhAcceptedCases() {
		if len(c.head) > 2000 {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for k := 0; k < len(c.head); k++ {
				var h reqHead
				if n := parseReqHead([]byte(c.head[:k]), lhMaxBody, &h); n != headIncomplete {
					t.Fatalf("parseReqHead(%q) = %d, want headIncomplete", c.head[:k], n)
				}
				if h.path != nil || h.apiKey != nil || h.bodyLen != 0 || h.close {
					t.Fatalf("parseReqHead(%q) left %+v", c.head[:k], h)
				}
			}
			// The whole head, with and without the body's start.
			for k := len(c.head); k <= len(c.head)+len(c.tail) && k <= len(c.head)+3; k++ {
				var h reqHead
				if n := parseReqHead([]byte((c.head + c.tail)[:k]), lhMaxBody, &h); n != len(c.head) {
					t.Fatalf("parseReqHead(%q) = %d, want %d", (c.head + c.tail)[:k], n, len(c.head))
				}
			}
		})
	}
	// Incomplete heads near the header limit.
	long := "POST / HTTP/1.1\r\nHost: h\r\nX-Pad: " + strings.Repeat("p", frontHeaderBytes)
	var h reqHead
	if n := parseReqHead([]byte(long[:frontHeaderBytes-1]), lhMaxBody, &h); n != headIncomplete {
		t.Errorf("incomplete head of frontHeaderBytes-1 bytes: %d, want headIncomplete", n)
	}
	if n := parseReqHead([]byte(long[:frontHeaderBytes-4]+"\r\n\r"), lhMaxBody, &h); n != headIncomplete {
		t.Errorf("incomplete head of frontHeaderBytes-1 bytes ending in CRLFCR: %d, want headIncomplete", n)
	}
}

func TestParseReqHeadHandOff(t *testing.T) {
	cl := "Content-Length: 2"
	cases := []struct{ name, in string }{
		{"GET", lhHead("GET / HTTP/1.1", "Host: h", cl) + "{}"},
		{"GET no length", lhHead("GET / HTTP/1.1", "Host: h")},
		{"PUT", lhHead("PUT / HTTP/1.1", "Host: h", cl) + "{}"},
		{"post lower case", lhHead("post / HTTP/1.1", "Host: h", cl) + "{}"},
		{"OPTIONS *", lhHead("OPTIONS * HTTP/1.1", "Host: h")},
		{"HTTP/1.0", lhHead("POST / HTTP/1.0", "Host: h", cl) + "{}"},
		{"HTTP/1.0 keep-alive", lhHead("POST / HTTP/1.0", "Host: h", "Connection: keep-alive", cl) + "{}"},
		{"HTTP/2", lhHead("POST / HTTP/2", "Host: h", cl) + "{}"},
		{"HTTP/2.0", lhHead("POST / HTTP/2.0", "Host: h", cl) + "{}"},
		{"HTTP/1.2", lhHead("POST / HTTP/1.2", "Host: h", cl) + "{}"},
		{"http/1.1 lower case", lhHead("POST / http/1.1", "Host: h", cl) + "{}"},
		{"h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"no version", lhHead("POST /", "Host: h", cl) + "{}"},
		{"two spaces after method", lhHead("POST  / HTTP/1.1", "Host: h", cl) + "{}"},
		{"two spaces before version", lhHead("POST /  HTTP/1.1", "Host: h", cl) + "{}"},
		{"trailing space", lhHead("POST / HTTP/1.1 ", "Host: h", cl) + "{}"},
		{"tab separator", lhHead("POST\t/ HTTP/1.1", "Host: h", cl) + "{}"},
		{"space in path", lhHead("POST /a b HTTP/1.1", "Host: h", cl) + "{}"},
		{"leading empty line", "\r\n" + lhPost("/", cl) + "{}"},
		{"absolute form", lhHead("POST http://h/ HTTP/1.1", "Host: h", cl) + "{}"},
		{"empty path", lhHead("POST  HTTP/1.1", "Host: h", cl) + "{}"},
		{"no Content-Length", lhPost("/")},
		{"no Content-Length with body", lhPost("/", "Content-Type: application/json") + "{}"},
		{"two Content-Length same", lhPost("/", cl, cl) + "{}"},
		{"two Content-Length differ", lhPost("/", cl, "Content-Length: 3") + "{}"},
		{"two Content-Length cases", lhPost("/", cl, "content-length: 2") + "{}"},
		{"Content-Length list", lhPost("/", "Content-Length: 2, 2") + "{}"},
		{"Content-Length empty", lhPost("/", "Content-Length:") + "{}"},
		{"Content-Length blank", lhPost("/", "Content-Length:   ") + "{}"},
		{"Content-Length letters", lhPost("/", "Content-Length: abc") + "{}"},
		{"Content-Length negative", lhPost("/", "Content-Length: -2") + "{}"},
		{"Content-Length plus", lhPost("/", "Content-Length: +2") + "{}"},
		{"Content-Length hex", lhPost("/", "Content-Length: 0x2") + "{}"},
		{"Content-Length inner space", lhPost("/", "Content-Length: 1 2") + "{}"},
		{"Content-Length decimal", lhPost("/", "Content-Length: 2.0") + "{}"},
		{"Content-Length trailing letter", lhPost("/", "Content-Length: 2a") + "{}"},
		{"Content-Length unicode digit", lhPost("/", "Content-Length: \u0662") + "{}"},
		{"Content-Length 19 digits", lhPost("/", "Content-Length: 0000000000000000002") + "{}"},
		{"Content-Length overflow", lhPost("/", "Content-Length: 99999999999999999999999") + "{}"},
		{"Transfer-Encoding chunked", lhPost("/", "Transfer-Encoding: chunked") + "2\r\n{}\r\n0\r\n\r\n"},
		{"Transfer-Encoding and Content-Length", lhPost("/", cl, "Transfer-Encoding: chunked") + "{}"},
		{"transfer-encoding identity", lhPost("/", cl, "transfer-encoding: identity") + "{}"},
		{"Expect", lhPost("/", cl, "Expect: 100-continue")},
		{"expect lower", lhPost("/", cl, "expect: 100-continue")},
		{"Upgrade", lhPost("/", cl, "Upgrade: websocket") + "{}"},
		{"Connection upgrade", lhPost("/", cl, "Connection: upgrade") + "{}"},
		{"Connection keep-alive, Upgrade", lhPost("/", cl, "Connection: keep-alive, Upgrade") + "{}"},
		{"websocket GET", lhHead("GET /v1/KEY HTTP/1.1", "Host: h", "Connection: Upgrade", "Upgrade: websocket",
			"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")},
		{"body over maxBody", lhPost("/", "Content-Length: "+strconv.Itoa(lhMaxBody+1))},
		{"body far over maxBody", lhPost("/", "Content-Length: 999999999999999999")},
		{"header over frontHeaderBytes complete", lhPaddedHead(frontHeaderBytes+1, "POST / HTTP/1.1", "Host: h", cl) + "{}"},
		{"header over frontHeaderBytes incomplete", "POST / HTTP/1.1\r\nHost: h\r\nX-Pad: " + strings.Repeat("p", frontHeaderBytes)},
		{"header at frontHeaderBytes incomplete", ("POST / HTTP/1.1\r\nHost: h\r\nX-Pad: " + strings.Repeat("p", frontHeaderBytes))[:frontHeaderBytes]},
		{"header many lines over limit", "POST / HTTP/1.1\r\n" + strings.Repeat("X-A: b\r\n", frontHeaderBytes/8+1)},
		{"bare LF everywhere", "POST / HTTP/1.1\nHost: h\nContent-Length: 2\n\n{}"},
		{"bare LF first line incomplete", "POST / HTTP/1.1\n"},
		{"bare LF in header", "POST / HTTP/1.1\r\nHost: h\nContent-Length: 2\r\n\r\n{}"},
		{"bare LF end of head", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\n{}"},
		{"bare LF before CRLF", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\n\r\n\r\n{}"},
		{"LF CR", "POST / HTTP/1.1\n\rContent-Length: 2\r\n\r\n{}"},
		{"folded header space", lhPost("/", "X-Foo: a", " b", cl) + "{}"},
		{"folded header tab", lhPost("/", "X-Foo: a", "\tb", cl) + "{}"},
		{"folded X-API-Key", lhPost("/", "X-API-Key: a", " b", cl) + "{}"},
		{"folded Content-Length", lhPost("/", "Content-Length:", " 2") + "{}"},
		{"first header folded", lhHead("POST / HTTP/1.1", " Host: h", cl) + "{}"},
		{"query", lhPost("/?a=1", cl) + "{}"},
		{"empty query", lhPost("/?", cl) + "{}"},
		{"query after key", lhPost("/v1/KEY?x=y", cl) + "{}"},
		{"fragment", lhPost("/#frag", cl) + "{}"},
		{"percent", lhPost("/v1/%4B%45%59", cl) + "{}"},
		{"percent slash", lhPost("/v1%2FKEY", cl) + "{}"},
		{"double slash", lhPost("//", cl) + "{}"},
		{"double slash inside", lhPost("/v1//KEY", cl) + "{}"},
		{"double slash end", lhPost("/v1/KEY//", cl) + "{}"},
		{"dot segment", lhPost("/./v1/KEY", cl) + "{}"},
		{"dot segment inside", lhPost("/v1/./KEY", cl) + "{}"},
		{"dot end", lhPost("/v1/.", cl) + "{}"},
		{"dot-dot", lhPost("/../v1/KEY", cl) + "{}"},
		{"dot-dot inside", lhPost("/v1/x/../KEY", cl) + "{}"},
		{"dot-dot end", lhPost("/v1/KEY/..", cl) + "{}"},
		{"backslash", lhPost(`/v1\KEY`, cl) + "{}"},
		{"non-ASCII path", lhPost("/v1/k\xc3\xa9y", cl) + "{}"},
		{"high byte path", lhPost("/v1/\xff", cl) + "{}"},
		{"DEL in path", lhPost("/v1/\x7f", cl) + "{}"},
		{"NUL in path", lhPost("/v1/\x00", cl) + "{}"},
		{"tab in path", lhPost("/v1/a\tb", cl) + "{}"},
		{"CR in path", lhPost("/v1/a\rb", cl) + "{}"},
		{"space before colon", lhPost("/", "Content-Length : 2") + "{}"},
		{"space before colon other header", lhPost("/", "X-API-Key : k", cl) + "{}"},
		{"tab before colon", lhPost("/", "Content-Length\t: 2") + "{}"},
		{"space in header name", lhPost("/", "X API Key: k", cl) + "{}"},
		{"empty header name", lhPost("/", ": v", cl) + "{}"},
		{"no colon", lhPost("/", "NoColonHere", cl) + "{}"},
		{"separator in name", lhPost("/", "X(y): z", cl) + "{}"},
		{"slash in name", lhPost("/", "X/Y: z", cl) + "{}"},
		{"non-ASCII name", lhPost("/", "X-\xc3\xa9: z", cl) + "{}"},
		{"NUL in name", lhPost("/", "X-\x00: z", cl) + "{}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h reqHead
			if n := parseReqHead([]byte(c.in), lhMaxBody, &h); n != headHandOff {
				t.Errorf("parseReqHead(%q) = %d (%+v), want headHandOff", lhShort(c.in), n, h)
			}
		})
	}
}

// TestParseReqHeadHandsOffBadHeaderValue: fasthttp answers 400 to a
// header value with a control character (NUL, a CR not followed by LF,
// DEL, ...), and so does net/http; the loop must not serve such requests
// itself.
func TestParseReqHeadHandsOffBadHeaderValue(t *testing.T) {
	cl := "Content-Length: 2"
	cases := []struct{ name, in string }{
		{"NUL in X-API-Key", lhPost("/", "X-API-Key: a\x00b", cl) + "{}"},
		{"CR in X-API-Key", lhPost("/", "X-API-Key: a\rb", cl) + "{}"},
		{"CR at end of X-API-Key", lhPost("/", "X-API-Key: ab\r", cl) + "{}"},
		{"DEL in User-Agent", lhPost("/", "User-Agent: a\x7fb", cl) + "{}"},
		{"ESC in other header", lhPost("/", "X-Foo: \x1b[31m", cl) + "{}"},
		{"CR inside Connection", lhPost("/", "Connection: close\rX", cl) + "{}"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var req fasthttp.Request
			ferr := req.Header.Read(bufio.NewReaderSize(strings.NewReader(c.in), frontHeaderBytes))
			_, nerr := http.ReadRequest(bufio.NewReader(strings.NewReader(c.in)))
			var h reqHead
			if n := parseReqHead([]byte(c.in), lhMaxBody, &h); n != headHandOff {
				t.Errorf("parseReqHead(%q) = %d (path %q, apiKey %q), want headHandOff; fasthttp: %v; net/http: %v",
					c.in, n, h.path, h.apiKey, ferr, nerr)
			}
		})
	}
}

// TestParseReqHeadEmptyAPIKeyFirst: with two X-API-Key headers the first
// counts, as in fasthttp (Peek) and net/http (Get), even when it is empty:
// then the key is the one in the path.
func TestParseReqHeadEmptyAPIKeyFirst(t *testing.T) {
	for _, first := range []string{"X-API-Key:", "X-API-Key:   "} {
		in := []byte(lhPost("/v1/PATHKEY", first, "X-API-Key: second", "Content-Length: 2") + "{}")
		var h reqHead
		n := parseReqHead(in, lhMaxBody, &h)
		if n <= 0 {
			continue // handing it off is fine too
		}
		var req fasthttp.Request
		if err := req.Header.Read(bufio.NewReaderSize(bytes.NewReader(in[:n]), frontHeaderBytes)); err != nil {
			t.Fatal(err)
		}
		fk, _ := keyFromRequest(string(req.URI().Path()), string(req.Header.Peek("X-API-Key")))
		lk, _ := keyFromRequest(string(h.path), string(h.apiKey))
		if lk != fk {
			t.Errorf("parseReqHead(%q): apiKey %q, key %q; fasthttp's key %q", in, h.apiKey, lk, fk)
		}
	}
}

// TestParseReqHeadBadHost: fasthttp takes a request's path from its URI,
// which it parses with the Host header; when the Host does not parse (an
// invalid port, a character not allowed in a host, an unclosed '['), its
// Path() is "/" whatever the request line says, so the fasthttp front
// routes and authenticates such a request as POST /. The loop must then
// hand the request over (or read it the same way).
func TestParseReqHeadBadHost(t *testing.T) {
	for _, host := range []string{"#0", "a b", "h:x", "h:80x", "[::1", "%zz", "a/b", "a?b", "<h>", `h"`} {
		for _, path := range []string{"/v1/PATHKEY", "/other"} {
			in := []byte(lhHead("POST "+path+" HTTP/1.1", "Host: "+host, "Content-Length: 2") + "{}")
			var h reqHead
			n := parseReqHead(in, lhMaxBody, &h)
			if n <= 0 {
				continue
			}
			var req fasthttp.Request
			if err := req.Header.Read(bufio.NewReaderSize(bytes.NewReader(in[:n]), frontHeaderBytes)); err != nil {
				t.Errorf("%q: parseReqHead accepts, fasthttp: %v", in, err)
				continue
			}
			fk, fok := keyFromRequest(string(req.URI().Path()), string(req.Header.Peek("X-API-Key")))
			lk, lok := keyFromRequest(string(h.path), string(h.apiKey))
			if string(req.URI().Path()) != string(h.path) || fk != lk || fok != lok {
				t.Errorf("parseReqHead(%q) = %d, path %q (key %q, found %v); fasthttp path %q (key %q, found %v)",
					in, n, h.path, lk, lok, req.URI().Path(), fk, fok)
			}
		}
	}
}

// lhAgreeNetHTTP checks an accepted head against net/http's reading of it.
func lhAgreeNetHTTP(t testing.TB, b []byte, n int, h *reqHead) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(b[:n]))
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("parseReqHead accepted %q (path %q, apiKey %q), net/http: %v", lhShort(string(b[:n])), h.path, h.apiKey, err)
	}
	if br.Buffered() != 0 {
		t.Errorf("net/http left %d bytes of the head unread", br.Buffered())
	}
	if req.Method != http.MethodPost || req.ProtoMajor != 1 || req.ProtoMinor != 1 {
		t.Errorf("net/http: %s %s", req.Method, req.Proto)
	}
	if req.URL.Path != string(h.path) || req.URL.RawQuery != "" || req.URL.Fragment != "" ||
		req.RequestURI != string(h.path) {
		t.Errorf("net/http: URL %#v (RequestURI %q), parseReqHead path %q", req.URL, req.RequestURI, h.path)
	}
	if req.ContentLength != int64(h.bodyLen) {
		t.Errorf("net/http: Content-Length %d, parseReqHead %d", req.ContentLength, h.bodyLen)
	}
	if got := req.Header.Get("X-Api-Key"); got != string(h.apiKey) {
		t.Errorf("net/http: X-API-Key %q, parseReqHead %q", got, h.apiKey)
	}
	if req.Close != h.close {
		t.Errorf("net/http: Close %v, parseReqHead %v", req.Close, h.close)
	}
	if len(req.TransferEncoding) != 0 {
		t.Errorf("net/http: Transfer-Encoding %q", req.TransferEncoding)
	}
}

// lhAgreeFasthttp checks an accepted head against fasthttp's reading of
// it, with the front's buffer size: the loop must read what the fasthttp
// front would have read.
func lhAgreeFasthttp(t testing.TB, b []byte, n int, h *reqHead) {
	t.Helper()
	var req fasthttp.Request
	br := bufio.NewReaderSize(bytes.NewReader(b[:n]), frontHeaderBytes)
	if err := req.Header.Read(br); err != nil {
		t.Fatalf("parseReqHead accepted %q (path %q, apiKey %q), fasthttp: %v", lhShort(string(b[:n])), h.path, h.apiKey, err)
	}
	if br.Buffered() != 0 {
		t.Errorf("fasthttp left %d bytes of the head unread", br.Buffered())
	}
	if !req.Header.IsPost() {
		t.Errorf("fasthttp: method %q", req.Header.Method())
	}
	if got := req.URI().Path(); string(got) != string(h.path) {
		t.Errorf("fasthttp: path %q, parseReqHead %q", got, h.path)
	}
	if got := req.Header.ContentLength(); got != h.bodyLen {
		t.Errorf("fasthttp: Content-Length %d, parseReqHead %d", got, h.bodyLen)
	}
	if got := req.Header.Peek("X-API-Key"); string(got) != string(h.apiKey) {
		t.Errorf("fasthttp: X-API-Key %q, parseReqHead %q", got, h.apiKey)
	}
	// fasthttp closes on exactly "Connection: close"; the loop closes on a
	// close token in any case, which may close more often, never less.
	if req.Header.ConnectionClose() && !h.close {
		t.Errorf("fasthttp closes the connection, parseReqHead does not")
	}
	fk, fok := keyFromRequest(string(req.URI().Path()), string(req.Header.Peek("X-API-Key")))
	lk, lok := keyFromRequest(string(h.path), string(h.apiKey))
	if fk != lk || fok != lok {
		t.Errorf("key: fasthttp %q %v, parseReqHead %q %v", fk, fok, lk, lok)
	}
}

// --- upstream answers ---

type lhRespWant struct {
	status  int
	length  int
	chunked bool
	close   bool
}

type lhRespCase struct {
	name string
	head string
	tail string
	want lhRespWant
}

func lhRespAccepted() []lhRespCase {
	return []lhRespCase{
		{"200 Content-Length", lhHead("HTTP/1.1 200 OK", "Content-Type: application/json", "Content-Length: 5"), "hello",
			lhRespWant{200, 5, false, false}},
		{"200 no reason", lhHead("HTTP/1.1 200", "Content-Length: 5"), "hello", lhRespWant{200, 5, false, false}},
		{"200 empty reason", lhHead("HTTP/1.1 200 ", "Content-Length: 5"), "hello", lhRespWant{200, 5, false, false}},
		{"long reason", lhHead("HTTP/1.1 503 Service Unavailable Right Now", "content-length: 0"), "",
			lhRespWant{503, 0, false, false}},
		{"Content-Length OWS", lhHead("HTTP/1.1 200 OK", "Content-Length: \t 5 \t"), "hello", lhRespWant{200, 5, false, false}},
		{"Content-Length twice same", lhHead("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5"), "hello",
			lhRespWant{200, 5, false, false}},
		{"chunked", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "5\r\nhello\r\n0\r\n\r\n",
			lhRespWant{200, -1, true, false}},
		{"chunked upper case", lhHead("HTTP/1.1 200 OK", "transfer-encoding: CHUNKED"), "0\r\n\r\n",
			lhRespWant{200, -1, true, false}},
		{"chunked and Content-Length", lhHead("HTTP/1.1 200 OK", "Content-Length: 5", "Transfer-Encoding: chunked"), "0\r\n\r\n",
			lhRespWant{200, -1, true, false}},
		{"Content-Length after chunked", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 5"), "0\r\n\r\n",
			lhRespWant{200, -1, true, false}},
		{"chunked close", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Connection: close"), "0\r\n\r\n",
			lhRespWant{200, -1, true, true}},
		{"no length", lhHead("HTTP/1.1 200 OK", "Content-Type: application/json"), "{}",
			lhRespWant{200, -1, false, true}},
		{"no length keep-alive", lhHead("HTTP/1.1 200 OK", "Connection: keep-alive"), "{}",
			lhRespWant{200, -1, false, true}},
		{"Connection close", lhHead("HTTP/1.1 200 OK", "Content-Length: 2", "Connection: close"), "{}",
			lhRespWant{200, 2, false, true}},
		{"Connection Close list", lhHead("HTTP/1.1 200 OK", "Content-Length: 2", "Connection: foo, Close"), "{}",
			lhRespWant{200, 2, false, true}},
		{"HTTP/1.0", lhHead("HTTP/1.0 200 OK", "Content-Length: 2"), "{}", lhRespWant{200, 2, false, true}},
		{"HTTP/1.0 keep-alive", lhHead("HTTP/1.0 200 OK", "Content-Length: 2", "Connection: Keep-Alive"), "{}",
			lhRespWant{200, 2, false, false}},
		{"HTTP/1.0 no length", lhHead("HTTP/1.0 200 OK"), "{}", lhRespWant{200, -1, false, true}},
		{"HTTP/1.0 no length keep-alive", lhHead("HTTP/1.0 200 OK", "Connection: keep-alive"), "{}",
			lhRespWant{200, -1, false, true}},
		{"204", lhHead("HTTP/1.1 204 No Content"), "", lhRespWant{204, 0, false, false}},
		{"204 with Content-Length", lhHead("HTTP/1.1 204 No Content", "Content-Length: 5"), "", lhRespWant{204, 0, false, false}},
		{"304", lhHead("HTTP/1.1 304 Not Modified", "Content-Length: 100"), "", lhRespWant{304, 0, false, false}},
		{"100 Continue", lhHead("HTTP/1.1 100 Continue"), lhHead("HTTP/1.1 200 OK", "Content-Length: 0"),
			lhRespWant{100, 0, false, false}},
		{"103 Early Hints", lhHead("HTTP/1.1 103 Early Hints", "Link: </a>; rel=preload"), "", lhRespWant{103, 0, false, false}},
		{"404", lhHead("HTTP/1.1 404 Not Found", "Content-Length: 9"), "not found", lhRespWant{404, 9, false, false}},
		{"999", lhHead("HTTP/1.1 999 Odd", "Content-Length: 0"), "", lhRespWant{999, 0, false, false}},
		{"geth", lhHead("HTTP/1.1 200 OK", "Content-Type: application/json", "Vary: Origin",
			"Date: Mon, 02 Jan 2006 15:04:05 GMT", "Content-Length: 40"), `{"jsonrpc":"2.0","id":1,"result":"0x539"}`[:40],
			lhRespWant{200, 40, false, false}},
	}
}

func lhCheckResp(t testing.TB, in string, n int, err error, wantN int, h *respHead, w lhRespWant) {
	t.Helper()
	if err != nil || n != wantN {
		t.Fatalf("parseRespHead(%q) = %d, %v; want %d, nil", lhShort(in), n, err, wantN)
	}
	if got := (lhRespWant{h.status, h.length, h.chunked, h.close}); got != w {
		t.Errorf("parseRespHead(%q): %+v, want %+v", lhShort(in), got, w)
	}
}

func TestParseRespHeadAccepted(t *testing.T) {
	for _, c := range lhRespAccepted() {
		t.Run(c.name, func(t *testing.T) {
			in := c.head + c.tail
			var h respHead
			n, err := parseRespHead([]byte(in), &h)
			lhCheckResp(t, in, n, err, len(c.head), &h, c.want)
		})
	}
}

func TestParseRespHeadIncomplete(t *testing.T) {
	for _, c := range lhRespAccepted() {
		t.Run(c.name, func(t *testing.T) {
			for k := 0; k < len(c.head); k++ {
				var h respHead
				n, err := parseRespHead([]byte(c.head[:k]), &h)
				if n != 0 || err != nil {
					t.Fatalf("parseRespHead(%q) = %d, %v; want 0, nil", c.head[:k], n, err)
				}
			}
		})
	}
	// Just under the limit, still waiting.
	long := "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", maxUpstreamHead)
	var h respHead
	if n, err := parseRespHead([]byte(long[:maxUpstreamHead-1]), &h); n != 0 || err != nil {
		t.Errorf("incomplete head of maxUpstreamHead-1 bytes: %d, %v; want 0, nil", n, err)
	}
}

func TestParseRespHeadErrors(t *testing.T) {
	cl := "Content-Length: 2"
	cases := []struct{ name, in string }{
		{"empty status line", "\r\n\r\n"},
		{"HTTP/2", lhHead("HTTP/2 200 OK", cl)},
		{"HTTP/1.2", lhHead("HTTP/1.2 200 OK", cl)},
		{"http lower case", lhHead("http/1.1 200 OK", cl)},
		{"no space", lhHead("HTTP/1.1200 OK", cl)},
		{"two spaces", lhHead("HTTP/1.1  200 OK", cl)},
		{"two digits", lhHead("HTTP/1.1 20 OK", cl)},
		{"two digits end", lhHead("HTTP/1.1 20", cl)},
		{"four digits", lhHead("HTTP/1.1 2000 OK", cl)},
		{"letters", lhHead("HTTP/1.1 abc OK", cl)},
		{"negative", lhHead("HTTP/1.1 -20 OK", cl)},
		{"plus", lhHead("HTTP/1.1 +20 OK", cl)},
		{"under 100", lhHead("HTTP/1.1 099 Odd", cl)},
		{"zero", lhHead("HTTP/1.1 000 Odd", cl)},
		{"tab after status", lhHead("HTTP/1.1 200\tOK", cl)},
		{"status only protocol", lhHead("HTTP/1.1", cl)},
		{"request line", lhHead("POST / HTTP/1.1", cl)},
		{"conflicting Content-Length", lhHead("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 3")},
		{"a transfer coding besides chunked", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked")},
		{"space before colon", lhHead("HTTP/1.1 200 OK", "Content-Length : 2")},
		{"Content-Length list", lhHead("HTTP/1.1 200 OK", "Content-Length: 2, 2")},
		{"Content-Length letters", lhHead("HTTP/1.1 200 OK", "Content-Length: two")},
		{"Content-Length negative", lhHead("HTTP/1.1 200 OK", "Content-Length: -1")},
		{"Content-Length empty", lhHead("HTTP/1.1 200 OK", "Content-Length:")},
		{"Content-Length 19 digits", lhHead("HTTP/1.1 200 OK", "Content-Length: 1000000000000000000")},
		{"Transfer-Encoding gzip", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: gzip")},
		{"Transfer-Encoding chunked, gzip", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip")},
		{"Transfer-Encoding identity", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: identity", cl)},
		{"Transfer-Encoding empty", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding:")},
		{"Transfer-Encoding chunked then gzip", lhHead("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip")},
		{"no colon", lhHead("HTTP/1.1 200 OK", "NoColon", cl)},
		{"empty name", lhHead("HTTP/1.1 200 OK", ": x", cl)},
		{"over maxUpstreamHead incomplete", "HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", maxUpstreamHead)},
		{"at maxUpstreamHead incomplete", ("HTTP/1.1 200 OK\r\nX-Pad: " + strings.Repeat("p", maxUpstreamHead))[:maxUpstreamHead]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h respHead
			n, err := parseRespHead([]byte(c.in), &h)
			if err == nil || !errors.Is(err, errUpstreamHTTP) || n != 0 {
				t.Errorf("parseRespHead(%q) = %d, %v (%+v); want an errUpstreamHTTP", lhShort(c.in), n, err, h)
			}
		})
	}
}

// TestParseRespHeadOverLimitComplete: a head over maxUpstreamHead is
// refused however it arrives. Read in pieces it is (the incomplete head
// reaches the limit); the same head arriving whole must be too.
func TestParseRespHeadOverLimitComplete(t *testing.T) {
	in := lhHead("HTTP/1.1 200 OK", "X-Pad: "+strings.Repeat("p", maxUpstreamHead), "Content-Length: 2") + "{}"
	var h respHead
	if n, err := parseRespHead([]byte(in[:maxUpstreamHead]), &h); err == nil {
		t.Errorf("first %d bytes of the head: %d, nil; want an error", maxUpstreamHead, n)
	}
	n, err := parseRespHead([]byte(in), &h)
	if err == nil {
		t.Errorf("parseRespHead(head of %d bytes over maxUpstreamHead=%d, whole) = %d, nil (%+v); want an errUpstreamHTTP",
			len(in)-2, maxUpstreamHead, n, h)
	}
}

// TestParseRespHeadCloseWins: a close connection option means the
// upstream will close, whatever other options come with it (RFC 9112
// 9.6; net/http's client reads it so).
func TestParseRespHeadCloseWins(t *testing.T) {
	for _, in := range []string{
		lhHead("HTTP/1.1 200 OK", "Connection: close, keep-alive", "Content-Length: 2") + "{}",
		lhHead("HTTP/1.1 200 OK", "Connection: close", "Connection: keep-alive", "Content-Length: 2") + "{}",
		lhHead("HTTP/1.0 200 OK", "Connection: close, keep-alive", "Content-Length: 2") + "{}",
	} {
		var h respHead
		n, err := parseRespHead([]byte(in), &h)
		resp, nerr := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), nil)
		if err != nil || nerr != nil {
			t.Fatalf("%q: %v, net/http %v", in, err, nerr)
		}
		if !h.close {
			t.Errorf("parseRespHead(%q) = %d, close=false; want close=true (net/http Close=%v)", in, n, resp.Close)
		}
	}
}

// TestParseRespHeadNoBodyStatusChunked: a 1xx, 204 or 304 answer has no
// body whatever its headers say (RFC 9112 6.3), so it is not chunked
// either: the next bytes are the next answer.
func TestParseRespHeadNoBodyStatusChunked(t *testing.T) {
	for _, status := range []string{"204 No Content", "304 Not Modified", "100 Continue"} {
		in := lhHead("HTTP/1.1 "+status, "Transfer-Encoding: chunked")
		var h respHead
		n, err := parseRespHead([]byte(in), &h)
		resp, nerr := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), nil)
		if nerr != nil {
			t.Fatal(nerr)
		}
		if err != nil || h.chunked || h.length != 0 {
			t.Errorf("parseRespHead(%q) = %d, %v, %+v; want length 0, not chunked (net/http: ContentLength %d, TransferEncoding %q)",
				in, n, err, h, resp.ContentLength, resp.TransferEncoding)
		}
	}
}

// TestParseRespHeadBareLF: a head whose lines end in a bare LF must be
// refused, or read as net/http reads it (RFC 9112 2.2 lets a recipient
// take LF alone as a line end); not with the LF and the next header
// folded into the status line or a header value, which loses the
// framing.
func TestParseRespHeadBareLF(t *testing.T) {
	for _, in := range []string{
		"HTTP/1.1 200 \nTrAnsfer-EnCoding:Chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", // found by FuzzParseRespHead
		"HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\nContent-Length: 2\r\n\r\n{}",
	} {
		var h respHead
		n, err := parseRespHead([]byte(in), &h)
		if err != nil {
			continue
		}
		resp, nerr := http.ReadResponse(bufio.NewReader(strings.NewReader(in)), nil)
		if nerr != nil {
			t.Fatal(nerr)
		}
		chunked := len(resp.TransferEncoding) > 0
		if h.chunked != chunked || !chunked && int64(h.length) != resp.ContentLength {
			t.Errorf("parseRespHead(%q) = %d, %+v; net/http reads Content-Length %d, Transfer-Encoding %q",
				in, n, h, resp.ContentLength, resp.TransferEncoding)
		}
	}
}

// TestParseRespHeadAgreesNetHTTP compares accepted heads with net/http's
// client reading of them.
func TestParseRespHeadAgreesNetHTTP(t *testing.T) {
	for _, c := range lhRespAccepted() {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.head + c.tail)
			var h respHead
			n, err := parseRespHead(in, &h)
			if err != nil || n == 0 {
				t.Fatalf("parseRespHead: %d, %v", n, err)
			}
			lhRespAgreeNetHTTP(t, in, n, &h)
		})
	}
}

// lhRespAgreeNetHTTP checks an accepted answer head against net/http's
// reading, where net/http reads it and the framing is one both know.
func lhRespAgreeNetHTTP(t testing.TB, in []byte, n int, h *respHead) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(in[:n])), nil)
	if err != nil {
		return // net/http is stricter on some heads
	}
	if resp.StatusCode != h.status {
		t.Errorf("%q: net/http status %d, parseRespHead %d", in[:n], resp.StatusCode, h.status)
	}
	if resp.Close && !h.close {
		t.Errorf("%q: net/http expects the upstream to close, parseRespHead does not", in[:n])
	}
	if resp.ProtoMinor == 0 || resp.Header.Get("Transfer-Encoding") != "" && !h.chunked {
		return // HTTP/1.0 framing with Transfer-Encoding is faulty anyway
	}
	noBody := h.status < 200 || h.status == 204 || h.status == 304
	chunked := len(resp.TransferEncoding) == 1 && resp.TransferEncoding[0] == "chunked"
	if !noBody && chunked != h.chunked {
		t.Errorf("%q: net/http chunked %v, parseRespHead %v", in[:n], chunked, h.chunked)
	}
	if !h.chunked && resp.ContentLength != int64(h.length) {
		t.Errorf("%q: net/http Content-Length %d, parseRespHead %d", in[:n], resp.ContentLength, h.length)
	}
}

// --- chunked bodies ---

// lhDechunk feeds pieces to a dechunker the way the loop does: the bytes
// a call leaves unused stay in front of the next piece. It stops at the
// first error or when done; rest is what was not used.
func lhDechunk(limit int, pieces ...[]byte) (body []byte, used int, done bool, err error, rest []byte) {
	d := dechunker{limit: limit}
	var buf []byte
	for i, p := range pieces {
		buf = append(buf, p...)
		u, dn, e := d.feed(buf)
		if u < 0 || u > len(buf) {
			panic(fmt.Sprintf("feed used %d of %d bytes", u, len(buf)))
		}
		if len(d.body) > limit {
			panic(fmt.Sprintf("body %d bytes over limit %d", len(d.body), limit))
		}
		used += u
		buf = buf[u:]
		if e != nil {
			return d.body, used, false, e, nil
		}
		if dn {
			for _, q := range pieces[i+1:] {
				buf = append(buf, q...)
			}
			return d.body, used, true, nil, buf
		}
	}
	return d.body, used, false, nil, buf
}

// lhSplit cuts b at the given sorted offsets.
func lhSplit(b []byte, cuts ...int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, b[prev:c])
		prev = c
	}
	return append(out, b[prev:])
}

// lhCheckDechunk decodes in at once, a byte at a time and in random
// pieces, expecting body and all of in used.
func lhCheckDechunk(t *testing.T, in, want []byte) {
	t.Helper()
	const limit = 1 << 20
	check := func(how string, pieces [][]byte) {
		t.Helper()
		body, used, done, err, rest := lhDechunk(limit, pieces...)
		if err != nil || !done {
			t.Fatalf("%s: done %v, err %v", how, done, err)
		}
		if !bytes.Equal(body, want) {
			t.Fatalf("%s: body %q, want %q", how, lhShort(string(body)), lhShort(string(want)))
		}
		if used != len(in) || len(rest) != 0 {
			t.Fatalf("%s: used %d of %d bytes, %d left", how, used, len(in), len(rest))
		}
	}
	check("at once", [][]byte{in})
	bytewise := make([][]byte, len(in))
	for i := range in {
		bytewise[i] = in[i : i+1]
	}
	check("byte by byte", bytewise)
	rng := rand.New(rand.NewPCG(1, uint64(len(in))))
	for range 200 {
		var cuts []int
		for c := 0; ; {
			c += 1 + rng.IntN(64)
			if rng.IntN(8) == 0 {
				c += rng.IntN(4096)
			}
			if c >= len(in) {
				break
			}
			cuts = append(cuts, c)
		}
		check(fmt.Sprintf("split at %v", cuts), lhSplit(in, cuts...))
	}
	// More after the body stays unused.
	extra := []byte("HTTP/1.1 200 OK\r\n")
	body, used, done, err, rest := lhDechunk(limit, append(bytes.Clone(in), extra...))
	if err != nil || !done || !bytes.Equal(body, want) || used != len(in) || !bytes.Equal(rest, extra) {
		t.Fatalf("with bytes after: used %d of %d, done %v, err %v, rest %q", used, len(in), done, err, rest)
	}
}

// TestDechunkerNetHTTPServer decodes what a net/http server sends when a
// handler writes and flushes in pieces, with a trailer, captured raw.
func TestDechunkerNetHTTPServer(t *testing.T) {
	pieces := []string{`{"jsonrpc":"2.0",`, `"id":1,`, `"result":"0x` + strings.Repeat("ab", 5000), `"`, "", `}`, "\r\n0\r\n\r\n"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Trailer", "X-Pieces")
		for _, p := range pieces {
			_, _ = io.WriteString(w, p)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Pieces", strconv.Itoa(len(pieces)))
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	var h respHead
	n, err := parseRespHead(raw, &h)
	if err != nil || n == 0 || h.status != 200 || !h.chunked || h.length != -1 || !h.close {
		t.Fatalf("parseRespHead(%q) = %d, %v, %+v", lhShort(string(raw)), n, err, h)
	}
	if !bytes.Contains(raw[n:], []byte("\r\nX-Pieces: 7\r\n\r\n")) {
		t.Fatalf("no trailer in %q", lhShort(string(raw[n:])))
	}
	lhCheckDechunk(t, raw[n:], []byte(strings.Join(pieces, "")))
}

// TestDechunkerChunkedWriter decodes httputil.NewChunkedWriter's output
// for bodies of random bytes in random writes.
func TestDechunkerChunkedWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range 20 {
		var raw, want bytes.Buffer
		cw := httputil.NewChunkedWriter(&raw)
		for range rng.IntN(10) {
			p := make([]byte, rng.IntN(3000))
			for j := range p {
				p[j] = "\r\n0;a\x00\xff"[rng.IntN(7)]
			}
			want.Write(p)
			_, _ = cw.Write(p)
		}
		_ = cw.Close()
		if i%2 == 1 {
			raw.WriteString("X-Trailer: v\r\n")
		}
		raw.WriteString("\r\n")
		lhCheckDechunk(t, raw.Bytes(), want.Bytes())
	}
}

func TestDechunkerForms(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"empty body", "0\r\n\r\n", ""},
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello"},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"lower hex", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789"},
		{"leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello"},
		{"extension", "5;name=value\r\nhello\r\n0;last\r\n\r\n", "hello"},
		{"extensions quoted", "5;a=\"x;y\";b\r\nhello\r\n6 ; c\r\n world\r\n0\r\n\r\n", "hello world"},
		{"trailing space", "5 \r\nhello\r\n0\r\n\r\n", "hello"},
		{"trailer", "5\r\nhello\r\n0\r\nX-A: 1\r\n\r\n", "hello"},
		{"trailers", "5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", "hello"},
		{"CRLF in data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", "\r\n\r\n"},
		{"many chunks", strings.Repeat("1\r\nx\r\n", 100) + "0\r\n\r\n", strings.Repeat("x", 100)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			lhCheckDechunk(t, []byte(c.in), []byte(c.want))
		})
	}
}

func TestDechunkerErrors(t *testing.T) {
	long := strings.Repeat("0", 1100)
	cases := []struct {
		name  string
		in    string
		limit int
	}{
		{"empty size", "\r\nhello\r\n0\r\n\r\n", 100},
		{"extension only", ";ext\r\nhello\r\n0\r\n\r\n", 100},
		{"not hex", "g\r\nhello\r\n0\r\n\r\n", 100},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", 100},
		{"plus", "+5\r\nhello\r\n0\r\n\r\n", 100},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", 100},
		{"underscore", "1_0\r\n", 100},
		{"two numbers", "5 5\r\nhello\r\n0\r\n\r\n", 100},
		{"over 32 bits", "100000000\r\n", 1 << 30},
		{"huge", "ffffffffffffffffffff\r\n", 1 << 30},
		{"bare LF size", "5\nhello\r\n0\r\n\r\n", 100},
		{"size line too long", "5;" + strings.Repeat("e", 2000), 100},
		{"zeros line too long", long, 100},
		{"data not followed by CRLF", "5\r\nhelloX\r\n0\r\n\r\n", 100},
		{"data followed by LF", "5\r\nhello\n0\r\n\r\n", 100},
		{"data followed by CR", "5\r\nhello\r0\r\n\r\n", 100},
		{"data followed by LFCR", "5\r\nhello\n\r0\r\n\r\n", 100},
		{"short chunk", "6\r\nhello\r\n0\r\n\r\n", 100},
		{"chunk over limit", "b\r\nhello world\r\n0\r\n\r\n", 10},
		{"chunks over limit", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", 10},
		{"limit zero", "1\r\nx\r\n0\r\n\r\n", 0},
		{"trailer too long", "0\r\nX-A: " + strings.Repeat("a", maxUpstreamHead+10), 100},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := func(how string, pieces [][]byte) {
				body, used, done, err, _ := lhDechunk(c.limit, pieces...)
				if err == nil || !errors.Is(err, errUpstreamHTTP) {
					t.Errorf("%s: %q: body %q, used %d, done %v, err %v; want an errUpstreamHTTP",
						how, lhShort(c.in), lhShort(string(body)), used, done, err)
				}
				if len(body) > c.limit {
					t.Errorf("%s: body of %d bytes over limit %d", how, len(body), c.limit)
				}
			}
			check("at once", [][]byte{[]byte(c.in)})
			var bytewise [][]byte
			for i := range len(c.in) {
				bytewise = append(bytewise, []byte(c.in[i:i+1]))
			}
			check("byte by byte", bytewise)
		})
	}
	// At the limit exactly is fine.
	body, _, done, err, _ := lhDechunk(10, []byte("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"))
	if err != nil || !done || string(body) != "helloworld" {
		t.Errorf("body at limit: %q, %v, %v", body, done, err)
	}
}

// TestDechunkerSplitIndependent: the result must not depend on how the
// bytes arrive. A chunk-size line over 1024 bytes (or a trailer line over
// maxUpstreamHead) is refused when it arrives in pieces, so it must be
// refused when it arrives whole too (or accepted both ways).
func TestDechunkerSplitIndependent(t *testing.T) {
	cases := []struct {
		name string
		in   string
		cut  int
	}{
		{"long chunk extension", "5;" + strings.Repeat("e", 2000) + "\r\nhello\r\n0\r\n\r\n", 1500},
		{"long last-chunk extension", "0;" + strings.Repeat("e", 2000) + "\r\n\r\n", 1500},
		{"long trailer", "0\r\nX-A: " + strings.Repeat("a", maxUpstreamHead+10) + "\r\n\r\n", maxUpstreamHead + 8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			wb, wu, wd, werr, _ := lhDechunk(100, in)
			sb, su, sd, serr, _ := lhDechunk(100, in[:c.cut], in[c.cut:])
			if (werr == nil) != (serr == nil) || wd != sd || !bytes.Equal(wb, sb) {
				t.Errorf("%q\n whole: body %q, used %d, done %v, err %v\n cut at %d: body %q, used %d, done %v, err %v",
					lhShort(c.in), wb, wu, wd, werr, c.cut, sb, su, sd, serr)
			}
		})
	}
}

// --- answers to clients, requests to upstreams ---

func TestAppendResponse(t *testing.T) {
	cases := []struct {
		status     int
		body       string
		retryAfter string
		close      bool
	}{
		{200, `{"jsonrpc":"2.0","id":1,"result":"0x1"}`, "", false},
		{200, `[]`, "", true},
		{200, "", "", false},
		{400, `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad"}}`, "", false},
		{401, `{"error":1}`, "", false},
		{404, `{"error":2}`, "", true},
		{408, `{"error":3}`, "", true},
		{413, `{"error":4}`, "", true},
		{429, `{"error":5}`, "3", false},
		{429, `{"error":5}`, "120", true},
		{503, `{"error":6}`, "1", false},
		{500, `{"error":7}`, "", false},
		{502, "\r\n\r\nHTTP/1.1 200 OK\r\n", "", false},
	}
	var stream []byte
	for _, c := range cases {
		prefix := []byte("previous")
		out := appendResponse(bytes.Clone(prefix), c.status, []byte(c.body), c.retryAfter, c.close)
		if !bytes.HasPrefix(out, prefix) {
			t.Fatalf("appendResponse lost dst: %q", out)
		}
		one := out[len(prefix):]
		head := string(one[:bytes.Index(one, crlfcrlf)+4])
		if strings.Contains(head, "\r\nConnection: close\r\n") != c.close || strings.Count(head, "Connection") > 1 {
			t.Errorf("status %d, close %v: head %q", c.status, c.close, head)
		}
		stream = append(stream, one...)
		lhCheckResponse(t, bufio.NewReader(bytes.NewReader(one)), c.status, c.body, c.retryAfter, c.close, true)
	}
	// Back to back on one connection.
	br := bufio.NewReader(bytes.NewReader(stream))
	for _, c := range cases {
		lhCheckResponse(t, br, c.status, c.body, c.retryAfter, c.close, false)
	}
	if br.Buffered() != 0 {
		t.Errorf("%d bytes left after the answers", br.Buffered())
	}
}

func lhCheckResponse(t *testing.T, br *bufio.Reader, status int, body, retryAfter string, close, alone bool) {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("status %d: %v", status, err)
	}
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("status %d: body: %v", status, err)
	}
	if resp.StatusCode != status || resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
		t.Errorf("status %d: read %q %q", status, resp.Proto, resp.Status)
	}
	if text := http.StatusText(status); status != 500 && status != 502 && resp.Status != fmt.Sprintf("%d %s", status, text) {
		t.Errorf("status line %q, want %d %s", resp.Status, status, text)
	}
	if ct := resp.Header.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/json" {
		t.Errorf("status %d: Content-Type %q", status, ct)
	}
	if cl := resp.Header.Values("Content-Length"); len(cl) != 1 || cl[0] != strconv.Itoa(len(body)) || resp.ContentLength != int64(len(body)) {
		t.Errorf("status %d: Content-Length %q (%d), body %d bytes", status, cl, resp.ContentLength, len(body))
	}
	if ra := resp.Header.Values("Retry-After"); retryAfter == "" && len(ra) != 0 || retryAfter != "" && (len(ra) != 1 || ra[0] != retryAfter) {
		t.Errorf("status %d: Retry-After %q, want %q", status, ra, retryAfter)
	}
	if resp.Close != close {
		t.Errorf("status %d: Close %v, want %v", status, resp.Close, close)
	}
	if len(resp.TransferEncoding) != 0 {
		t.Errorf("status %d: Transfer-Encoding %q", status, resp.TransferEncoding)
	}
	if string(got) != body {
		t.Errorf("status %d: body %q, want %q", status, got, body)
	}
	if alone && br.Buffered() != 0 {
		t.Errorf("status %d: %d bytes after the answer", status, br.Buffered())
	}
}

func TestAppendUpstreamRequest(t *testing.T) {
	cases := []struct{ uri, host, auth string }{
		{"/", "127.0.0.1:8545", ""},
		{"/rpc", "10.0.0.7:8545", "Bearer secret-token"},
		{"/v3/abc?x=1", "[::1]:8545", "Basic dXNlcjpwYXNz"},
	}
	bodies := []string{`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`, "", strings.Repeat("x", 70000)}
	for _, c := range cases {
		prefix := upstreamPrefix(c.uri, c.host, c.auth)
		var stream, dst []byte
		for _, body := range bodies {
			dst = appendUpstreamRequest(dst[:0], prefix, []byte(body))
			stream = append(stream, dst...)
		}
		br := bufio.NewReader(bytes.NewReader(stream))
		for _, body := range bodies {
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Fatalf("%+v: %v", c, err)
			}
			got, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodPost || req.RequestURI != c.uri || req.Host != c.host || req.Proto != "HTTP/1.1" {
				t.Errorf("%+v: %s %s %s Host %q", c, req.Method, req.RequestURI, req.Proto, req.Host)
			}
			if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("User-Agent") != "hansa-gateway" {
				t.Errorf("%+v: headers %v", c, req.Header)
			}
			if a, ok := req.Header["Authorization"]; c.auth == "" && ok || c.auth != "" && (len(a) != 1 || a[0] != c.auth) {
				t.Errorf("%+v: Authorization %q", c, a)
			}
			if req.ContentLength != int64(len(body)) || string(got) != body || req.Close || len(req.TransferEncoding) != 0 {
				t.Errorf("%+v: Content-Length %d, body %d bytes (want %d), Close %v", c, req.ContentLength, len(got), len(body), req.Close)
			}
		}
		if br.Buffered() != 0 {
			t.Errorf("%+v: %d bytes left", c, br.Buffered())
		}
	}
}

// TestAppendUpstreamRequestServed sends the loop's request to a net/http
// server over TCP and reads its answer with the loop's parsers.
func TestAppendUpstreamRequestServed(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/rpc" || r.Header.Get("Authorization") != "Bearer t" || string(b) != body {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":"0x539"}`))
	}))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	prefix := upstreamPrefix("/rpc", srv.Listener.Addr().String(), "Bearer t")
	req := appendUpstreamRequest(nil, prefix, []byte(body))
	for range 3 { // one connection, kept alive
		if _, err := conn.Write(req); err != nil {
			t.Fatal(err)
		}
		var in []byte
		buf := make([]byte, 4096)
		var h respHead
		var n int
		for n == 0 {
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, buf[:k]...)
			if n, err = parseRespHead(in, &h); err != nil {
				t.Fatal(err)
			}
		}
		if h.status != 200 || h.chunked || h.close || h.length != len(`{"jsonrpc":"2.0","id":1,"result":"0x539"}`) {
			t.Fatalf("answer head %+v: %q", h, in)
		}
		for len(in) < n+h.length {
			k, err := conn.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, buf[:k]...)
		}
		if got := string(in[n:]); got != `{"jsonrpc":"2.0","id":1,"result":"0x539"}` {
			t.Fatalf("answer body %q", got)
		}
	}
}

// --- fuzzing ---

func FuzzParseReqHead(f *testing.F) {
	for _, c := range lhAcceptedCases() {
		if len(c.head) < 4096 {
			f.Add([]byte(c.head + c.tail))
		}
	}
	f.Add([]byte(lhPost("/v1/KEY", "X-API-Key: k", "Connection: close", "Content-Length: 2")))
	f.Add([]byte(lhPost("/", "Transfer-Encoding: chunked")))
	f.Add([]byte(lhPost("/a/../b", "Content-Length: 2")))
	f.Add([]byte(lhPost("/?x", "Content-Length : 2")))
	f.Add([]byte("POST / HTTP/1.1\nContent-Length: 2\n\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h reqHead
		n := parseReqHead(b, lhMaxBody, &h)
		switch {
		case n == headHandOff:
			return
		case n == headIncomplete:
			if bytes.Contains(b, crlfcrlf) || len(b) >= frontHeaderBytes {
				t.Fatalf("incomplete, yet %d bytes with CRLFCRLF at %d", len(b), bytes.Index(b, crlfcrlf))
			}
			return
		case n < 0 || n > len(b) || n > frontHeaderBytes:
			t.Fatalf("parseReqHead = %d for %d bytes", n, len(b))
		}
		if n != bytes.Index(b, crlfcrlf)+4 {
			t.Fatalf("head length %d, first CRLFCRLF ends at %d", n, bytes.Index(b, crlfcrlf)+4)
		}
		if h.bodyLen < 0 || h.bodyLen > lhMaxBody {
			t.Fatalf("bodyLen %d", h.bodyLen)
		}
		var h2 reqHead
		if n2 := parseReqHead(b[:n], lhMaxBody, &h2); n2 != n || !bytes.Equal(h2.path, h.path) ||
			!bytes.Equal(h2.apiKey, h.apiKey) || h2.bodyLen != h.bodyLen || h2.close != h.close {
			t.Fatalf("the head alone reads differently: %d %+v, with more: %d %+v", n2, h2, n, h)
		}
		lhAgreeNetHTTP(t, b, n, &h)
		lhAgreeFasthttp(t, b, n, &h)
	})
}

func FuzzDechunker(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), uint16(3), uint16(9), uint16(100))
	f.Add([]byte("5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\n"), uint16(1), uint16(20), uint16(100))
	f.Add([]byte("A\r\n0123456789\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n"), uint16(12), uint16(14), uint16(10))
	f.Add([]byte("4\r\n\r\n\r\n\r\n0\r\n\r\n"), uint16(0), uint16(5), uint16(4))
	f.Add([]byte("5\r\nhelloX\r\n0\r\n\r\n"), uint16(6), uint16(7), uint16(100))
	f.Add([]byte("ffffffff\r\n"), uint16(2), uint16(4), uint16(65535))
	f.Add([]byte("0\r\n\r\n"), uint16(0), uint16(0), uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, c1, c2, limit uint16) {
		i, j := int(c1)%(len(b)+1), int(c2)%(len(b)+1)
		if i > j {
			i, j = j, i
		}
		lim := int(limit)
		wb, wu, wd, werr, wrest := lhDechunk(lim, b)
		sb, su, sd, serr, srest := lhDechunk(lim, b[:i], b[i:j], b[j:])
		if werr != nil && !errors.Is(werr, errUpstreamHTTP) || serr != nil && !errors.Is(serr, errUpstreamHTTP) {
			t.Fatalf("errors not errUpstreamHTTP: %v, %v", werr, serr)
		}
		if (werr == nil) != (serr == nil) || wd != sd {
			t.Fatalf("split at %d, %d: done %v err %v; whole: done %v err %v", i, j, sd, serr, wd, werr)
		}
		if werr != nil {
			return
		}
		if !bytes.Equal(wb, sb) || wu != su || !bytes.Equal(wrest, srest) {
			t.Fatalf("split at %d, %d: body %q used %d rest %q; whole: body %q used %d rest %q", i, j, sb, su, srest, wb, wu, wrest)
		}
		if wd && wu+len(wrest) != len(b) {
			t.Fatalf("used %d + rest %d != %d", wu, len(wrest), len(b))
		}
		if wd {
			// net/http's chunked reader, where it reads the same chunks,
			// finds the same data.
			nb, nerr := io.ReadAll(httputil.NewChunkedReader(bytes.NewReader(b[:wu])))
			if nerr == nil && !bytes.Equal(nb, wb) {
				t.Fatalf("net/http body %q, dechunker %q", nb, wb)
			}
		}
	})
}

func FuzzParseRespHead(f *testing.F) {
	for _, c := range lhRespAccepted() {
		f.Add([]byte(c.head + c.tail))
	}
	f.Add([]byte(lhHead("HTTP/1.1 200 OK", "Content-Length: 2", "Content-Length: 3")))
	f.Add([]byte(lhHead("HTTP/1.1 20 OK")))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h respHead
		n, err := parseRespHead(b, &h)
		if n < 0 || n > len(b) {
			t.Fatalf("parseRespHead = %d for %d bytes", n, len(b))
		}
		if err != nil {
			if n != 0 || !errors.Is(err, errUpstreamHTTP) {
				t.Fatalf("%d, %v", n, err)
			}
			return
		}
		if n == 0 {
			if bytes.Contains(b, crlfcrlf) || len(b) >= maxUpstreamHead {
				t.Fatalf("incomplete, yet %d bytes with CRLFCRLF at %d", len(b), bytes.Index(b, crlfcrlf))
			}
			return
		}
		if n != bytes.Index(b, crlfcrlf)+4 {
			t.Fatalf("head length %d, first CRLFCRLF ends at %d", n, bytes.Index(b, crlfcrlf)+4)
		}
		if h.status < 100 || h.status > 999 || h.length < -1 || h.chunked && h.length != -1 ||
			!h.chunked && h.length < 0 && !h.close {
			t.Fatalf("head %+v", h)
		}
		lhRespAgreeNetHTTP(t, b, n, &h)
	})
}
