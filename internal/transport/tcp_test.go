package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// patience bounds every wait in these tests; nothing asserts speed.
const patience = 30 * time.Second

func testGenesis() common.Hash { return crypto.Keccak256Hash([]byte("hansa transport test genesis")) }

// testLogger logs to the test's output until the test ends; later lines
// (from connection goroutines the server does not wait for) are dropped.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.close) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

// node is one running TCP transport.
type node struct {
	id      uint64
	key     *ecdsa.PrivateKey
	tr      *TCP
	cancel  context.CancelFunc
	stopped chan struct{}
	err     error // Run's result, once stopped is closed
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func testConfig(id uint64, key *ecdsa.PrivateKey, peers ...Peer) TCPConfig {
	cfg := DefaultTCPConfig()
	cfg.ID, cfg.Key, cfg.Genesis, cfg.ListenAddr, cfg.Peers = id, key, testGenesis(), "127.0.0.1:0", peers
	return cfg
}

// startNode makes a transport from cfg and runs it until the test ends.
func startNode(t *testing.T, cfg TCPConfig) *node {
	t.Helper()
	logger := testLogger(t)
	tr, err := NewTCP(cfg, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("NewTCP(member %d): %v", cfg.ID, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	n := &node{id: cfg.ID, key: cfg.Key, tr: tr, cancel: cancel, stopped: make(chan struct{})}
	go func() {
		n.err = tr.Run(ctx)
		close(n.stopped)
	}()
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop ends the node's Run and checks it returned nil.
func (n *node) stop(t *testing.T) {
	t.Helper()
	n.cancel()
	select {
	case <-n.stopped:
	case <-time.After(patience):
		t.Fatalf("member %d: Run did not return after its context ended", n.id)
	}
	if n.err != nil {
		t.Errorf("member %d: Run returned %v, want nil", n.id, n.err)
	}
}

func (n *node) running() bool {
	select {
	case <-n.stopped:
		return false
	default:
		return true
	}
}

func (n *node) peer() Peer {
	return Peer{ID: n.id, Address: crypto.PubkeyToAddress(n.key.PublicKey), Addr: n.tr.Addr()}
}

// cluster starts size members (IDs 1..size) that know each other.
func cluster(t *testing.T, size int, tweak func(*TCPConfig)) []*node {
	t.Helper()
	nodes := make([]*node, size)
	for i := range nodes {
		cfg := testConfig(uint64(i+1), newKey(t))
		if tweak != nil {
			tweak(&cfg)
		}
		nodes[i] = startNode(t, cfg)
	}
	var peers []Peer
	for _, n := range nodes {
		peers = append(peers, n.peer())
	}
	for _, n := range nodes {
		n.tr.SetPeers(peers) // includes the node itself, which is ignored
	}
	return nodes
}

func raftMsg(typ pb.MessageType, from, to, index uint64, payload []byte) *pb.Message {
	return &pb.Message{
		Type: typ.Enum(), From: proto.Uint64(from), To: proto.Uint64(to),
		Term: proto.Uint64(7), Index: proto.Uint64(index), Context: payload,
		Entries: []*pb.Entry{{Term: proto.Uint64(7), Index: proto.Uint64(index + 1), Data: payload}},
	}
}

func snapMsg(from, to uint64) *pb.Message {
	return &pb.Message{
		Type: pb.MessageType_MsgSnap.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(3),
		Snapshot: &pb.Snapshot{Data: []byte("checkpoint"), Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(100), Term: proto.Uint64(3)}},
	}
}

// recv waits for count messages on n's Receive channel.
func recv(t *testing.T, n *node, count int) []*pb.Message {
	t.Helper()
	deadline := time.After(patience)
	var out []*pb.Message
	for len(out) < count {
		select {
		case m := <-n.tr.Receive():
			out = append(out, m)
		case <-deadline:
			t.Fatalf("member %d received %d of %d messages", n.id, len(out), count)
		}
	}
	return out
}

// waitReport returns the first report on n's Reports that matches want.
func waitReport(t *testing.T, n *node, want Report) {
	t.Helper()
	deadline := time.After(patience)
	for {
		select {
		case r := <-n.tr.Reports():
			if r == want {
				return
			}
		case <-deadline:
			t.Fatalf("member %d: no report %+v", n.id, want)
		}
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deliverEventually sends probes from one node to another until one
// arrives, for links that recover at a time the test does not control. It
// returns the first message received, which may be any probe.
func deliverEventually(t *testing.T, from, to *node) *pb.Message {
	t.Helper()
	deadline := time.Now().Add(patience)
	for i := uint64(1); ; i++ {
		from.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, from.id, to.id, 1_000_000+i, nil)})
		select {
		case m := <-to.tr.Receive():
			return m
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message from member %d reached member %d", from.id, to.id)
		}
	}
}

func TestTCPExchangesMessagesBothWays(t *testing.T) {
	nodes := cluster(t, 3, nil)
	for _, src := range nodes {
		for _, dst := range nodes {
			if src == dst {
				continue
			}
			payload := []byte(fmt.Sprintf("from %d to %d", src.id, dst.id))
			sent := raftMsg(pb.MessageType_MsgApp, src.id, dst.id, 42, payload)
			want := proto.Clone(sent).(*pb.Message)
			src.tr.Send([]*pb.Message{sent})
			got := recv(t, dst, 1)[0]
			if !proto.Equal(got, want) {
				t.Fatalf("member %d received %v, want %v", dst.id, got, want)
			}
		}
	}
	for _, n := range nodes {
		if got := metricValue(n.tr.metrics.garbage); got != 0 {
			t.Errorf("member %d counted %v garbage requests", n.id, got)
		}
	}
}

func TestTCPBatchesManyMessagesInOrder(t *testing.T) {
	const count = 5000
	nodes := cluster(t, 3, func(c *TCPConfig) {
		c.QueueSize = 2 * count
		c.MaxBatchBytes = 64 << 10 // many batches
	})
	dst := nodes[1]
	for _, src := range []*node{nodes[0], nodes[2]} {
		msgs := make([]*pb.Message, count)
		for i := range msgs {
			msgs[i] = raftMsg(pb.MessageType_MsgApp, src.id, dst.id, uint64(i), bytes.Repeat([]byte{byte(i)}, i%300))
		}
		src.tr.Send(msgs)
	}
	next := map[uint64]uint64{} // sender -> next index expected
	for _, m := range recv(t, dst, 2*count) {
		if m.GetTo() != dst.id || m.GetType() != pb.MessageType_MsgApp {
			t.Fatalf("unexpected message %v", m)
		}
		from, i := m.GetFrom(), m.GetIndex()
		if i != next[from] {
			t.Fatalf("from member %d: got index %d, want %d (out of order or lost)", from, i, next[from])
		}
		next[from]++
		if want := bytes.Repeat([]byte{byte(i)}, int(i%300)); !bytes.Equal(m.GetContext(), want) ||
			!bytes.Equal(m.GetEntries()[0].GetData(), want) {
			t.Fatalf("from member %d index %d: payload corrupted", from, i)
		}
	}
	for _, src := range []*node{nodes[0], nodes[2]} {
		// The sender counts a batch once it is acknowledged, which may be
		// after the receiver delivered it.
		eventually(t, fmt.Sprintf("member %d to count %d messages sent", src.id, count), func() bool {
			return metricValue(src.tr.metrics.sent.WithLabelValues("2")) == count
		})
		if got := metricValue(src.tr.metrics.bytesSent.WithLabelValues("2")); got < count*frameHeaderLen {
			t.Errorf("member %d counted %v bytes sent", src.id, got)
		}
		if got := metricValue(dst.tr.metrics.received.WithLabelValues(fmt.Sprint(src.id))); got != count {
			t.Errorf("member 2 counted %v messages from member %d, want %d", got, src.id, count)
		}
	}
}

func TestTCPCalls(t *testing.T) {
	nodes := cluster(t, 2, nil)
	caller, callee := nodes[0], nodes[1]
	entered := make(chan struct{})
	released := make(chan error, 1)
	callee.tr.Handle("echo", func(ctx context.Context, from uint64, req []byte) ([]byte, error) {
		return append([]byte(fmt.Sprintf("member %d said ", from)), req...), nil
	})
	callee.tr.Handle("fail", func(ctx context.Context, from uint64, req []byte) ([]byte, error) {
		return nil, fmt.Errorf("cannot %s", req)
	})
	callee.tr.Handle("big", func(ctx context.Context, from uint64, req []byte) ([]byte, error) {
		return bytes.Repeat([]byte("x"), 3<<20), nil
	})
	callee.tr.Handle("wait", func(ctx context.Context, from uint64, req []byte) ([]byte, error) {
		close(entered)
		<-ctx.Done()
		released <- ctx.Err()
		return nil, ctx.Err()
	})
	ctx := t.Context()

	t.Run("response", func(t *testing.T) {
		resp, err := caller.tr.Call(ctx, 2, "echo", []byte("hello"))
		if err != nil || string(resp) != "member 1 said hello" {
			t.Fatalf("Call = %q, %v", resp, err)
		}
		if resp, err := caller.tr.Call(ctx, 2, "big", nil); err != nil || len(resp) != 3<<20 {
			t.Fatalf("big Call = %d bytes, %v", len(resp), err)
		}
	})
	t.Run("handler error", func(t *testing.T) {
		_, err := caller.tr.Call(ctx, 2, "fail", []byte("comply"))
		var re *RemoteError
		if !errors.As(err, &re) || re.Msg != "cannot comply" {
			t.Fatalf("Call error = %v (%T), want RemoteError \"cannot comply\"", err, err)
		}
	})
	t.Run("unknown method", func(t *testing.T) {
		_, err := caller.tr.Call(ctx, 2, "no/such method", nil)
		var re *RemoteError
		if !errors.As(err, &re) || re.Msg != ErrUnknownMethod.Error() {
			t.Fatalf("Call error = %v (%T), want RemoteError %q", err, err, ErrUnknownMethod)
		}
	})
	t.Run("unknown peer", func(t *testing.T) {
		if _, err := caller.tr.Call(ctx, 9, "echo", nil); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("Call error = %v, want ErrUnknownPeer", err)
		}
	})
	t.Run("cancellation", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			<-entered
			cancel()
		}()
		_, err := caller.tr.Call(cctx, 2, "wait", nil)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Call error = %v, want context.Canceled", err)
		}
		select {
		case err := <-released:
			if err == nil {
				t.Fatal("handler context ended without an error")
			}
		case <-time.After(patience):
			t.Fatal("the handler's context did not end when the caller gave up")
		}
	})
	if got := metricValue(caller.tr.metrics.calls.WithLabelValues("fail", "remote_error")); got != 1 {
		t.Errorf("calls_total{fail,remote_error} = %v, want 1", got)
	}
	if got := metricValue(caller.tr.metrics.calls.WithLabelValues("echo", "ok")); got != 1 {
		t.Errorf("calls_total{echo,ok} = %v, want 1", got)
	}
}

