package raft_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethdb/memorydb"

	"github.com/hansa-chain/hansa/internal/consensus"
	"github.com/hansa-chain/hansa/internal/consensus/raft"
	"github.com/hansa-chain/hansa/internal/transport"
)

// member is one engine with the node-side consumer of its committed entries.
type member struct {
	id     uint64
	store  *raft.LogStore
	engine *raft.Engine
	joiner bool
	cancel context.CancelFunc
	done   chan struct{}

	mu        sync.Mutex
	applied   []string
	snapshots []consensus.Entry
	configs   []consensus.Entry
	index     uint64
}

func (m *member) entries() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.applied)
}

type cluster struct {
	t       *testing.T
	mutate  func(*raft.Config)
	net     *transport.Network
	peers   []uint64
	members map[uint64]*member
}

func newCluster(t *testing.T, n int) *cluster {
	c := &cluster{t: t, net: transport.NewNetwork(), members: map[uint64]*member{}}
	for i := 1; i <= n; i++ {
		c.peers = append(c.peers, uint64(i))
	}
	for _, id := range c.peers {
		store, err := raft.OpenLogStore(memorydb.New(), func() error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		c.members[id] = &member{id: id, store: store}
		c.start(id)
	}
	t.Cleanup(func() {
		for _, m := range c.members {
			c.stop(m.id)
		}
	})
	return c
}

func (c *cluster) start(id uint64) {
	m := c.members[id]
	peers := c.peers
	if m.joiner {
		peers = nil // a member added later starts with no configuration
	}
	cfg := raft.DefaultConfig(id, peers)
	cfg.TickInterval = 5 * time.Millisecond
	if c.mutate != nil {
		c.mutate(&cfg)
	}
	e, err := raft.New(cfg, m.store, c.net.Endpoint(id), m.index, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.engine, m.cancel, m.done = e, cancel, make(chan struct{})
	go func() {
		defer close(m.done)
		errc := make(chan error, 1)
		go func() { errc <- e.Run(ctx) }()
		for {
			select {
			case ent := <-e.Committed():
				m.mu.Lock()
				switch {
				case ent.Snapshot:
					m.snapshots = append(m.snapshots, ent)
				case ent.Config != nil:
					m.configs = append(m.configs, ent)
				default:
					m.applied = append(m.applied, string(ent.Data))
				}
				m.index = ent.Index
				m.mu.Unlock()
				e.Applied(ent.Index)
				if e.SnapshotDue(ent.Index) {
					e.Checkpoint(ent.Index, []byte(fmt.Sprintf("checkpoint %d", ent.Index)))
				}
			case err := <-errc:
				if err != nil {
					c.t.Errorf("member %d: %v", id, err)
				}
				return
			}
		}
	}()
}

func (c *cluster) stop(id uint64) {
	m := c.members[id]
	if m.cancel != nil {
		m.cancel()
		<-m.done
		m.cancel = nil
	}
}

// leader waits until the running members agree on one leader among them.
func (c *cluster) leader(running ...uint64) uint64 {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		lead := c.members[running[0]].engine.Status().LeaderID
		agree := lead != 0 && slices.Contains(running, lead)
		for _, id := range running[1:] {
			agree = agree && c.members[id].engine.Status().LeaderID == lead
		}
		if agree {
			return lead
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.t.Fatalf("no agreed leader among %v", running)
	return 0
}

func (c *cluster) propose(lead uint64, items ...string) {
	for _, it := range items {
		if err := c.members[lead].engine.Propose(c.t.Context(), []byte(it)); err != nil {
			c.t.Fatalf("propose %q on %d: %v", it, lead, err)
		}
	}
}

// waitApplied waits until each member applied exactly want.
func (c *cluster) waitApplied(want []string, ids ...uint64) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ok := true
		for _, id := range ids {
			ok = ok && slices.Equal(c.members[id].entries(), want)
		}
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, id := range ids {
		c.t.Errorf("member %d applied %v", id, c.members[id].entries())
	}
	c.t.Fatalf("want %v on %v", want, ids)
}

func items(prefix string, n int) []string {
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, fmt.Sprintf("%s%d", prefix, i))
	}
	return out
}

func TestEngineReplicatesAndSurvivesLeaderLoss(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(1, 2, 3)
	first := items("a", 20)
	c.propose(lead, first...)
	c.waitApplied(first, 1, 2, 3)

	// A follower refuses proposals.
	follower := c.peers[lead%3]
	if err := c.members[follower].engine.Propose(t.Context(), []byte("x")); !errors.Is(err, consensus.ErrNotLeader) {
		t.Fatalf("follower propose: %v, want ErrNotLeader", err)
	}

	// The leader dies; the other two elect a new one and keep committing.
	c.stop(lead)
	c.net.Isolate(lead)
	var rest []uint64
	for _, id := range c.peers {
		if id != lead {
			rest = append(rest, id)
		}
	}
	newLead := c.leader(rest...)
	if newLead == lead {
		t.Fatal("the dead member is still the leader")
	}
	second := items("b", 10)
	c.propose(newLead, second...)
	all := append(slices.Clone(first), second...)
	c.waitApplied(all, rest...)

	// The old leader restarts from its durable log and applied index and
	// catches up, delivering only what it had not applied.
	c.net.Heal()
	c.start(lead)
	c.waitApplied(all, c.peers...)
}

func TestEngineMinorityCannotCommit(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(1, 2, 3)
	c.propose(lead, "before")
	c.waitApplied([]string{"before"}, 1, 2, 3)

	// Put the leader alone in a minority partition.
	var majority []uint64
	for _, id := range c.peers {
		if id != lead {
			majority = append(majority, id)
		}
	}
	c.net.Partition([]uint64{lead}, majority)
	_ = c.members[lead].engine.Propose(t.Context(), []byte("lost")) // may be accepted by the stale leader; it never commits
	newLead := c.leader(majority...)
	c.propose(newLead, "after")
	c.waitApplied([]string{"before", "after"}, majority...)
	if got := c.members[lead].entries(); !slices.Equal(got, []string{"before"}) {
		t.Fatalf("the minority applied %v", got)
	}
	// Healed, the old leader adopts the majority's log; "lost" never commits.
	c.net.Heal()
	c.waitApplied([]string{"before", "after"}, c.peers...)
}

func TestEngineHandsLeadershipOverOnStop(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(1, 2, 3)
	c.propose(lead, "x")
	c.waitApplied([]string{"x"}, 1, 2, 3)
	// Restart the followers with an election timeout far longer than the
	// wait below, so only a hand-over can produce a new leader in time.
	var rest []uint64
	for _, id := range c.peers {
		if id != lead {
			rest = append(rest, id)
		}
	}
	c.mutate = func(cfg *raft.Config) { cfg.ElectionTicks = 2000 } // 10 s
	for _, id := range rest {
		c.stop(id)
		c.start(id)
	}
	c.leader(c.peers...)
	term := c.members[lead].engine.Status().Term
	stopped := time.Now()
	c.stop(lead) // graceful: the engine hands leadership over before Run returns
	deadline := stopped.Add(3 * time.Second)
	for time.Now().Before(deadline) {
		st := c.members[rest[0]].engine.Status()
		if st.LeaderID != 0 && st.LeaderID != lead && st.Term > term {
			c.propose(st.LeaderID, "y")
			c.waitApplied([]string{"x", "y"}, rest...)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no new leader 3 s after the leader stopped (election timeout 10 s): leadership was not handed over")
}
