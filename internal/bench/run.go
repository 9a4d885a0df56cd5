package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// Operation states.
const (
	stateIdle     uint8 = iota // never dispatched: not offered, not counted
	stateInFlight              // dispatched, not resolved
	stateOK                    // included with status 1 (or read answered)
	stateFailed                // send error, revert, or dropped
)

// outcome is one operation's fate. Times are offsets from the run's start.
type outcome struct {
	intended time.Duration
	sent     time.Duration // when the endpoint accepted it; 0 until then
	done     time.Duration // inclusion seen (or read answered, or failure)
	state    uint8
	kind     string // failure kind
}

// runner executes one measured run over pre-built operations.
type runner struct {
	cfg    *Config
	e      *env
	ops    []op
	log    *slog.Logger
	stderr io.Writer
	start  time.Time
	read   bool

	jobs    chan int
	windows []*Window // closed-loop mode only

	mu      sync.Mutex
	out     []outcome
	pending map[common.Hash]int // dispatched transactions awaiting inclusion

	dispatched, accepted, ok, failed atomic.Int64
	lastSend                         atomic.Int64 // offset of the latest send, ns
	exhausted                        atomic.Bool  // max mode ran out of pre-signed operations
	trackerLag                       atomic.Int64 // longest head-seen → receipts-checked delay, ns
}

// Run prepares the endpoint, then performs one measured run and returns its
// result. Progress goes to stderr once a second (nil for none).
func Run(ctx context.Context, cfg Config, log *slog.Logger, stderr io.Writer) (*Result, error) {
	s, err := Open(ctx, cfg, log, 1)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(ctx, 0, stderr)
}

// Session is a prepared endpoint on which measured runs can be repeated
// (bench compare runs one per round). It is used by one goroutine at a time.
type Session struct {
	cfg Config
	cl  *client
	e   *env
	log *slog.Logger
}

// Open connects to cfg.RPC and prepares it for cfg.Workload: funds the
// senders for rounds runs and deploys the contracts the workload needs. A
// nil log discards.
func Open(ctx context.Context, cfg Config, log *slog.Logger, rounds int) (*Session, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Label == "" {
		cfg.Label = cfg.RPC
	}
	cl, err := dial(ctx, cfg.RPC)
	if err != nil {
		return nil, err
	}
	e, err := prepare(ctx, &cfg, cl, log, cfg.planned(), max(rounds, 1))
	if err != nil {
		cl.Close()
		return nil, err
	}
	return &Session{cfg: cfg, cl: cl, e: e, log: log}, nil
}

// Close releases the session's connections.
func (s *Session) Close() { s.cl.Close() }

// Run performs measured run number round on the prepared endpoint.
func (s *Session) Run(ctx context.Context, round int, stderr io.Writer) (*Result, error) {
	cfg := &s.cfg
	n := cfg.planned()
	if err := s.e.refreshNonces(ctx); err != nil {
		return nil, err
	}
	buildStart := time.Now()
	ops, err := buildOps(s.e, cfg, n, round)
	if err != nil {
		return nil, err
	}
	s.log.Info("pre-built operations", "count", n, "took", time.Since(buildStart).Round(time.Millisecond))
	head, err := s.cl.blockNumber(ctx)
	if err != nil {
		return nil, err
	}
	r := &runner{
		cfg: cfg, e: s.e, ops: ops, log: s.log, stderr: stderr,
		read:    isRead(cfg.Workload),
		jobs:    make(chan int, n),
		out:     make([]outcome, n),
		pending: make(map[common.Hash]int),
	}
	if cfg.Max {
		r.windows = make([]*Window, len(s.e.senders))
		for i := range r.windows {
			r.windows[i] = NewWindow(cfg.InFlight)
		}
	}
	if err := r.run(ctx, head); err != nil {
		return nil, err
	}
	return r.result(), nil
}

func (r *runner) now() time.Duration { return time.Since(r.start) }

