package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// The JSON-RPC front is a fasthttp server (ADR 0007): it reads a request
// and writes its answer on one goroutine per connection, with no second
// goroutine watching the connection. In a minimal proxy in front of geth,
// net/http's server cost ~65 µs more per call at one client than
// fasthttp's, and about a fifth of the throughput at 64 clients. WebSocket
// upgrades are taken over from fasthttp (hijacked) and handed to the same
// gorilla/websocket code as before. The ops and admin listeners stay on
// net/http.

// Limits of the front server. Reading a request (headers and body) is
// bounded; writing is bounded by the per-method call timeouts.
const (
	frontReadTimeout  = 30 * time.Second
	frontIdleTimeout  = 2 * time.Minute
	frontShutdownWait = 5 * time.Second
	// frontHeaderBytes bounds a request's header (fasthttp reads headers
	// into one buffer of this size per connection).
	frontHeaderBytes = 16 << 10
)

// serveFront serves JSON-RPC over HTTP and WebSocket on ln until ctx ends,
// then stops accepting and lets calls in flight finish for a few seconds.
// The request body limit is the one configured when it starts. It closes
// ln.
func (g *Gateway) serveFront(ctx context.Context, ln net.Listener) error {
	base := context.WithoutCancel(ctx)
	limits := g.rt.Load().cfg.Limits
	srv := &fasthttp.Server{
		Handler:                      func(c *fasthttp.RequestCtx) { g.serveFast(base, c) },
		ErrorHandler:                 g.frontError,
		ReadBufferSize:               frontHeaderBytes,
		ReadTimeout:                  g.frontRead,
		IdleTimeout:                  g.frontIdle,
		MaxRequestBodySize:           int(limits.MaxBodyBytes),
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		NoDefaultDate:                true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		Logger:                       fastLogger{g.logger},
	}
	if limits.FrontLoops >= 0 {
		if ok, err := g.serveLoops(ctx, ln, srv, loopsFor(limits.FrontLoops), limits.MaxBodyBytes); ok {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(base, frontShutdownWait)
	defer cancel()
	err := srv.ShutdownWithContext(sctx)
	// Shutdown closes only listeners Serve has started on: close ln in
	// case it had not yet.
	_ = ln.Close()
	<-errc
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// Refusals both fronts (fasthttp's and the event loops') answer alike.
var errNoSuchPath = &rpcError{Code: CodeInvalidRequest, Message: "not found: use POST / or POST /v1/KEY"}

const msgReadTimeout = "request not received in time"

// fastLogger sends fasthttp's own messages (connection errors) to the
// debug log.
type fastLogger struct{ l *slog.Logger }

func (f fastLogger) Printf(format string, args ...any) {
	f.l.Debug("http front", "msg", fmt.Sprintf(format, args...))
}

// frontError answers a request fasthttp could not read: too large a body
// or header, a read timeout or malformed HTTP.
func (g *Gateway) frontError(c *fasthttp.RequestCtx, err error) {
	status, label := http.StatusBadRequest, "invalid"
	msg := "malformed HTTP request"
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, label = http.StatusRequestEntityTooLarge, "too_large"
		msg = fmt.Sprintf("request body too large: limit %d bytes", g.rt.Load().cfg.Limits.MaxBodyBytes)
	case errors.As(err, &small):
		status, label = http.StatusRequestHeaderFieldsTooLarge, "too_large"
		msg = fmt.Sprintf("request header too large: limit %d bytes", frontHeaderBytes)
	case errors.As(err, &netErr) && netErr.Timeout():
		status, msg = http.StatusRequestTimeout, msgReadTimeout
	}
	g.metrics.Requests.WithLabelValues("none", label, "none").Inc()
	writeFast(c, status, encodeError(nil, &rpcError{Code: CodeInvalidRequest, Message: msg}))
}

func writeFast(c *fasthttp.RequestCtx, status int, body []byte) {
	c.SetStatusCode(status)
	c.SetContentType("application/json")
	c.Response.SetBodyRaw(body) // body is not reused after the call
}

// serveFast answers one HTTP request: POST / or /v1/KEY with one call or
// a batch, or a WebSocket upgrade on the same paths. Failures that concern
// the whole request (path, key, body, batch size, rate) get an HTTP error
// status with a JSON-RPC error body; failures of single calls are JSON-RPC
// errors in their place of the answer.
func (g *Gateway) serveFast(base context.Context, c *fasthttp.RequestCtx) {
	rt := g.rt.Load()
	fail := func(status int, e *rpcError, label string) {
		g.metrics.Requests.WithLabelValues("none", label, "none").Inc()
		writeFast(c, status, encodeError(nil, e))
	}
	key, ok := keyFromRequest(string(c.Path()), string(c.Request.Header.Peek("X-API-Key")))
	if !ok {
		fail(http.StatusNotFound, errNoSuchPath, "invalid")
		return
	}
	if isUpgrade(&c.Request.Header) {
		p, aerr := rt.keys.authenticate(key)
		if aerr != nil {
			fail(http.StatusUnauthorized, aerr, "unauthorized")
			return
		}
		if msg := checkUpgrade(c); msg != "" {
			fail(http.StatusBadRequest, &rpcError{Code: CodeInvalidRequest, Message: msg}, "invalid")
			return
		}
		r := upgradeRequest(c)
		c.HijackSetNoResponse(true)
		c.Hijack(func(conn net.Conn) { g.upgradeWS(base, conn, r, p) })
		return
	}
	if !c.IsPost() {
		fail(http.StatusMethodNotAllowed, &rpcError{Code: CodeInvalidRequest, Message: "method not allowed: use POST"}, "invalid")
		return
	}
	a := g.admit(rt, key, c.RemoteIP().String(), c.PostBody())
	if a.status != 0 {
		if a.retryAfter != "" {
			c.Response.Header.Set("Retry-After", a.retryAfter)
		}
		writeFast(c, a.status, a.body)
		return
	}
	writeFast(c, http.StatusOK, g.serveCalls(base, rt, &a))
}

// admission is the front's verdict on a POST request: the calls to
// answer, or the HTTP status, JSON-RPC error body and Retry-After value
// refusing all of them.
type admission struct {
	p     *principal
	calls []json.RawMessage
	batch bool

	status     int // 0: admitted
	body       []byte
	retryAfter string
}

// admit checks what concerns a POST request as a whole (key, body, batch
// size, rates) and counts a refusal.
func (g *Gateway) admit(rt *runtime, key, ip string, body []byte) admission {
	fail := func(status int, e *rpcError, label string) admission {
		g.metrics.Requests.WithLabelValues("none", label, "none").Inc()
		return admission{status: status, body: encodeError(nil, e)}
	}
	p, aerr := rt.keys.authenticate(key)
	if aerr != nil {
		return fail(http.StatusUnauthorized, aerr, "unauthorized")
	}
	calls, batch, perr := parseBody(body)
	if perr != nil {
		return fail(http.StatusBadRequest, perr, "invalid")
	}
	if len(calls) > rt.cfg.Limits.MaxBatch {
		return fail(http.StatusBadRequest, &rpcError{Code: CodeInvalidRequest,
			Message: fmt.Sprintf("batch too large: %d calls, limit %d", len(calls), rt.cfg.Limits.MaxBatch)}, "too_large")
	}
	now := time.Now()
	if ok, wait := g.limiter.allow("ip:"+ip, now, len(calls), rt.cfg.Limits.IPRate, rt.cfg.Limits.IPBurst); !ok {
		a := fail(http.StatusTooManyRequests, rateLimited("client IP", wait), "rate_limited")
		a.retryAfter = retryAfter(wait)
		return a
	}
	if ok, wait := g.limiter.allow("key:"+p.name, now, len(calls), p.rate, p.burst); !ok {
		a := fail(http.StatusTooManyRequests, rateLimited("API key", wait), "rate_limited")
		a.retryAfter = retryAfter(wait)
		return a
	}
	return admission{p: p, calls: calls, batch: batch}
}

// serveCalls answers an admitted request's call or batch.
func (g *Gateway) serveCalls(base context.Context, rt *runtime, a *admission) []byte {
	if !a.batch {
		return g.handleCall(base, rt, a.p, a.calls[0])
	}
	return g.handleBatch(base, rt, a.p, a.calls)
}

// isUpgrade reports whether a request asks for a WebSocket.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return tokenListHas(string(h.Peek("Connection")), "upgrade") && tokenListHas(string(h.Peek("Upgrade")), "websocket")
}

// checkUpgrade returns what is wrong with a WebSocket handshake, or "".
func checkUpgrade(c *fasthttp.RequestCtx) string {
	switch {
	case !c.IsGet():
		return "websocket: request method is not GET"
	case !tokenListHas(string(c.Request.Header.Peek("Sec-WebSocket-Version")), "13"):
		return "websocket: unsupported version: 13 not found in the Sec-WebSocket-Version header"
	case len(c.Request.Header.Peek("Sec-WebSocket-Key")) == 0:
		return "websocket: the Sec-WebSocket-Key header is missing"
	}
	return ""
}

// tokenListHas reports whether a comma-separated header value holds token
// (case-insensitive).
func tokenListHas(value, token string) bool {
	for part := range strings.SplitSeq(value, ",") {
		if strings.EqualFold(strings.TrimSpace(part), token) {
			return true
		}
	}
	return false
}

// upgradeRequest copies what the WebSocket handshake needs of a request
// (fasthttp reuses its request after the handler returns).
func upgradeRequest(c *fasthttp.RequestCtx) *http.Request {
	r := &http.Request{Method: http.MethodGet, Header: http.Header{}, RemoteAddr: c.RemoteAddr().String(),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Host: string(c.Host()), RequestURI: string(c.RequestURI())}
	c.Request.Header.VisitAll(func(k, v []byte) { r.Header.Add(string(k), string(v)) })
	return r
}

// upgradeWS completes a WebSocket handshake on a connection taken over
// from fasthttp and serves the session until either side closes.
func (g *Gateway) upgradeWS(base context.Context, conn net.Conn, r *http.Request, p *principal) {
	_ = conn.SetDeadline(time.Time{}) // the front's read timeout
	w := &hijacked{conn: conn, header: http.Header{}}
	ws, err := wsUpgrader.Upgrade(w, r, nil)
	if err != nil {
		g.logger.Debug("websocket upgrade failed", "err", err)
		return
	}
	g.serveWS(base, ws, clientHost(r.RemoteAddr), p)
}

// hijacked is the http.ResponseWriter gorilla's upgrader needs, over a
// connection fasthttp handed over. Requests reach it only after
// checkUpgrade, so the upgrader answers errors through it only in theory;
// it then writes a plain response and closes.
type hijacked struct {
	conn   net.Conn
	header http.Header
	status int
	done   bool
}

func (h *hijacked) Header() http.Header { return h.header }

func (h *hijacked) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *hijacked) Write(b []byte) (int, error) {
	if h.done {
		return 0, http.ErrHijacked
	}
	h.done = true
	h.WriteHeader(http.StatusOK)
	head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		h.status, http.StatusText(h.status), len(b))
	if _, err := h.conn.Write(append([]byte(head), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (h *hijacked) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h.done {
		return nil, nil, http.ErrHijacked
	}
	h.done = true
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriter(h.conn)), nil
}

// clientHost is the host part of a remote address. Headers such as
// X-Forwarded-For are not trusted.
func clientHost(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
