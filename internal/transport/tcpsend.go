package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Outbound traffic: Send queues Raft messages per peer, each peer's sender
// batches them into requests, and Call makes request/response calls.

// Send queues msgs for their recipients without blocking. A message to an
// unknown or blocked member, or to a peer whose queue is full, is dropped
// and reported. Send takes ownership of msgs: the caller must not modify
// them afterwards.
func (t *TCP) Send(msgs []*pb.Message) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, m := range msgs {
		to := m.GetTo()
		p := t.peers[to]
		var reason string
		switch {
		case p == nil:
			reason = dropUnknownPeer
		case t.closing:
			reason = dropStopped
		case t.blocked[to]:
			reason = dropBlocked
		default:
			select {
			case p.queue <- m:
				continue
			default:
				reason = dropQueueFull
			}
		}
		t.drop(to, p, reason, m)
	}
}

// drop counts and reports msgs to member to (p if known) as lost.
func (t *TCP) drop(to uint64, p *peer, reason string, msgs ...*pb.Message) {
	if len(msgs) == 0 {
		return
	}
	label := strconv.FormatUint(to, 10)
	if p != nil {
		label = p.label
	}
	t.metrics.dropped.WithLabelValues(label, reason).Add(float64(len(msgs)))
	if to == t.id {
		return // Raft sends nothing to itself through the transport; nothing to report
	}
	failed := false
	for _, m := range msgs {
		if m.GetType() == pb.MessageType_MsgSnap {
			t.report(Report{To: to, Snapshot: true, Failed: true})
		} else {
			failed = true
		}
	}
	if !failed {
		return
	}
	if p != nil {
		now, last := time.Now().UnixNano(), p.lastFailReport.Load()
		if now-last < int64(failReportInterval) || !p.lastFailReport.CompareAndSwap(last, now) {
			return
		}
	}
	t.report(Report{To: to, Failed: true})
}

// report publishes r without blocking. A failure report that finds Reports
// full is dropped (the engine hears again on the next failure); a snapshot
// report is kept for the reporter, behind any others waiting.
func (t *TCP) report(r Report) {
	if !r.Snapshot {
		select {
		case t.reports <- r:
		default:
		}
		return
	}
	t.backlogMu.Lock()
	defer t.backlogMu.Unlock()
	if len(t.backlog) == 0 {
		select {
		case t.reports <- r:
			return
		default:
		}
	}
	t.backlog = append(t.backlog, r)
	select {
	case t.backlogWake <- struct{}{}:
	default:
	}
}

// flushBacklog delivers backlogged snapshot reports until ctx ends.
func (t *TCP) flushBacklog(ctx context.Context) {
	for {
		select {
		case <-t.backlogWake:
		case <-ctx.Done():
			return
		}
		for {
			t.backlogMu.Lock()
			if len(t.backlog) == 0 {
				t.backlog = nil
				t.backlogMu.Unlock()
				break
			}
			r := t.backlog[0]
			t.backlogMu.Unlock()
			select {
			case t.reports <- r:
			case <-ctx.Done():
				return
			}
			t.backlogMu.Lock()
			t.backlog = t.backlog[1:]
			t.backlogMu.Unlock()
		}
	}
}

// sendLoop is p's sender: it drains p's queue into batch requests until ctx
// ends or p leaves the peer set.
func (t *TCP) sendLoop(ctx context.Context, p *peer) {
	ctx, cancel := withDone(ctx, p.done)
	defer cancel()
	defer t.senderExit(p)
	var carry *pb.Message // taken from the queue but left for the next batch
	var backoff time.Duration
	for {
		m := carry
		if m == nil {
			select {
			case m = <-p.queue:
			case <-ctx.Done():
				return
			}
		}
		var msgs []*pb.Message
		var body []byte
		msgs, body, carry = t.buildBatch(p, m)
		if len(msgs) == 0 {
			continue
		}
		if t.isBlocked(p.ID) {
			t.drop(p.ID, p, dropBlocked, msgs...)
			continue
		}
		err := t.postBatch(ctx, p, body)
		if ctx.Err() != nil {
			t.drop(p.ID, p, dropStopped, msgs...)
			if carry != nil {
				t.drop(p.ID, p, dropStopped, carry)
			}
			return
		}
		if err != nil {
			t.metrics.sendFailures.WithLabelValues(p.label).Inc()
			t.drop(p.ID, p, dropSendFailed, msgs...)
			t.setReach(p, reachDown, err)
			backoff = min(max(2*backoff, backoffMin), backoffMax)
			if !sleep(ctx, backoff) {
				if carry != nil {
					t.drop(p.ID, p, dropStopped, carry)
				}
				return
			}
			continue
		}
		backoff = 0
		t.setReach(p, reachUp, nil)
		t.metrics.sent.WithLabelValues(p.label).Add(float64(len(msgs)))
		t.metrics.bytesSent.WithLabelValues(p.label).Add(float64(len(body)))
		for _, m := range msgs {
			if m.GetType() == pb.MessageType_MsgSnap {
				t.report(Report{To: p.ID, Snapshot: true})
			}
		}
	}
}

// senderExit reports what is left in p's queue as lost.
func (t *TCP) senderExit(p *peer) {
	for {
		select {
		case m := <-p.queue:
			t.drop(p.ID, p, dropStopped, m)
		default:
			t.mu.RLock()
			current := t.peers[p.ID]
			t.mu.RUnlock()
			if current == nil {
				t.metrics.reachable.DeleteLabelValues(p.label)
			}
			return
		}
	}
}

