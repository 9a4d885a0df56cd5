package storage

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
// sync. When it returns nil the block survives a crash. The block's state was
// committed into the trie database by StateDB.Commit; in archive mode it is
// written to disk first, otherwise the trie database keeps it in memory and
// flushes it later (see the package comment for recovery).
//
// applied is the consensus log index of the entry the block came from; it is
// stored in the same batch so a restart resumes the log exactly after it.
func (d *DB) CommitBlock(block *types.Block, receipts types.Receipts, applied uint64) error {
	root := block.Root()
	if d.opts.Archive {
		if err := d.FlushState(root); err != nil {
			return err
		}
	}
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
	if !d.deferSync {
		if err := d.sync(); err != nil {
			return fmt.Errorf("sync block %d: %w", number, err)
		}
	}
	d.newest = root
	return nil
}

// FlushState writes the state rooted at root, and every state change before
// it, to disk and syncs it. Close calls it for the newest state.
func (d *DB) FlushState(root common.Hash) error {
	if err := d.triedb.Commit(root, false); err != nil {
		// pathdb refuses to flush the layer that already is its disk layer,
		// which it only becomes by a previous full flush; it exports no
		// sentinel for this.
		if d.triedb.Scheme() != rawdb.PathScheme || !strings.HasSuffix(err.Error(), "is disk layer") {
			return fmt.Errorf("flush state %s: %w", root, err)
		}
	}
	if err := d.sync(); err != nil {
		return fmt.Errorf("sync state %s: %w", root, err)
	}
	return nil
}

// StateAvailable reports whether the state rooted at root can be opened:
// on disk, or held in memory as a recent state.
func (d *DB) StateAvailable(root common.Hash) bool {
	_, err := state.New(root, d.state)
	return err == nil
}

// KeepState records root as the newest state after a block re-executed
// during recovery, so Close flushes it.
func (d *DB) KeepState(root common.Hash) error {
	d.newest = root
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
	if d.deferSync {
		return nil
	}
	return d.sync()
}

// DeferBlockSync stops CommitBlock and SetAppliedIndex from syncing: for a
// node whose consensus log, synced in the same database, already holds every
// entry a block comes from. A crash may then lose the latest blocks together
// with their applied index (one batch), and the log delivers those entries
// again; the next sync of the log (or of state) makes them durable. Call it
// before the first block is committed.
func (d *DB) DeferBlockSync() { d.deferSync = true }

func encodeUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// membershipKey holds the node's membership record (its member id and the
// replicated membership), encoded by the node.
var membershipKey = []byte("xMembership")

// Membership returns the stored membership record, or nil.
func (d *DB) Membership() []byte {
	v, err := d.db.Get(membershipKey)
	if err != nil {
		return nil
	}
	return v
}

// SetMembership durably records the membership record together with the
// applied index of the entry that produced it (0 leaves the index alone).
func (d *DB) SetMembership(record []byte, applied uint64) error {
	batch := d.db.NewBatch()
	if err := batch.Put(membershipKey, record); err != nil {
		return err
	}
	if applied != 0 {
		if err := batch.Put(appliedIndexKey, encodeUint64(applied)); err != nil {
			return err
		}
	}
	if err := batch.Write(); err != nil {
		return err
	}
	return d.sync()
}
