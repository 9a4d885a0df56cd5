// Package storage keeps everything a node stores: blocks, receipts, the
// transaction lookup, the log index and the world state, in one Pebble
// database (or an in-memory one for tests; both pass the same suite).
//
// Crash consistency: a block, its receipts, lookups, log index entries, the
// head pointer and the consensus applied index are written in one atomic
// batch, and the write-ahead log is synced before CommitBlock returns: a
// block that was announced survives any crash. The state trie of recent
// blocks is kept in memory and flushed to disk every few blocks (see
// Options); trie nodes are content-addressed, and a flush writes a root's
// children before the root, so a root present on disk means its whole trie
// is. After a crash the head's state may be missing: the node finds the
// newest block whose state is on disk (StateOnDisk) and re-executes the
// blocks after it from their stored bodies, which reproduces the same state.
package storage

import (
	"errors"
	"time"

	"fmt"
	"github.com/ethereum/go-ethereum/common"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/ethdb/pebble"
	"github.com/ethereum/go-ethereum/triedb"
	"github.com/ethereum/go-ethereum/triedb/hashdb"
)

// Options tune the database.
type Options struct {
	// CacheMB is Pebble's block cache and memtables, in MiB.
	CacheMB int `toml:"cache_mb"`
	// Handles is the number of open file handles Pebble may use.
	Handles int `toml:"handles"`
	// Archive writes every block's state to disk, so the state of every
	// block stays readable. Otherwise state is flushed every FlushBlocks
	// blocks or FlushInterval, and only the last RecentStates states and
	// the flushed ones can be read (like a go-ethereum full node).
	Archive bool `toml:"archive"`
	// FlushBlocks flushes the state after this many blocks.
	FlushBlocks int `toml:"flush_blocks"`
	// FlushInterval flushes the state when a block is committed this long
	// after the previous flush.
	FlushInterval time.Duration `toml:"flush_interval"`
	// FlushMB flushes the state when the unflushed trie nodes exceed this size.
	FlushMB int `toml:"flush_mb"`
	// RecentStates is how many of the latest blocks' states stay in memory.
	RecentStates int `toml:"recent_states"`
}

// DefaultOptions returns the defaults used by a node.
func DefaultOptions() Options {
	return Options{CacheMB: 256, Handles: 512, FlushBlocks: 64, FlushInterval: 10 * time.Second, FlushMB: 256, RecentStates: 128}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.CacheMB < 8:
		return errors.New("storage: cache_mb must be at least 8")
	case o.Handles < 16:
		return errors.New("storage: handles must be at least 16")
	case o.FlushBlocks < 1:
		return errors.New("storage: flush_blocks must be at least 1")
	case o.FlushInterval <= 0:
		return errors.New("storage: flush_interval must be positive")
	case o.FlushMB < 1:
		return errors.New("storage: flush_mb must be at least 1")
	case o.RecentStates < 1:
		return errors.New("storage: recent_states must be at least 1")
	}
	return nil
}

// DB is a node's database: a key-value store, go-ethereum's schema over it
// for chain data, and the state database. It is safe for concurrent use.
type DB struct {
	kv     ethdb.KeyValueStore
	sync   func() error
	db     ethdb.Database
	triedb *triedb.Database
	state  state.Database
	opts   Options

	// Owned by the single writer (CommitBlock, FlushState).
	recent     []common.Hash // state roots referenced in memory, oldest first
	sinceFlush int
	lastFlush  time.Time
	flushed    common.Hash // the newest state root known to be on disk
}

// OpenPebble opens (creating if needed) the Pebble database in dir.
func OpenPebble(dir string, opts Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	kv, err := pebble.New(filepath.Join(dir, "chaindata"), opts.CacheMB, opts.Handles, "hansa/db/", false)
	if err != nil {
		return nil, fmt.Errorf("open pebble %s: %w", dir, err)
	}
	return newDB(kv, kv.SyncKeyValue, opts), nil
}

// OpenMemory returns an empty in-memory database.
func OpenMemory() *DB {
	return newDB(memorydb.New(), func() error { return nil }, DefaultOptions())
}

func newDB(kv ethdb.KeyValueStore, sync func() error, opts Options) *DB {
	db := rawdb.NewDatabase(kv)
	tdb := triedb.NewDatabase(db, &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: 64 << 20}})
	return &DB{
		kv:        kv,
		sync:      sync,
		db:        db,
		triedb:    tdb,
		state:     state.NewDatabase(tdb, state.NewCodeDB(db)),
		opts:      opts,
		lastFlush: time.Now(),
	}
}

// Close writes the newest state to disk (so a clean restart needs no
// replay) and closes the database.
func (d *DB) Close() error {
	var err error
	if n := len(d.recent); n > 0 {
		err = d.FlushState(d.recent[n-1])
	}
	return errors.Join(err, d.triedb.Close(), d.db.Close())
}

// Crash closes the database without flushing the in-memory state, leaving the
// disk as a killed process would. Tests use it to exercise recovery.
func (d *DB) Crash() error {
	return d.db.Close()
}

// ChainDB is the raw chain database (go-ethereum's schema plus Hansa's keys).
func (d *DB) ChainDB() ethdb.Database { return d.db }

// StateDatabase is the state database for opening state.StateDB instances.
func (d *DB) StateDatabase() state.Database { return d.state }

// TrieDB is the trie database behind the state.
func (d *DB) TrieDB() *triedb.Database { return d.triedb }
