// Package transport carries consensus messages and node-to-node calls
// between members. This file is the in-memory network used by fault tests:
// every member is an endpoint; the test cuts and heals links and, with
// SetFaults, drops, duplicates and delays messages from a seeded random
// source. The authenticated network transport is in tcp.go.
package transport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Faults are the random message faults of a Network. Rates are
// probabilities per message; a delayed message arrives after a random delay
// up to MaxDelay, so delayed messages also reorder.
type Faults struct {
	Drop, Duplicate, Delay float64
	MaxDelay               time.Duration
}

// Network is an in-memory network of endpoints. It is safe for concurrent use.
type Network struct {
	mu       sync.Mutex
	inboxes  map[uint64]chan *pb.Message
	handlers map[uint64]map[string]Handler
	reports  map[uint64]chan Report
	cut      map[[2]uint64]bool // directed links that drop messages
	isolated map[uint64]bool
	down     map[uint64]bool // crashed members: nothing in or out
	dropped  int
	faults   Faults
	rng      *rand.Rand
}

// NewNetwork returns an empty network without random faults.
func NewNetwork() *Network {
	return &Network{inboxes: map[uint64]chan *pb.Message{}, handlers: map[uint64]map[string]Handler{},
		reports: map[uint64]chan Report{}, cut: map[[2]uint64]bool{}, isolated: map[uint64]bool{},
		down: map[uint64]bool{}, rng: rand.New(rand.NewPCG(1, 1))}
}

// SetFaults sets the random faults, drawn from a source seeded with seed.
func (n *Network) SetFaults(f Faults, seed uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.faults, n.rng = f, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Endpoint returns member id's endpoint, creating its inbox on first use.
// A member restarted after a crash gets the same inbox back (drained).
func (n *Network) Endpoint(id uint64) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.inboxes[id]; !ok {
		n.inboxes[id] = make(chan *pb.Message, 4096)
		n.reports[id] = make(chan Report, 1024)
		n.handlers[id] = map[string]Handler{}
	}
	return &Endpoint{net: n, id: id, inbox: n.inboxes[id], reports: n.reports[id]}
}

// Isolate drops every message to and from id until Heal.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
}

// Crash marks id down (nothing in or out) and discards its queued
// messages, as a killed process loses what was in flight to it.
func (n *Network) Crash(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[id] = true
	if inbox, ok := n.inboxes[id]; ok {
		for len(inbox) > 0 {
			<-inbox
		}
	}
	n.handlers[id] = map[string]Handler{}
}

// Restart marks a crashed id up again.
func (n *Network) Restart(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.down, id)
}

// Partition splits the network: messages between members of different
// groups are dropped until Heal. Members in no group are isolated.
func (n *Network) Partition(groups ...[]uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	group := map[uint64]int{}
	for i, g := range groups {
		for _, id := range g {
			group[id] = i + 1
		}
	}
	for a := range n.inboxes {
		for b := range n.inboxes {
			if a != b && (group[a] == 0 || group[a] != group[b]) {
				n.cut[[2]uint64{a, b}] = true
			}
		}
	}
}

// Heal restores every link (crashed members stay down).
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	clear(n.isolated)
}

// Dropped counts messages dropped by cuts, isolation, faults or full inboxes.
func (n *Network) Dropped() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

// blockedLocked reports whether traffic from a to b is cut. n.mu is held.
func (n *Network) blockedLocked(a, b uint64) bool {
	return n.down[a] || n.down[b] || n.isolated[a] || n.isolated[b] || n.cut[[2]uint64{a, b}]
}

// Endpoint is one member's attachment to a Network.
type Endpoint struct {
	net     *Network
	id      uint64
	inbox   chan *pb.Message
	reports chan Report
}

var _ Transport = (*Endpoint)(nil)

// Send delivers copies of msgs to their recipients without blocking; a
// message over a cut link, dropped by the faults or to a full inbox is lost
// (and reported, as the TCP transport does).
func (e *Endpoint) Send(msgs []*pb.Message) {
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range msgs {
		to := m.GetTo()
		inbox, ok := n.inboxes[to]
		snap := m.GetType() == pb.MessageType_MsgSnap
		if !ok || n.blockedLocked(e.id, to) || n.rng.Float64() < n.faults.Drop {
			n.dropped++
			e.report(Report{To: to, Snapshot: snap, Failed: true})
			continue
		}
		copies := 1
		if n.rng.Float64() < n.faults.Duplicate {
			copies = 2
		}
		for range copies {
			c := proto.Clone(m).(*pb.Message)
			if n.faults.MaxDelay > 0 && n.rng.Float64() < n.faults.Delay {
				d := time.Duration(n.rng.Int64N(int64(n.faults.MaxDelay)))
				from := e.id
				time.AfterFunc(d, func() { n.deliver(from, inbox, c) })
				continue
			}
			if !n.deliverLocked(inbox, c) {
				e.report(Report{To: to, Snapshot: snap, Failed: true})
				snap = false
			}
		}
		if snap {
			e.report(Report{To: to, Snapshot: true})
		}
	}
}

func (n *Network) deliver(from uint64, inbox chan *pb.Message, m *pb.Message) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.blockedLocked(from, m.GetTo()) {
		n.dropped++
		return
	}
	n.deliverLocked(inbox, m)
}

func (n *Network) deliverLocked(inbox chan *pb.Message, m *pb.Message) bool {
	select {
	case inbox <- m:
		return true
	default:
		n.dropped++
		return false
	}
}

func (e *Endpoint) report(r Report) {
	select {
	case e.reports <- r:
	default:
	}
}

// Receive delivers messages addressed to this endpoint.
func (e *Endpoint) Receive() <-chan *pb.Message { return e.inbox }

// Reports implements Transport.
func (e *Endpoint) Reports() <-chan Report { return e.reports }

// Handle implements Transport.
func (e *Endpoint) Handle(method string, h Handler) {
	e.net.mu.Lock()
	defer e.net.mu.Unlock()
	e.net.handlers[e.id][method] = h
}

// Call implements Transport; calls cross the same cuts as messages.
func (e *Endpoint) Call(ctx context.Context, to uint64, method string, req []byte) ([]byte, error) {
	n := e.net
	n.mu.Lock()
	hs, ok := n.handlers[to]
	blocked := n.blockedLocked(e.id, to) || n.blockedLocked(to, e.id)
	var h Handler
	if ok {
		h = hs[method]
	}
	n.mu.Unlock()
	switch {
	case !ok:
		return nil, ErrUnknownPeer
	case blocked:
		return nil, fmt.Errorf("call %s to member %d: unreachable", method, to)
	case h == nil:
		return nil, &RemoteError{Msg: ErrUnknownMethod.Error()}
	}
	resp, err := h(ctx, e.id, append([]byte(nil), req...))
	if err != nil {
		return nil, &RemoteError{Msg: err.Error()}
	}
	return resp, nil
}

// Run implements Transport: the network needs no goroutine of its own.
func (e *Endpoint) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
