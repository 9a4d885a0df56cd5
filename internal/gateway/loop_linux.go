//go:build linux

package gateway

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// The event-loop front (ADR 0009). Each loop is one goroutine on a locked
// OS thread around epoll_wait: it accepts connections, reads requests,
// admits and authorises their calls, sends plain calls to an upstream on
// its own non-blocking connections, reads the answers and writes them
// back, without handing anything to another goroutine. That is nginx's
// design; on this VM every wake-up and hand-off Go's netpoller adds to a
// call costs 5–15 µs, which is what kept the fasthttp front behind nginx.
//
// What the loop does not do itself it hands, with the connection, to the
// fasthttp server, which serves it as before this front existed: requests
// it does not read exactly as fasthttp would (see parseReqHead), and
// batches, transaction sends, filter calls and any call while an upstream
// is one the loop cannot dial (TLS, batching, a host name); see forwards.

const (
	// loopUpConns bounds one loop's connections to one upstream.
	loopUpConns = 1024
	// loopUpIdle closes an upstream connection idle for this long.
	loopUpIdle = 30 * time.Second
	// loopWriteIdle: a call that is never resent (a write other than a
	// transaction send) takes an idle connection only if it was used this
	// recently, as upstreams rarely close connections idle for less.
	loopWriteIdle = time.Second
	// loopBigBuffer: a connection's read buffer over this size is dropped
	// once it is empty.
	loopBigBuffer = 256 << 10
	// loopYield is how often the loop yields to the Go scheduler.
	loopYield = 5 * time.Millisecond
	// loopReadChunk is the least free space a read is given.
	loopReadChunk = 16 << 10
)

// loopsFor is the number of loops for a config value (0: automatic, one
// per two Ps, so the Go scheduler keeps an idle P for everything else and
// never has to take a waiting loop's P away).
func loopsFor(n int) int {
	if n > 0 {
		return n
	}
	return max(1, goruntime.GOMAXPROCS(0)/2)
}

// serveLoops serves the JSON-RPC front on n event loops over ln's socket
// until ctx ends, handing some connections to srv (see handOff). ok is
// false when ln cannot be served this way (not a TCP listener), and the
// caller serves it with srv instead.
func (g *Gateway) serveLoops(ctx context.Context, ln net.Listener, srv *fasthttp.Server, n int, maxBody int64) (ok bool, err error) {
	tl, isTCP := ln.(*net.TCPListener)
	if !isTCP {
		return false, nil
	}
	lf, err := tl.File()
	if err != nil {
		return false, nil
	}
	defer lf.Close()
	defer ln.Close()
	lfd := int(lf.Fd())
	if err := unix.SetNonblock(lfd, true); err != nil {
		return true, fmt.Errorf("front: %w", err)
	}
	base := context.WithoutCancel(ctx)
	handed := newConnListener(ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(handed) }()
	loops := make([]*evloop, 0, n)
	defer func() {
		for _, l := range loops {
			l.release()
		}
	}()
	for range n {
		l, err := newEvloop(g, base, handed, lfd, maxBody)
		if err != nil {
			handed.Close()
			<-served
			return true, fmt.Errorf("front: %w", err)
		}
		loops = append(loops, l)
	}
	var wg sync.WaitGroup
	failed := make(chan error, n)
	for _, l := range loops {
		wg.Go(func() {
			if err := l.run(); err != nil {
				failed <- err
			}
		})
	}
	var loopErr error
	select {
	case <-ctx.Done():
	case loopErr = <-failed:
		// A loop that cannot wait for events serves no one: stop the
		// front, and the gateway with it, rather than half of the port.
		g.logger.Error("front event loop failed", "err", loopErr)
	}
	for _, l := range loops {
		l.post(func() { l.beginShutdown() })
	}
	wg.Wait()
	// Connections handed to fasthttp finish their calls too.
	sctx, cancel := context.WithTimeout(base, frontShutdownWait)
	defer cancel()
	err = srv.ShutdownWithContext(sctx)
	handed.Close()
	<-served
	if loopErr != nil {
		return true, fmt.Errorf("front: %w", loopErr)
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return true, err
	}
	return true, nil
}

// connListener is the listener the fasthttp server takes handed-off
// connections from.
type connListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (c *connListener) Accept() (net.Conn, error) {
	select {
	case nc := <-c.conns:
		return nc, nil
	case <-c.done:
		return nil, net.ErrClosed
	}
}

