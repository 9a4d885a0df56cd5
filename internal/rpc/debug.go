package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/eth/tracers"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	// Registers the native tracers (callTracer, prestateTracer, ...) in
	// tracers.DefaultDirectory. The JavaScript tracers are not linked in.
	_ "github.com/ethereum/go-ethereum/eth/tracers/native"
)

// DebugAPI serves debug_traceTransaction, debug_traceCall and
// debug_traceBlockByNumber with go-ethereum's tracers (the struct logger by
// default, or a native tracer such as "callTracer" named in the config).
// Only these three methods are exposed: go-ethereum's tracing API also has
// methods that read and write files on the node, which a public endpoint
// must not offer.
type DebugAPI struct {
	api *tracers.API
}

// NewDebugAPI returns the "debug" namespace receiver over b; traceCall's gas
// is capped at cfg.GasCap.
func NewDebugAPI(b Backend, cfg Config) any {
	return &DebugAPI{api: tracers.NewAPI(newTracerBackend(b, cfg))}
}

// TraceTransaction replays the committed transaction hash on the state
// before it and returns the tracer's result.
func (d *DebugAPI) TraceTransaction(ctx context.Context, hash common.Hash, config *tracers.TraceConfig) (any, error) {
	ctx, cancel := debugDeadline(ctx)
	defer cancel()
	return d.api.TraceTransaction(ctx, hash, config)
}

// TraceBlockByNumber replays every transaction of a committed block and
// returns one {txHash, result} per transaction.
func (d *DebugAPI) TraceBlockByNumber(ctx context.Context, number gethrpc.BlockNumber, config *tracers.TraceConfig) (any, error) {
	ctx, cancel := debugDeadline(ctx)
	defer cancel()
	return d.api.TraceBlockByNumber(ctx, number, config)
}

// TraceCall runs a call (eth_call's transaction object) on the state after
// the given block (default latest) and returns the tracer's result.
func (d *DebugAPI) TraceCall(ctx context.Context, args json.RawMessage, blockNrOrHash *gethrpc.BlockNumberOrHash, config *tracers.TraceCallConfig) (any, error) {
	ctx, cancel := debugDeadline(ctx)
	defer cancel()
	return traceCallWith(ctx, d.api.TraceCall, args, blockNrOrHash, config)
}

// traceCallWith decodes the call arguments into go-ethereum's own argument
// type A (which lives in an internal go-ethereum package and so cannot be
// named here; it is inferred from f) and calls f.
func traceCallWith[A any](ctx context.Context,
	f func(context.Context, A, *gethrpc.BlockNumberOrHash, *tracers.TraceCallConfig) (interface{}, error),
	raw json.RawMessage, blockNrOrHash *gethrpc.BlockNumberOrHash, config *tracers.TraceCallConfig,
) (any, error) {
	var args A
	if err := json.Unmarshal(raw, &args); err != nil {
		return nil, &debugInvalidParams{fmt.Sprintf("invalid argument 0: %v", err)}
	}
	return f(ctx, args, blockNrOrHash, config)
}

// debugInvalidParams is a -32602 error for arguments decoded here rather than
// by the rpc package.
type debugInvalidParams struct{ msg string }

func (e *debugInvalidParams) Error() string  { return e.msg }
func (e *debugInvalidParams) ErrorCode() int { return -32602 }

// debugDeadline makes sure a trace that outlives the call is stopped:
// go-ethereum's tracer stops the EVM only when its context ends with
// context.DeadlineExceeded. A single HTTP call's context already ends that
// way at the call timeout; a batch's context only announces its deadline
// (go-ethereum's batch timer cancels it), so that deadline is made real here.
func debugDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, dl)
	}
	return context.WithCancel(ctx)
}

// tracerBackend adapts Backend to go-ethereum's tracers.Backend.
type tracerBackend struct {
	b   Backend
	cfg Config
}

var _ tracers.Backend = (*tracerBackend)(nil)

func newTracerBackend(b Backend, cfg Config) *tracerBackend {
	return &tracerBackend{b: b, cfg: cfg}
}

// resolve maps a block number or tag to a height. Finality is immediate, so
// safe and finalized are the head; pending is the head too (there is no
// pending block).
func (t *tracerBackend) resolve(n gethrpc.BlockNumber) (uint64, error) {
	switch n {
	case gethrpc.LatestBlockNumber, gethrpc.PendingBlockNumber, gethrpc.SafeBlockNumber, gethrpc.FinalizedBlockNumber:
		return t.b.CurrentHeader().Number.Uint64(), nil
	case gethrpc.EarliestBlockNumber:
		return 0, nil
	}
	if n < 0 {
		return 0, fmt.Errorf("unsupported block tag %d", n)
	}
	return uint64(n), nil
}

func (t *tracerBackend) HeaderByHash(_ context.Context, hash common.Hash) (*types.Header, error) {
	if h := t.b.HeaderByHash(hash); h != nil {
		return h, nil
	}
	return nil, fmt.Errorf("header %s not found", hash.Hex())
}

