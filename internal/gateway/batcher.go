package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// postFunc posts one request body to an upstream before deadline. It
// returns the HTTP status and the answer body, which the caller owns, or
// the transport error that left it without an answer.
type postFunc func(deadline time.Time, body []byte) (status int, answer []byte, err error)

// batcher sends the proxied calls of one upstream. With batching off
// (max <= 1) every call is posted alone, on its caller's goroutine. With
// batching on, at most slots requests are in flight to the upstream; a call
// that finds a free slot is posted alone on its caller's goroutine, as
// before, so a lone client never waits. Calls that find every slot taken
// queue; when a request ends and calls are queued, its slot passes to a
// sender goroutine that posts them, oldest first, as JSON-RPC batches of
// at most max calls, until the queue is empty. Nothing waits on a timer:
// batches form only while the upstream is busy.
//
// Invariants:
//   - A batch carries ids 0..n-1 and answers are matched by id; a call
//     without its answer fails with errUpstream (it may have run).
//   - A batch answered by something other than an array (an upstream that
//     refuses batches, or refuses this one as too large) ran no call: its
//     calls are posted again one by one.
//   - A caller that gives up stops waiting at once; a queued call whose
//     caller left is never posted; answers are delivered into buffered
//     channels, so a sender never blocks on a caller.
type batcher struct {
	max   int
	slots int
	post  postFunc

	mu    sync.Mutex
	busy  int       // slots taken, guarded by mu
	queue []*queued // guarded by mu

	batches atomic.Uint64   // requests posted as arrays
	batched atomic.Uint64   // calls they carried
	onBatch func(calls int) // called for every batch posted, if set
}

// queued is a call waiting for a slot.
type queued struct {
	method   string
	params   json.RawMessage
	deadline time.Time
	left     atomic.Bool   // the caller stopped waiting
	done     chan answered // buffered: one answer
}

type answered struct {
	resp *rpcResponse
	err  error
}

func newBatcher(maxBatch, slots int, post postFunc) *batcher {
	return &batcher{max: maxBatch, slots: max(slots, 1), post: post}
}

// do sends one call and returns its answer; ctx bounds the call. Errors
// wrapping errUpstream mean no usable answer came back.
func (b *batcher) do(ctx context.Context, method string, params json.RawMessage) (*rpcResponse, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultUpstreamTimeout)
	}
	if b.max <= 1 {
		return b.single(deadline, method, params)
	}
	b.mu.Lock()
	if b.busy < b.slots {
		b.busy++
		b.mu.Unlock()
		resp, err := b.single(deadline, method, params)
		b.release()
		return resp, err
	}
	q := &queued{method: method, params: params, deadline: deadline, done: make(chan answered, 1)}
	b.queue = append(b.queue, q)
	b.mu.Unlock()
	select {
	case a := <-q.done:
		return a.resp, a.err
	case <-ctx.Done():
		q.left.Store(true)
		return nil, fmt.Errorf("%w: %w", errUpstream, ctx.Err())
	}
}

// release frees the caller's slot, or hands it to a sender when calls are
// queued (the caller returns to its client at once).
func (b *batcher) release() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.busy--
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	go b.drain()
}

