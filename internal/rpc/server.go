package rpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
)

// JSON-RPC error codes this file answers itself (go-ethereum's values).
const (
	srvCodeInvalidRequest   = -32600
	srvCodeTimeout          = -32002
	srvCodeResponseTooLarge = -32003
)

// go-ethereum's texts for an oversized response and a call timeout.
const (
	srvMsgResponseTooLarge = "response too large"
	srvMsgTimeout          = "request timed out"
)

// Services are the receivers NewServer registers; a nil receiver is skipped.
// Each is registered only when its namespace is enabled in Config.Namespaces.
type Services struct {
	// Eth and Filters are both served under "eth".
	Eth, Filters any
	// Net, Web3, Txpool and Debug are served under their own namespaces.
	Net, Web3, Txpool, Debug any
}

// Server is the public JSON-RPC endpoint: HTTP POST and WebSocket on one
// handler, with the request, batch, response and time limits of Config, and
// Prometheus metrics. It is safe for concurrent use.
type Server struct {
	cfg     Config
	rpc     *gethrpc.Server
	ws      http.Handler
	metrics *serverMetrics
	logger  *slog.Logger
	methods map[string]bool // registered method names, for bounded metric labels
	stopped atomic.Bool
}

// NewServer builds the JSON-RPC server for the namespaces enabled in cfg,
// registering the given receivers with go-ethereum's rpc package, and its
// metrics on reg (nil = unregistered). It starts nothing.
func NewServer(cfg Config, svc Services, reg prometheus.Registerer, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newServerMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("rpc metrics: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		rpc:     gethrpc.NewServer(),
		metrics: m,
		logger:  logger.With("component", "rpc"),
		methods: map[string]bool{"rpc_modules": true},
	}
	s.rpc.SetBatchLimits(cfg.MaxBatchItems, cfg.MaxResponseBytes)
	s.rpc.SetHTTPBodyLimit(cfg.MaxRequestBytes)
	s.rpc.SetWebsocketReadLimit(int64(cfg.MaxRequestBytes))

	regs := []struct {
		ns   string
		rcvr any
	}{
		{"eth", svc.Eth}, {"eth", svc.Filters}, {"net", svc.Net},
		{"web3", svc.Web3}, {"txpool", svc.Txpool}, {"debug", svc.Debug},
	}
	var served []string
	for _, r := range regs {
		if r.rcvr == nil || !cfg.Enabled(r.ns) {
			continue
		}
		if err := s.rpc.RegisterName(r.ns, r.rcvr); err != nil {
			return nil, fmt.Errorf("rpc: register %s %T: %w", r.ns, r.rcvr, err)
		}
		for _, name := range srvMethodNames(r.ns, r.rcvr) {
			s.methods[name] = true
		}
		served = append(served, r.ns)
	}
	for _, ns := range cfg.Namespaces {
		if !slices.Contains(served, ns) {
			s.logger.Warn("rpc namespace enabled but no service given", "namespace", ns)
		}
	}
	s.ws = s.rpc.WebsocketHandler([]string{"*"})
	return s, nil
}

// srvMethodNames lists the JSON-RPC method names go-ethereum derives from the
// exported methods of rcvr (namespace_lowerFirst), plus namespace_subscribe
// and namespace_unsubscribe. Names of methods go-ethereum rejects as
// callbacks may appear too; they only widen the metric label set a little.
func srvMethodNames(ns string, rcvr any) []string {
	t := reflect.TypeOf(rcvr)
	names := []string{ns + "_subscribe", ns + "_unsubscribe"}
	for i := range t.NumMethod() {
		m := t.Method(i)
		if !m.IsExported() {
			continue
		}
		r := []rune(m.Name)
		r[0] = unicode.ToLower(r[0])
		names = append(names, ns+"_"+string(r))
	}
	return names
}

// Handler returns the http.Handler serving JSON-RPC over HTTP POST and, on
// the same path, WebSocket upgrades.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srvIsWebSocket(r) {
			s.serveWS(w, r)
			return
		}
		s.serveHTTP(w, r)
	})
}

// Stop closes every WebSocket connection and makes the server refuse new
// requests: HTTP calls after Stop are answered 503 with a JSON-RPC error.
func (s *Server) Stop() {
	s.stopped.Store(true)
	s.rpc.Stop()
}

func srvIsWebSocket(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		strings.Contains(strings.ToLower(r.Header.Get("Connection")), "upgrade")
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	s.metrics.WSConnectionsTotal.Inc()
	s.metrics.WSConnections.Inc()
	defer s.metrics.WSConnections.Dec()
	s.ws.ServeHTTP(w, r)
}

// reqCall is the part of a request the server reads for metrics and errors.
type reqCall struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
}

