package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"

	"github.com/hansa-chain/hansa/internal/logindex"
)

// ErrGenesisMismatch is returned by InitGenesis when the database holds a
// chain with a different genesis block.
var ErrGenesisMismatch = errors.New("database holds a different chain")

// InitGenesis writes the genesis block and state into an empty database and
// returns the genesis block. On a non-empty database it checks that the
// stored genesis equals g's and returns the stored one.
func (d *DB) InitGenesis(g *core.Genesis) (*types.Block, error) {
	want := g.ToBlock()
	stored := rawdb.ReadCanonicalHash(d.db, 0)
	if stored != (common.Hash{}) {
		if stored != want.Hash() {
			return nil, fmt.Errorf("%w: stored genesis %s, configured genesis %s", ErrGenesisMismatch, stored, want.Hash())
		}
		return rawdb.ReadBlock(d.db, stored, 0), nil
	}
	block, err := g.Commit(d.db, d.triedb, nil)
	if err != nil {
		return nil, fmt.Errorf("commit genesis: %w", err)
	}
	if err := d.FlushState(block.Root()); err != nil {
		return nil, fmt.Errorf("commit genesis state: %w", err)
	}
	return block, nil
}

// StoredGenesisSpec returns the genesis allocation JSON stored with block 0.
func (d *DB) StoredGenesisSpec() json.RawMessage {
	return rawdb.ReadGenesisStateSpec(d.db, rawdb.ReadCanonicalHash(d.db, 0))
}

// HeadHeader returns the header of the latest committed block, or nil on an
// empty database.
func (d *DB) HeadHeader() *types.Header {
	hash := rawdb.ReadHeadBlockHash(d.db)
	if hash == (common.Hash{}) {
		return nil
	}
	number, ok := rawdb.ReadHeaderNumber(d.db, hash)
	if !ok {
		return nil
	}
	return rawdb.ReadHeader(d.db, hash, number)
}

// CommitBlock makes a block durable: the block, receipts, transaction
// lookups, log index, head pointer and applied index in one batch, then a WAL
// sync. When it returns nil the block survives a crash. The block's state
// (already committed into the trie database by StateDB.Commit) stays in
// memory and is flushed to disk according to the Options; see the package
// comment for how a restart recovers it.
//
// applied is the consensus log index of the entry the block came from; it is
// stored in the same batch so a restart resumes the log exactly after it.
func (d *DB) CommitBlock(block *types.Block, receipts types.Receipts, applied uint64) error {
	root := block.Root()
	if err := d.triedb.Reference(root, common.Hash{}); err != nil {
		return fmt.Errorf("reference state of block %d: %w", block.NumberU64(), err)
	}
	d.recent = append(d.recent, root)
	batch := d.db.NewBatch()
	hash, number := block.Hash(), block.NumberU64()
	rawdb.WriteBlock(batch, block)
	rawdb.WriteReceipts(batch, hash, number, receipts)
	rawdb.WriteCanonicalHash(batch, hash, number)
	rawdb.WriteTxLookupEntriesByBlock(batch, block)
	if err := logindex.Write(batch, number, receipts); err != nil {
		return fmt.Errorf("index logs of block %d: %w", number, err)
	}
	rawdb.WriteHeadHeaderHash(batch, hash)
	rawdb.WriteHeadFastBlockHash(batch, hash)
	rawdb.WriteHeadBlockHash(batch, hash)
	if err := batch.Put(appliedIndexKey, encodeUint64(applied)); err != nil {
		return err
	}
	if err := batch.Write(); err != nil {
		return fmt.Errorf("write block %d: %w", number, err)
	}
	if err := d.sync(); err != nil {
		return fmt.Errorf("sync block %d: %w", number, err)
	}
	d.sinceFlush++
	_, dirty, _ := d.triedb.Size()
	if d.opts.Archive || d.sinceFlush >= d.opts.FlushBlocks || time.Since(d.lastFlush) >= d.opts.FlushInterval || int(dirty) >= d.opts.FlushMB<<20 {
		if err := d.FlushState(root); err != nil {
			return err
		}
	}
	for len(d.recent) > d.opts.RecentStates {
		if err := d.triedb.Dereference(d.recent[0]); err != nil {
			return fmt.Errorf("release old state: %w", err)
		}
		d.recent = d.recent[1:]
	}
	return nil
}

