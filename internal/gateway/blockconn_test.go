package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// blockingPair dials a loopback listener with dialBlocking and returns
// both ends.
func blockingPair(t *testing.T) (*blockingConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	c, err := dialBlocking(&net.Dialer{Timeout: time.Second}, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); peer.Close() })
	bc, ok := c.(*blockingConn)
	if !ok {
		t.Fatalf("dialBlocking returned %T", c)
	}
	return bc, peer
}

// Data crosses a blocking connection intact both ways, including a write
// larger than the socket buffers (partial writes), and the peer's close
// reads as EOF.
func TestBlockingConnRoundTrip(t *testing.T) {
	c, peer := blockingPair(t)
	if c.LocalAddr().String() != peer.RemoteAddr().String() || c.RemoteAddr().String() != peer.LocalAddr().String() {
		t.Fatalf("addresses %v -> %v, peer sees %v -> %v", c.LocalAddr(), c.RemoteAddr(), peer.RemoteAddr(), peer.LocalAddr())
	}
	payload := bytes.Repeat([]byte("hansa-"), 2<<20) // 12 MiB
	echoed := make(chan []byte, 1)
	go func() {
		got, _ := io.ReadAll(io.LimitReader(peer, int64(len(payload))))
		_, _ = peer.Write(got)
		_ = peer.Close()
		echoed <- got
	}()
	if err := c.SetDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Write(payload); err != nil || n != len(payload) {
		t.Fatalf("write: %d of %d, %v", n, len(payload), err)
	}
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	if !bytes.Equal(back, payload) || !bytes.Equal(<-echoed, payload) {
		t.Fatalf("payload changed in transit: %d bytes back of %d", len(back), len(payload))
	}
}

// A read with a deadline gives up then, with an error net and fasthttp
// recognise as a timeout; a past deadline fails at once; clearing the
// deadline lets the next read wait for data again.
func TestBlockingConnReadDeadline(t *testing.T) {
	c, peer := blockingPair(t)
	buf := make([]byte, 16)
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(50 * time.Millisecond))
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond-armSlack {
		t.Fatalf("read gave up after %v, before its 50ms deadline", waited)
	}
	_ = c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with a past deadline: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _ = peer.Write([]byte("late"))
	}()
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "late" {
		t.Fatalf("read without deadline: %q, %v", buf[:n], err)
	}
}

// Close from another goroutine wakes a read blocked in the kernel, and
// the connection refuses use afterwards.
func TestBlockingConnCloseWakesRead(t *testing.T) {
	c, _ := blockingPair(t)
	got := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 16))
		got <- err
	}()
	// Close only once a thread is inside read(2) on this descriptor, so
	// the test is about waking a blocked read, not refusing a late one.
	for !blockedInRead(t, c.fd) {
		select {
		case err := <-got:
			t.Fatalf("read returned before close: %v", err)
		case <-time.After(time.Millisecond):
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }() // Close waits for the read to return
	select {
	case err := <-got:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("blocked read after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("close left the read blocked")
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
}

// The gate admits up to its limit at a time; 0 (or no gate) admits none.
func TestDirectGate(t *testing.T) {
	var none *directGate
	if none.enter() {
		t.Fatal("a nil gate admitted a call")
	}
	g := &directGate{}
	if g.enter() {
		t.Fatal("limit 0 admitted a call")
	}
	g.limit.Store(2)
	if !g.enter() || !g.enter() {
		t.Fatal("limit 2 refused one of the first two calls")
	}
	if g.enter() {
		t.Fatal("limit 2 admitted a third call")
	}
	g.leave()
	if !g.enter() {
		t.Fatal("a freed place was not reused")
	}
	if got := g.busy.Load(); got != 2 {
		t.Fatalf("busy = %d, want 2", got)
	}
}

// A listener whose accept queue is full drops further SYNs, so a dial to
// it hangs: the blocking client must give up by the call's deadline, not
// after fasthttp's default dial timeout (3 s).
func TestBlockingDialHonoursCallDeadline(t *testing.T) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the accept queue; nothing is ever accepted.
	for i := 0; i < 8; i++ {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break // the queue is full: dials now hang
		}
		defer c.Close()
	}
	if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
		c.Close()
		t.Fatal("the kernel accepted a connection beyond a full listen backlog; the test needs a dial that hangs")
	}
	gate := &directGate{}
	gate.limit.Store(1)
	u := newUpstream(UpstreamConfig{Name: "n", URL: "http://" + addr}, "config", http.DefaultClient, nil, gate)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = u.call(ctx, "eth_blockNumber", nil)
	if !errors.Is(err, errUpstream) {
		t.Fatalf("call to a hanging dial: %v, want errUpstream", err)
	}
	if waited := time.Since(start); waited >= 2*time.Second {
		t.Fatalf("call with a 300ms deadline waited %v on its dial", waited)
	}
}

// blockedInRead reports whether a thread of this process is in read(2) on
// fd, from /proc/self/task/*/syscall ("number arg1 ..." in hex).
func blockedInRead(t *testing.T, fd int) bool {
	t.Helper()
	files, err := filepath.Glob("/proc/self/task/*/syscall")
	if err != nil || len(files) == 0 {
		t.Fatalf("cannot list threads: %v", err)
	}
	want := fmt.Sprintf("%d 0x%x ", syscall.SYS_READ, fd)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil && strings.HasPrefix(string(b), want) {
			return true
		}
	}
	return false
}