func TestTCPReconnects(t *testing.T) {
	nodes := cluster(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]
	deliverEventually(t, n1, n2)
	addr := n2.tr.Addr()
	n2.stop(t)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener is still open after Run returned")
	}

	n1.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, 1, 2, 1, nil)})
	waitReport(t, n1, Report{To: 2, Failed: true})
	eventually(t, "peer 2 marked unreachable", func() bool {
		return metricValue(n1.tr.metrics.reachable.WithLabelValues("2")) == 0
	})

	cfg := testConfig(2, n2.key, n1.peer())
	cfg.ListenAddr = addr
	restarted := startNode(t, cfg)
	if m := deliverEventually(t, n1, restarted); m.GetFrom() != 1 {
		t.Fatalf("restarted member 2 received %v", m)
	}
	restarted.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeatResp, 2, 1, 5, nil)})
	if m := recv(t, n1, 1)[0]; m.GetFrom() != 2 || m.GetIndex() != 5 {
		t.Fatalf("member 1 received %v", m)
	}
	eventually(t, "peer 2 marked reachable", func() bool {
		return metricValue(n1.tr.metrics.reachable.WithLabelValues("2")) == 1
	})
}

func TestTCPSnapshotReports(t *testing.T) {
	nodes := cluster(t, 2, nil)
	n1, n2 := nodes[0], nodes[1]

	snap := snapMsg(1, 2)
	want := proto.Clone(snap).(*pb.Message)
	n1.tr.Send([]*pb.Message{snap})
	waitReport(t, n1, Report{To: 2, Snapshot: true})
	if got := recv(t, n2, 1)[0]; !proto.Equal(got, want) {
		t.Fatalf("member 2 received %v, want %v", got, want)
	}

	// A member whose address has nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	n1.tr.SetPeers([]Peer{n2.peer(), {ID: 3, Address: crypto.PubkeyToAddress(newKey(t).PublicKey), Addr: dead}})
	n1.tr.Send([]*pb.Message{snapMsg(1, 3)})
	waitReport(t, n1, Report{To: 3, Snapshot: true, Failed: true})

	// A snapshot to a blocked member is reported failed at once.
	n1.tr.Block(2)
	n1.tr.Send([]*pb.Message{snapMsg(1, 2)})
	waitReport(t, n1, Report{To: 2, Snapshot: true, Failed: true})
}

