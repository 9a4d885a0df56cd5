// Package storage keeps everything a node stores: blocks, receipts, the
// transaction lookup, the log index and the world state, in one Pebble
// database (or an in-memory one for tests; both pass the same suite).
//
// Crash consistency: state trie nodes and contract code are content-addressed
// and are written first; the block, its receipts, lookups, log index entries
// and the head pointer follow in one atomic batch, and the write-ahead log is
// synced before CommitBlock returns. A node killed at any instant therefore
// restarts at a head whose block, receipts and state are all present; writes
// of a block that was not yet committed are either absent or unreachable
// orphan trie nodes, which are harmless.
package storage

import (
	"errors"
	"fmt"
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

// Options tune a Pebble database.
type Options struct {
	CacheMB int // block cache and memtables, in MiB
	Handles int // open file handles
}

// DefaultOptions returns the defaults used by a node.
func DefaultOptions() Options { return Options{CacheMB: 256, Handles: 512} }

// DB is a node's database: a key-value store, go-ethereum's schema over it
// for chain data, and the state database. It is safe for concurrent use.
type DB struct {
	kv     ethdb.KeyValueStore
	sync   func() error
	db     ethdb.Database
	triedb *triedb.Database
	state  state.Database
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
	return newDB(kv, kv.SyncKeyValue), nil
}

// OpenMemory returns an empty in-memory database.
func OpenMemory() *DB {
	return newDB(memorydb.New(), func() error { return nil })
}

func newDB(kv ethdb.KeyValueStore, sync func() error) *DB {
	db := rawdb.NewDatabase(kv)
	tdb := triedb.NewDatabase(db, &triedb.Config{HashDB: &hashdb.Config{CleanCacheSize: 64 << 20}})
	return &DB{
		kv:     kv,
		sync:   sync,
		db:     db,
		triedb: tdb,
		state:  state.NewDatabase(tdb, state.NewCodeDB(db)),
	}
}

// Close flushes and closes the database.
func (d *DB) Close() error {
	return errors.Join(d.triedb.Close(), d.db.Close())
}

// ChainDB is the raw chain database (go-ethereum's schema plus Hansa's keys).
func (d *DB) ChainDB() ethdb.Database { return d.db }

// StateDatabase is the state database for opening state.StateDB instances.
func (d *DB) StateDatabase() state.Database { return d.state }

// TrieDB is the trie database behind the state.
func (d *DB) TrieDB() *triedb.Database { return d.triedb }