// run drives dispatch, sending, inclusion tracking and progress until every
// dispatched operation is resolved.
func (r *runner) run(ctx context.Context, head uint64) error {
	r.start = time.Now().Add(50 * time.Millisecond)
	end := r.start.Add(r.cfg.total())

	var follow sync.WaitGroup
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	if !r.read {
		follow.Add(1)
		go func() {
			defer follow.Done()
			r.follow(followCtx, head)
		}()
	}
	progressDone := make(chan struct{})
	var progress sync.WaitGroup
	progress.Add(1)
	go func() {
		defer progress.Done()
		r.progress(progressDone)
	}()

	var workers sync.WaitGroup
	for range r.cfg.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			r.work(ctx)
		}()
	}

	if r.cfg.Max {
		dispatchCtx, stopDispatch := context.WithDeadline(ctx, end)
		r.dispatchClosed(dispatchCtx)
		stopDispatch()
	} else {
		// The schedule holds exactly the run's operations, the last one due
		// before the end: all are released, however late the clock wakes us.
		sched := Schedule{Start: r.start, Rate: r.cfg.Rate}
		pace(ctx, sched, len(r.ops), time.Now, sleepUntil, func(i int, t time.Time) {
			r.dispatch(i, t)
		})
	}
	close(r.jobs)
	workers.Wait()

	// Wait for the stragglers, then count the rest as dropped.
	if !r.read {
		for r.inFlight() > 0 && ctx.Err() == nil {
			last := time.Duration(r.lastSend.Load())
			if r.now() > last+r.cfg.ReceiptTimeout {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		stopFollow()
		follow.Wait()
		r.sweep(-1)
	}
	close(progressDone)
	progress.Wait()
	return ctx.Err()
}

// dispatch marks operation i as offered at its intended time and queues it.
// A transaction is registered as pending before it is sent, so a block that
// holds it can never be seen first.
func (r *runner) dispatch(i int, intended time.Time) {
	r.mu.Lock()
	r.out[i].intended = intended.Sub(r.start)
	r.out[i].state = stateInFlight
	if !r.read {
		r.pending[r.ops[i].hash] = i
	}
	r.mu.Unlock()
	r.dispatched.Add(1)
	r.jobs <- i // never blocks: the channel holds every operation
}

// dispatchClosed runs one loop per sender that keeps up to InFlight of its
// operations outstanding until ctx ends.
func (r *runner) dispatchClosed(ctx context.Context) {
	queues := make([][]int, len(r.windows))
	for i, o := range r.ops {
		queues[o.sender] = append(queues[o.sender], i)
	}
	var wg sync.WaitGroup
	for s, q := range queues {
		if len(q) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepUntil(ctx, r.start) {
				return
			}
			for _, i := range q {
				if !r.windows[s].Acquire(ctx) {
					return
				}
				r.dispatch(i, time.Now())
			}
			if ctx.Err() == nil {
				r.exhausted.Store(true)
			}
		}()
	}
	wg.Wait()
}

// work sends queued operations, batching those already due.
func (r *runner) work(ctx context.Context) {
	batch := make([]int, 0, r.cfg.BatchSize)
	for i := range r.jobs {
		batch = append(batch[:0], i)
	fill:
		for len(batch) < r.cfg.BatchSize {
			select {
			case j, ok := <-r.jobs:
				if !ok {
					break fill
				}
				batch = append(batch, j)
			default:
				break fill
			}
		}
		if ctx.Err() != nil {
			for _, j := range batch {
				r.resolve(j, false, "cancelled", r.now())
			}
			continue
		}
		// An operation whose intended time is older than the receipt timeout
		// was starved by this client: say so rather than send it late.
		live := batch[:0]
		for _, j := range batch {
			if r.now()-r.intended(j) > r.cfg.ReceiptTimeout {
				r.resolve(j, false, "not sent: client backlog exceeded the receipt timeout", r.now())
				continue
			}
			live = append(live, j)
		}
		if len(live) == 0 {
			continue
		}
		if r.read {
			r.sendReads(ctx, live)
		} else {
			r.sendTxs(ctx, live)
		}
	}
}

func (r *runner) intended(i int) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out[i].intended
}

func (r *runner) sendTxs(ctx context.Context, batch []int) {
	raws := make([][]byte, len(batch))
	for k, i := range batch {
		raws[k] = r.ops[i].raw
	}
	errs, err := r.e.cl.sendRaw(ctx, raws)
	at := r.now()
	r.lastSend.Store(int64(at))
	if err != nil {
		kind := errorKind("send (transport)", err)
		for _, i := range batch {
			r.resolve(i, false, kind, at)
		}
		return
	}
	for k, i := range batch {
		if errs[k] != nil {
			r.resolve(i, false, errorKind("send", errs[k]), at)
			continue
		}
		r.mu.Lock()
		if r.out[i].state == stateInFlight || r.out[i].state == stateOK {
			r.out[i].sent = at
		}
		r.mu.Unlock()
		r.accepted.Add(1)
	}
}

func (r *runner) sendReads(ctx context.Context, batch []int) {
	elems := make([]rpc.BatchElem, len(batch))
	for k, i := range batch {
		elems[k] = r.ops[i].readElem()
	}
	var err error
	if len(elems) == 1 {
		err = r.e.cl.c.CallContext(ctx, elems[0].Result, elems[0].Method, elems[0].Args...)
		elems[0].Error, err = err, nil
		if isTransport(elems[0].Error) {
			err = elems[0].Error
		}
	} else {
		err = r.e.cl.c.BatchCallContext(ctx, elems)
	}
	at := r.now()
	r.lastSend.Store(int64(at))
	for k, i := range batch {
		switch {
		case err != nil:
			r.resolve(i, false, errorKind("call (transport)", err), at)
		case elems[k].Error != nil:
			r.resolve(i, false, errorKind(elems[k].Method, elems[k].Error), at)
		default:
			r.accepted.Add(1)
			r.mu.Lock()
			r.out[i].sent = at
			r.mu.Unlock()
			r.resolve(i, true, "", at)
		}
	}
}

