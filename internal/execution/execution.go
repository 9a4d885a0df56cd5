// Package execution applies ordered block proposals to the world state with
// go-ethereum's EVM. It is the determinism boundary: given the same parent
// state and the same proposal, every node produces the same block, receipts
// and state root. Transactions that are invalid against the state (wrong
// nonce, unaffordable, over the remaining block gas) are skipped, never
// half-applied, and the skip is itself deterministic.
package execution

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"runtime"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus"
	"github.com/ethereum/go-ethereum/consensus/beacon"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/hansa-chain/hansa/internal/chain"
)

// Headers looks up committed headers; the EVM uses it for BLOCKHASH.
// Implementations must be safe for concurrent use.
type Headers interface {
	HeaderByNumber(number uint64) *types.Header
	HeaderByHash(hash common.Hash) *types.Header
	HeadHeader() *types.Header
}

// ChainContext adapts Headers to go-ethereum's core.ChainContext.
type ChainContext struct {
	config  *params.ChainConfig
	headers Headers
	engine  consensus.Engine
}

// NewChainContext returns a chain context over headers. Hansa blocks are
// post-merge (difficulty 0), so the engine only ever reports the coinbase as
// the block's author.
func NewChainContext(config *params.ChainConfig, headers Headers) *ChainContext {
	return &ChainContext{config: config, headers: headers, engine: beacon.New(ethash.NewFaker())}
}

// Config implements consensus.ChainHeaderReader.
func (c *ChainContext) Config() *params.ChainConfig { return c.config }

// CurrentHeader implements consensus.ChainHeaderReader.
func (c *ChainContext) CurrentHeader() *types.Header { return c.headers.HeadHeader() }

// GetHeader implements consensus.ChainHeaderReader.
func (c *ChainContext) GetHeader(hash common.Hash, number uint64) *types.Header {
	h := c.headers.HeaderByHash(hash)
	if h == nil || h.Number.Uint64() != number {
		return nil
	}
	return h
}

// GetHeaderByNumber implements consensus.ChainHeaderReader.
func (c *ChainContext) GetHeaderByNumber(number uint64) *types.Header {
	return c.headers.HeaderByNumber(number)
}

// GetHeaderByHash implements consensus.ChainHeaderReader.
func (c *ChainContext) GetHeaderByHash(hash common.Hash) *types.Header {
	return c.headers.HeaderByHash(hash)
}

// Engine implements core.ChainContext.
func (c *ChainContext) Engine() consensus.Engine { return c.engine }

// Rules are the chain-level rules execution needs beyond the fork config.
type Rules struct {
	// FreeGas keeps the base fee at 0 in every block; otherwise the base fee
	// follows EIP-1559 from the genesis base fee.
	FreeGas bool
}

// Executor applies proposals. It is safe for concurrent use, but callers
// apply proposals of one chain one at a time, in order.
type Executor struct {
	config *params.ChainConfig
	chain  *ChainContext
	rules  Rules
	vmcfg  vm.Config
}

// New returns an executor for the given chain.
func New(config *params.ChainConfig, chainCtx *ChainContext, rules Rules) *Executor {
	return &Executor{config: config, chain: chainCtx, rules: rules}
}

// Result is the outcome of executing one proposal.
type Result struct {
	Block    *types.Block
	Receipts types.Receipts // derived fields (block hash, indexes) filled in
	Skipped  []Skipped      // proposal transactions left out, with the reason
}

// Skipped is a proposal transaction that was not included.
type Skipped struct {
	Hash common.Hash
	Err  error
}

// Errors that make a proposal unusable as a whole.
var (
	// ErrWrongParent means the proposal does not build on the given parent.
	ErrWrongParent = errors.New("proposal does not extend the parent block")
	// ErrTimeTravel means the proposal's timestamp is before the parent's.
	ErrTimeTravel = errors.New("proposal timestamp before parent timestamp")
)

// BaseFee returns the base fee of the block after parent.
func (e *Executor) BaseFee(parent *types.Header) *big.Int {
	if e.rules.FreeGas {
		return new(big.Int)
	}
	return eip1559.CalcBaseFee(e.config, parent)
}

