package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/raft/v3/raftpb"
)

// The TCP transport speaks HTTP/1.1 over mutually authenticated TLS 1.3
// (see tcpauth.go for how certificates are bound to node keys):
//
//	POST /raft/v1/msgs          body: Raft messages as frames (frame.go); 204 when all were accepted
//	POST /raft/v1/call/{method} body: the request; 200 with the response, or an error text
//
// A call whose remote handler failed, or whose method is not registered,
// is answered with the Hansa-Remote-Error header and the error text; the
// caller returns it as a *RemoteError. Any other non-success status is a
// transport failure. A request that is malformed or misaddressed is answered
// 400 and its connection closed.
const (
	msgsPath          = "/raft/v1/msgs"
	callPrefix        = "/raft/v1/call/"
	remoteErrorHeader = "Hansa-Remote-Error"
)

const (
	// defaultCallTimeout caps a call whose context has no deadline.
	defaultCallTimeout = 30 * time.Second
	// receiveBuffer is the capacity of the Receive channel.
	receiveBuffer = 4096
	// reportBuffer is the capacity of the Reports channel.
	reportBuffer = 1024
	// receiveWait is how long one batch request may wait in total for room
	// in a full Receive channel before the rest of it is dropped.
	receiveWait = time.Second
	// backoffMin and backoffMax bound a sender's pause after a failure.
	backoffMin = 50 * time.Millisecond
	backoffMax = 2 * time.Second
	// failReportInterval rate-limits the non-snapshot failure reports about
	// one peer.
	failReportInterval = 100 * time.Millisecond
	// maxFrameLimit is the largest MaxFrameBytes accepted.
	maxFrameLimit = 1 << 30
	// minBatchReadTimeout is the least time a batch request's body may take
	// to arrive (at least twice RequestTimeout is allowed).
	minBatchReadTimeout = time.Minute
)

// Peer is a cluster member as the transport knows it.
type Peer struct {
	ID      uint64
	Address common.Address // go-ethereum address of the peer's node key: its identity
	Addr    string         // host:port of the peer's cluster listener (hostnames allowed)
}

func (p Peer) validate() error {
	switch {
	case p.ID == 0:
		return errors.New("member id must not be zero")
	case p.Address == (common.Address{}):
		return fmt.Errorf("member %d has no node address", p.ID)
	}
	if _, port, err := net.SplitHostPort(p.Addr); err != nil || port == "" {
		return fmt.Errorf("member %d: cluster address %q is not host:port", p.ID, p.Addr)
	}
	return nil
}

// TCPConfig configures a TCP transport.
type TCPConfig struct {
	ID             uint64
	Key            *ecdsa.PrivateKey // this node's secp256k1 node key
	Genesis        common.Hash       // binds certificates to one chain
	ListenAddr     string            // host:port; port 0 picks a free port
	Listener       *net.TCPListener  // an already bound listener to use instead of ListenAddr
	Peers          []Peer            // cluster members (this node may be included; it is ignored)
	QueueSize      int               // outbound Raft messages queued per peer
	MaxBatchBytes  int               // bytes of Raft messages per batch request
	MaxFrameBytes  int               // largest single message or call accepted
	DialTimeout    time.Duration     // connection and TLS handshake timeout
	RequestTimeout time.Duration     // per Raft batch request; calls use their context
}

// DefaultTCPConfig returns the defaults: queues of 4096 messages, 4 MiB
// batches, 80 MiB frames, a 2 s dial timeout and a 5 s request timeout.
// Identity, key, genesis, address and peers are left for the caller.
func DefaultTCPConfig() TCPConfig {
	return TCPConfig{
		QueueSize:      4096,
		MaxBatchBytes:  4 << 20,
		MaxFrameBytes:  80 << 20,
		DialTimeout:    2 * time.Second,
		RequestTimeout: 5 * time.Second,
	}
}