func (c *connListener) Close() error {
	c.closed.Do(func() { close(c.done) })
	return nil
}

func (c *connListener) Addr() net.Addr { return c.addr }

// deliver hands nc to the server, or closes it once the server stopped.
func (c *connListener) deliver(nc net.Conn) {
	select {
	case c.conns <- nc:
	case <-c.done:
		nc.Close()
	}
}

// evloop is one event loop. Everything but mu, inbox and stopped belongs
// to its goroutine.
type evloop struct {
	g          *Gateway
	base       context.Context
	handed     *connListener
	maxBody    int64
	maxRequest int // the most of a client's bytes read ahead: one request
	ep         int
	wake       int // eventfd: inbox has work
	lfd        int

	served prometheus.Counter // requests answered by the loop
	conns  map[int]*lconn
	pools  map[*upstream]*upPool
	timers callHeap
	events []unix.EpollEvent

	draining     bool
	drainUntil   time.Time
	lastSweep    time.Time
	acceptPaused time.Time // accept stopped (out of descriptors) until then

	mu      sync.Mutex
	inbox   []func()
	stopped bool
}

// lconn is a connection of a loop: a client's (front) or an upstream's.
type lconn struct {
	fd     int
	front  bool
	in     []byte // read, not yet used
	out    []byte // to write, from wpos
	wpos   int
	closed bool
	since  time.Time // last progress: accepted, answered, written, dialled

	// front
	pendingIn bool // readable since the last read (edge-triggered)
	shutRd    bool // the client's FIN arrived (it may be unread)
	eof       bool // the client's stream is read to its end
	ip        string
	reqStart  time.Time // first byte of the request being read
	busy      bool      // a request of this connection is being answered
	closing   bool      // close once out is written
	serving   bool      // serveBuffered is on the stack
	shutdown  bool      // answer with Connection: close

	// upstream
	pool       *upPool
	call       *loopCall
	connecting bool
	reused     bool // served a call before this one
	got        bool // some of the current call's answer arrived
	headDone   bool
	head       respHead
	dech       dechunker
}

// upPool is one loop's connections to one upstream.
type upPool struct {
	u    *upstream
	idle []*lconn
	open int
	gone bool // the upstream left the gateway
}

// loopCall is a call the loop forwards itself.
type loopCall struct {
	front    *lconn
	p        *principal
	pc       preparedCall
	body     []byte // the request to upstreams
	route    *route
	deadline time.Time

	u        *upstream // the current attempt's
	uc       *lconn
	started  time.Time
	expires  time.Time
	heapSlot int
	resent   bool // sent again after a kept-alive connection turned out closed
}

func newEvloop(g *Gateway, base context.Context, handed *connListener, lfd int, maxBody int64) (*evloop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(ep)
		return nil, err
	}
	l := &evloop{g: g, base: base, handed: handed, maxBody: maxBody, maxRequest: frontHeaderBytes + int(maxBody), ep: ep, wake: wake, lfd: lfd,
		served: g.metrics.FrontLoopRequests,
		conns:  map[int]*lconn{}, pools: map[*upstream]*upPool{}, events: make([]unix.EpollEvent, 256)}
	if err := l.ctl(unix.EPOLL_CTL_ADD, wake, unix.EPOLLIN); err != nil {
		l.release()
		return nil, err
	}
	if err := l.ctl(unix.EPOLL_CTL_ADD, lfd, unix.EPOLLIN|unix.EPOLLEXCLUSIVE); err != nil {
		l.release()
		return nil, err
	}
	return l, nil
}

func (l *evloop) ctl(op, fd int, events uint32) error {
	return unix.EpollCtl(l.ep, op, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

// release closes the loop's own descriptors (after run returned, or when
// it never ran).
func (l *evloop) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.ep >= 0 {
		unix.Close(l.ep)
		unix.Close(l.wake) // under mu: post never writes to a reused number
		l.ep = -1
	}
}

// post runs fn on the loop. It reports false, and fn never runs, once the
// loop has stopped.
func (l *evloop) post(fn func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	if len(l.inbox) == 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(l.wake, one[:])
	}
	l.inbox = append(l.inbox, fn)
	return true
}

