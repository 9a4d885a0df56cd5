package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakePost is an upstream for the batcher: it records every body, can hold
// answers until released, and answers each call with "method:params".
type fakePost struct {
	mu      sync.Mutex
	bodies  []string
	gate    chan struct{} // when set, every post waits for a receive
	entered chan struct{}
	// answer, when set, replaces the normal answer.
	answer  func(body []byte) (int, []byte, error)
	reverse bool // answer batches in reverse order
}

func (f *fakePost) post(_ time.Time, body []byte) (int, []byte, error) {
	f.mu.Lock()
	f.bodies = append(f.bodies, string(body))
	gate, entered, answer := f.gate, f.entered, f.answer
	f.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if answer != nil {
		return answer(body)
	}
	return 200, echoAnswer(body, f.reverse), nil
}

// echoAnswer answers a call or batch with results "method:params".
func echoAnswer(body []byte, reverse bool) []byte {
	one := func(r rpcRequest) json.RawMessage {
		res, _ := json.Marshal(r.Method + ":" + string(r.Params))
		return encodeResult(r.ID, res)
	}
	if body[0] != '[' {
		var r rpcRequest
		_ = json.Unmarshal(body, &r)
		return one(r)
	}
	var rs []rpcRequest
	_ = json.Unmarshal(body, &rs)
	out := make([]json.RawMessage, len(rs))
	for i, r := range rs {
		out[i] = one(r)
	}
	if reverse {
		slices.Reverse(out)
	}
	b, _ := json.Marshal(out)
	return b
}

func (f *fakePost) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies)
}

// batchSizes is the number of calls in each recorded body (1 for a single
// call).
func batchSizes(bodies []string) []int {
	var out []int
	for _, b := range bodies {
		if b[0] != '[' {
			out = append(out, 1)
			continue
		}
		var rs []json.RawMessage
		_ = json.Unmarshal([]byte(b), &rs)
		out = append(out, len(rs))
	}
	return out
}

func queueLen(b *batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

func busySlots(b *batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.busy
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func wantEcho(t *testing.T, resp *rpcResponse, err error, method, params string) {
	t.Helper()
	want, _ := json.Marshal(method + ":" + params)
	if err != nil || resp == nil || string(resp.Result) != string(want) {
		t.Fatalf("%s %s: got %+v, %v; want result %s", method, params, resp, err, want)
	}
}

// With batching off, every call is posted alone and at once, however many
// are in flight.
func TestBatcherOffPostsEveryCallAlone(t *testing.T) {
	f := &fakePost{gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	b := newBatcher(0, 0, f.post)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			resp, err := b.do(t.Context(), "m", json.RawMessage(fmt.Sprint(i)))
			wantEcho(t, resp, err, "m", fmt.Sprint(i))
		})
	}
	for range 16 {
		<-f.entered // all 16 reach the upstream before any is answered
	}
	close(f.gate)
	wg.Wait()
	for _, body := range f.recorded() {
		if !strings.HasPrefix(body, `{"jsonrpc":"2.0","id":1,`) {
			t.Fatalf("body %s: want a single call with id 1", body)
		}
	}
	if n := b.batches.Load(); n != 0 {
		t.Fatalf("%d batches with batching off", n)
	}
}