// Validate reports the first problem with c.
func (c TCPConfig) Validate() error {
	switch {
	case c.ID == 0:
		return errors.New("transport: member id must not be zero")
	case c.Key == nil || c.Key.D == nil || c.Key.Curve != crypto.S256():
		return errors.New("transport: node key must be a secp256k1 private key")
	case c.Genesis == (common.Hash{}):
		return errors.New("transport: genesis hash is required")
	case c.QueueSize < 1:
		return errors.New("transport: queue size must be positive")
	case c.MaxFrameBytes < 1 || c.MaxFrameBytes > maxFrameLimit:
		return fmt.Errorf("transport: max frame bytes must be between 1 and %d", maxFrameLimit)
	case c.MaxBatchBytes < 1 || c.MaxBatchBytes > c.MaxFrameBytes:
		return errors.New("transport: max batch bytes must be positive and at most max frame bytes")
	case c.DialTimeout <= 0 || c.RequestTimeout <= 0:
		return errors.New("transport: dial and request timeouts must be positive")
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil && c.Listener == nil {
		return fmt.Errorf("transport: listen address %q is not host:port", c.ListenAddr)
	}
	self := crypto.PubkeyToAddress(c.Key.PublicKey)
	ids := map[uint64]bool{}
	keys := map[common.Address]uint64{}
	for _, p := range c.Peers {
		if p.ID == c.ID {
			continue
		}
		if err := p.validate(); err != nil {
			return fmt.Errorf("transport: %w", err)
		}
		if ids[p.ID] {
			return fmt.Errorf("transport: member %d is listed twice", p.ID)
		}
		if other, ok := keys[p.Address]; ok {
			return fmt.Errorf("transport: members %d and %d have the same node address %s", other, p.ID, p.Address)
		}
		if p.Address == self {
			return fmt.Errorf("transport: member %d has this node's key (%s)", p.ID, self)
		}
		ids[p.ID], keys[p.Address] = true, p.ID
	}
	return nil
}

// TCP is the cluster transport over TCP: Raft messages and calls between
// members over mutually authenticated TLS 1.3, where each member is known by
// its node key.
//
// Send queues messages per peer; one sender goroutine per peer drains its
// queue into batch requests, so messages to one peer arrive in the order
// sent, unless dropped. A failed batch is dropped (Raft retransmits) and
// reported. Received messages must come from the authenticated member and be
// addressed to this one; anything else is garbage that closes the
// connection. All methods are safe for concurrent use.
type TCP struct {
	cfg     TCPConfig
	id      uint64
	address common.Address
	logger  *slog.Logger
	metrics *tcpMetrics
	cert    tls.Certificate
	ln      net.Listener
	certs   certCache

	recv    chan *pb.Message
	reports chan Report

	// backlog holds snapshot reports that found Reports full: they must
	// not be lost, so Run's reporter delivers them, in order, when there is
	// room.
	backlogMu   sync.Mutex
	backlog     []Report
	backlogWake chan struct{}

	peersChanged chan struct{} // wakes Run to start senders for new peers
	running      atomic.Bool   // Run was called

	mu        sync.RWMutex
	peers     map[uint64]*peer
	byAddress map[common.Address]uint64
	blocked   map[uint64]bool
	handlers  map[string]Handler
	open      openMux
	inbound   map[net.Conn]common.Address // served connections and the member each authenticated as
	closing   bool                        // Run is stopping: no new requests or messages
	active    sync.WaitGroup              // requests being served; Add only under mu while !closing
}

var _ Transport = (*TCP)(nil)

// peer is one member's outbound state.
type peer struct {
	Peer
	label   string // metrics label: decimal ID
	msgsURL string
	callURL string
	queue   chan *pb.Message
	client  *http.Client
	done    chan struct{} // closed when the peer leaves the peer set
	started bool          // its sender runs; guarded by TCP.mu

	lastFailReport atomic.Int64 // unix nanoseconds of the last non-snapshot failure report
	reach          reachState   // owned by the sender goroutine
}

type reachState int

const (
	reachUnknown reachState = iota
	reachUp
	reachDown
)

// connKey is the request-context key of the served connection.
type connKey struct{}

// NewTCP validates cfg, makes this process's certificate and binds the
// listener, so Addr is known at once. It starts nothing: Run serves. A nil
// reg keeps the metrics private; a nil logger discards logs.
func NewTCP(cfg TCPConfig, logger *slog.Logger, reg prometheus.Registerer) (*TCP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	metrics, err := newTCPMetrics(reg)
	if err != nil {
		return nil, err
	}
	cert, err := newIdentity(cfg.Key, cfg.Genesis, time.Now())
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	var ln net.Listener = cfg.Listener
	if cfg.Listener == nil {
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			return nil, fmt.Errorf("transport: listen on cluster address %s: %w", cfg.ListenAddr, err)
		}
	}
	cfg.Listener = nil
	peers := cfg.Peers
	cfg.Peers = nil // the peer set lives in t.peers
	t := &TCP{
		cfg:          cfg,
		id:           cfg.ID,
		address:      crypto.PubkeyToAddress(cfg.Key.PublicKey),
		logger:       logger.With("component", "transport", "member", cfg.ID),
		metrics:      metrics,
		cert:         cert,
		ln:           ln,
		recv:         make(chan *pb.Message, receiveBuffer),
		reports:      make(chan Report, reportBuffer),
		backlogWake:  make(chan struct{}, 1),
		peersChanged: make(chan struct{}, 1),
		peers:        map[uint64]*peer{},
		byAddress:    map[common.Address]uint64{},
		blocked:      map[uint64]bool{},
		handlers:     map[string]Handler{},
		inbound:      map[net.Conn]common.Address{},
	}
	t.applyPeers(t.acceptPeers(peers))
	return t, nil
}