// run serves until the loop has drained after beginShutdown, or
// epoll_wait fails.
func (l *evloop) run() error {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	defer l.closeAll()
	yielded := time.Now()
	for {
		n, err := unix.EpollWait(l.ep, l.events, l.waitMillis())
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for i := range max(n, 0) {
			ev := l.events[i]
			switch fd := int(ev.Fd); fd {
			case l.lfd:
				l.accept()
			case l.wake:
				l.runInbox()
			default:
				c := l.conns[fd]
				switch {
				case c == nil:
				case c.front:
					l.frontEvent(c, ev.Events)
				default:
					l.upEvent(c, ev.Events)
				}
			}
		}
		now := time.Now()
		if now.Sub(yielded) > loopYield {
			// Left running, the loop's goroutine would be preempted by
			// sysmon every 10 ms (a signal), after which sysmon polls
			// every 20 µs for a while, on a core the upstream and the
			// clients need.
			goruntime.Gosched()
			yielded = now
		}
		l.expire(now)
		if now.Sub(l.lastSweep) >= time.Second || l.draining {
			l.sweep(now)
			l.lastSweep = now
		}
		if l.draining && (l.idle() || now.After(l.drainUntil)) {
			return nil
		}
	}
}

// waitMillis is how long epoll_wait may sleep: until the next call
// deadline, at most a second (the sweep), 10 ms while draining.
func (l *evloop) waitMillis() int {
	wait := time.Second
	if l.draining {
		wait = 10 * time.Millisecond
	}
	if len(l.timers) > 0 {
		wait = min(wait, time.Until(l.timers[0].expires))
	}
	if wait <= 0 {
		return 0
	}
	return int((wait + time.Millisecond - 1) / time.Millisecond)
}

func (l *evloop) runInbox() {
	var b [8]byte
	_, _ = unix.Read(l.wake, b[:])
	l.mu.Lock()
	work := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for _, fn := range work {
		fn()
	}
}

// accept takes the waiting connections.
func (l *evloop) accept() {
	if l.draining {
		return
	}
	for {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			return
		case errors.Is(err, unix.EINTR), errors.Is(err, unix.ECONNABORTED):
			continue
		case errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE), errors.Is(err, unix.ENOBUFS), errors.Is(err, unix.ENOMEM):
			// The listener stays readable: stop watching it for a while
			// rather than spin.
			l.g.logger.Warn("front: cannot accept connections", "err", err)
			_ = l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0)
			l.acceptPaused = time.Now().Add(100 * time.Millisecond)
			return
		default:
			l.g.logger.Warn("front: accept failed", "err", err)
			return
		}
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &lconn{fd: fd, front: true, ip: sockaddrIP(sa), since: time.Now()}
		if err := l.add(c); err != nil {
			unix.Close(fd)
		}
	}
}

func sockaddrIP(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return net.IP(a.Addr[:]).String()
	case *unix.SockaddrInet6:
		return net.IP(a.Addr[:]).String()
	}
	return ""
}

// add watches c. Connections are edge-triggered, for reading and writing
// alike, so the interest set never changes: a client connection that
// becomes readable while its request is being answered is only marked
// (pendingIn) and read once the answer is written; a write that cannot
// finish waits for the edge that says the socket has room again.
func (l *evloop) add(c *lconn) error {
	const events = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET
	if err := l.ctl(unix.EPOLL_CTL_ADD, c.fd, events); err != nil {
		return err
	}
	l.conns[c.fd] = c
	return nil
}

// closeConn closes c. An upstream connection's call, if any, is the
// caller's to finish.
func (l *evloop) closeConn(c *lconn) {
	if c.closed {
		return
	}
	c.closed = true
	delete(l.conns, c.fd)
	_ = unix.Close(c.fd) // also leaves the epoll set
	if c.pool != nil {
		c.pool.open--
	}
	c.in, c.out = nil, nil
}

// readInto reads what is available into c.in, until a short read has
// emptied the socket (as edge-triggering requires) or c.in holds limit
// bytes (full: the rest is still to read). ok is false when the peer closed
// or failed (eof set for an orderly close).
func (l *evloop) readInto(c *lconn, limit int) (ok, eof, full bool) {
	for {
		if len(c.in) >= limit {
			return true, false, true
		}
		c.in = slices.Grow(c.in, loopReadChunk)
		free := c.in[len(c.in):cap(c.in)]
		n, err := rawRead(c.fd, free)
		switch {
		case n > 0:
			c.in = c.in[:len(c.in)+n]
			if n < len(free) {
				return true, false, false
			}
		case err == nil: // n == 0
			return false, true, false
		case errors.Is(err, unix.EAGAIN):
			return true, false, false
		case errors.Is(err, unix.EINTR):
		default:
			return false, false, false
		}
	}
}