// resolve records operation i's fate once; later calls for it are ignored.
func (r *runner) resolve(i int, ok bool, kind string, at time.Duration) bool {
	r.mu.Lock()
	o := &r.out[i]
	if o.state != stateInFlight {
		r.mu.Unlock()
		return false
	}
	o.done = at
	if ok {
		o.state = stateOK
	} else {
		o.state, o.kind = stateFailed, kind
	}
	if !r.read {
		delete(r.pending, r.ops[i].hash)
	}
	r.mu.Unlock()
	if ok {
		r.ok.Add(1)
	} else {
		r.failed.Add(1)
	}
	if r.windows != nil {
		r.windows[r.ops[i].sender].Release()
	}
	return true
}

func (r *runner) inFlight() int64 {
	return r.dispatched.Load() - r.ok.Load() - r.failed.Load()
}

// sweep fails the pending transactions sent longer than the receipt timeout
// ago; olderThan < 0 fails all of them.
func (r *runner) sweep(olderThan time.Duration) {
	now := r.now()
	var stale []int
	r.mu.Lock()
	for _, i := range r.pending {
		o := r.out[i]
		if olderThan < 0 || (o.sent > 0 && now-o.sent > olderThan) {
			stale = append(stale, i)
		}
	}
	r.mu.Unlock()
	kind := fmt.Sprintf("dropped: not included within %v", r.cfg.ReceiptTimeout)
	for _, i := range stale {
		r.resolve(i, false, kind, now)
	}
}

// head is a block number and when the bench learnt of it.
type head struct {
	n  uint64
	at time.Duration
}

// follow watches new blocks (newHeads over WebSocket, else polling) from
// start+1 on and resolves the pending transactions each block holds. A
// block's inclusion time is when its head was first seen, not when the
// follower got round to reading it, so a busy follower does not inflate
// latencies.
func (r *runner) follow(ctx context.Context, start uint64) {
	heads := make(chan head, 4096)
	poll := r.cfg.PollInterval
	if r.cfg.WS != "" {
		if r.subscribe(ctx, heads) {
			poll = 500 * time.Millisecond // a safety net for missed notifications
		}
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	sweep := time.NewTicker(time.Second)
	defer sweep.Stop()
	last := start
	seenAt := map[uint64]time.Duration{} // first sighting of heads above last
	var top uint64
	note := func(h head) {
		if h.n > last {
			if _, ok := seenAt[h.n]; !ok {
				seenAt[h.n] = h.at
			}
		}
		top = max(top, h.n)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-heads:
			note(h)
		drain:
			for {
				select {
				case h := <-heads:
					note(h)
				default:
					break drain
				}
			}
		case <-ticker.C:
			n, err := r.e.cl.blockNumber(ctx)
			if err != nil {
				continue
			}
			note(head{n, r.now()})
		case <-sweep.C:
			r.sweep(r.cfg.ReceiptTimeout)
			continue
		}
		for last < top && ctx.Err() == nil {
			to := min(top, last+100)
			// A block seen only as part of a later head gets that head's time:
			// the earliest sighting at or above it.
			ats := make([]time.Duration, to-last)
			next := time.Duration(-1)
			for n, at := range seenAt {
				if n > to && (next < 0 || at < next) {
					next = at
				}
			}
			for n := to; n > last; n-- {
				if at, ok := seenAt[n]; ok && (next < 0 || at < next) {
					next = at
				}
				if next < 0 {
					next = r.now()
				}
				ats[n-last-1] = next
			}
			done := r.blocks(ctx, last+1, ats)
			for n := last + 1; n < last+1+uint64(done); n++ {
				delete(seenAt, n)
			}
			last += uint64(done)
			if done < len(ats) {
				break // a block not readable yet: try again on the next head
			}
		}
	}
}