// buildBatch encodes first and whatever else p's queue holds, up to
// MaxBatchBytes, into one request body. carry is a message taken from the
// queue that did not fit. Messages larger than MaxFrameBytes are dropped.
func (t *TCP) buildBatch(p *peer, first *pb.Message) (msgs []*pb.Message, body []byte, carry *pb.Message) {
	limit := t.cfg.MaxBatchBytes
	for m := first; ; {
		size := proto.Size(m)
		switch {
		case size > t.cfg.MaxFrameBytes:
			t.logger.Warn("raft message larger than max frame bytes dropped", "peer", p.ID, "type", m.GetType(),
				"bytes", size, "max_frame_bytes", t.cfg.MaxFrameBytes)
			t.drop(p.ID, p, dropTooLarge, m)
		case len(body) > 0 && len(body)+frameHeaderLen+size > limit:
			return msgs, body, m
		default:
			if body == nil {
				body = make([]byte, 0, min(limit, max(frameHeaderLen+size, 64<<10)))
			}
			var err error
			if body, err = appendFrame(body, m); err != nil {
				t.logger.Error("raft message dropped", "peer", p.ID, "type", m.GetType(), "err", err)
				t.drop(p.ID, p, dropEncode, m)
			} else {
				msgs = append(msgs, m)
			}
		}
		if len(body) >= limit {
			return msgs, body, nil
		}
		select {
		case m = <-p.queue:
		default:
			return msgs, body, nil
		}
	}
}

// postBatch delivers one batch body to p.
func (t *TCP) postBatch(ctx context.Context, p *peer, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.msgsURL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	// Raft tolerates duplicates, so the client may replay a batch that
	// met a connection the server had just closed.
	req.Header["Idempotency-Key"] = nil
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("member %d answered %s: %s", p.ID, resp.Status, bytes.TrimSpace(text))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}

// setReach records p's reachability, logging changes only.
func (t *TCP) setReach(p *peer, s reachState, err error) {
	if p.reach == s {
		return
	}
	prev := p.reach
	p.reach = s
	switch {
	case s == reachUp:
		t.metrics.reachable.WithLabelValues(p.label).Set(1)
		if prev == reachDown {
			t.logger.Info("peer reachable again", "peer", p.ID, "addr", p.Addr)
		} else {
			t.logger.Info("peer reachable", "peer", p.ID, "addr", p.Addr)
		}
	case prev == reachUp:
		t.metrics.reachable.WithLabelValues(p.label).Set(0)
		t.logger.Warn("peer unreachable; its messages are dropped until it answers", "peer", p.ID, "addr", p.Addr, "err", err)
	default:
		t.metrics.reachable.WithLabelValues(p.label).Set(0)
		t.logger.Info("peer not reachable yet", "peer", p.ID, "addr", p.Addr, "err", err)
	}
}

// Call sends req to member to's handler for method and returns its
// response. A context without a deadline gets one of 30 s. An error the
// remote handler returned, or an unknown method, is a *RemoteError; an
// unknown member is ErrUnknownPeer.
func (t *TCP) Call(ctx context.Context, to uint64, method string, req []byte) ([]byte, error) {
	resp, err := t.call(ctx, to, method, req)
	result := "ok"
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		result = "remote_error"
	case err != nil:
		result = "failed"
	}
	t.metrics.calls.WithLabelValues(method, result).Inc()
	return resp, err
}

func (t *TCP) call(ctx context.Context, to uint64, method string, req []byte) ([]byte, error) {
	t.mu.RLock()
	p, blocked, closing := t.peers[to], t.blocked[to], t.closing
	t.mu.RUnlock()
	switch {
	case p == nil:
		return nil, ErrUnknownPeer
	case method == "":
		return nil, errors.New("call: empty method name")
	case blocked:
		return nil, fmt.Errorf("call %s to member %d: traffic blocked", method, to)
	case closing:
		return nil, fmt.Errorf("call %s to member %d: transport stopped", method, to)
	case len(req) > t.cfg.MaxFrameBytes:
		return nil, fmt.Errorf("call %s to member %d: request of %d bytes exceeds the %d-byte limit", method, to, len(req), t.cfg.MaxFrameBytes)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCallTimeout)
		defer cancel()
	}
	ctx, cancel := withDone(ctx, p.done)
	defer cancel()
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, p.callURL+url.PathEscape(method), bytes.NewReader(req))
	if err != nil {
		return nil, fmt.Errorf("call %s to member %d: %w", method, to, err)
	}
	hreq.Header.Set("Content-Type", "application/octet-stream")
	resp, err := p.client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("call %s to member %d: %w", method, to, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(t.cfg.MaxFrameBytes)+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("call %s to member %d: read response: %w", method, to, err)
	case len(body) > t.cfg.MaxFrameBytes:
		return nil, fmt.Errorf("call %s to member %d: response exceeds the %d-byte limit", method, to, t.cfg.MaxFrameBytes)
	case resp.StatusCode == http.StatusOK:
		return body, nil
	case ctx.Err() != nil:
		// The call was abandoned; the answer may be the handler's reaction
		// to that, raced back before the connection closed.
		return nil, fmt.Errorf("call %s to member %d: %w", method, to, ctx.Err())
	case resp.Header.Get(remoteErrorHeader) != "":
		return nil, &RemoteError{Msg: string(body)}
	default:
		if len(body) > 512 {
			body = body[:512]
		}
		return nil, fmt.Errorf("call %s to member %d: %s: %s", method, to, resp.Status, bytes.TrimSpace(body))
	}
}

// withDone returns a context that ends with ctx or when done is closed.
func withDone(ctx context.Context, done <-chan struct{}) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// sleep waits for d or until ctx ends, reporting whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