// flush writes what it can of c.out; what is left waits for the socket's
// next writable edge. It reports false if the connection failed.
func (l *evloop) flush(c *lconn) bool {
	for c.wpos < len(c.out) {
		n, err := rawWrite(c.fd, c.out[c.wpos:])
		switch {
		case n > 0:
			c.wpos += n
			c.since = time.Now()
		case errors.Is(err, unix.EAGAIN):
			return true
		case errors.Is(err, unix.EINTR):
		default:
			return false
		}
	}
	c.out, c.wpos = c.out[:0], 0
	if cap(c.out) > loopBigBuffer {
		c.out = nil
	}
	return true
}

// frontEvent handles readiness of a client connection.
func (l *evloop) frontEvent(c *lconn, ev uint32) {
	if ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 && ev&unix.EPOLLIN == 0 {
		l.closeConn(c) // gone: an answer in the making is dropped
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0 {
		c.pendingIn = true
	}
	if ev&unix.EPOLLRDHUP != 0 {
		c.shutRd = true // the rest of the stream is before the FIN
	}
	if c.wpos < len(c.out) {
		if !l.flush(c) {
			l.closeConn(c)
			return
		}
		if c.wpos < len(c.out) {
			return
		}
		if c.closing {
			l.closeConn(c)
			return
		}
		c.since = time.Now()
	}
	l.resume(c)
}

// resume serves c's buffered requests and reads more, until a request is
// being answered or nothing is left.
func (l *evloop) resume(c *lconn) {
	if c.serving {
		return // serveBuffered is on the stack and goes on by itself
	}
	for {
		l.serveBuffered(c)
		if c.closed || c.busy || c.closing || c.wpos < len(c.out) {
			return
		}
		if c.eof {
			// Nothing more will come, and what is left unanswered is an
			// incomplete request.
			l.closeConn(c)
			return
		}
		if !c.pendingIn {
			return
		}
		before := len(c.in)
		// Enough for the largest request: a client sending more before
		// reading its answers is read further once they are written.
		ok, _, full := l.readInto(c, l.maxRequest)
		c.pendingIn = full
		if !ok || (c.shutRd && !full) {
			c.eof = true
		} else if len(c.in) == before {
			return
		}
	}
}

// serveBuffered serves the requests buffered on c, one at a time.
func (l *evloop) serveBuffered(c *lconn) {
	if c.serving {
		return
	}
	c.serving = true
	defer func() { c.serving = false }()
	for !c.closed && !c.busy && !c.closing && c.wpos >= len(c.out) && len(c.in) > 0 {
		var h reqHead
		n := parseReqHead(c.in, l.maxBody, &h)
		if n == headHandOff {
			l.handOff(c)
			return
		}
		if n == headIncomplete || len(c.in) < n+h.bodyLen {
			if c.reqStart.IsZero() {
				c.reqStart = time.Now()
			}
			return
		}
		r, ok := l.forwards(c.in[n : n+h.bodyLen])
		if !ok {
			// Running this request on a goroutine and writing its answer
			// from the loop would cost two thread wake-ups more than
			// fasthttp's path: the connection goes to fasthttp, for good
			// (a client that batches keeps batching; an upstream the loop
			// cannot dial stays in the rotation until the config changes).
			l.handOff(c)
			return
		}
		r.body = bytes.Clone(c.in[n : n+h.bodyLen])
		key, keyOK := keyFromRequest(string(h.path), string(h.apiKey))
		c.in = c.in[:copy(c.in, c.in[n+h.bodyLen:])]
		c.busy, c.reqStart = true, time.Time{}
		c.closing = h.close
		l.serveRequest(c, key, keyOK, &r)
	}
	if len(c.in) == 0 && cap(c.in) > loopBigBuffer {
		c.in = nil
	}
}

// loopRequest is a request forwards accepted for the loop.
type loopRequest struct {
	body  []byte
	start time.Time
	req   rpcRequest // decoded once, by forwards
	derr  *rpcError
	ups   []*upstream // the snapshot it was accepted for
}

// serveRequest answers one request that forwards accepted, at once or
// later (the connection stays busy until then).
func (l *evloop) serveRequest(c *lconn, key string, keyOK bool, r *loopRequest) {
	g := l.g
	rt := g.rt.Load()
	l.served.Inc()
	if !keyOK {
		g.metrics.Requests.WithLabelValues("none", "invalid", "none").Inc()
		l.respond(c, http.StatusNotFound, encodeError(nil, errNoSuchPath), "")
		return
	}
	a := g.admit(rt, key, c.ip, r.body)
	if a.status != 0 {
		l.respond(c, a.status, a.body, a.retryAfter)
		return
	}
	pc := g.prepareDecoded(a.p, r.start, r.req, r.derr)
	if pc.bad || pc.answer != nil {
		l.respond(c, http.StatusOK, g.finishCall(l.base, rt, a.p, &pc), "")
		return
	}
	k := &loopCall{front: c, p: a.p, pc: pc, heapSlot: -1,
		route:    g.newRoute(rt, r.ups, minHeadFor(pc.req.Method, pc.req.Params), retryable(pc.req.Method)),
		deadline: time.Now().Add(rt.cfg.Limits.timeoutFor(pc.req.Method)),
		body:     encodeCall(json.RawMessage("1"), pc.req.Method, pc.req.Params)}
	l.attempt(k)
}

// forwards reports whether the loop answers a request with this body
// itself: a single call (or an undecodable one, answered with an error)
// whose method goes straight to an upstream, while the loop can dial
// every upstream. It returns the decoded call and the snapshot of the
// upstreams (the body is the caller's to set).
func (l *evloop) forwards(body []byte) (loopRequest, bool) {
	r := loopRequest{start: time.Now(), ups: l.g.snapshot()}
	if batchBody(body) || !loopable(r.ups) {
		return r, false
	}
	r.req, r.derr = decodeCall(bytes.TrimSpace(body))
	return r, r.derr != nil || plainForward(r.req.Method)
}

// loopable reports whether the loop can dial every upstream of ups.
func loopable(ups []*upstream) bool {
	for _, u := range ups {
		if u.loop == nil {
			return false
		}
	}
	return true
}

// batchBody reports whether a request body is a JSON array.
func batchBody(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		return c == '['
	}
	return false
}

