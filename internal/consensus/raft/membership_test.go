package raft_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/hansa-chain/hansa/internal/consensus/raft"
)

// addMember adds a store for a member that joins later.
func (c *cluster) addMember(id uint64) {
	store, err := raft.OpenLogStore(memorydb.New(), func() error { return nil })
	if err != nil {
		c.t.Fatal(err)
	}
	c.members[id] = &member{id: id, store: store, joiner: true}
	c.start(id)
}

func (c *cluster) confChange(lead uint64, typ pb.ConfChangeType, id uint64, context string) {
	c.t.Helper()
	cc := &pb.ConfChange{Type: typ.Enum(), NodeId: new(id), Context: []byte(context)}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.members[lead].engine.ProposeConfChange(c.t.Context(), cc)
		if err == nil {
			return
		}
		if !errors.Is(err, raft.ErrConfChangePending) || time.Now().After(deadline) {
			c.t.Fatalf("conf change %s %d on %d: %v", typ, id, lead, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitConfig waits until member id's engine reports voters and learners.
func (c *cluster) waitConfig(id uint64, voters, learners []uint64) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		d := c.members[id].engine.Detail()
		if slices.Equal(d.Voters, voters) && slices.Equal(d.Learners, learners) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := c.members[id].engine.Detail()
	c.t.Fatalf("member %d: voters %v learners %v, want %v %v", id, d.Voters, d.Learners, voters, learners)
}

// A member added as a learner restores a snapshot that includes it (taken
// at once for it, not after SnapshotEntries), follows the log, is promoted
// and removed; the changes reach the node as entries with the resulting
// configuration, and survive restarts (replayed from the log).
func TestEngineMembershipChanges(t *testing.T) {
	c := newCluster(t, 3)
	lead := c.leader(1, 2, 3)
	c.propose(lead, items("a", 5)...)
	c.waitApplied(items("a", 5), 1, 2, 3)

	c.confChange(lead, pb.ConfChangeType_ConfChangeAddLearnerNode, 4, "add 4")
	c.waitConfig(lead, []uint64{1, 2, 3}, []uint64{4})
	c.addMember(4)
	c.propose(lead, items("b", 5)...)
	all := append(items("a", 5), items("b", 5)...)
	c.waitApplied(all, 1, 2, 3)
	// Member 4 starts from a snapshot (it never sees the a's one by one).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := c.members[4].entries(); len(got) > 0 && got[len(got)-1] == "b4" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	m4 := c.members[4]
	m4.mu.Lock()
	snaps, got := slices.Clone(m4.snapshots), slices.Clone(m4.applied)
	m4.mu.Unlock()
	if len(snaps) == 0 {
		t.Fatalf("member 4 applied %v without a snapshot", got)
	}
	if cfg := snaps[0].Config; cfg == nil || !slices.Equal(cfg.Learners, []uint64{4}) || !slices.Equal(cfg.Voters, []uint64{1, 2, 3}) {
		t.Fatalf("member 4's snapshot has configuration %+v, want voters [1 2 3] and learner 4", snaps[0].Config)
	}
	if len(got) == 0 || got[len(got)-1] != "b4" {
		t.Fatalf("member 4 applied %v, want the entries after its snapshot up to b4", got)
	}
	if st := m4.engine.Status(); st.Role != "learner" {
		t.Fatalf("member 4 role %q, want learner", st.Role)
	}

	// Every member was told about the change, with the resulting config.
	for _, id := range []uint64{1, 2, 3} {
		m := c.members[id]
		m.mu.Lock()
		cfgs := slices.Clone(m.configs)
		m.mu.Unlock()
		if len(cfgs) != 1 || string(cfgs[0].Data) != "add 4" || !slices.Equal(cfgs[0].Config.Learners, []uint64{4}) {
			t.Fatalf("member %d got config entries %+v", id, cfgs)
		}
	}

	c.confChange(lead, pb.ConfChangeType_ConfChangeAddNode, 4, "promote 4")
	for _, id := range []uint64{1, 2, 3, 4} {
		c.waitConfig(id, []uint64{1, 2, 3, 4}, nil)
	}
	// A restarted member replays the changes after its snapshot.
	other := c.peers[lead%3]
	c.stop(other)
	c.start(other)
	c.waitConfig(other, []uint64{1, 2, 3, 4}, nil)

	lead = c.leader(1, 2, 3, 4)
	c.confChange(lead, pb.ConfChangeType_ConfChangeRemoveNode, 4, "remove 4")
	c.waitConfig(lead, []uint64{1, 2, 3}, nil)
	c.propose(lead, "c")
	c.waitApplied(append(all, "c"), 1, 2, 3)
	if slices.Contains(c.members[4].entries(), "c") {
		t.Fatal("a removed member applied an entry committed after its removal")
	}
}

// Removing the last voter is refused identically by every member: the
// entry reaches the node marked Rejected and the configuration stays.
func TestEngineRefusesRemovingTheLastVoter(t *testing.T) {
	c := newCluster(t, 1)
	lead := c.leader(1)
	c.confChange(lead, pb.ConfChangeType_ConfChangeRemoveNode, 1, "remove 1")
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m := c.members[1]
		m.mu.Lock()
		cfgs := slices.Clone(m.configs)
		m.mu.Unlock()
		if len(cfgs) == 1 {
			if !cfgs[0].Config.Rejected || !slices.Equal(cfgs[0].Config.Voters, []uint64{1}) {
				t.Fatalf("config entry %+v, want rejected with voters [1]", cfgs[0].Config)
			}
			c.propose(lead, "still here")
			c.waitApplied([]string{"still here"}, 1)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the removal never reached the node")
}
