// Package storage keeps everything a node stores: blocks, receipts, the
// transaction lookup, the log index and the world state, in one Pebble
// database (or an in-memory one for tests; both pass the same suite).
//
// Crash consistency: a block, its receipts, lookups, log index entries, the
// head pointer and the consensus applied index are written in one atomic
// batch, and the write-ahead log is synced before CommitBlock returns: a
// block that was announced survives any crash.
//
// State uses one of go-ethereum's two trie databases. By default the
// path-based one (pathdb): the states of the latest 128 blocks are layers in
// memory, older changes are merged into a write buffer that is flushed to
// disk atomically, and only recent states can be read. In archive mode the
// hash-based one (hashdb): every block's trie is written to disk before its
// block, and every historical state stays readable. After a crash the head's
// state may be missing (pathdb keeps it in memory): the node finds the
// newest block whose state is available (StateAvailable) and re-executes the
// blocks after it from their stored bodies, which reproduces the same state.
package storage

import (
	"errors"

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
	"github.com/ethereum/go-ethereum/triedb/pathdb"
)

// Options tune the database.
type Options struct {
	// CacheMB is Pebble's block cache and memtables, in MiB.
	CacheMB int `toml:"cache_mb"`
	// Handles is the number of open file handles Pebble may use.
	Handles int `toml:"handles"`
	// Archive keeps every block's state readable (hash-based trie database,
	// written to disk with every block). Otherwise only the states of the
	// latest 128 blocks are readable, and writing is faster.
	Archive bool `toml:"archive"`
	// StateBufferMB is the memory for state changes not yet flushed to disk
	// (path-based mode). More means fewer, larger flushes and a longer
	// replay after a crash.
	StateBufferMB int `toml:"state_buffer_mb"`
}

// DefaultOptions returns the defaults used by a node.
func DefaultOptions() Options {
	return Options{CacheMB: 256, Handles: 512, StateBufferMB: 64}
}

// Validate reports the first invalid option.
func (o Options) Validate() error {
	switch {
	case o.CacheMB < 8:
		return errors.New("storage: cache_mb must be at least 8")
	case o.Handles < 16:
		return errors.New("storage: handles must be at least 16")
	case o.StateBufferMB < 1 || o.StateBufferMB > 256:
		return errors.New("storage: state_buffer_mb must be between 1 and 256")
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

	// newest is the state root of the latest committed block; owned by the
	// single writer (CommitBlock, KeepState, FlushState).
	newest common.Hash
	// deferSync leaves block batches to the next sync (DeferBlockSync).
	deferSync bool
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
	want := rawdb.PathScheme
	if opts.Archive {
		want = rawdb.HashScheme
	}
	if have := rawdb.ReadStateScheme(rawdb.NewDatabase(kv)); have != "" && have != want {
		kv.Close()
		return nil, fmt.Errorf("%w: %s holds %s-based state (archive = %v), but archive = %v is configured",
			ErrStateModeMismatch, dir, have, have == rawdb.HashScheme, opts.Archive)
	}
	return newDB(kv, kv.SyncKeyValue, opts), nil
}

// ErrStateModeMismatch is returned when a datadir is opened in another state
// mode (archive or not) than the one it was created with.
var ErrStateModeMismatch = errors.New("storage: state mode differs from the datadir's")

// OpenMemory returns an empty in-memory database.
func OpenMemory() *DB {
	return newDB(memorydb.New(), func() error { return nil }, DefaultOptions())
}

func newDB(kv ethdb.KeyValueStore, sync func() error, opts Options) *DB {
	db := rawdb.NewDatabase(kv)
	tcfg := &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: 64 << 20}}
	if !opts.Archive {
		tcfg = &triedb.Config{PathDB: &pathdb.Config{
			TrieCleanSize:   64 << 20,
			StateCleanSize:  64 << 20,
			WriteBufferSize: opts.StateBufferMB << 20,
			TrienodeHistory: -1, // no history: there is no ancient store
			// The flat-state generator is a background job; without it
			// reads go through the trie, which is what was measured.
			NoAsyncGeneration: true,
			// pathdb flushes in the background by default: Commit (our
			// FlushState) would return before the state is on disk, and a
			// node killed soon after its first start lost its genesis state
			// (seen in CI). Recovery relies on FlushState being durable.
			NoAsyncFlush: true,
		}}
	}
	tdb := triedb.NewDatabase(db, tcfg)
	return &DB{
		kv:     kv,
		sync:   sync,
		db:     db,
		triedb: tdb,
		state:  state.NewDatabase(tdb, state.NewCodeDB(db)),
		opts:   opts,
	}
}

// Close writes the newest state to disk (so a clean restart needs no
// replay) and closes the database.
func (d *DB) Close() error {
	var err error
	if d.newest != (common.Hash{}) {
		err = d.FlushState(d.newest)
	}
	return errors.Join(err, d.triedb.Close(), d.db.Close())
}

// Crash closes the database without flushing the in-memory state, leaving the
// disk as a killed process would. Tests use it to exercise recovery.
func (d *DB) Crash() error {
	return d.db.Close()
}

// Archive reports whether every historical state is kept.
func (d *DB) Archive() bool { return d.opts.Archive }

// ChainDB is the raw chain database (go-ethereum's schema plus Hansa's keys).
func (d *DB) ChainDB() ethdb.Database { return d.db }

// StateDatabase is the state database for opening state.StateDB instances.
func (d *DB) StateDatabase() state.Database { return d.state }

// TrieDB is the trie database behind the state.
func (d *DB) TrieDB() *triedb.Database { return d.triedb }

// RaftStore returns the key-value store and its sync function for the
// consensus log, which lives in the same database under its own keys.
func (d *DB) RaftStore() (ethdb.KeyValueStore, func() error) { return d.kv, d.sync }