// respond writes an answer to c's current request and goes on with the
// next buffered one.
func (l *evloop) respond(c *lconn, status int, body []byte, retryAfter string) {
	if c.closed {
		return
	}
	if c.shutdown {
		c.closing = true
	}
	c.out = appendResponse(c.out, status, body, retryAfter, c.closing)
	c.busy = false
	if !l.flush(c) {
		l.closeConn(c)
		return
	}
	if c.wpos < len(c.out) {
		return // the rest when the client reads
	}
	if c.closing {
		l.closeConn(c)
		return
	}
	c.since = time.Now()
	l.resume(c)
}

// handOff gives c, with what was read of it, to the fasthttp server.
func (l *evloop) handOff(c *lconn) {
	_ = l.ctl(unix.EPOLL_CTL_DEL, c.fd, 0)
	delete(l.conns, c.fd)
	c.closed = true
	f := os.NewFile(uintptr(c.fd), "client")
	nc, err := net.FileConn(f) // a duplicate in Go's netpoller
	_ = f.Close()
	if err != nil {
		l.g.logger.Warn("front: hand-off failed", "err", err)
		return
	}
	l.g.metrics.FrontHandoffs.Inc()
	pc := &prefixConn{Conn: nc, pre: bytes.Clone(c.in)}
	c.in = nil
	go l.handed.deliver(pc)
}

// prefixConn is a connection some of whose bytes were already read.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// attempt sends k to the next upstream of its route, or finishes it when
// none is left.
func (l *evloop) attempt(k *loopCall) {
	g := l.g
	for {
		u, expires, ok := g.nextAttempt(k.route, k.pc.req.Method, k.deadline, true)
		if !ok {
			l.finish(k, nil, k.route.err)
			return
		}
		k.u, k.started, k.expires = u, u.begin(), expires
		maxIdle := loopUpIdle
		if !resendSafe(k.pc.req.Method) {
			maxIdle = loopWriteIdle
		}
		uc, err := l.upConn(u, maxIdle)
		if err != nil {
			if !l.attemptFailed(k, err) {
				return
			}
			continue
		}
		heap.Push(&l.timers, k)
		l.send(k, uc)
		return
	}
}