// FlushState writes the state trie rooted at root (held in memory) to disk
// and syncs it. The node calls it at shutdown for the head's state.
func (d *DB) FlushState(root common.Hash) error {
	if root == d.flushed {
		return nil
	}
	if err := d.triedb.Commit(root, false); err != nil {
		return fmt.Errorf("flush state %s: %w", root, err)
	}
	if err := d.sync(); err != nil {
		return fmt.Errorf("sync state %s: %w", root, err)
	}
	d.flushed, d.sinceFlush, d.lastFlush = root, 0, time.Now()
	return nil
}

// StateOnDisk reports whether the whole state trie rooted at root is on disk.
func (d *DB) StateOnDisk(root common.Hash) bool {
	return root == types.EmptyRootHash || rawdb.HasLegacyTrieNode(d.db, root)
}

// KeepState holds the state rooted at root in memory as one of the recent
// states, like a committed block's. Replay after a crash uses it.
func (d *DB) KeepState(root common.Hash) error {
	if err := d.triedb.Reference(root, common.Hash{}); err != nil {
		return err
	}
	d.recent = append(d.recent, root)
	return nil
}

// HeaderByNumber returns the canonical header at number, or nil.
func (d *DB) HeaderByNumber(number uint64) *types.Header {
	hash := rawdb.ReadCanonicalHash(d.db, number)
	if hash == (common.Hash{}) {
		return nil
	}
	return rawdb.ReadHeader(d.db, hash, number)
}

// HeaderByHash returns the header with the given hash, or nil.
func (d *DB) HeaderByHash(hash common.Hash) *types.Header {
	number, ok := rawdb.ReadHeaderNumber(d.db, hash)
	if !ok {
		return nil
	}
	return rawdb.ReadHeader(d.db, hash, number)
}

// BlockByNumber returns the canonical block at number, or nil.
func (d *DB) BlockByNumber(number uint64) *types.Block {
	hash := rawdb.ReadCanonicalHash(d.db, number)
	if hash == (common.Hash{}) {
		return nil
	}
	return rawdb.ReadBlock(d.db, hash, number)
}

// BlockByHash returns the block with the given hash, or nil.
func (d *DB) BlockByHash(hash common.Hash) *types.Block {
	number, ok := rawdb.ReadHeaderNumber(d.db, hash)
	if !ok {
		return nil
	}
	return rawdb.ReadBlock(d.db, hash, number)
}

// Receipts returns a block's receipts with all derived fields, or nil.
func (d *DB) Receipts(hash common.Hash, number uint64, config *params.ChainConfig) types.Receipts {
	header := rawdb.ReadHeader(d.db, hash, number)
	if header == nil {
		return nil
	}
	return rawdb.ReadReceipts(d.db, hash, number, header.Time, config)
}

// Transaction finds a committed transaction by hash.
func (d *DB) Transaction(hash common.Hash) (*types.Transaction, common.Hash, uint64, uint64, bool) {
	tx, blockHash, number, index := rawdb.ReadCanonicalTransaction(d.db, hash)
	if tx == nil {
		return nil, common.Hash{}, 0, 0, false
	}
	return tx, blockHash, number, index, true
}

// StateAt opens the state with the given root.
func (d *DB) StateAt(root common.Hash) (*state.StateDB, error) {
	return state.New(root, d.state)
}

// FilterLogs returns the logs of blocks [from, to] matching the criteria, in
// chain order, using the log index; see logindex.Filter.
func (d *DB) FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, limit int, config *params.ChainConfig) ([]*types.Log, error) {
	return logindex.Filter(ctx, d.db, from, to, addresses, topics, limit, func(number uint64) (types.Receipts, error) {
		hash := rawdb.ReadCanonicalHash(d.db, number)
		if hash == (common.Hash{}) {
			return nil, fmt.Errorf("block %d not found", number)
		}
		return d.Receipts(hash, number, config), nil
	})
}

// appliedIndexKey holds the consensus log index of the last applied entry.
var appliedIndexKey = []byte("xAppliedIndex") // "x" prefixes are Hansa's; go-ethereum uses none

// AppliedIndex returns the consensus log index of the last applied entry
// (0 on a new database).
func (d *DB) AppliedIndex() uint64 {
	v, err := d.db.Get(appliedIndexKey)
	if err != nil || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// SetAppliedIndex durably records that the entry at index was applied without
// producing a block (a stale or rejected proposal).
func (d *DB) SetAppliedIndex(index uint64) error {
	if err := d.db.Put(appliedIndexKey, encodeUint64(index)); err != nil {
		return err
	}
	return d.sync()
}

func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}