func TestTCPSnapshotReportsSurviveFullQueueAndReports(t *testing.T) {
	n1 := startNode(t, func() TCPConfig { c := testConfig(1, newKey(t)); c.QueueSize = 1; return c }())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	n1.tr.SetPeers([]Peer{{ID: 2, Address: crypto.PubkeyToAddress(newKey(t).PublicKey), Addr: dead}})
	// Far more snapshots than the Reports channel holds, nobody reading:
	// every one must still be reported as failed, none as delivered.
	const count = reportBuffer + 200
	for range count {
		n1.tr.Send([]*pb.Message{snapMsg(1, 2)})
	}
	deadline := time.After(patience)
	for failed := 0; failed < count; {
		select {
		case r := <-n1.tr.Reports():
			switch r {
			case Report{To: 2, Snapshot: true, Failed: true}:
				failed++
			case Report{To: 2, Snapshot: true}:
				t.Fatal("a snapshot to a dead peer was reported delivered")
			}
		case <-deadline:
			t.Fatalf("%d of %d snapshot failures reported", failed, count)
		}
	}
}

func TestTCPBlock(t *testing.T) {
	nodes := cluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		n.tr.Handle("echo", func(_ context.Context, from uint64, req []byte) ([]byte, error) { return req, nil })
	}
	ctx := t.Context()
	n1.tr.Block(2)

	// Outbound: dropped and reported at once.
	n1.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 1, 2, 1, nil)})
	waitReport(t, n1, Report{To: 2, Failed: true})
	if _, err := n1.tr.Call(ctx, 2, "echo", nil); err == nil {
		t.Fatal("call to a blocked member succeeded")
	}
	// Inbound: member 2's batch and call are refused.
	n2.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 2, 1, 1, nil)})
	waitReport(t, n2, Report{To: 1, Failed: true})
	_, err := n2.tr.Call(ctx, 1, "echo", nil)
	var re *RemoteError
	if err == nil || errors.As(err, &re) {
		t.Fatalf("call from a blocked member: err = %v, want a transport error", err)
	}
	// Member 3 is unaffected.
	if _, err := n1.tr.Call(ctx, 3, "echo", nil); err != nil {
		t.Fatal(err)
	}
	n3.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 3, 1, 3, nil)})
	if m := recv(t, n1, 1)[0]; m.GetFrom() != 3 {
		t.Fatalf("member 1 received %v, want member 3's message", m)
	}

	n1.tr.Unblock(2)
	// What was sent while blocked never arrives: the first message each
	// side receives is one sent after Unblock.
	n1.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 1, 2, 2, nil)})
	if m := recv(t, n2, 1)[0]; m.GetIndex() != 2 {
		t.Fatalf("member 2 received %v, want index 2", m)
	}
	if m := deliverEventually(t, n2, n1); m.GetFrom() != 2 || m.GetIndex() == 1 {
		t.Fatalf("member 1 received %v, want a message sent after Unblock", m)
	}
	if _, err := n2.tr.Call(ctx, 1, "echo", nil); err != nil {
		t.Fatal(err)
	}

	// Unblock() without IDs clears every block.
	n1.tr.Block(2, 3)
	if _, err := n1.tr.Call(ctx, 3, "echo", nil); err == nil {
		t.Fatal("call to blocked member 3 succeeded")
	}
	n1.tr.Unblock()
	for _, id := range []uint64{2, 3} {
		if _, err := n1.tr.Call(ctx, id, "echo", nil); err != nil {
			t.Fatalf("call to member %d after Unblock(): %v", id, err)
		}
	}
	if got := metricValue(n1.tr.metrics.dropped.WithLabelValues("2", dropBlocked)); got != 1 {
		t.Errorf("dropped{2,blocked} = %v, want 1", got)
	}
}