// respMsg is the part of a response the server reads for metrics.
type respMsg struct {
	ID    json.RawMessage `json:"id"`
	Error *struct {
		Code int `json:"code"`
	} `json:"error"`
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	// Health-check GETs and the methods go-ethereum refuses carry no call:
	// let go-ethereum answer them as it does.
	if r.Method != http.MethodPost {
		s.rpc.ServeHTTP(w, r)
		return
	}
	if s.stopped.Load() {
		srvWriteHTTPError(w, http.StatusServiceUnavailable, srvCodeInvalidRequest, "server is shutting down")
		return
	}
	s.metrics.Inflight.Inc()
	defer s.metrics.Inflight.Dec()
	start := time.Now()

	limit := s.cfg.MaxRequestBytes
	if r.ContentLength > int64(limit) {
		s.countCalls(nil, false, srvOutcomeTooLarge)
		srvWriteHTTPError(w, http.StatusRequestEntityTooLarge, srvCodeInvalidRequest,
			fmt.Sprintf("content length too large (%d>%d)", r.ContentLength, limit))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		s.countCalls(nil, false, srvOutcomeInvalid)
		srvWriteHTTPError(w, http.StatusBadRequest, srvCodeInvalidRequest, "read error")
		return
	}
	if len(body) > limit {
		s.countCalls(nil, false, srvOutcomeTooLarge)
		srvWriteHTTPError(w, http.StatusRequestEntityTooLarge, srvCodeInvalidRequest,
			fmt.Sprintf("request body too large (>%d)", limit))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))

	calls, batch := srvParseCalls(body)

	rec := &capWriter{w: w, header: make(http.Header), limit: s.cfg.MaxResponseBytes}
	var ctx context.Context
	if batch {
		// go-ethereum times out a batch itself, keeping the answers of the
		// calls that completed.
		deadline := start.Add(s.cfg.CallTimeout)
		ctx = callDeadline{r.Context(), deadline}
		rec.batchDeadline = deadline
		for _, c := range calls {
			if len(c.ID) > 0 {
				rec.batchIDs = append(rec.batchIDs, c.ID)
			}
		}
	} else {
		cctx := newCallContext(r.Context())
		defer cctx.release()
		var id json.RawMessage
		if len(calls) == 1 {
			id = calls[0].ID
			rec.singleID = id
		}
		timer := time.AfterFunc(s.cfg.CallTimeout, func() {
			// Answer first, then cancel: the method cannot answer
			// "context deadline exceeded" before the client has its
			// "request timed out".
			if len(id) > 0 {
				rec.commitError(id, srvCodeTimeout, srvMsgTimeout)
			}
			cctx.finish(context.DeadlineExceeded)
		})
		defer timer.Stop()
		ctx = cctx
	}
	s.rpc.ServeHTTP(rec, r.WithContext(ctx))
	out := rec.finish()

	elapsed := time.Since(start).Seconds()
	if batch {
		s.metrics.BatchSize.Observe(float64(len(calls)))
		s.metrics.Duration.WithLabelValues(srvMethodBatch).Observe(elapsed)
	} else if len(calls) == 1 {
		s.metrics.Duration.WithLabelValues(s.label(calls[0].Method)).Observe(elapsed)
	}
	if rec.statusCode() != http.StatusOK {
		s.countCalls(calls, batch, srvOutcomeInvalid)
		return
	}
	s.countOutcomes(calls, batch, out)
}

// callContext is the context of a single (non-batch) HTTP call. It ends when
// the request's context ends or when the server's call timer fires; in the
// latter case Err is context.DeadlineExceeded (so go-ethereum's tracers and
// EVM runners treat it as a timeout), but only after the timeout answer has
// been committed to the client. It reports no Deadline, so go-ethereum's
// handler does not race the server with a timer of its own.
type callContext struct {
	context.Context
	done chan struct{}
	stop func() bool

	mu  sync.Mutex
	err error
}

func newCallContext(parent context.Context) *callContext {
	c := &callContext{Context: parent, done: make(chan struct{})}
	c.stop = context.AfterFunc(parent, func() { c.finish(parent.Err()) })
	return c
}

// finish ends the context with err, once.
func (c *callContext) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// release ends the context when the call is over.
func (c *callContext) release() {
	c.stop()
	c.finish(context.Canceled)
}

