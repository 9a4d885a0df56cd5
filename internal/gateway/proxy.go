package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// handleBatch answers the calls of a batch in request order.
func (g *Gateway) handleBatch(ctx context.Context, rt *runtime, p *principal, calls []json.RawMessage) []byte {
	// The calls of a batch run concurrently, except that one sender's
	// eth_sendRawTransaction calls run one after another in batch order: a
	// node (or a cluster member forwarding to its leader) must see a
	// sender's nonces in order, or gapped ones pile up in its queue.
	answers := make([][]byte, len(calls))
	prepared := make([]preparedCall, len(calls))
	lanes := map[common.Address][]int{}
	var wg sync.WaitGroup
	for i, raw := range calls {
		prepared[i] = g.prepareCall(p, raw)
		if tx := prepared[i].tx; tx != nil {
			lanes[tx.sender] = append(lanes[tx.sender], i)
			continue
		}
		wg.Go(func() { answers[i] = g.finishCall(ctx, rt, p, &prepared[i]) })
	}
	for _, lane := range lanes {
		wg.Go(func() {
			for _, i := range lane {
				answers[i] = g.finishCall(ctx, rt, p, &prepared[i])
			}
		})
	}
	wg.Wait()
	n := 2 + len(answers)
	for _, a := range answers {
		n += len(a)
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, a := range answers {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, a...)
	}
	return append(out, ']')
}

func rateLimited(what string, wait time.Duration) *rpcError {
	ms := max(1, wait.Milliseconds())
	return &rpcError{Code: CodeRateLimited,
		Message: fmt.Sprintf("rate limit exceeded for this %s: retry in %dms", what, ms),
		Data:    map[string]any{"retry_after_ms": ms}}
}

// retryAfter is the Retry-After header value (whole seconds, at least 1).
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// handleCall answers one call of a request and records its metrics.
func (g *Gateway) handleCall(ctx context.Context, rt *runtime, p *principal, raw json.RawMessage) []byte {
	c := g.prepareCall(p, raw)
	return g.finishCall(ctx, rt, p, &c)
}

// preparedCall is a decoded and authorised call (or the error answering it).
type preparedCall struct {
	start  time.Time
	req    rpcRequest
	tx     *txInfo // decoded eth_sendRawTransaction
	answer []byte  // set when the call is already answered (an error)
	status string
	bad    bool // undecodable
}

// prepareCall decodes and authorises one call.
func (g *Gateway) prepareCall(p *principal, raw json.RawMessage) preparedCall {
	start := time.Now()
	req, derr := decodeCall(raw)
	return g.prepareDecoded(p, start, req, derr)
}

// prepareDecoded authorises a call decodeCall returned (req, derr),
// received at start.
func (g *Gateway) prepareDecoded(p *principal, start time.Time, req rpcRequest, derr *rpcError) preparedCall {
	c := preparedCall{start: start, req: req}
	if derr != nil {
		c.answer, c.status, c.bad = encodeError(req.ID, derr), "invalid", true
		return c
	}
	tx, aerr := p.authorizeCall(&c.req)
	switch {
	case aerr != nil && aerr.Code == CodeInvalidParams:
		c.answer, c.status = encodeError(req.ID, aerr), "invalid"
	case aerr != nil:
		c.answer, c.status = encodeError(req.ID, aerr), "denied"
	}
	c.tx = tx
	return c
}

// finishCall routes a prepared call and records its metrics.
func (g *Gateway) finishCall(ctx context.Context, rt *runtime, p *principal, c *preparedCall) []byte {
	if c.bad {
		g.metrics.Requests.WithLabelValues("other", c.status, p.name).Inc()
		return c.answer
	}
	out, status := c.answer, c.status
	if out == nil {
		out, status = g.answer(ctx, rt, &c.req, c.tx)
	}
	g.record(p, c, status)
	return out
}

// record counts a routed call's outcome and latency.
func (g *Gateway) record(p *principal, c *preparedCall, status string) {
	label := methodLabel(c.req.Method)
	g.metrics.Requests.WithLabelValues(label, status, p.name).Inc()
	g.metrics.Duration.WithLabelValues(label).Observe(time.Since(c.start).Seconds())
}

// answer routes one authorised call; status labels the outcome.
func (g *Gateway) answer(ctx context.Context, rt *runtime, req *rpcRequest, tx *txInfo) ([]byte, string) {
	dc := withDeadline(ctx, time.Now().Add(rt.cfg.Limits.timeoutFor(req.Method)))
	defer dc.release()
	ctx = dc

	var resp *rpcResponse
	var err error
	switch {
	case req.Method == "eth_sendRawTransaction":
		resp, err = g.sendRawTransaction(ctx, rt, req, tx)
	case isFilterCall(req.Method):
		resp, err = g.filterCall(ctx, req)
	case isNewFilter(req.Method):
		resp, err = g.newFilter(ctx, rt, req)
	default:
		resp, _, err = g.forward(ctx, rt, req, minHeadFor(req.Method, req.Params), retryable(req.Method))
	}
	return g.conclude(req, resp, err)
}