// Addr returns the address the listener is bound to.
func (t *TCP) Addr() string { return t.ln.Addr().String() }

// Receive delivers the messages peers sent to this member.
func (t *TCP) Receive() <-chan *pb.Message { return t.recv }

// Reports delivers delivery failures and the outcome of every snapshot message.
func (t *TCP) Reports() <-chan Report { return t.reports }

// Handle registers h for calls to method (a nil h removes it). Register
// before Run so no call finds the method missing.
func (t *TCP) Handle(method string, h Handler) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h == nil {
		delete(t.handlers, method)
		return
	}
	t.handlers[method] = h
}

// Run serves peers and runs the per-peer senders until ctx ends, then
// closes the listener and every connection and returns nil. Handlers must
// return once their context ends. A transport runs once.
func (t *TCP) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return errors.New("transport: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &http.Server{
		Handler:           http.HandlerFunc(t.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		// "OPTIONS *" reaches serveHTTP, which treats it as garbage.
		DisableGeneralOptionsHandler: true,
		// Handshake failures from strangers are routine; they are counted
		// in hansa_transport_auth_failures_total.
		ErrorLog:     slog.NewLogLogger(t.logger.Handler(), slog.LevelDebug),
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}, // HTTP/1.1 only
		BaseContext:  func(net.Listener) context.Context { return ctx },
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		ConnState: t.connState,
	}
	// Any node with a key bound to this chain completes the handshake; only
	// members get past serveHTTP to anything but the open methods.
	ln := tls.NewListener(t.ln, tlsConfig(t.cert, true, func(certs []*x509.Certificate) error {
		if len(certs) != 1 {
			t.metrics.authFailures.Inc()
			return fmt.Errorf("peer presented %d certificates, want 1", len(certs))
		}
		if _, err := certSigner(certs[0], t.cfg.Genesis, time.Now()); err != nil {
			t.metrics.authFailures.Inc()
			return err
		}
		return nil
	}))
	t.mu.RLock()
	npeers := len(t.peers)
	t.mu.RUnlock()
	t.logger.Info("cluster transport listening", "addr", t.Addr(), "node_address", t.address, "peers", npeers,
		"queue_size", t.cfg.QueueSize, "max_batch_bytes", t.cfg.MaxBatchBytes, "max_frame_bytes", t.cfg.MaxFrameBytes,
		"dial_timeout", t.cfg.DialTimeout, "request_timeout", t.cfg.RequestTimeout)

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }() // waited for below
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.flushBacklog(ctx)
	}()
	t.startSenders(ctx, &wg)

	var err error
	served := false
	for !served && ctx.Err() == nil {
		select {
		case <-t.peersChanged:
			t.startSenders(ctx, &wg)
		case err = <-serveErr:
			served = true
		case <-ctx.Done():
		}
	}

	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	cancel()
	_ = srv.Close()
	_ = t.ln.Close() // in case Serve never took it over
	if !served {
		err = <-serveErr
	}
	t.active.Wait()
	wg.Wait()
	t.mu.RLock()
	for _, p := range t.peers {
		p.client.CloseIdleConnections()
	}
	t.mu.RUnlock()
	t.logger.Info("cluster transport stopped")
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("transport: serve: %w", err)
	}
	return nil
}

// startSenders starts the sender of every peer that has none.
func (t *TCP) startSenders(ctx context.Context, wg *sync.WaitGroup) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.peers {
		if p.started {
			continue
		}
		p.started = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.sendLoop(ctx, p)
		}()
	}
}

// SetPeers replaces the peer set. A member that left, or whose key or
// address changed, loses its queue (reported as dropped), its sender, its
// outbound connections and any connection it opened to this node; its
// requests are refused from now on. Invalid entries are logged and skipped.
func (t *TCP) SetPeers(peers []Peer) {
	added, removed := t.applyPeers(t.acceptPeers(peers))
	if len(added)+len(removed) > 0 {
		t.logger.Info("peer set changed", "added", added, "removed", removed)
	}
}

// acceptPeers returns the valid entries of peers by ID, leaving out this
// node, logging and skipping the rest.
func (t *TCP) acceptPeers(peers []Peer) map[uint64]Peer {
	next := map[uint64]Peer{}
	keys := map[common.Address]bool{t.address: true}
	for _, p := range peers {
		if p.ID == t.id {
			continue
		}
		err := p.validate()
		switch {
		case err != nil:
		case next[p.ID] != (Peer{}):
			err = errors.New("listed twice")
		case keys[p.Address]:
			err = fmt.Errorf("node address %s is already another member's or this node's", p.Address)
		}
		if err != nil {
			t.logger.Error("invalid peer ignored", "peer", p.ID, "err", err)
			continue
		}
		next[p.ID], keys[p.Address] = p, true
	}
	return next
}