// Calls that find the only slot taken queue and go out oldest first in
// batches of at most max; answers reach their own callers even when the
// upstream answers in another order.
func TestBatcherBatchesQueuedCallsInOrder(t *testing.T) {
	f := &fakePost{gate: make(chan struct{}), entered: make(chan struct{}, 16), reverse: true}
	b := newBatcher(4, 1, f.post)
	var wg sync.WaitGroup
	call := func(i int) {
		wg.Go(func() {
			resp, err := b.do(t.Context(), "m", json.RawMessage(fmt.Sprint(i)))
			wantEcho(t, resp, err, "m", fmt.Sprint(i))
		})
	}
	call(0)
	<-f.entered // call 0 holds the slot
	for i := 1; i <= 6; i++ {
		call(i)
		waitFor(t, "call queued", func() bool { return queueLen(b) == i })
	}
	go func() {
		for range f.entered {
			f.gate <- struct{}{}
		}
	}()
	f.gate <- struct{}{} // answer call 0; the sender takes the queue
	wg.Wait()
	close(f.entered)
	bodies := f.recorded()
	if got := batchSizes(bodies); !slices.Equal(got, []int{1, 4, 2}) {
		t.Fatalf("request sizes %v, want [1 4 2]", got)
	}
	for k, want := range []string{`"params":1}`, `"params":5}`} {
		first := strings.SplitN(bodies[k+1], ",{", 2)[0]
		if !strings.HasSuffix(first, want) || !strings.Contains(first, `"id":0`) {
			t.Errorf("batch %d starts with %s, want the oldest queued call (%s) as id 0", k, first, want)
		}
	}
	if n, calls := b.batches.Load(), b.batched.Load(); n != 2 || calls != 6 {
		t.Errorf("stats %d batches, %d calls; want 2, 6", n, calls)
	}
	waitFor(t, "the slot freed", func() bool { return busySlots(b) == 0 })
}

// holdSlot returns a batcher with one slot, held by a call its upstream
// has not answered; done closes when that call returns (after f.open).
func holdSlot(t *testing.T) (*fakePost, *batcher, chan struct{}) {
	t.Helper()
	f := &fakePost{gate: make(chan struct{}), entered: make(chan struct{}, 16)}
	b := newBatcher(8, 1, f.post)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = b.do(t.Context(), "hold", nil)
	}()
	<-f.entered
	return f, b, done
}

// open stops holding posts, answers later ones with answer (nil: echo),
// and releases those held.
func (f *fakePost) open(answer func(body []byte) (int, []byte, error)) {
	f.mu.Lock()
	gate := f.gate
	f.gate, f.entered, f.answer = nil, nil, answer
	f.mu.Unlock()
	close(gate)
}

// runBatch queues three calls behind a held slot, lets the upstream answer
// the batch with answer, and returns each call's result.
func runBatch(t *testing.T, answer func(body []byte) (int, []byte, error)) ([]*rpcResponse, []error, *fakePost) {
	t.Helper()
	f, b, done := holdSlot(t)
	resps, errs := make([]*rpcResponse, 3), make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { resps[i], errs[i] = b.do(t.Context(), "m", json.RawMessage(fmt.Sprint(i))) })
		waitFor(t, "call queued", func() bool { return queueLen(b) == i+1 })
	}
	f.open(func(body []byte) (int, []byte, error) {
		if body[0] == '[' {
			return answer(body)
		}
		return 200, echoAnswer(body, false), nil
	}) // answers the held call; its slot goes to the queued three
	<-done
	wg.Wait()
	return resps, errs, f
}