// subscribe starts a newHeads subscription feeding heads; it reports
// whether it succeeded.
func (r *runner) subscribe(ctx context.Context, heads chan<- head) bool {
	ws, err := rpc.DialContext(ctx, r.cfg.WS)
	if err != nil {
		r.log.Warn("no WebSocket: polling blocks", "err", err)
		return false
	}
	ch := make(chan struct {
		Number hexutil.Uint64 `json:"number"`
	}, 4096)
	sub, err := ws.EthSubscribe(ctx, ch, "newHeads")
	if err != nil {
		ws.Close()
		r.log.Warn("no newHeads subscription: polling blocks", "err", err)
		return false
	}
	go func() {
		defer ws.Close()
		defer sub.Unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-sub.Err():
				if err != nil {
					r.log.Warn("newHeads subscription ended", "err", err)
				}
				return
			case h := <-ch:
				select {
				case heads <- head{uint64(h.Number), r.now()}:
				default: // the follower is far behind; a later head covers this one
				}
			}
		}
	}()
	return true
}

// blocks reads the blocks from..from+len(ats)-1 in one batch and resolves
// the pending transactions they hold, block i as seen at ats[i]. It returns
// how many leading blocks it handled; it stops at the first one that is not
// readable yet.
func (r *runner) blocks(ctx context.Context, from uint64, ats []time.Duration) int {
	type block struct {
		Transactions []common.Hash `json:"transactions"`
	}
	got := make([]*block, len(ats))
	batch := make([]rpc.BatchElem, len(ats))
	for i := range batch {
		batch[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.Uint64(from + uint64(i)), false}, Result: &got[i]}
	}
	if err := r.e.cl.c.BatchCallContext(ctx, batch); err != nil {
		r.log.Warn("read blocks", "height", from, "err", err)
		return 0
	}
	ready := len(ats)
	for i := range batch {
		if batch[i].Error != nil || got[i] == nil {
			ready = i
			break
		}
	}
	// Our transactions in each readable block, then their receipts, in one
	// more batch.
	type hit struct {
		i    int
		ours []common.Hash
	}
	var hits []hit
	r.mu.Lock()
	for i := range ready {
		var ours []common.Hash
		for _, h := range got[i].Transactions {
			if _, ok := r.pending[h]; ok {
				ours = append(ours, h)
			}
		}
		if len(ours) > 0 {
			hits = append(hits, hit{i, ours})
		}
	}
	r.mu.Unlock()
	if len(hits) == 0 {
		return ready
	}
	rss := make([][]receipt, len(hits))
	rb := make([]rpc.BatchElem, len(hits))
	for k, h := range hits {
		rb[k] = rpc.BatchElem{Method: "eth_getBlockReceipts", Args: []any{hexutil.Uint64(from + uint64(h.i))}, Result: &rss[k]}
	}
	if err := r.e.cl.c.BatchCallContext(ctx, rb); err != nil {
		r.log.Warn("read block receipts", "height", from, "err", err)
		return 0
	}
	for k, h := range hits {
		rs := rss[k]
		if rb[k].Error != nil {
			// A node without eth_getBlockReceipts: receipts by hash.
			var err error
			if rs, err = r.e.cl.blockReceipts(ctx, from+uint64(h.i), h.ours); err != nil {
				r.log.Warn("block receipts", "height", from+uint64(h.i), "err", err)
				return h.i
			}
		}
		if len(rs) == 0 {
			// Behind a load balancer the receipts may come from a node that
			// does not have this block yet: read it again later.
			return h.i
		}
		for _, rc := range rs {
			r.mu.Lock()
			idx, ok := r.pending[rc.TxHash]
			r.mu.Unlock()
			if ok {
				r.resolve(idx, rc.Status == 1, "reverted", ats[h.i])
			}
		}
		if lag := int64(r.now() - ats[h.i]); lag > r.trackerLag.Load() {
			r.trackerLag.Store(lag) // only the follower goroutine writes it
		}
	}
	return ready
}

// progress prints one line a second until done is closed.
func (r *runner) progress(done <-chan struct{}) {
	if r.stderr == nil {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var prevAcc, prevOK int64
	// On a terminal the line is redrawn in place; elsewhere (a log file, a
	// test) each second gets its own line.
	lead, tail := "\r", ""
	if f, ok := r.stderr.(*os.File); !ok || !isTerminal(f) {
		lead, tail = "", "\n"
	}
	for {
		select {
		case <-done:
			if lead != "" {
				fmt.Fprintln(r.stderr)
			}
			return
		case <-t.C:
		}
		acc, ok := r.accepted.Load(), r.ok.Load()
		phase := "run"
		if r.now() < r.cfg.Warmup {
			phase = "warm-up"
		} else if r.now() > r.cfg.total() {
			phase = "drain"
		}
		fmt.Fprintf(r.stderr, "%s[%5.0fs %-7s] offered %d  sent %d (%d/s)  confirmed %d (%d/s)  failed %d  in flight %d   %s",
			lead, r.now().Seconds(), phase, r.dispatched.Load(), acc, acc-prevAcc, ok, ok-prevOK, r.failed.Load(), r.inFlight(), tail)
		prevAcc, prevOK = acc, ok
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
