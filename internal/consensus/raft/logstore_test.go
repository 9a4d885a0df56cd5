package raft

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/ethdb/pebble"
	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
)

// kvBackend opens the same store again on reopen (a restart).
type kvBackend struct {
	name   string
	open   func(t *testing.T) ethdb.KeyValueStore
	reopen func(t *testing.T, old ethdb.KeyValueStore) ethdb.KeyValueStore
}

func backends() []kvBackend {
	return []kvBackend{
		{
			name:   "memory",
			open:   func(t *testing.T) ethdb.KeyValueStore { return memorydb.New() },
			reopen: func(t *testing.T, old ethdb.KeyValueStore) ethdb.KeyValueStore { return old },
		},
		{
			name: "pebble",
			open: func(t *testing.T) ethdb.KeyValueStore {
				dir := t.TempDir()
				db, err := pebble.New(dir, 16, 16, "", false)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dirs[db] = dir
				return db
			},
			reopen: func(t *testing.T, old ethdb.KeyValueStore) ethdb.KeyValueStore {
				dir := dirs[old.(*pebble.Database)]
				old.Close() // pebble keeps synced writes; this is what a restart sees
				db, err := pebble.New(dir, 16, 16, "", false)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { db.Close() })
				dirs[db] = dir
				return db
			},
		},
	}
}

var dirs = map[*pebble.Database]string{}

func syncer(kv ethdb.KeyValueStore) func() error {
	if db, ok := kv.(*pebble.Database); ok {
		return db.SyncKeyValue
	}
	return func() error { return nil }
}

func open(t *testing.T, kv ethdb.KeyValueStore) *LogStore {
	s, err := OpenLogStore(kv, syncer(kv))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func entries(from, to, term uint64) []*pb.Entry {
	var out []*pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &pb.Entry{Index: new(i), Term: new(term), Data: []byte(fmt.Sprintf("e%d-t%d", i, term))})
	}
	return out
}

func forEach(t *testing.T, f func(t *testing.T, b kvBackend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func mustIndexes(t *testing.T, s *LogStore, first, last uint64) {
	t.Helper()
	if got, _ := s.FirstIndex(); got != first {
		t.Fatalf("first index %d, want %d", got, first)
	}
	if got, _ := s.LastIndex(); got != last {
		t.Fatalf("last index %d, want %d", got, last)
	}
}

func TestLogStoreSurvivesRestart(t *testing.T) {
	forEach(t, func(t *testing.T, b kvBackend) {
		kv := b.open(t)
		s := open(t, kv)
		hs := &pb.HardState{Term: new(uint64(3)), Vote: new(uint64(2)), Commit: new(uint64(7))}
		if err := s.Save(hs, entries(1, 10, 3), nil); err != nil {
			t.Fatal(err)
		}
		s = open(t, b.reopen(t, kv))
		gotHS, _, err := s.InitialState()
		if err != nil || gotHS.GetTerm() != 3 || gotHS.GetVote() != 2 || gotHS.GetCommit() != 7 {
			t.Fatalf("hard state %v (%v)", gotHS, err)
		}
		mustIndexes(t, s, 1, 10)
		ents, err := s.Entries(4, 6, 1<<20)
		if err != nil || len(ents) != 2 || !bytes.Equal(ents[1].GetData(), []byte("e5-t3")) {
			t.Fatalf("entries %v (%v)", ents, err)
		}
	})
}

// A new leader's entries replace an uncommitted suffix, on disk too.
func TestLogStoreTruncatesConflictingSuffix(t *testing.T) {
	forEach(t, func(t *testing.T, b kvBackend) {
		kv := b.open(t)
		s := open(t, kv)
		if err := s.Save(nil, entries(1, 10, 1), nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(nil, entries(6, 7, 2), nil); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s, 1, 7)
		s = open(t, b.reopen(t, kv))
		mustIndexes(t, s, 1, 7)
		if term, _ := s.Term(6); term != 2 {
			t.Fatalf("term of 6 is %d, want 2", term)
		}
		if term, _ := s.Term(5); term != 1 {
			t.Fatalf("term of 5 is %d, want 1", term)
		}
	})
}

func TestLogStoreSnapshotAndCompaction(t *testing.T) {
	forEach(t, func(t *testing.T, b kvBackend) {
		kv := b.open(t)
		s := open(t, kv)
		if err := s.Save(&pb.HardState{Term: new(uint64(1)), Commit: new(uint64(10))}, entries(1, 10, 1), nil); err != nil {
			t.Fatal(err)
		}
		cs := &pb.ConfState{Voters: []uint64{1, 2, 3}}
		if _, err := s.CreateSnapshot(8, cs, []byte("height 8")); err != nil {
			t.Fatal(err)
		}
		if err := s.Compact(9); err == nil {
			t.Fatal("compacted beyond the snapshot")
		}
		if err := s.Compact(5); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s, 6, 10)
		if _, err := s.Entries(3, 6, 1<<20); err != etcdraft.ErrCompacted {
			t.Fatalf("reading compacted entries: %v, want ErrCompacted", err)
		}
		// After a restart the log starts after the snapshot.
		s = open(t, b.reopen(t, kv))
		mustIndexes(t, s, 9, 10)
		snap, err := s.Snapshot()
		if err != nil || snap.GetMetadata().GetIndex() != 8 || string(snap.GetData()) != "height 8" || len(snap.GetMetadata().GetConfState().GetVoters()) != 3 {
			t.Fatalf("snapshot %v (%v)", snap, err)
		}
		if term, _ := s.Term(8); term != 1 {
			t.Fatalf("term of the snapshot index %d", term)
		}
	})
}

// A follower that receives a leader's snapshot drops its older log.
func TestLogStoreSavesReceivedSnapshot(t *testing.T) {
	forEach(t, func(t *testing.T, b kvBackend) {
		kv := b.open(t)
		s := open(t, kv)
		if err := s.Save(nil, entries(1, 5, 1), nil); err != nil {
			t.Fatal(err)
		}
		snap := &pb.Snapshot{Data: []byte("height 20"), Metadata: &pb.SnapshotMetadata{Index: new(uint64(20)), Term: new(uint64(4)), ConfState: &pb.ConfState{Voters: []uint64{1}}}}
		if err := s.Save(&pb.HardState{Term: new(uint64(4)), Commit: new(uint64(20))}, nil, snap); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s, 21, 20)
		s = open(t, b.reopen(t, kv))
		mustIndexes(t, s, 21, 20)
		if err := s.Save(nil, entries(21, 22, 4), nil); err != nil {
			t.Fatal(err)
		}
		mustIndexes(t, s, 21, 22)
	})
}

