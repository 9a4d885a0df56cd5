package gateway

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// blockingConn is a TCP connection whose reads and writes block their OS
// thread in the kernel instead of parking the goroutine on Go's netpoller.
// When the answer arrives, the kernel wakes that thread directly: no
// epoll_wait return, no hand-off of the goroutine to another thread. That
// saves tens of microseconds per call on an idle process, and costs one
// thread per call in flight, so the gateway uses such connections only for
// a few calls at a time (see directGate and ADR 0008).
//
// Deadlines become SO_RCVTIMEO / SO_SNDTIMEO, set before every read and
// write from the time left. A connection must not be used by two goroutines
// at once (fasthttp never does); Close may come from anywhere and wakes a
// blocked read or write.
type blockingConn struct {
	f      *os.File // owns the descriptor
	fd     int
	local  net.Addr
	remote net.Addr

	mu     sync.RWMutex // read-held around system calls, held by Close to release the descriptor
	closed atomic.Bool

	readDL, writeDL atomic.Int64 // unix nanoseconds; 0: none

	// The timeouts set on the socket; each touched only by the goroutine
	// reading or writing (see arm).
	rcvArmed, sndArmed time.Duration
}

// dialBlocking dials addr with d (name resolution, timeouts) and turns the
// connection into a blockingConn.
func dialBlocking(d *net.Dialer, addr string) (net.Conn, error) {
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return newBlockingConn(tc)
}

// newBlockingConn takes over tc's socket (tc is closed).
func newBlockingConn(tc *net.TCPConn) (net.Conn, error) {
	defer tc.Close()
	if err := tc.SetNoDelay(true); err != nil {
		return nil, err
	}
	f, err := tc.File() // a duplicate descriptor; tc's own closes on return
	if err != nil {
		return nil, err
	}
	fd := int(f.Fd()) // Fd also switches the descriptor to blocking mode
	if err := syscall.SetNonblock(fd, false); err != nil {
		f.Close()
		return nil, err
	}
	return &blockingConn{f: f, fd: fd, local: tc.LocalAddr(), remote: tc.RemoteAddr()}, nil
}

func (c *blockingConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

// armSlack is how far a timeout may land from its deadline before arm
// sets the socket option again: calls with the same timeout then share
// one setting instead of paying a system call per read and write.
const armSlack = time.Millisecond

// arm makes the socket's timeout option (SO_RCVTIMEO or SO_SNDTIMEO, whose
// current value is *armed; 0 waits forever) expire at deadline, within
// armSlack, for an operation that starts now, and reports a deadline
// already past. The kernel restarts the timeout on every call, so it is
// checked before each one.
func (c *blockingConn) arm(opt int, armed *time.Duration, deadline int64) error {
	want := time.Duration(0)
	if deadline != 0 {
		want = time.Until(time.Unix(0, deadline))
		if want <= 0 {
			return os.ErrDeadlineExceeded
		}
		if *armed != 0 && (*armed-want).Abs() <= armSlack {
			return nil
		}
	} else if *armed == 0 {
		return nil
	}
	var tv syscall.Timeval // zero: no timeout
	if want > 0 {
		tv = syscall.NsecToTimeval(int64(want)) // rounds up: never zero
	}
	if err := syscall.SetsockoptTimeval(c.fd, syscall.SOL_SOCKET, opt, &tv); err != nil {
		*armed = -1 // unknown: set it next time
		return err
	}
	*armed = want
	return nil
}

func (c *blockingConn) Read(p []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return 0, c.opError("read", net.ErrClosed)
	}
	for {
		if err := c.arm(syscall.SO_RCVTIMEO, &c.rcvArmed, c.readDL.Load()); err != nil {
			return 0, c.opError("read", err)
		}
		n, err := syscall.Read(c.fd, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case err != nil:
			if c.closed.Load() {
				err = net.ErrClosed
			}
			return 0, c.opError("read", err)
		case n == 0 && len(p) > 0:
			if c.closed.Load() {
				return 0, c.opError("read", net.ErrClosed)
			}
			return 0, io.EOF
		}
		return n, nil
	}
}

func (c *blockingConn) Write(p []byte) (int, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.closed.Load() {
		return 0, c.opError("write", net.ErrClosed)
	}
	done := 0
	for done < len(p) {
		if err := c.arm(syscall.SO_SNDTIMEO, &c.sndArmed, c.writeDL.Load()); err != nil {
			return done, c.opError("write", err)
		}
		n, err := syscall.Write(c.fd, p[done:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return done, c.opError("write", os.ErrDeadlineExceeded)
		case err != nil:
			if c.closed.Load() {
				err = net.ErrClosed
			}
			return done, c.opError("write", err)
		}
		done += n
	}
	return done, nil
}

// Close wakes any blocked read or write (shutdown), then releases the
// descriptor once they have returned.
func (c *blockingConn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return c.opError("close", net.ErrClosed)
	}
	serr := syscall.Shutdown(c.fd, syscall.SHUT_RDWR)
	if errors.Is(serr, syscall.ENOTCONN) {
		serr = nil // the peer went first
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.f.Close(); err != nil {
		return err
	}
	return serr
}

func (c *blockingConn) LocalAddr() net.Addr  { return c.local }
func (c *blockingConn) RemoteAddr() net.Addr { return c.remote }

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *blockingConn) SetDeadline(t time.Time) error {
	c.readDL.Store(unixNano(t))
	c.writeDL.Store(unixNano(t))
	return nil
}

func (c *blockingConn) SetReadDeadline(t time.Time) error {
	c.readDL.Store(unixNano(t))
	return nil
}

func (c *blockingConn) SetWriteDeadline(t time.Time) error {
	c.writeDL.Store(unixNano(t))
	return nil
}

// maxDirectCalls bounds limits.direct_calls: each such call holds an OS
// thread, and past a few calls in flight the netpoller is cheaper.
const maxDirectCalls = 8

// directGate admits a few upstream calls at a time, gateway-wide, to
// blocking connections. Its limit may change at any time (reload).
type directGate struct {
	limit atomic.Int64
	busy  atomic.Int64
}

// enter reports whether the caller may use a blocking connection; if so it
// must call leave when the call is done.
func (g *directGate) enter() bool {
	if g == nil || g.limit.Load() <= 0 {
		return false
	}
	if g.busy.Add(1) <= g.limit.Load() {
		return true
	}
	g.busy.Add(-1)
	return false
}

func (g *directGate) leave() { g.busy.Add(-1) }
