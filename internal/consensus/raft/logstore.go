// Package raft is Hansa's Raft consensus engine over go.etcd.io/raft/v3. This
// file is its durable log: the entries, hard state and snapshot metadata
// that Raft needs back after a crash.
package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/ethdb"
	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Keys of the log store; the "x" prefix is Hansa's (go-ethereum uses none).
var (
	entryPrefix  = []byte("xRe") // + 8-byte big-endian index → Entry
	hardStateKey = []byte("xRh") // → HardState
	snapshotKey  = []byte("xRs") // → Snapshot (metadata and data)
)

func entryKey(index uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{}, entryPrefix...), index)
}

// LogStore is a durable raft.Storage. It keeps the log in etcd raft's own
// MemoryStorage, which implements the Storage semantics, and writes every
// change through to a key-value store, synced before Save returns: Raft's
// rule that entries and hard state are durable before messages that depend
// on them are sent.
//
// Concurrency: the read methods (raft.Storage) are safe for concurrent use;
// Save, CreateSnapshot and Compact are called by one goroutine, the node's
// Ready loop.
type LogStore struct {
	mem  *etcdraft.MemoryStorage // never mutated except after a durable write
	kv   ethdb.KeyValueStore
	sync func() error

	mu sync.Mutex // serialises writers

	held atomic.Bool // Snapshot answers "temporarily unavailable"
}

var _ etcdraft.Storage = (*LogStore)(nil)