// attemptFailed ends k's attempt with err and reports whether another
// attempt may be made; when not, k is finished.
func (l *evloop) attemptFailed(k *loopCall, err error) bool {
	err = fmt.Errorf("%w: %w", errUpstream, err)
	k.u.end(k.started, nil, err, l.g.metrics)
	if k.heapSlot >= 0 {
		heap.Remove(&l.timers, k.heapSlot)
	}
	k.uc = nil
	k.route.err = err
	l.g.logger.Debug("upstream call failed", "upstream", k.u.cfg.Name, "method", k.pc.req.Method, "attempt", k.route.attempt, "err", err)
	if !time.Now().Before(k.deadline) {
		l.finish(k, nil, context.DeadlineExceeded)
		return false
	}
	return true
}

// finish answers k's client.
func (l *evloop) finish(k *loopCall, resp *rpcResponse, err error) {
	out, status := l.g.conclude(&k.pc.req, resp, err)
	l.g.record(k.p, &k.pc, status)
	l.respond(k.front, http.StatusOK, out, "")
}

// upConn returns a connection to u idle for at most maxIdle, or dials a
// new one.
func (l *evloop) upConn(u *upstream, maxIdle time.Duration) (*lconn, error) {
	p := l.pools[u]
	if p == nil {
		p = &upPool{u: u}
		l.pools[u] = p
	}
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if !c.closed && time.Since(c.since) > maxIdle {
			l.closeConn(c)
		}
		if !c.closed {
			c.reused = true
			return c, nil
		}
	}
	return l.dial(p)
}

// dial opens a new connection to p's upstream.
func (l *evloop) dial(p *upPool) (*lconn, error) {
	u := p.u
	if p.open >= loopUpConns {
		return nil, fmt.Errorf("over %d connections from one loop", loopUpConns)
	}
	fd, err := unix.Socket(u.loop.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, u.loop.addr)
	connecting := errors.Is(err, unix.EINPROGRESS)
	if err != nil && !connecting {
		unix.Close(fd)
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &lconn{fd: fd, pool: p, connecting: connecting, since: time.Now()}
	if err := l.add(c); err != nil {
		unix.Close(fd)
		return nil, err
	}
	p.open++
	return c, nil
}

// upEvent handles readiness of an upstream connection.
func (l *evloop) upEvent(c *lconn, ev uint32) {
	if c.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || errno != 0 {
			if err == nil {
				err = unix.Errno(errno)
			}
			l.upFail(c, fmt.Errorf("dial: %w", err))
			return
		}
		c.connecting = false
		if !l.flush(c) {
			l.upFail(c, errors.New("write failed"))
			return
		}
	} else if ev&unix.EPOLLOUT != 0 && c.wpos < len(c.out) && !l.flush(c) {
		l.upFail(c, errors.New("write failed"))
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	ok, eof, full := l.readInto(c, maxUpstreamHead+maxUpstreamResponse+loopReadChunk)
	if ok && !full && ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// The FIN (or a reset) came with this edge and no other edge
		// follows: read on to learn which.
		ok, eof, full = l.readInto(c, maxUpstreamHead+maxUpstreamResponse+loopReadChunk)
	}
	if full {
		l.upFail(c, fmt.Errorf("%w: answer over %d bytes", errUpstreamHTTP, maxUpstreamResponse))
		return
	}
	c.got = c.got || len(c.in) > 0
	if c.call == nil {
		// Idle: the upstream closed it, or sent something unasked.
		l.closeConn(c)
		return
	}
	l.upParse(c, !ok, eof)
}