// Deadline reports none; see the type's comment.
func (c *callContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done is closed when the context ends.
func (c *callContext) Done() <-chan struct{} { return c.done }

// Err says why the context ended, or nil.
func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// callDeadline is the context of a batch: it tells go-ethereum's handler the
// call deadline without expiring at that instant itself. go-ethereum's
// handler arms a timer from Deadline; when it fires, it cancels the calls and
// answers "request timed out" (-32002) for those not completed.
type callDeadline struct {
	context.Context
	deadline time.Time
}

// Deadline reports the call deadline.
func (c callDeadline) Deadline() (time.Time, bool) { return c.deadline, true }

// srvParseCalls reads the ids and method names of a request body; it returns
// nil calls when the body is not a JSON object or array of objects.
func srvParseCalls(body []byte) (calls []reqCall, batch bool) {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 {
		return nil, false
	}
	if body[0] == '[' {
		if err := json.Unmarshal(body, &calls); err != nil {
			// Items that are not objects: count the batch, not its methods.
			var raw []json.RawMessage
			if json.Unmarshal(body, &raw) == nil {
				return make([]reqCall, len(raw)), true
			}
			return nil, true
		}
		return calls, true
	}
	var c reqCall
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, false
	}
	return []reqCall{c}, false
}

// label bounds the method label: unregistered names become "unknown".
func (s *Server) label(method string) string {
	if s.methods[method] {
		return method
	}
	return srvMethodUnknown
}

// countCalls counts every call of a request under one outcome; a request
// whose calls could not be read counts once as "unknown".
func (s *Server) countCalls(calls []reqCall, batch bool, outcome string) {
	if len(calls) == 0 {
		s.metrics.Requests.WithLabelValues(srvMethodUnknown, outcome).Inc()
		return
	}
	for _, c := range calls {
		s.metrics.Requests.WithLabelValues(s.label(c.Method), outcome).Inc()
	}
}

// countOutcomes matches the response to the request's calls by id and counts
// each call's outcome.
func (s *Server) countOutcomes(calls []reqCall, batch bool, resp []byte) {
	resp = bytes.TrimLeft(resp, " \t\r\n")
	var msgs []respMsg
	switch {
	case len(resp) == 0: // notifications only
	case resp[0] == '[':
		_ = json.Unmarshal(resp, &msgs)
	default:
		var m respMsg
		if json.Unmarshal(resp, &m) == nil {
			msgs = []respMsg{m}
		}
	}
	if len(calls) == 0 {
		code := 0
		if len(msgs) > 0 && msgs[0].Error != nil {
			code = msgs[0].Error.Code
		}
		s.metrics.Requests.WithLabelValues(srvMethodUnknown, srvOutcomeOf(code)).Inc()
		return
	}
	if !batch {
		code := 0
		if len(msgs) == 1 && msgs[0].Error != nil {
			code = msgs[0].Error.Code
		}
		s.metrics.Requests.WithLabelValues(s.label(calls[0].Method), srvOutcomeOf(code)).Inc()
		return
	}
	byID := make(map[string]int, len(msgs))
	for _, m := range msgs {
		code := 0
		if m.Error != nil {
			code = m.Error.Code
		}
		byID[srvCompactID(m.ID)] = code
	}
	// Calls without their own answer were cut by a batch-level rejection
	// (batch too large, timeout): they take the outcome of the first error.
	fallback := srvOutcomeError
	for _, m := range msgs {
		if m.Error != nil {
			fallback = srvOutcomeOf(m.Error.Code)
			break
		}
	}
	for _, c := range calls {
		outcome := srvOutcomeOK // a notification gets no answer
		if len(c.ID) > 0 {
			outcome = fallback
			if code, ok := byID[srvCompactID(c.ID)]; ok {
				outcome = srvOutcomeOf(code)
			}
		}
		s.metrics.Requests.WithLabelValues(s.label(c.Method), outcome).Inc()
	}
}

func srvCompactID(id json.RawMessage) string {
	var buf bytes.Buffer
	if json.Compact(&buf, id) != nil {
		return string(id)
	}
	return buf.String()
}

// srvWriteHTTPError answers a request the server refused before dispatch with an
// HTTP status and a JSON-RPC error body.
func srvWriteHTTPError(w http.ResponseWriter, status, code int, msg string) {
	body := srvErrorBody(nil, code, msg)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// srvErrorBody encodes a JSON-RPC error response for id (nil = null).
func srvErrorBody(id json.RawMessage, code int, msg string) []byte {
	if len(id) == 0 || !json.Valid(id) {
		id = json.RawMessage("null")
	}
	b, _ := json.Marshal(struct {
		Version string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}{
		Version: "2.0",
		ID:      id,
		Error: struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}{code, msg},
	})
	return append(b, '\n')
}

