// Package transport carries consensus messages between members. This file
// is the in-memory network used by fault tests: every member is an endpoint,
// and the test cuts and heals links. The authenticated network transport for
// real deployments comes with the Raft replication issue.
package transport

import (
	"sync"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Network is an in-memory network of endpoints. It is safe for concurrent use.
type Network struct {
	mu       sync.Mutex
	inboxes  map[uint64]chan *pb.Message
	cut      map[[2]uint64]bool // directed links that drop messages
	isolated map[uint64]bool
	dropped  int
}

// NewNetwork returns an empty network.
func NewNetwork() *Network {
	return &Network{inboxes: map[uint64]chan *pb.Message{}, cut: map[[2]uint64]bool{}, isolated: map[uint64]bool{}}
}

// Endpoint returns member id's endpoint, creating its inbox on first use.
func (n *Network) Endpoint(id uint64) *Endpoint {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.inboxes[id]; !ok {
		n.inboxes[id] = make(chan *pb.Message, 4096)
	}
	return &Endpoint{net: n, id: id, inbox: n.inboxes[id]}
}

// Isolate drops every message to and from id until Heal.
func (n *Network) Isolate(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = true
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

// Heal restores every link.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	clear(n.cut)
	clear(n.isolated)
}

// Dropped counts messages dropped by cuts, isolation or full inboxes.
func (n *Network) Dropped() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

// Endpoint is one member's attachment to a Network.
type Endpoint struct {
	net   *Network
	id    uint64
	inbox chan *pb.Message
}

// Send delivers copies of msgs to their recipients without blocking; a
// message over a cut link or to a full inbox is dropped.
func (e *Endpoint) Send(msgs []*pb.Message) {
	n := e.net
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range msgs {
		to := m.GetTo()
		inbox, ok := n.inboxes[to]
		if !ok || n.isolated[e.id] || n.isolated[to] || n.cut[[2]uint64{e.id, to}] {
			n.dropped++
			continue
		}
		select {
		case inbox <- proto.Clone(m).(*pb.Message):
		default:
			n.dropped++
		}
	}
}

// Receive delivers messages addressed to this endpoint.
func (e *Endpoint) Receive() <-chan *pb.Message { return e.inbox }