// Signer returns the transaction signer for blocks of this chain.
func (e *Executor) Signer() types.Signer { return types.LatestSigner(e.config) }

// RecoverSenders recovers (and caches in each transaction) the senders of txs
// on all cores. It returns the index of the first transaction whose signature
// is invalid, or -1.
func RecoverSenders(signer types.Signer, txs types.Transactions) int {
	if len(txs) == 0 {
		return -1
	}
	workers := min(runtime.GOMAXPROCS(0), (len(txs)+63)/64)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		bad  = -1
		next = make(chan int, workers)
	)
	chunk := (len(txs) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		next <- w
	}
	close(next)
	for w := range next {
		wg.Add(1)
		go func(lo int) {
			defer wg.Done()
			hi := min(lo+chunk, len(txs))
			for i := lo; i < hi; i++ {
				if _, err := types.Sender(signer, txs[i]); err != nil {
					mu.Lock()
					if bad == -1 || i < bad {
						bad = i
					}
					mu.Unlock()
				}
			}
		}(w * chunk)
	}
	wg.Wait()
	return bad
}

// PresetSenders caches the senders a proposal carries in its transactions,
// for the signer Execute will use, so that Execute does not recover them.
func (e *Executor) PresetSenders(p *chain.Proposal) {
	if len(p.Senders) != len(p.Txs) {
		return
	}
	signer := types.MakeSigner(e.config, new(big.Int).SetUint64(p.Number), p.Time)
	for i, tx := range p.Txs {
		PresetSender(signer, tx, p.Senders[i])
	}
}

// PresetSender caches from as tx's sender for signer (and signers equal to
// it), so that no later lookup recovers it. Only for senders a trusted
// member already recovered.
func PresetSender(signer types.Signer, tx *types.Transaction, from common.Address) {
	types.Sender(presetSigner{Signer: signer, from: from}, tx) //nolint:errcheck // never fails
}

// presetSigner answers a known sender; it is equal to the signer it wraps,
// so the cached sender is found by later lookups with that signer.
type presetSigner struct {
	types.Signer
	from common.Address
}

func (s presetSigner) Sender(*types.Transaction) (common.Address, error) { return s.from, nil }
func (s presetSigner) Equal(o types.Signer) bool                         { return s.Signer.Equal(o) }