func (t *tracerBackend) HeaderByNumber(_ context.Context, n gethrpc.BlockNumber) (*types.Header, error) {
	num, err := t.resolve(n)
	if err != nil {
		return nil, err
	}
	if h := t.b.HeaderByNumber(num); h != nil {
		return h, nil
	}
	// Never (nil, nil): go-ethereum's chain context calls Hash on the result.
	return nil, fmt.Errorf("header #%d not found", num)
}

func (t *tracerBackend) CurrentHeader() *types.Header { return t.b.CurrentHeader() }

// BlockByHash returns (nil, nil) for an unknown block; the tracers API turns
// that into go-ethereum's "block ... not found".
func (t *tracerBackend) BlockByHash(_ context.Context, hash common.Hash) (*types.Block, error) {
	return t.b.BlockByHash(hash), nil
}

func (t *tracerBackend) BlockByNumber(_ context.Context, n gethrpc.BlockNumber) (*types.Block, error) {
	num, err := t.resolve(n)
	if err != nil {
		return nil, err
	}
	return t.b.BlockByNumber(num), nil
}

func (t *tracerBackend) GetCanonicalTransaction(hash common.Hash) (bool, *types.Transaction, common.Hash, uint64, uint64) {
	tx, blockHash, number, index, found := t.b.Transaction(hash)
	return found, tx, blockHash, number, index
}

// TxIndexDone is true: the node indexes every transaction as it commits.
func (t *tracerBackend) TxIndexDone() bool { return true }

func (t *tracerBackend) RPCGasCap() uint64 { return t.cfg.GasCap }

func (t *tracerBackend) ChainConfig() *params.ChainConfig { return t.b.ChainConfig() }

func (t *tracerBackend) Engine() consensus.Engine { return t.b.ChainContext().Engine() }

// ChainDb returns nil: go-ethereum's tracers read the database only for bad
// blocks (debug_traceBadBlock and friends), which DebugAPI does not expose.
func (t *tracerBackend) ChainDb() ethdb.Database { return nil }

// StateAtBlock opens the state after block. The node keeps the state of
// every committed block, so base, readOnly and preferDisk do not matter.
func (t *tracerBackend) StateAtBlock(_ context.Context, block *types.Block, _ *state.StateDB, _ bool, _ bool) (*state.StateDB, tracers.StateReleaseFunc, error) {
	st, err := t.b.StateAt(block.Header())
	if err != nil {
		return nil, nil, fmt.Errorf("state of block #%d: %w", block.NumberU64(), err)
	}
	return st, func() {}, nil
}

// StateAtTransaction returns transaction txIndex of block, the block's EVM
// context and the state just before that transaction: the parent's state,
// then the block's pre-execution system calls (EIP-4788 beacon root,
// EIP-2935 parent hash), then the block's earlier transactions.
func (t *tracerBackend) StateAtTransaction(ctx context.Context, block *types.Block, txIndex int) (*types.Transaction, vm.BlockContext, *state.StateDB, tracers.StateReleaseFunc, error) {
	if block.NumberU64() == 0 {
		return nil, vm.BlockContext{}, nil, nil, errors.New("no transaction in genesis")
	}
	parent := t.b.BlockByHash(block.ParentHash())
	if parent == nil {
		return nil, vm.BlockContext{}, nil, nil, fmt.Errorf("parent %#x not found", block.ParentHash())
	}
	statedb, release, err := t.StateAtBlock(ctx, parent, nil, true, false)
	if err != nil {
		return nil, vm.BlockContext{}, nil, nil, err
	}
	config := t.b.ChainConfig()
	blockCtx := core.NewEVMBlockContext(block.Header(), t.b.ChainContext(), nil)
	evm := vm.NewEVM(blockCtx, statedb, config, vm.Config{})
	defer evm.Release()
	core.PreExecution(ctx, block.BeaconRoot(), parent.Header(), config, evm, block.Number(), block.Time())

	txs := block.Transactions()
	if txIndex == 0 && len(txs) == 0 {
		return nil, blockCtx, statedb, release, nil
	}
	signer := types.MakeSigner(config, block.Number(), block.Time())
	for i, tx := range txs {
		if i == txIndex {
			return tx, blockCtx, statedb, release, nil
		}
		if err := ctx.Err(); err != nil {
			return nil, vm.BlockContext{}, nil, nil, err
		}
		msg, err := core.TransactionToMessage(tx, signer, block.BaseFee())
		if err != nil {
			return nil, vm.BlockContext{}, nil, nil, fmt.Errorf("transaction %#x: %w", tx.Hash(), err)
		}
		statedb.SetTxContext(tx.Hash(), i, uint32(i+1))
		if _, err := core.ApplyMessage(evm, msg, nil); err != nil {
			return nil, vm.BlockContext{}, nil, nil, fmt.Errorf("transaction %#x failed: %w", tx.Hash(), err)
		}
		statedb.Finalise(evm.GetRules())
	}
	return nil, vm.BlockContext{}, nil, nil, fmt.Errorf("transaction index %d out of range for block %#x", txIndex, block.Hash())
}