// upParse reads the answer to c's call as far as it has arrived; ended
// is set when no more bytes will come.
func (l *evloop) upParse(c *lconn, ended, eof bool) {
	fail := func(err error) { l.upFail(c, err) }
	for !c.headDone {
		n, err := parseRespHead(c.in, &c.head)
		if err != nil {
			fail(err)
			return
		}
		if n == 0 {
			if ended {
				fail(io.ErrUnexpectedEOF)
			}
			return
		}
		c.in = c.in[:copy(c.in, c.in[n:])]
		if c.head.status >= 200 {
			c.headDone = true
			c.dech = dechunker{limit: maxUpstreamResponse}
			if c.head.length > maxUpstreamResponse {
				fail(fmt.Errorf("%w: answer over %d bytes", errUpstreamHTTP, maxUpstreamResponse))
				return
			}
		}
	}
	var body []byte
	switch {
	case c.head.chunked:
		used, done, err := c.dech.feed(c.in)
		c.in = c.in[:copy(c.in, c.in[used:])]
		if err != nil {
			fail(err)
			return
		}
		if !done {
			if ended {
				fail(io.ErrUnexpectedEOF)
			}
			return
		}
		body = c.dech.body
	case c.head.length >= 0:
		if len(c.in) < c.head.length {
			if ended {
				fail(io.ErrUnexpectedEOF)
			}
			return
		}
		body = c.in[:c.head.length]
	default: // until the upstream closes
		if len(c.in) > maxUpstreamResponse {
			fail(fmt.Errorf("%w: answer over %d bytes", errUpstreamHTTP, maxUpstreamResponse))
			return
		}
		if !ended {
			return
		}
		if !eof {
			fail(io.ErrUnexpectedEOF)
			return
		}
		body = c.in
	}
	k := c.call
	status := c.head.status
	resp, err := singleAnswer(status, body)
	extra := len(c.in) - len(body)
	if c.head.chunked {
		extra = len(c.in)
	}
	// Done with c: keep it for the next call if the exchange ended cleanly.
	c.call, c.headDone, c.dech, c.got = nil, false, dechunker{}, false
	c.in = c.in[:0]
	// An answer that came before the whole request was written (an early
	// error) leaves the stream mid-request: not reusable either.
	if c.head.close || ended || extra != 0 || c.pool.gone || c.wpos < len(c.out) {
		l.closeConn(c)
	} else {
		c.since = time.Now()
		if cap(c.in) > loopBigBuffer {
			c.in = nil
		}
		c.pool.idle = append(c.pool.idle, c)
	}
	heap.Remove(&l.timers, k.heapSlot)
	k.uc = nil
	if err != nil {
		if l.attemptFailed(k, err) {
			l.attempt(k)
		}
		return
	}
	k.u.end(k.started, resp, nil, l.g.metrics)
	l.finish(k, resp, nil)
}

// upFail closes an upstream connection that failed and moves its call on.
// A kept-alive connection that closes before the first byte of an answer
// was most likely closed by the upstream while idle, before the request
// reached it; but the upstream may also have died while handling it. A
// call the proxy would retry anyway is sent once more on a new connection
// (not counted as an attempt); any other goes on an idle connection only
// if it was used less than loopWriteIdle ago (see attempt), and is never
// resent.
func (l *evloop) upFail(c *lconn, err error) {
	k := c.call
	c.call = nil
	l.closeConn(c)
	if k == nil {
		return
	}
	if c.reused && !c.got && !k.resent && resendSafe(k.pc.req.Method) {
		k.resent = true
		if uc, derr := l.dial(c.pool); derr == nil {
			l.send(k, uc)
			return
		}
	}
	if l.attemptFailed(k, err) {
		l.attempt(k)
	}
}

// send writes k's request on uc.
func (l *evloop) send(k *loopCall, uc *lconn) {
	k.uc, uc.call = uc, k
	uc.out = appendUpstreamRequest(uc.out[:0], k.u.loop.prefix, k.body)
	uc.wpos = 0
	if !uc.connecting && !l.flush(uc) {
		l.upFail(uc, errors.New("write failed"))
	}
}

// expire ends the attempts whose time is up.
func (l *evloop) expire(now time.Time) {
	for len(l.timers) > 0 && !l.timers[0].expires.After(now) {
		k := l.timers[0]
		uc := k.uc
		uc.call = nil
		l.closeConn(uc)
		if l.attemptFailed(k, context.DeadlineExceeded) {
			l.attempt(k)
		}
	}
}

// sweep closes connections that stalled or idled too long, forgets
// upstreams that left, and resumes accepting after a pause.
func (l *evloop) sweep(now time.Time) {
	if !l.acceptPaused.IsZero() && now.After(l.acceptPaused) && !l.draining {
		l.acceptPaused = time.Time{}
		if err := l.ctl(unix.EPOLL_CTL_ADD, l.lfd, unix.EPOLLIN|unix.EPOLLEXCLUSIVE); err == nil {
			l.accept()
		}
	}
	for _, c := range l.conns {
		if !c.front || c.busy {
			continue
		}
		switch {
		case c.wpos < len(c.out):
			if now.Sub(c.since) > l.g.frontRead {
				l.closeConn(c) // not reading its answers
			}
		case len(c.in) > 0:
			if !c.reqStart.IsZero() && now.Sub(c.reqStart) > l.g.frontRead {
				l.g.metrics.Requests.WithLabelValues("none", "invalid", "none").Inc()
				c.closing, c.busy = true, true
				l.respond(c, http.StatusRequestTimeout, encodeError(nil, &rpcError{Code: CodeInvalidRequest, Message: msgReadTimeout}), "")
			}
		case l.draining || now.Sub(c.since) > l.g.frontIdle:
			l.closeConn(c)
		}
	}
	live := map[*upstream]bool{}
	for _, u := range l.g.snapshot() {
		live[u] = true
	}
	for u, p := range l.pools {
		keep := p.idle[:0]
		for _, c := range p.idle {
			if !c.closed && (now.Sub(c.since) > loopUpIdle || !live[u] || l.draining) {
				l.closeConn(c)
			}
			if !c.closed {
				keep = append(keep, c)
			}
		}
		p.idle = keep
		if !live[u] {
			p.gone = true
			if p.open == 0 {
				delete(l.pools, u)
			}
		}
	}
}