// Execute applies proposal p on top of parent. statedb must be the state at
// parent.Root(); it is modified and committed into the trie database (not yet
// flushed to disk: storage.CommitBlock does that).
func (e *Executor) Execute(ctx context.Context, parent *types.Header, p *chain.Proposal, statedb *state.StateDB) (*Result, error) {
	if p.Number != parent.Number.Uint64()+1 || p.ParentHash != parent.Hash() {
		return nil, fmt.Errorf("%w: proposal %d on %s, parent %d is %s", ErrWrongParent, p.Number, p.ParentHash, parent.Number, parent.Hash())
	}
	if p.Time < parent.Time {
		return nil, fmt.Errorf("%w: %d < %d", ErrTimeTravel, p.Time, parent.Time)
	}
	var (
		zero   uint64
		header = &types.Header{
			ParentHash:       parent.Hash(),
			UncleHash:        types.EmptyUncleHash,
			Coinbase:         p.Proposer,
			Difficulty:       new(big.Int),
			Number:           new(big.Int).SetUint64(p.Number),
			GasLimit:         parent.GasLimit,
			Time:             p.Time,
			Extra:            p.Proposer.Bytes(),
			BaseFee:          e.BaseFee(parent),
			WithdrawalsHash:  &types.EmptyWithdrawalsHash,
			BlobGasUsed:      &zero,
			ExcessBlobGas:    &zero,
			ParentBeaconRoot: &common.Hash{},
		}
		signer = types.MakeSigner(e.config, header.Number, header.Time)
	)
	RecoverSenders(signer, p.Txs)
	// Hash the transactions root on another core while the EVM runs; it is
	// used when no transaction is skipped (the common case).
	txRoot := make(chan common.Hash, 1)
	go func() { txRoot <- types.DeriveSha(p.Txs, trie.NewStackTrie(nil)) }()

	evm := vm.NewEVM(core.NewEVMBlockContext(header, e.chain, nil), statedb, e.config, e.vmcfg)
	defer evm.Release()
	core.PreExecution(ctx, header.ParentBeaconRoot, parent, e.config, evm, header.Number, header.Time)

	var (
		gp       = core.NewGasPool(header.GasLimit)
		included = make(types.Transactions, 0, len(p.Txs))
		receipts = make(types.Receipts, 0, len(p.Txs))
		skipped  []Skipped
		allLogs  []*types.Log
	)
	for _, tx := range p.Txs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		msg, err := core.TransactionToMessage(tx, signer, header.BaseFee)
		if err == nil && tx.Type() == types.BlobTxType {
			err = core.ErrTxTypeNotSupported
		}
		if err != nil {
			skipped = append(skipped, Skipped{tx.Hash(), err})
			continue
		}
		snap, gpSnap := statedb.Snapshot(), gp.Snapshot()
		statedb.SetTxContext(tx.Hash(), len(included), uint32(len(included)+1))
		receipt, _, err := core.ApplyTransactionWithEVM(ctx, msg, gp, statedb, header.Number, common.Hash{}, header.Time, tx, evm)
		if err != nil {
			statedb.RevertToSnapshot(snap)
			gp.Set(gpSnap)
			skipped = append(skipped, Skipped{tx.Hash(), err})
			continue
		}
		included = append(included, tx)
		receipts = append(receipts, receipt)
		allLogs = append(allLogs, receipt.Logs...)
	}
	requests, _, err := core.PostExecution(ctx, e.config, header.Number, header.Time, allLogs, nil, evm, uint32(len(included)+1))
	if err != nil {
		return nil, fmt.Errorf("post-execution system calls: %w", err)
	}
	if requests != nil {
		h := types.CalcRequestsHash(requests)
		header.RequestsHash = &h
	}
	header.GasUsed = gp.Used()
	root, err := statedb.Commit(e.config.Rules(header.Number, true, header.Time), header.Number.Uint64())
	if err != nil {
		return nil, fmt.Errorf("commit state: %w", err)
	}
	header.Root = root
	header.TxHash = <-txRoot
	if len(included) != len(p.Txs) {
		header.TxHash = types.DeriveSha(included, trie.NewStackTrie(nil))
	}
	if len(included) == 0 {
		header.TxHash = types.EmptyTxsHash
	}
	header.ReceiptHash, header.Bloom = types.EmptyReceiptsHash, types.Bloom{}
	if len(receipts) > 0 {
		header.ReceiptHash = types.DeriveSha(receipts, trie.NewStackTrie(nil))
		header.Bloom = types.MergeBloom(receipts)
	}
	block := types.NewBlockWithHeader(header).WithBody(types.Body{Transactions: included, Withdrawals: []*types.Withdrawal{}})
	fillReceipts(block, receipts, signer)
	return &Result{Block: block, Receipts: receipts, Skipped: skipped}, nil
}

// fillReceipts sets the fields that depend on the block hash, which is known
// only after execution.
func fillReceipts(block *types.Block, receipts types.Receipts, signer types.Signer) {
	hash := block.Hash()
	var logIndex uint
	for i, r := range receipts {
		r.BlockHash = hash
		r.BlockNumber = block.Number()
		r.TransactionIndex = uint(i)
		tx := block.Transactions()[i]
		r.EffectiveGasPrice = tx.EffectiveGasTipValue(block.BaseFee())
		r.EffectiveGasPrice.Add(r.EffectiveGasPrice, block.BaseFee())
		for _, l := range r.Logs {
			l.BlockHash = hash
			l.BlockNumber = block.NumberU64()
			l.BlockTimestamp = block.Time()
			l.TxIndex = uint(i)
			l.Index = logIndex
			logIndex++
		}
	}
}