// drain posts queued calls while there are any, holding one slot, and
// frees the slot when the queue is empty.
func (b *batcher) drain() {
	for {
		b.mu.Lock()
		var batch []*queued
		for len(b.queue) > 0 && len(batch) < b.max {
			q := b.queue[0]
			b.queue[0] = nil
			b.queue = b.queue[1:]
			if !q.left.Load() {
				batch = append(batch, q)
			}
		}
		if len(batch) == 0 {
			b.queue = nil // drop the emptied backing array
			b.busy--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.send(batch)
	}
}

// send posts a batch and delivers every call's answer.
func (b *batcher) send(batch []*queued) {
	if len(batch) == 1 {
		q := batch[0]
		resp, err := b.single(q.deadline, q.method, q.params)
		q.done <- answered{resp, err}
		return
	}
	deadline := batch[0].deadline
	body := []byte{'['}
	for i, q := range batch {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, encodeCall(json.RawMessage(strconv.Itoa(i)), q.method, q.params)...)
		if q.deadline.After(deadline) {
			deadline = q.deadline
		}
	}
	body = append(body, ']')
	b.batches.Add(1)
	b.batched.Add(uint64(len(batch)))
	if b.onBatch != nil {
		b.onBatch(len(batch))
	}
	status, ans, err := b.post(deadline, body)
	if errors.Is(err, errClosedBeforeAnswer) && batchResendSafe(batch) {
		status, ans, err = b.post(deadline, body)
	}
	if err != nil {
		for _, q := range batch {
			q.done <- answered{nil, fmt.Errorf("%w: %w", errUpstream, err)}
		}
		return
	}
	trimmed := bytes.TrimSpace(ans)
	if len(trimmed) == 0 || trimmed[0] != '[' {
		if status >= 500 {
			// The upstream failed while handling the batch: some calls
			// may have run.
			for _, q := range batch {
				q.done <- answered{nil, fmt.Errorf("%w: HTTP %d to a batch", errUpstream, status)}
			}
			return
		}
		// Refused as a whole ("batch too large", no batch support): no
		// call ran. Post them one by one.
		for _, q := range batch {
			resp, err := b.single(q.deadline, q.method, q.params)
			q.done <- answered{resp, err}
		}
		return
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(trimmed, &elems); err != nil {
		for _, q := range batch {
			q.done <- answered{nil, fmt.Errorf("%w: HTTP %d with a malformed batch answer", errUpstream, status)}
		}
		return
	}
	byID := make([]*rpcResponse, len(batch))
	for _, e := range elems {
		var r rpcResponse
		if json.Unmarshal(e, &r) != nil || (r.Error == nil && r.Result == nil) {
			continue
		}
		i, err := strconv.Atoi(string(r.ID))
		if err != nil || i < 0 || i >= len(batch) || byID[i] != nil {
			continue
		}
		byID[i] = &r
	}
	for i, q := range batch {
		if byID[i] == nil {
			q.done <- answered{nil, fmt.Errorf("%w: no answer to this call in the batch answer (HTTP %d)", errUpstream, status)}
			continue
		}
		q.done <- answered{byID[i], nil}
	}
}

// resendSafe reports whether a call may be posted again when its
// connection closed before any answer. That most likely means the request
// never reached the upstream, but the transport cannot tell for sure, so
// only calls the proxy would retry elsewhere anyway are sent again.
func resendSafe(method string) bool {
	return retryable(method) || method == "eth_sendRawTransaction"
}

func batchResendSafe(batch []*queued) bool {
	for _, q := range batch {
		if !resendSafe(q.method) {
			return false
		}
	}
	return true
}

// single posts one call alone and decodes its answer.
func (b *batcher) single(deadline time.Time, method string, params json.RawMessage) (*rpcResponse, error) {
	body := encodeCall(json.RawMessage("1"), method, params)
	status, ans, err := b.post(deadline, body)
	if errors.Is(err, errClosedBeforeAnswer) && resendSafe(method) {
		status, ans, err = b.post(deadline, body)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUpstream, err)
	}
	return singleAnswer(status, ans)
}

// singleAnswer reads an upstream's answer to one call: a JSON-RPC answer,
// or errUpstream when there is none (or an HTTP 5xx without an error).
func singleAnswer(status int, ans []byte) (*rpcResponse, error) {
	out, _ := decodeResponse(ans)
	if out.Error == nil && out.Result == nil {
		return nil, fmt.Errorf("%w: HTTP %d with no JSON-RPC answer", errUpstream, status)
	}
	if status >= 500 && out.Error == nil {
		return nil, fmt.Errorf("%w: HTTP %d", errUpstream, status)
	}
	return &out, nil
}