// OpenLogStore loads the log from kv (empty on first start). sync makes
// the store's writes durable (a WAL sync); it is called after every write.
func OpenLogStore(kv ethdb.KeyValueStore, sync func() error) (*LogStore, error) {
	s := &LogStore{mem: etcdraft.NewMemoryStorage(), kv: kv, sync: sync}
	var snapIndex uint64
	if data, err := kv.Get(snapshotKey); err == nil {
		snap := new(pb.Snapshot)
		if err := proto.Unmarshal(data, snap); err != nil {
			return nil, fmt.Errorf("raft log: decode snapshot: %w", err)
		}
		if err := s.mem.ApplySnapshot(snap); err != nil {
			return nil, fmt.Errorf("raft log: load snapshot: %w", err)
		}
		snapIndex = snap.GetMetadata().GetIndex()
	}
	if data, err := kv.Get(hardStateKey); err == nil {
		hs := new(pb.HardState)
		if err := proto.Unmarshal(data, hs); err != nil {
			return nil, fmt.Errorf("raft log: decode hard state: %w", err)
		}
		if err := s.mem.SetHardState(hs); err != nil {
			return nil, err
		}
	}
	it := kv.NewIterator(entryPrefix, nil)
	defer it.Release()
	var ents []*pb.Entry
	for it.Next() {
		e := new(pb.Entry)
		if err := proto.Unmarshal(it.Value(), e); err != nil {
			return nil, fmt.Errorf("raft log: decode entry: %w", err)
		}
		if e.GetIndex() <= snapIndex {
			continue // covered by the snapshot
		}
		if want := snapIndex + uint64(len(ents)) + 1; e.GetIndex() != want {
			return nil, fmt.Errorf("raft log: entry %d missing (found %d)", want, e.GetIndex())
		}
		ents = append(ents, e)
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if err := s.mem.Append(ents); err != nil {
		return nil, err
	}
	return s, nil
}

// Save durably records a Ready's snapshot, entries and hard state (any may be
// empty), in that order, in one batch, and syncs before returning. Entries
// replace any stored entries at the same or later indexes (a new leader's
// log overrides an uncommitted suffix).
func (s *LogStore) Save(hs *pb.HardState, entries []*pb.Entry, snap *pb.Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := s.kv.NewBatch()
	if snap != nil && !etcdraft.IsEmptySnap(snap) {
		data, err := proto.Marshal(snap)
		if err != nil {
			return err
		}
		if err := batch.Put(snapshotKey, data); err != nil {
			return err
		}
	}
	if len(entries) > 0 {
		last, err := s.mem.LastIndex()
		if err != nil {
			return err
		}
		newLast := entries[len(entries)-1].GetIndex()
		for i := newLast + 1; i <= last; i++ { // drop a conflicting suffix
			if err := batch.Delete(entryKey(i)); err != nil {
				return err
			}
		}
		for _, e := range entries {
			data, err := proto.Marshal(e)
			if err != nil {
				return err
			}
			if err := batch.Put(entryKey(e.GetIndex()), data); err != nil {
				return err
			}
		}
	}
	if hs != nil && !etcdraft.IsEmptyHardState(hs) {
		data, err := proto.Marshal(hs)
		if err != nil {
			return err
		}
		if err := batch.Put(hardStateKey, data); err != nil {
			return err
		}
	}
	if err := batch.Write(); err != nil {
		return fmt.Errorf("raft log: write: %w", err)
	}
	if err := s.sync(); err != nil {
		return fmt.Errorf("raft log: sync: %w", err)
	}
	// Memory follows disk.
	if snap != nil && !etcdraft.IsEmptySnap(snap) {
		if err := s.mem.ApplySnapshot(snap); err != nil && !errors.Is(err, etcdraft.ErrSnapOutOfDate) {
			return err
		}
	}
	if err := s.mem.Append(entries); err != nil {
		return err
	}
	if hs != nil && !etcdraft.IsEmptyHardState(hs) {
		return s.mem.SetHardState(hs)
	}
	return nil
}

// CreateSnapshot records a snapshot at applied index i (with the
// configuration at i and the application's data), durably.
func (s *LogStore) CreateSnapshot(i uint64, cs *pb.ConfState, data []byte) (*pb.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.mem.CreateSnapshot(i, cs, data)
	if err != nil {
		return nil, err
	}
	raw, err := proto.Marshal(snap)
	if err != nil {
		return nil, err
	}
	if err := s.kv.Put(snapshotKey, raw); err != nil {
		return nil, err
	}
	return snap, s.sync()
}

// Compact discards the entries before compactIndex, which must not be above
// the latest snapshot's index (so a restart never needs them).
func (s *LogStore) Compact(compactIndex uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, err := s.mem.Snapshot()
	if err != nil {
		return err
	}
	if compactIndex > snap.GetMetadata().GetIndex() {
		return fmt.Errorf("raft log: compact to %d beyond snapshot %d", compactIndex, snap.GetMetadata().GetIndex())
	}
	first, err := s.mem.FirstIndex()
	if err != nil {
		return err
	}
	if err := s.mem.Compact(compactIndex); err != nil {
		return err
	}
	batch := s.kv.NewBatch()
	for i := first - 1; i < compactIndex; i++ {
		if err := batch.Delete(entryKey(i)); err != nil {
			return err
		}
	}
	if err := batch.Write(); err != nil {
		return err
	}
	return s.sync()
}

// InitialState implements raft.Storage.
func (s *LogStore) InitialState() (*pb.HardState, *pb.ConfState, error) { return s.mem.InitialState() }

// Entries implements raft.Storage.
func (s *LogStore) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	return s.mem.Entries(lo, hi, maxSize)
}

// Term implements raft.Storage.
func (s *LogStore) Term(i uint64) (uint64, error) { return s.mem.Term(i) }

// LastIndex implements raft.Storage.
func (s *LogStore) LastIndex() (uint64, error) { return s.mem.LastIndex() }

// FirstIndex implements raft.Storage.
func (s *LogStore) FirstIndex() (uint64, error) { return s.mem.FirstIndex() }

// Snapshot implements raft.Storage. While snapshots are held it answers
// raft.ErrSnapshotTemporarilyUnavailable, and Raft retries later.
func (s *LogStore) Snapshot() (*pb.Snapshot, error) {
	if s.held.Load() {
		return nil, etcdraft.ErrSnapshotTemporarilyUnavailable
	}
	return s.mem.Snapshot()
}

// HoldSnapshots makes Snapshot unavailable (hold true) until released: the
// stored snapshot predates a member that was just added, which could not
// restore it, and a newer one is about to be taken.
func (s *LogStore) HoldSnapshots(hold bool) { s.held.Store(hold) }