// plainForward reports whether answer sends method straight through
// forward, with no other step before or after.
func plainForward(method string) bool {
	return method != "eth_sendRawTransaction" && !isFilterCall(method) && !isNewFilter(method)
}

func isFilterCall(method string) bool {
	return method == "eth_getFilterChanges" || method == "eth_getFilterLogs" || method == "eth_uninstallFilter"
}

func isNewFilter(method string) bool {
	return method == "eth_newFilter" || method == "eth_newBlockFilter" || method == "eth_newPendingTransactionFilter"
}

// conclude turns a routed call's outcome into its answer and status label.
func (g *Gateway) conclude(req *rpcRequest, resp *rpcResponse, err error) ([]byte, string) {
	if err != nil {
		var re *rpcError
		if errors.As(err, &re) {
			return encodeError(req.ID, re), "unavailable"
		}
		g.logger.Debug("call failed", "method", req.Method, "err", err)
		return encodeError(req.ID, &rpcError{Code: CodeUnavailable, Message: "upstream unavailable: " + publicReason(err)}), "unavailable"
	}
	if resp.Error != nil {
		return encodeError(req.ID, resp.Error), "rpc_error"
	}
	return encodeResult(req.ID, resp.Result), "ok"
}

// publicReason is what a client may learn of a forwarding failure (no
// upstream URLs).
func publicReason(err error) string {
	switch {
	case errors.Is(err, ErrNoUpstream):
		return ErrNoUpstream.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "request canceled"
	}
	return "all attempts failed"
}

// retryable reports whether a call may be repeated on another upstream
// after a failure without the client noticing: reads and filter creation.
func retryable(method string) bool {
	switch method {
	case "eth_sendTransaction", "eth_sign", "eth_signTransaction", "eth_signTypedData",
		"eth_submitWork", "eth_submitHashrate", "eth_subscribe", "eth_unsubscribe":
		return false
	}
	for _, ns := range []string{"personal_", "admin_", "miner_", "clique_", "engine_"} {
		if strings.HasPrefix(method, ns) {
			return false
		}
	}
	return !strings.HasPrefix(method, "debug_set")
}

// forward sends req to a chosen upstream, retrying on others when
// retry is set and an attempt got no answer (see route). It returns the
// answer and the upstream that gave it.
func (g *Gateway) forward(ctx context.Context, rt *runtime, req *rpcRequest, minHead uint64, retry bool) (*rpcResponse, *upstream, error) {
	r := g.newRoute(rt, g.snapshot(), minHead, retry)
	dl, hasDL := ctx.Deadline()
	for {
		u, adl, ok := g.nextAttempt(r, req.Method, dl, hasDL)
		if !ok {
			return nil, nil, r.err
		}
		actx, release := ctx, func() {}
		if adl != dl {
			dc := withDeadline(ctx, adl)
			actx, release = dc, dc.release
		}
		resp, err := u.forward(actx, req.Method, req.Params, g.metrics)
		release()
		if err == nil {
			return resp, u, nil
		}
		r.err = err
		g.logger.Debug("upstream call failed", "upstream", u.cfg.Name, "method", req.Method, "attempt", r.attempt, "err", err)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
	}
}

// route is one call's way through the upstreams: which were tried, how
// many attempts are left and why the last one failed.
type route struct {
	ups      []*upstream
	cands    []Candidate
	tried    []bool
	minHead  uint64
	attempt  int // attempts made
	attempts int // allowed
	err      error
}

// newRoute starts a route over ups (a snapshot of the upstreams).
func (g *Gateway) newRoute(rt *runtime, ups []*upstream, minHead uint64, retry bool) *route {
	r := &route{ups: ups, cands: make([]Candidate, len(ups)), tried: make([]bool, len(ups)),
		minHead: minHead, attempts: 1, err: ErrNoUpstream}
	for i, u := range ups {
		r.cands[i] = u.candidate()
	}
	if retry {
		r.attempts += rt.cfg.Limits.Retries
	}
	return r
}

// nextAttempt picks the upstream for the next attempt, preferring one
// whose head has minHead, and returns the attempt's deadline: the first of
// several attempts gets half the time left before the call's deadline, so
// a hanging upstream leaves time for a retry. ok is false when no attempt
// is left (r.err says why).
func (g *Gateway) nextAttempt(r *route, method string, deadline time.Time, hasDeadline bool) (u *upstream, attemptDeadline time.Time, ok bool) {
	for r.attempt < r.attempts {
		i, _, perr := Pick(r.cands, r.minHead, r.tried, g.seq.Add(1))
		if perr != nil && r.minHead > 0 {
			// No healthy upstream has that block yet: any may answer "not found".
			i, _, perr = Pick(r.cands, 0, r.tried, g.seq.Add(1))
		}
		if perr != nil {
			return nil, time.Time{}, false
		}
		r.tried[i] = true
		if !r.ups[i].routable() {
			// Left the rotation (membership) since the call began: choose
			// again without counting an attempt.
			continue
		}
		r.attempt++
		if r.attempt > 1 {
			g.metrics.Retries.WithLabelValues(methodLabel(method)).Inc()
		}
		attemptDeadline = deadline
		if hasDeadline && r.attempt < r.attempts {
			now := time.Now()
			attemptDeadline = now.Add(deadline.Sub(now) / 2)
		}
		return r.ups[i], attemptDeadline, true
	}
	return nil, time.Time{}, false
}