func TestTCPSetPeersRemovesMember(t *testing.T) {
	nodes := cluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	n1.tr.Handle("echo", func(_ context.Context, from uint64, req []byte) ([]byte, error) { return req, nil })
	// Member 2 has a connection open to member 1.
	deliverEventually(t, n2, n1)
	if _, err := n2.tr.Call(t.Context(), 1, "echo", nil); err != nil {
		t.Fatal(err)
	}
	addr2 := crypto.PubkeyToAddress(n2.key.PublicKey)
	inbound := func() int {
		n1.tr.mu.RLock()
		defer n1.tr.mu.RUnlock()
		k := 0
		for _, a := range n1.tr.inbound {
			if a == addr2 {
				k++
			}
		}
		return k
	}
	if inbound() == 0 {
		t.Fatal("member 1 tracks no connection from member 2")
	}

	n1.tr.SetPeers([]Peer{n1.peer(), n3.peer()})
	if k := inbound(); k != 0 {
		t.Fatalf("member 1 still holds %d connections from removed member 2", k)
	}
	n2.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 2, 1, 1, nil)})
	waitReport(t, n2, Report{To: 1, Failed: true})
	if _, err := n2.tr.Call(t.Context(), 1, "echo", nil); err == nil {
		t.Fatal("removed member's call succeeded")
	}
	n1.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 1, 2, 1, nil)})
	waitReport(t, n1, Report{To: 2, Failed: true})
	if _, err := n1.tr.Call(t.Context(), 2, "echo", nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("call to removed member: %v, want ErrUnknownPeer", err)
	}
	// Member 3 still gets through, and member 2's refused message never
	// arrives: the first message member 1 receives is member 3's.
	n3.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 3, 1, 3, nil)})
	if m := recv(t, n1, 1)[0]; m.GetFrom() != 3 {
		t.Fatalf("member 1 received %v, want member 3's message", m)
	}

	// Re-admitted, member 2 gets through again.
	n1.tr.SetPeers([]Peer{n2.peer(), n3.peer()})
	if m := deliverEventually(t, n2, n1); m.GetFrom() != 2 {
		t.Fatalf("member 1 received %v", m)
	}
}