// beginShutdown stops accepting; requests being answered finish (their
// connections then close), idle connections close now.
func (l *evloop) beginShutdown() {
	if l.draining {
		return
	}
	l.draining = true
	l.drainUntil = time.Now().Add(frontShutdownWait)
	_ = l.ctl(unix.EPOLL_CTL_DEL, l.lfd, 0)
	for _, c := range l.conns {
		if c.front {
			c.shutdown = true
		}
	}
	l.sweep(time.Now())
}

// idle reports whether nothing is left to answer.
func (l *evloop) idle() bool {
	if len(l.timers) > 0 {
		return false
	}
	for _, c := range l.conns {
		if c.front && (c.busy || c.wpos < len(c.out)) {
			return false
		}
	}
	return true
}

// closeAll ends what is left when the loop stops: calls in flight fail,
// every connection closes, and later posts are refused.
func (l *evloop) closeAll() {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	for len(l.timers) > 0 {
		k := heap.Pop(&l.timers).(*loopCall)
		k.heapSlot = -1
		k.u.end(k.started, nil, fmt.Errorf("%w: the front stopped", errUpstream), l.g.metrics)
		k.uc.call = nil
		l.g.record(k.p, &k.pc, "unavailable")
	}
	for _, c := range l.conns {
		l.closeConn(c)
	}
}

// rawRead and rawWrite are read(2) and write(2) on non-blocking sockets
// without telling the Go scheduler: such a call never waits, and the
// scheduler's bookkeeping around a system call costs more than the call
// on loopback. It also keeps sysmon from taking the loop's P away
// whenever a write that delivers data takes longer than 20 µs.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// callHeap orders the loop's attempts by expiry.
type callHeap []*loopCall

func (h callHeap) Len() int           { return len(h) }
func (h callHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h callHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapSlot, h[j].heapSlot = i, j
}
func (h *callHeap) Push(x any) {
	k := x.(*loopCall)
	k.heapSlot = len(*h)
	*h = append(*h, k)
}
func (h *callHeap) Pop() any {
	old := *h
	k := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	k.heapSlot = -1
	return k
}

// loopTarget is how the loop reaches an upstream: nil for upstreams it
// does not dial (while one is in the rotation, fasthttp serves).
type loopTarget struct {
	family int
	addr   unix.Sockaddr
	prefix []byte // request line and headers up to Content-Length's value
}

// newLoopTarget returns the loop's way to an upstream at a plain-HTTP URL
// whose host is an IP address, with batching off; nil otherwise. hostPort
// is dialled; hostHeader is the URL's host as written (the Host header).
func newLoopTarget(cfg UpstreamConfig, hostPort, hostHeader, requestURI, auth string, tlsOn bool) *loopTarget {
	if tlsOn || cfg.BatchMax > 1 {
		return nil
	}
	host, portStr, err := net.SplitHostPort(hostPort)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	port, err := net.LookupPort("tcp", portStr)
	if ip == nil || err != nil {
		return nil
	}
	t := &loopTarget{prefix: upstreamPrefix(requestURI, hostHeader, auth)}
	if ip4 := ip.To4(); ip4 != nil {
		a := &unix.SockaddrInet4{Port: port}
		copy(a.Addr[:], ip4)
		t.family, t.addr = unix.AF_INET, a
	} else {
		a := &unix.SockaddrInet6{Port: port}
		copy(a.Addr[:], ip.To16())
		t.family, t.addr = unix.AF_INET6, a
	}
	return t
}
