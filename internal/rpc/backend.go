// Package rpc serves Hansa's standard Ethereum JSON-RPC namespaces (eth, net,
// web3, txpool, debug) over go-ethereum's rpc server. Every method reads the
// node through the narrow Backend interface defined here; errors are mapped to
// JSON-RPC codes and go-ethereum's messages at this edge and nowhere else.
package rpc

import (
	"context"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"
)

// Backend is what the JSON-RPC namespaces need from a node.
//
// Concurrency: every method is safe for concurrent use. Read methods return
// data of committed blocks only (finality is immediate: nothing returned ever
// changes). Returned values are shared and must not be modified.
type Backend interface {
	// ChainConfig is the chain's go-ethereum configuration.
	ChainConfig() *params.ChainConfig
	// ChainContext gives the EVM its header lookups (BLOCKHASH) and engine.
	ChainContext() core.ChainContext

	// CurrentHeader is the head: the latest committed block.
	CurrentHeader() *types.Header
	// HeaderByNumber and HeaderByHash return nil for an unknown block.
	HeaderByNumber(number uint64) *types.Header
	HeaderByHash(hash common.Hash) *types.Header
	// BlockByNumber and BlockByHash return nil for an unknown block.
	BlockByNumber(number uint64) *types.Block
	BlockByHash(hash common.Hash) *types.Block
	// Receipts returns a block's receipts with every derived field filled in
	// (block hash and number, tx hash and index, gas used, contract address,
	// effective gas price, log positions), or nil for an unknown block.
	Receipts(hash common.Hash, number uint64) types.Receipts
	// Transaction finds a committed transaction by hash.
	Transaction(hash common.Hash) (tx *types.Transaction, blockHash common.Hash, blockNumber uint64, index uint64, found bool)
	// StateAt opens a read-only copy of the state after the given block.
	StateAt(header *types.Header) (*state.StateDB, error)

	// FilterLogs returns the logs of blocks [from, to] (inclusive) matching
	// the addresses (any of, empty = all) and topics (position-wise; an empty
	// position matches anything), in chain order, using the log index. It
	// returns ErrTooManyLogs once more than limit logs match (limit 0 = none).
	FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, limit int) ([]*types.Log, error)

	// SendTransaction admits tx to the txpool (and, in a cluster, makes sure
	// it reaches the block proposer). Errors carry go-ethereum's texts.
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	// PoolTransaction returns a transaction waiting in the txpool, or nil.
	PoolTransaction(hash common.Hash) *types.Transaction
	// PoolNonce is the next nonce for addr counting the txpool's pending
	// (executable) transactions.
	PoolNonce(addr common.Address) uint64
	// PoolStatus counts pending (executable) and queued (nonce-gapped) transactions.
	PoolStatus() (pending, queued int)
	// PoolContent lists the txpool by sender and nonce.
	PoolContent() (pending, queued map[common.Address][]*types.Transaction)
	// MinGasPrice is the lowest gas price or tip the txpool admits.
	MinGasPrice() *big.Int
	// NextBaseFee is the base fee of the block after the head: always 0 on a
	// free-gas chain, EIP-1559's formula otherwise.
	NextBaseFee() *big.Int

	// SubscribeChainHead delivers every committed block, in order.
	SubscribeChainHead(ch chan<- ChainHeadEvent) event.Subscription
	// SubscribeNewTxs delivers transactions newly admitted to the txpool.
	SubscribeNewTxs(ch chan<- NewTxsEvent) event.Subscription
}

// ChainHeadEvent announces a newly committed block with its receipts; the
// receipts' and logs' derived fields (block hash, indexes) are filled in.
type ChainHeadEvent struct {
	Block    *types.Block
	Receipts types.Receipts
}

// NewTxsEvent announces transactions newly admitted to the txpool.
type NewTxsEvent struct {
	Txs []*types.Transaction
}