func TestBatcherBatchFailures(t *testing.T) {
	t.Run("missing answer", func(t *testing.T) {
		resps, errs, _ := runBatch(t, func(body []byte) (int, []byte, error) {
			return 200, []byte(`[{"jsonrpc":"2.0","id":0,"result":"a"},{"jsonrpc":"2.0","id":2,"result":"c"}]`), nil
		})
		if errs[0] != nil || string(resps[0].Result) != `"a"` || errs[2] != nil || string(resps[2].Result) != `"c"` {
			t.Fatalf("answered calls: %v %v", errs[0], errs[2])
		}
		if !errors.Is(errs[1], errUpstream) {
			t.Fatalf("unanswered call: %v, want errUpstream", errs[1])
		}
	})
	t.Run("refused as a whole", func(t *testing.T) {
		resps, errs, f := runBatch(t, func(body []byte) (int, []byte, error) {
			return 200, []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"batch too large"}}`), nil
		})
		for i := range 3 {
			wantEcho(t, resps[i], errs[i], "m", fmt.Sprint(i))
		}
		// hold, the refused batch, then the three calls alone.
		if got := batchSizes(f.recorded()); !slices.Equal(got, []int{1, 3, 1, 1, 1}) {
			t.Fatalf("request sizes %v, want [1 3 1 1 1]", got)
		}
	})
	t.Run("HTTP 502 to the batch", func(t *testing.T) {
		_, errs, f := runBatch(t, func(body []byte) (int, []byte, error) { return 502, []byte("bad gateway"), nil })
		for i, err := range errs {
			if !errors.Is(err, errUpstream) || !strings.Contains(err.Error(), "HTTP 502") {
				t.Fatalf("call %d: %v", i, err)
			}
		}
		if n := len(f.recorded()); n != 2 {
			t.Fatalf("%d requests: a batch the upstream failed on must not be resent call by call", n)
		}
	})
	t.Run("transport error", func(t *testing.T) {
		_, errs, _ := runBatch(t, func(body []byte) (int, []byte, error) { return 0, nil, context.DeadlineExceeded })
		for i, err := range errs {
			if !errors.Is(err, errUpstream) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
	t.Run("malformed array", func(t *testing.T) {
		_, errs, _ := runBatch(t, func(body []byte) (int, []byte, error) { return 200, []byte(`[{"id":0,`), nil })
		for i, err := range errs {
			if !errors.Is(err, errUpstream) {
				t.Fatalf("call %d: %v", i, err)
			}
		}
	})
}

// A queued caller whose context ends returns at once, and its call is
// never posted.
func TestBatcherQueuedCallerLeaves(t *testing.T) {
	f, b, held := holdSlot(t)
	ctx, cancel := context.WithCancel(t.Context())
	left := make(chan error, 1)
	go func() {
		_, err := b.do(ctx, "gone", nil)
		left <- err
	}()
	waitFor(t, "call queued", func() bool { return queueLen(b) == 1 })
	stay := make(chan error, 1)
	go func() {
		resp, err := b.do(t.Context(), "stay", json.RawMessage("1"))
		if err == nil {
			wantEcho(t, resp, err, "stay", "1")
		}
		stay <- err
	}()
	waitFor(t, "second call queued", func() bool { return queueLen(b) == 2 })
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) || !errors.Is(err, errUpstream) {
		t.Fatalf("caller that left: %v", err)
	}
	f.open(nil) // answers the held call
	<-held
	if err := <-stay; err != nil {
		t.Fatal(err)
	}
	for _, body := range f.recorded() {
		if strings.Contains(body, `"gone"`) {
			t.Fatalf("the call of a caller that left was posted: %s", body)
		}
	}
}

// Single calls keep the upstream client's answer rules.
func TestBatcherSingleAnswers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"500 without JSON-RPC error", 500, "oops", false},
		{"500 with JSON-RPC error", 500, `{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"x"}}`, true},
		{"200 without result or error", 200, `{"jsonrpc":"2.0","id":1}`, false},
		{"200 null result", 200, `{"jsonrpc":"2.0","id":1,"result":null}`, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBatcher(8, 2, func(time.Time, []byte) (int, []byte, error) { return tt.status, []byte(tt.body), nil })
			resp, err := b.do(t.Context(), "m", nil)
			if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, errUpstream)) {
				t.Fatalf("got %+v, %v", resp, err)
			}
		})
	}
}

// Many callers through two slots: each gets exactly its own answer, and
// batches form.
func TestBatcherConcurrentCallers(t *testing.T) {
	var posts atomic.Int64
	b := newBatcher(8, 2, func(_ time.Time, body []byte) (int, []byte, error) {
		posts.Add(1)
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		return 200, echoAnswer(body, true), nil
	})
	var wg sync.WaitGroup
	for g := range 100 {
		wg.Go(func() {
			for i := range 50 {
				p := fmt.Sprintf(`[%d,%d]`, g, i)
				resp, err := b.do(t.Context(), "m", json.RawMessage(p))
				wantEcho(t, resp, err, "m", p)
			}
		})
	}
	wg.Wait()
	if b.batches.Load() == 0 || posts.Load() >= 5000 {
		t.Fatalf("%d batches, %d posts for 5000 calls: no batching under load", b.batches.Load(), posts.Load())
	}
	waitFor(t, "the slots freed", func() bool { return busySlots(b) == 0 && queueLen(b) == 0 })
}

// FuzzBatcherAnswer feeds arbitrary bytes as the answer to a batch and to
// a single call: no panic, and every caller gets an answer or errUpstream.
func FuzzBatcherAnswer(f *testing.F) {
	for _, seed := range []string{
		`[{"jsonrpc":"2.0","id":0,"result":1},{"jsonrpc":"2.0","id":1,"result":2},{"jsonrpc":"2.0","id":2,"result":3}]`,
		`[{"id":"0","result":1},{"id":-1,"result":1},{"id":99,"error":{"code":1,"message":"x"}},1,null]`,
		`{"jsonrpc":"2.0","id":1,"result":"0x1"}`, `[`, `[]`, ``, `null`, `[{"id":0,"result":1},{"id":0,"result":2}]`,
	} {
		f.Add([]byte(seed), 200)
	}
	f.Fuzz(func(t *testing.T, answer []byte, status int) {
		for _, batch := range []bool{false, true} {
			var mu sync.Mutex
			b := newBatcher(8, 1, func(_ time.Time, body []byte) (int, []byte, error) {
				mu.Lock()
				defer mu.Unlock()
				return status, answer, nil
			})
			n := 1
			if batch {
				n = 3
				b.busy = 1 // the slot is taken: the calls queue
			}
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { _, errs[i] = b.do(context.Background(), "m", nil) })
			}
			if batch {
				waitQueue(b, n)
				b.release() // hands the slot to a sender
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil && !errors.Is(err, errUpstream) {
					t.Fatalf("call %d: %v", i, err)
				}
			}
		}
	})
}

func waitQueue(b *batcher, n int) {
	for queueLen(b) < n {
		time.Sleep(10 * time.Microsecond)
	}
}

// Through the whole gateway: with batching on and one slot per upstream,
// concurrent clients each get their own answer while the upstreams receive
// batches, and the batch metrics count them.
func TestGatewayBatchesUnderLoad(t *testing.T) {
	nodes := threeNodes(t)
	for _, n := range nodes {
		n.delay.Store(int64(2 * time.Millisecond)) // lets calls pile up behind the slot
	}
	h := newHarness(t, nodes, func(c *Config) {
		for i := range c.Upstreams {
			c.Upstreams[i].BatchMax, c.Upstreams[i].BatchSlots = 8, 1
		}
	})
	h.poll(1)
	var wg sync.WaitGroup
	for g := range 24 {
		wg.Go(func() {
			for i := range 10 {
				block := fmt.Sprintf("0x%x", 1+(g*10+i)%100)
				_, resp := h.call("/", "eth_getBlockByNumber", fmt.Sprintf(`[%q,false]`, block), nil)
				var got struct{ Number string }
				if resp.Error != nil || json.Unmarshal(resp.Result, &got) != nil || got.Number != block {
					t.Errorf("block %s: got %s %+v", block, resp.Result, resp.Error)
					return
				}
			}
		})
	}
	wg.Wait()
	var batches, calls float64
	for _, n := range nodes {
		batches += metricValue(t, h.g.metrics.UpstreamBatches.WithLabelValues(n.name))
		calls += metricValue(t, h.g.metrics.BatchedCalls.WithLabelValues(n.name))
	}
	if batches == 0 || calls < 2*batches {
		t.Fatalf("%v batches carrying %v calls: 24 concurrent clients through one slot per upstream should form batches", batches, calls)
	}
}