// sendRawTransaction sends a signed transaction to one healthy upstream. An
// attempt without an answer is repeated on another upstream with the same
// bytes; "already known", or "nonce too low" while the upstream knows the
// transaction's hash, counts as success.
func (g *Gateway) sendRawTransaction(ctx context.Context, rt *runtime, req *rpcRequest, tx *txInfo) (*rpcResponse, error) {
	hashJSON := json.RawMessage(strconv.Quote(tx.hash.Hex()))
	ok := &rpcResponse{ID: req.ID, Result: hashJSON}
	resp, u, err := g.forward(ctx, rt, req, 0, true)
	if err != nil || resp.Error == nil {
		return resp, err
	}
	msg := strings.ToLower(resp.Error.Message)
	switch {
	case strings.Contains(msg, "already known"), strings.Contains(msg, "known transaction"),
		strings.Contains(msg, "already imported"):
		return ok, nil
	case strings.Contains(msg, "nonce too low"):
		check := json.RawMessage("[" + string(hashJSON) + "]")
		if r, cerr := u.forward(ctx, "eth_getTransactionByHash", check, g.metrics); cerr == nil && r.Error == nil && string(r.Result) != "null" {
			return ok, nil
		}
	}
	return resp, nil
}

// filterRef is where a filter the gateway handed out lives.
type filterRef struct {
	upstream string
	id       string
	used     time.Time
}

// filterTable maps the filter ids the gateway hands out to the upstream
// that created the filter. Its methods are safe for concurrent use.
type filterTable struct {
	mu   sync.Mutex
	refs map[string]*filterRef
}

func newFilterTable() *filterTable { return &filterTable{refs: map[string]*filterRef{}} }

func (t *filterTable) add(id string, ref *filterRef) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.refs[id] = ref
}

func (t *filterTable) get(id string, now time.Time) (filterRef, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ref, ok := t.refs[id]
	if !ok {
		return filterRef{}, false
	}
	ref.used = now
	return *ref, true
}

func (t *filterTable) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.refs, id)
}

// prune forgets filters unused since before cutoff (nodes expire them
// after five minutes).
func (t *filterTable) prune(cutoff time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, ref := range t.refs {
		if ref.used.Before(cutoff) {
			delete(t.refs, id)
		}
	}
}

// newFilter creates a filter on one upstream and hands out a gateway id
// that names the upstream and its filter id.
func (g *Gateway) newFilter(ctx context.Context, rt *runtime, req *rpcRequest) (*rpcResponse, error) {
	resp, u, err := g.forward(ctx, rt, req, 0, true)
	if err != nil || resp.Error != nil {
		return resp, err
	}
	var upID string
	if err := json.Unmarshal(resp.Result, &upID); err != nil {
		return nil, &rpcError{Code: CodeInternal, Message: "upstream returned a malformed filter id"}
	}
	id := randomID()
	g.filters.add(id, &filterRef{upstream: u.cfg.Name, id: upID, used: time.Now()})
	return &rpcResponse{ID: req.ID, Result: json.RawMessage(strconv.Quote(id))}, nil
}

// randomID returns an unguessable 128-bit id in hex, for the filter and
// subscription ids the gateway hands out.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hexutil.Encode(b[:])
}

// filterCall sends a call about a filter to the upstream that holds it.
func (g *Gateway) filterCall(ctx context.Context, req *rpcRequest) (*rpcResponse, error) {
	id, err := firstParamString(req.Params)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid params: " + err.Error()}
	}
	notFound := &rpcError{Code: -32000, Message: "filter not found"}
	ref, ok := g.filters.get(id, time.Now())
	if !ok {
		if req.Method == "eth_uninstallFilter" {
			return &rpcResponse{ID: req.ID, Result: json.RawMessage("false")}, nil
		}
		return nil, notFound
	}
	var u *upstream
	for _, x := range g.snapshot() {
		if x.cfg.Name == ref.upstream {
			u = x
		}
	}
	if u == nil || u.draining.Load() {
		// Gone, or draining out of the membership: the client creates the
		// filter again, on another upstream.
		g.filters.remove(id)
		return nil, notFound
	}
	params, _ := json.Marshal([]string{ref.id})
	resp, err := u.forward(ctx, req.Method, params, g.metrics)
	if err == nil && req.Method == "eth_uninstallFilter" {
		g.filters.remove(id)
	}
	return resp, err
}
