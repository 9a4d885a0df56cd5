package node

import (
	"context"
	"errors"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"

	"github.com/hansa-chain/hansa/internal/logindex"
	"github.com/hansa-chain/hansa/internal/rpc"
)

// backend implements rpc.Backend over the node. Reads never see a block above
// the published head.
type backend Node

var _ rpc.Backend = (*backend)(nil)

func (b *backend) ChainConfig() *params.ChainConfig { return b.config }
func (b *backend) ChainContext() core.ChainContext  { return b.chainCtx }
func (b *backend) CurrentHeader() *types.Header     { return b.head.Load() }

func (b *backend) above(number uint64) bool { return number > b.head.Load().Number.Uint64() }

func (b *backend) HeaderByNumber(number uint64) *types.Header {
	if b.above(number) {
		return nil
	}
	return b.db.HeaderByNumber(number)
}

func (b *backend) HeaderByHash(hash common.Hash) *types.Header {
	h := b.db.HeaderByHash(hash)
	if h == nil || b.above(h.Number.Uint64()) {
		return nil
	}
	return h
}

func (b *backend) BlockByNumber(number uint64) *types.Block {
	if b.above(number) {
		return nil
	}
	if blk, ok := b.recent.byNumber.Get(number); ok {
		return blk
	}
	return b.db.BlockByNumber(number)
}

func (b *backend) BlockByHash(hash common.Hash) *types.Block {
	blk, ok := b.recent.byHash.Get(hash)
	if !ok {
		blk = b.db.BlockByHash(hash)
	}
	if blk == nil || b.above(blk.NumberU64()) {
		return nil
	}
	return blk
}

func (b *backend) Receipts(hash common.Hash, number uint64) types.Receipts {
	if b.above(number) {
		return nil
	}
	return b.db.Receipts(hash, number, b.config)
}

func (b *backend) Transaction(hash common.Hash) (*types.Transaction, common.Hash, uint64, uint64, bool) {
	tx, blockHash, number, index, ok := b.db.Transaction(hash)
	if !ok || b.above(number) {
		return nil, common.Hash{}, 0, 0, false
	}
	if blk, ok := b.recent.byHash.Get(blockHash); ok && index < uint64(blk.Transactions().Len()) {
		tx = blk.Transactions()[index] // the sender is already known
	}
	return tx, blockHash, number, index, true
}

func (b *backend) StateAt(header *types.Header) (*state.StateDB, error) {
	return b.db.StateAt(header.Root)
}

func (b *backend) FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, limit int) ([]*types.Log, error) {
	if head := b.head.Load().Number.Uint64(); to > head {
		to = head
	}
	if from > to {
		return nil, nil
	}
	logs, err := b.db.FilterLogs(ctx, from, to, addresses, topics, limit, b.config)
	if errors.Is(err, logindex.ErrTooManyLogs) {
		return nil, rpc.ErrTooManyLogs
	}
	return logs, err
}

// SendTransaction admits tx to this node's pool. On a follower it forwards
// it to the leader and answers with the leader's verdict; on the leader it
// answers once a follower holds a copy, so that no single crash loses it.
func (b *backend) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if err := b.pool.Add(tx); err != nil {
		return err
	}
	if b.cluster == nil {
		(*Node)(b).wake()
		return nil
	}
	if b.engine.Status().IsLeader() {
		(*Node)(b).wake()
		return b.cluster.keep(ctx, tx)
	}
	return b.cluster.submit(ctx, tx)
}

func (b *backend) PoolTransaction(hash common.Hash) *types.Transaction { return b.pool.Get(hash) }
func (b *backend) PoolNonce(addr common.Address) uint64                { return b.pool.Nonce(addr) }
func (b *backend) PoolStatus() (int, int)                              { return b.pool.Stats() }

func (b *backend) PoolContent() (map[common.Address][]*types.Transaction, map[common.Address][]*types.Transaction) {
	return b.pool.Content()
}

func (b *backend) MinGasPrice() *big.Int {
	if b.genesis.MinGasPrice == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(b.genesis.MinGasPrice.Big())
}

func (b *backend) NextBaseFee() *big.Int { return b.exec.BaseFee(b.head.Load()) }

func (b *backend) SubscribeChainHead(ch chan<- rpc.ChainHeadEvent) event.Subscription {
	return b.chainFeed.Subscribe(ch)
}

func (b *backend) SubscribeNewTxs(ch chan<- rpc.NewTxsEvent) event.Subscription {
	return b.txFeed.Subscribe(ch)
}
