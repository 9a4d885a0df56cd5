package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// serveHTTP serves one request from a peer. The TLS handshake already
// refused strangers; the peer is identified again here because the peer
// set may have changed since.
func (t *TCP) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		refuse(w, http.StatusForbidden, "not authenticated")
		return
	}
	if strings.HasPrefix(r.URL.Path, openPrefix) {
		t.serveOpen(w, r)
		return
	}
	from, signer, err := t.identify(r.TLS.PeerCertificates)
	if err != nil {
		t.logger.Debug("request refused", "remote", r.RemoteAddr, "err", err)
		refuse(w, http.StatusForbidden, "not a member")
		return
	}
	conn, _ := r.Context().Value(connKey{}).(net.Conn)
	t.mu.RLock()
	blocked := t.blocked[from]
	_, tracked := t.inbound[conn]
	t.mu.RUnlock()
	if !t.enter(w) {
		return
	}
	defer t.active.Done()
	if conn != nil && !tracked && !t.track(conn, signer) {
		refuse(w, http.StatusForbidden, "not a member")
		return
	}
	if blocked {
		refuse(w, http.StatusServiceUnavailable, "traffic blocked")
		return
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == msgsPath:
		t.serveMsgs(w, r, from)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, callPrefix):
		t.serveCall(w, r, from, strings.TrimPrefix(r.URL.Path, callPrefix))
	default:
		t.garbage(w, from, "unexpected request", fmt.Errorf("%s %.200q", r.Method, r.URL.Path))
	}
}

// serveOpen serves an open method to any node with a key for this chain.
func (t *TCP) serveOpen(w http.ResponseWriter, r *http.Request) {
	signer, err := requestSigner(r, t.cfg.Genesis)
	if err != nil {
		refuse(w, http.StatusForbidden, "not authenticated")
		return
	}
	if !t.enter(w) {
		return
	}
	defer t.active.Done()
	t.open.serve(w, r, signer, t.logger)
}

// enter admits a request unless Run is stopping (then it answers 503);
// an admitted request must call t.active.Done when served.
func (t *TCP) enter(w http.ResponseWriter) bool {
	t.mu.RLock()
	closing := t.closing
	if !closing {
		t.active.Add(1)
	}
	t.mu.RUnlock()
	if closing {
		refuse(w, http.StatusServiceUnavailable, "stopping")
	}
	return !closing
}

// track records that conn is authenticated as signer, so that SetPeers can
// close it when signer leaves. It reports false if signer already left.
func (t *TCP) track(conn net.Conn, signer common.Address) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.byAddress[signer]; !ok {
		return false
	}
	t.inbound[conn] = signer
	return true
}

// connState forgets closed connections.
func (t *TCP) connState(c net.Conn, s http.ConnState) {
	if s != http.StateClosed && s != http.StateHijacked {
		return
	}
	t.mu.Lock()
	delete(t.inbound, c)
	t.mu.Unlock()
}

// serveMsgs accepts a batch of Raft messages from member from. Each must be
// from that member to this one and of a type peers exchange; otherwise the
// rest of the batch is garbage.
func (t *TCP) serveMsgs(w http.ResponseWriter, r *http.Request, from uint64) {
	// A sender gives up after its RequestTimeout; do not wait much longer.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(max(minBatchReadTimeout, 2*t.cfg.RequestTimeout)))
	body := &readTracker{r: http.MaxBytesReader(w, r.Body, int64(t.cfg.MaxFrameBytes)+frameHeaderLen)}
	label := strconv.FormatUint(from, 10)
	received := t.metrics.received.WithLabelValues(label)
	var wait recvWait
	defer wait.stop()
	ctx := r.Context()
	err := decodeFrames(body, t.cfg.MaxFrameBytes, func(m *pb.Message) error {
		switch {
		case m.GetFrom() != from || m.GetTo() != t.id:
			return fmt.Errorf("%s from %d to %d on a connection of member %d to member %d",
				m.GetType(), m.GetFrom(), m.GetTo(), from, t.id)
		case raft.IsLocalMsg(m.GetType()):
			return fmt.Errorf("%s is not a message between members", m.GetType())
		}
		if reason := t.deliver(ctx, &wait, m); reason != "" {
			t.metrics.dropped.WithLabelValues(label, reason).Inc()
		} else {
			received.Inc()
		}
		return nil
	})
	if err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(body.err, &tooLarge):
			t.garbage(w, from, "oversized raft batch", err)
		case body.err != nil:
			// The peer went away or the transport is stopping: no garbage.
			t.logger.Debug("raft batch cut short", "peer", from, "err", err)
		default:
			t.garbage(w, from, "malformed raft batch", err)
		}
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// recvWait is the time one batch request may spend waiting for room in
// the Receive channel: once it has passed, the rest of the batch is dropped
// at once when the channel is full.
type recvWait struct {
	timer   *time.Timer
	expired bool
}

func (w *recvWait) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// deliver hands m to Receive, returning the drop reason if it could not.
func (t *TCP) deliver(ctx context.Context, wait *recvWait, m *pb.Message) string {
	select {
	case t.recv <- m:
		return ""
	default:
	}
	if wait.expired {
		return dropReceiveFull
	}
	if wait.timer == nil {
		wait.timer = time.NewTimer(receiveWait)
	}
	select {
	case t.recv <- m:
		return ""
	case <-wait.timer.C:
		wait.expired = true
		return dropReceiveFull
	case <-ctx.Done():
		return dropStopped
	}
}

// serveCall runs method's handler for member from.
func (t *TCP) serveCall(w http.ResponseWriter, r *http.Request, from uint64, method string) {
	t.mu.RLock()
	h := t.handlers[method]
	t.mu.RUnlock()
	if h == nil {
		t.logger.Debug("call to an unknown method", "peer", from, "method", method)
		remoteError(w, http.StatusNotFound, ErrUnknownMethod.Error())
		return
	}
	req, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(t.cfg.MaxFrameBytes)))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			t.garbage(w, from, "oversized call", fmt.Errorf("method %.100q: %w", method, err))
		} else {
			t.logger.Debug("call request cut short", "peer", from, "method", method, "err", err)
		}
		return
	}
	resp, err := h(r.Context(), from, req)
	if err != nil {
		remoteError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

// garbage answers a malformed or misaddressed request from an authenticated
// member and drops the connection.
func (t *TCP) garbage(w http.ResponseWriter, from uint64, what string, err error) {
	t.metrics.garbage.Inc()
	t.logger.Warn("garbage from peer; connection dropped", "peer", from, "what", what, "err", err)
	refuse(w, http.StatusBadRequest, what)
}

// refuse answers with status and text and closes the connection.
func refuse(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Connection", "close")
	http.Error(w, text, status)
}

// remoteError answers a call with the error text of the remote side.
func remoteError(w http.ResponseWriter, status int, text string) {
	w.Header().Set(remoteErrorHeader, "1")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// readTracker remembers the first error other than io.EOF its reader
// returned, to tell a body that broke off from one that is malformed.
type readTracker struct {
	r   io.Reader
	err error
}

func (rt *readTracker) Read(p []byte) (int, error) {
	n, err := rt.r.Read(p)
	if err != nil && err != io.EOF && rt.err == nil {
		rt.err = err
	}
	return n, err
}