// applyPeers installs next as the peer set.
func (t *TCP) applyPeers(next map[uint64]Peer) (added, removed []uint64) {
	var gone []*peer
	var conns []net.Conn
	t.mu.Lock()
	for id, p := range t.peers {
		if np, ok := next[id]; !ok || np != p.Peer {
			delete(t.peers, id)
			gone = append(gone, p)
			removed = append(removed, id)
		}
	}
	for id, np := range next {
		if t.peers[id] == nil {
			t.peers[id] = t.newPeer(np)
			added = append(added, id)
		}
	}
	clear(t.byAddress)
	for id, p := range t.peers {
		t.byAddress[p.Address] = id
	}
	for c, a := range t.inbound {
		if _, ok := t.byAddress[a]; !ok {
			conns = append(conns, c)
			delete(t.inbound, c)
		}
	}
	var idle []*peer // peers without a sender to clean up after them
	for _, p := range gone {
		if !p.started {
			idle = append(idle, p)
		}
	}
	t.mu.Unlock()

	for _, p := range gone {
		close(p.done)
		p.client.CloseIdleConnections()
	}
	for _, p := range idle {
		t.senderExit(p)
	}
	for _, c := range conns {
		_ = c.Close()
	}
	select {
	case t.peersChanged <- struct{}{}:
	default:
	}
	return added, removed
}

// newPeer returns the outbound state for p. t.mu is held.
func (t *TCP) newPeer(p Peer) *peer {
	np := &peer{
		Peer:    p,
		label:   strconv.FormatUint(p.ID, 10),
		msgsURL: "https://" + p.Addr + msgsPath,
		callURL: "https://" + p.Addr + callPrefix,
		queue:   make(chan *pb.Message, t.cfg.QueueSize),
		done:    make(chan struct{}),
	}
	verify := func(certs []*x509.Certificate) error {
		id, signer, err := t.identify(certs)
		if err != nil {
			return err
		}
		if id != p.ID {
			return fmt.Errorf("%s presented the key of member %d (%s), not of member %d", p.Addr, id, signer, p.ID)
		}
		return nil
	}
	dialer := &net.Dialer{Timeout: t.cfg.DialTimeout, KeepAlive: 15 * time.Second}
	np.client = &http.Client{
		Transport: &http.Transport{
			DialContext:            dialer.DialContext,
			TLSClientConfig:        tlsConfig(t.cert, false, verify),
			TLSHandshakeTimeout:    t.cfg.DialTimeout,
			TLSNextProto:           map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        90 * time.Second,
			DisableCompression:     true,
			MaxResponseHeaderBytes: 16 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	t.metrics.reachable.WithLabelValues(np.label).Set(0)
	return np
}

// identify returns the member whose node key signed the binding of the
// peer's certificate. It fails unless there is exactly one certificate,
// currently valid, bound for this chain to the key of a current member.
// t.mu must not be held.
func (t *TCP) identify(certs []*x509.Certificate) (uint64, common.Address, error) {
	if len(certs) != 1 {
		t.metrics.authFailures.Inc()
		return 0, common.Address{}, fmt.Errorf("peer presented %d certificates, want 1", len(certs))
	}
	cert, now := certs[0], time.Now()
	signer, cached := t.certs.get(cert.Raw, now)
	if !cached {
		var err error
		if signer, err = certSigner(cert, t.cfg.Genesis, now); err != nil {
			t.metrics.authFailures.Inc()
			return 0, common.Address{}, err
		}
	}
	t.mu.RLock()
	id, ok := t.byAddress[signer]
	t.mu.RUnlock()
	if !ok {
		t.metrics.authFailures.Inc()
		return 0, signer, fmt.Errorf("node key %s is not a member's", signer)
	}
	if !cached {
		t.certs.put(cert, signer)
	}
	return id, signer, nil
}

// Block drops all traffic to and from the given members — messages and
// calls, both ways — until Unblock. It is for fault-injection tests.
func (t *TCP) Block(ids ...uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		t.blocked[id] = true
	}
	t.logger.Info("traffic blocked", "peers", ids)
}

// Unblock restores traffic with the given members, or with all when none
// are given.
func (t *TCP) Unblock(ids ...uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(ids) == 0 {
		clear(t.blocked)
	}
	for _, id := range ids {
		delete(t.blocked, id)
	}
	t.logger.Info("traffic unblocked", "peers", ids)
}

func (t *TCP) isBlocked(id uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.blocked[id]
}