// A real etcd raft node on this storage: entries it committed before a
// restart are committed, in the same order, after it.
func TestRawNodeRestartsFromLogStore(t *testing.T) {
	forEach(t, func(t *testing.T, b kvBackend) {
		kv := b.open(t)
		s := open(t, kv)
		if err := s.Save(nil, nil, &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(uint64(1)), Term: new(uint64(1)), ConfState: &pb.ConfState{Voters: []uint64{1}}}}); err != nil {
			t.Fatal(err)
		}
		committed := runNode(t, s, []string{"a", "b", "c"})
		if len(committed) != 3 {
			t.Fatalf("committed %v", committed)
		}
		s = open(t, b.reopen(t, kv))
		again := runNode(t, s, []string{"d"})
		want := []string{"a", "b", "c", "d"}
		if fmt.Sprint(again) != fmt.Sprint(want) {
			t.Fatalf("after restart committed %v, want %v", again, want)
		}
	})
}

// runNode drives a single-voter RawNode on s: elects it, proposes props,
// and returns every normal entry it applies (re-applied from the log after
// a restart, since this test keeps no applied index).
func runNode(t *testing.T, s *LogStore, props []string) []string {
	t.Helper()
	rn, err := etcdraft.NewRawNode(&etcdraft.Config{ID: 1, ElectionTick: 10, HeartbeatTick: 1, Storage: s, MaxSizePerMsg: 1 << 20, MaxInflightMsgs: 256})
	if err != nil {
		t.Fatal(err)
	}
	if err := rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	var applied []string
	proposed := false
	for round := 0; round < 100; round++ {
		if rn.HasReady() {
			rd := rn.Ready()
			var hs *pb.HardState
			if !etcdraft.IsEmptyHardState(rd.HardState) {
				hs = rd.HardState
			}
			var snap *pb.Snapshot
			if !etcdraft.IsEmptySnap(rd.Snapshot) {
				snap = rd.Snapshot
			}
			if err := s.Save(hs, rd.Entries, snap); err != nil {
				t.Fatal(err)
			}
			for _, e := range rd.CommittedEntries {
				if e.GetType() == pb.EntryType_EntryNormal && len(e.GetData()) > 0 {
					applied = append(applied, string(e.GetData()))
				}
			}
			rn.Advance(rd)
			continue
		}
		if rn.Status().RaftState == etcdraft.StateLeader && !proposed {
			for _, p := range props {
				if err := rn.Propose([]byte(p)); err != nil {
					t.Fatal(err)
				}
			}
			proposed = true
			continue
		}
		if proposed {
			break
		}
		rn.Tick()
	}
	return applied
}