// capWriter buffers go-ethereum's HTTP answer (headers, status and body) so
// the server can enforce the response size limit and read outcomes for
// metrics before anything reaches the client. An answer is committed to the
// client once: by finish after go-ethereum returns, by Flush (go-ethereum
// flushes a batch's timeout answer from its timer goroutine while calls still
// run), or by commitError from the server's own call timer. Later writes are
// dropped. The body and the commit are guarded by mu; go-ethereum's header
// writes go to capWriter's own map, copied to the client's on commit.
type capWriter struct {
	w        http.ResponseWriter
	header   http.Header
	limit    int
	singleID json.RawMessage
	// batchIDs are the ids of a batch's calls; batchDeadline its deadline.
	batchIDs      []json.RawMessage
	batchDeadline time.Time

	mu        sync.Mutex
	status    int
	buf       []byte
	committed bool
}

func (c *capWriter) Header() http.Header { return c.header }

// statusCode is the committed answer's HTTP status.
func (c *capWriter) statusCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

func (c *capWriter) WriteHeader(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == 0 {
		c.status = status
	}
}

func (c *capWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == 0 {
		c.status = http.StatusOK
	}
	if c.committed {
		return 0, http.ErrHandlerTimeout
	}
	c.buf = append(c.buf, p...)
	return len(p), nil
}

// commitError commits a JSON-RPC error answer for id in place of whatever
// go-ethereum writes, unless an answer was committed already.
func (c *capWriter) commitError(id json.RawMessage, code int, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.committed {
		return
	}
	c.committed = true
	c.status = http.StatusOK
	body := srvErrorBody(id, code, msg)
	c.buf = body
	// go-ethereum may be setting headers on c.header right now: do not read
	// them, set the answer's own.
	h := c.w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(http.StatusOK)
	_, _ = c.w.Write(body)
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Flush commits what was written so far.
func (c *capWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commitLocked()
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// finish commits the answer if that has not happened yet and returns the
// body as go-ethereum wrote it, for metrics.
func (c *capWriter) finish() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.commitLocked()
	return c.buf
}

func (c *capWriter) commitLocked() {
	if c.committed {
		return
	}
	c.committed = true
	if c.status == 0 {
		c.status = http.StatusOK
	}
	body := c.buf
	if c.status == http.StatusOK && len(body) > c.limit && srvIsObject(body) {
		id := c.singleID
		if len(id) == 0 {
			var m respMsg
			if json.Unmarshal(body, &m) == nil {
				id = m.ID
			}
		}
		body = srvErrorBody(id, srvCodeResponseTooLarge, srvMsgResponseTooLarge)
		// Keep the replacement, so metrics see what the client saw.
		c.buf = body
	} else if c.status == http.StatusOK && !c.batchDeadline.IsZero() && time.Now().After(c.batchDeadline) {
		body = completeBatch(body, c.batchIDs)
		c.buf = body
	}
	if c.status == http.StatusOK && len(body) > c.limit && !srvIsObject(body) {
		body = capBatch(body, c.limit)
		c.buf = body
	}
	h := c.w.Header()
	for k, v := range c.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	c.w.WriteHeader(c.status)
	_, _ = c.w.Write(body)
}

// completeBatch adds a "request timed out" answer for every call id missing
// from a timed-out batch's answer: when a call returns on cancellation
// before go-ethereum's batch timer answers for the rest, go-ethereum writes
// only the answers it has.
func completeBatch(body []byte, ids []json.RawMessage) []byte {
	var items []json.RawMessage
	if json.Unmarshal(body, &items) != nil || len(items) >= len(ids) {
		return body
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		var m respMsg
		if json.Unmarshal(it, &m) == nil {
			seen[srvCompactID(m.ID)] = true
		}
	}
	for _, id := range ids {
		if !seen[srvCompactID(id)] {
			items = append(items, bytes.TrimRight(srvErrorBody(id, srvCodeTimeout, srvMsgTimeout), "\n"))
		}
	}
	out, err := json.Marshal(items)
	if err != nil {
		return body
	}
	return append(out, '\n')
}

// capBatch enforces the limit on a batch answer strictly. go-ethereum stops
// a batch once the answers so far exceed the limit, but keeps the answer that
// crossed it; capBatch replaces that answer, too, with a "response too large"
// error carrying its id.
func capBatch(body []byte, limit int) []byte {
	var items []json.RawMessage
	if json.Unmarshal(body, &items) != nil {
		return body
	}
	out := make([]byte, 0, limit)
	out = append(out, '[')
	size := 2
	over := false
	for i, it := range items {
		if !over && size+len(it)+1 > limit {
			over = true
		}
		if over {
			var m respMsg
			_ = json.Unmarshal(it, &m)
			it = bytes.TrimRight(srvErrorBody(m.ID, srvCodeResponseTooLarge, srvMsgResponseTooLarge), "\n")
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, it...)
		size += len(it) + 1
	}
	return append(out, ']', '\n')
}

func srvIsObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