func TestTCPConfigValidate(t *testing.T) {
	key := newKey(t)
	other := crypto.PubkeyToAddress(newKey(t).PublicKey)
	self := crypto.PubkeyToAddress(key.PublicKey)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		modify func(*TCPConfig)
		ok     bool
	}{
		{"valid", func(*TCPConfig) {}, true},
		{"self listed", func(c *TCPConfig) { c.Peers = append(c.Peers, Peer{ID: 1, Address: self}) }, true},
		{"hostname", func(c *TCPConfig) { c.Peers[0].Addr = "node-2.cluster.local:7000" }, true},
		{"zero id", func(c *TCPConfig) { c.ID = 0 }, false},
		{"no key", func(c *TCPConfig) { c.Key = nil }, false},
		{"p256 key", func(c *TCPConfig) { c.Key = p256 }, false},
		{"no genesis", func(c *TCPConfig) { c.Genesis = common.Hash{} }, false},
		{"bad listen address", func(c *TCPConfig) { c.ListenAddr = "localhost" }, false},
		{"zero queue", func(c *TCPConfig) { c.QueueSize = 0 }, false},
		{"batch over frame", func(c *TCPConfig) { c.MaxBatchBytes = c.MaxFrameBytes + 1 }, false},
		{"huge frame", func(c *TCPConfig) { c.MaxFrameBytes = 2 << 30 }, false},
		{"zero timeout", func(c *TCPConfig) { c.RequestTimeout = 0 }, false},
		{"zero dial timeout", func(c *TCPConfig) { c.DialTimeout = 0 }, false},
		{"peer without address", func(c *TCPConfig) { c.Peers[0].Addr = "" }, false},
		{"peer without port", func(c *TCPConfig) { c.Peers[0].Addr = "127.0.0.1" }, false},
		{"peer without key", func(c *TCPConfig) { c.Peers[0].Address = common.Address{} }, false},
		{"peer zero id", func(c *TCPConfig) { c.Peers[0].ID = 0 }, false},
		{"duplicate id", func(c *TCPConfig) { c.Peers = append(c.Peers, Peer{ID: 2, Address: self, Addr: "a:1"}) }, false},
		{"duplicate key", func(c *TCPConfig) { c.Peers = append(c.Peers, Peer{ID: 3, Address: other, Addr: "a:1"}) }, false},
		{"peer with own key", func(c *TCPConfig) { c.Peers[0].Address = self }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(1, key, Peer{ID: 2, Address: other, Addr: "127.0.0.1:7000"})
			c.modify(&cfg)
			if err := cfg.Validate(); (err == nil) != c.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestNewTCPListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(1, newKey(t))
	cfg.ListenAddr = ln.Addr().String()
	if _, err := NewTCP(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("NewTCP on a busy port: %v, want a listen error", err)
	}
}

func TestTCPMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	// Two transports on one registry (a node restarted in one process)
	// share the metrics.
	for i := range 2 {
		tr, err := NewTCP(testConfig(1, newKey(t)), nil, reg)
		if err != nil {
			t.Fatalf("transport %d: %v", i, err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := tr.Run(ctx); err != nil {
			t.Fatal(err)
		}
		tr.metrics.garbage.Inc()
	}
	if got := metricValue(must(newTCPMetrics(reg)).garbage); got != 2 {
		t.Fatalf("shared garbage counter = %v, want 2", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	// Vectors without children export nothing.
	if len(families) != 2 || families[0].GetName() != "hansa_transport_auth_failures_total" ||
		families[1].GetName() != "hansa_transport_garbage_total" {
		t.Fatalf("gathered %v, want the auth failure and garbage counters", families)
	}
}

// metricValue reads a counter or gauge.
func metricValue(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if d.GetCounter() != nil {
		return d.GetCounter().GetValue()
	}
	return d.GetGauge().GetValue()
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
