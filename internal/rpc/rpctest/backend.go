// Package rpctest provides a real, in-memory implementation of rpc.Backend
// for tests: a small go-ethereum chain (beacon engine over the ethash faker,
// memory database, archive state) built from Hansa's chain configuration,
// with funded accounts, transfers, a contract deployment and a contract call,
// plus a minimal txpool that admits transactions without mining them.
//
// Invariant: the chain is fixed when New returns; only the txpool changes.
package rpctest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/consensus/beacon"
	"github.com/ethereum/go-ethereum/consensus/ethash"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/logindex"
	"github.com/hansa-chain/hansa/internal/rpc"
)

// ChainID is the test chain's id.
const ChainID = 1337

// StoreTopic is the topic of the log the test contract emits on store.
var StoreTopic = common.HexToHash("0x00000000000000000000000000000000000000000000000000000000000000aa")

// Options configure the test chain.
type Options struct {
	// BaseFee, when set, starts EIP-1559 base-fee mode at this fee; nil
	// means a free-gas chain (base fee 0 in every block).
	BaseFee *big.Int
	// MinGasPrice is what Backend.MinGasPrice reports (nil = 0).
	MinGasPrice *big.Int
}

// Fixture names what the test chain contains, for assertions.
type Fixture struct {
	Key1, Key2     []byte // hex-free raw private keys, for signing in tests
	Addr1, Addr2   common.Address
	Addr3          common.Address // receives 1 ether in block 1, never sends
	Contract       common.Address // deployed in block 2 by Addr1
	TransferTx     common.Hash    // block 1, index 0: legacy Addr1 -> Addr3, 1 ether
	DynamicTx      common.Hash    // block 1, index 1: 1559 Addr2 -> Addr3, 2 wei
	DeployTx       common.Hash    // block 2, index 0
	StoreTx        common.Hash    // block 3, index 0: store(42), emits a log
	Genesis        *types.Block
	Blocks         []*types.Block // blocks 1..4 (block 4 is empty)
	InitialBalance *big.Int
}

// Backend implements rpc.Backend over an in-memory go-ethereum chain.
type Backend struct {
	chain   *core.BlockChain
	config  *params.ChainConfig
	minGas  *big.Int
	txIndex map[common.Hash]txLocation

	headFeed  event.Feed
	newTxFeed event.Feed

	mu   sync.Mutex
	pool map[common.Address][]*types.Transaction // sorted by nonce
}

type txLocation struct {
	blockHash common.Hash
	number    uint64
	index     uint64
}

var _ rpc.Backend = (*Backend)(nil)

// New builds the test chain and returns its backend and fixture. The chain
// is stopped when the test ends.
func New(t testing.TB, opts Options) (*Backend, *Fixture) {
	t.Helper()
	key1, _ := crypto.HexToECDSA("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")
	key2, _ := crypto.HexToECDSA("8a1f9a8f95be41cd7ccb6168179afb4504aefe388d1e14474d32c45c72ce7b7a")
	fx := &Fixture{
		Key1:           crypto.FromECDSA(key1),
		Key2:           crypto.FromECDSA(key2),
		Addr1:          crypto.PubkeyToAddress(key1.PublicKey),
		Addr2:          crypto.PubkeyToAddress(key2.PublicKey),
		Addr3:          common.HexToAddress("0x3333333333333333333333333333333333333333"),
		InitialBalance: new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether)),
	}
	fx.Contract = crypto.CreateAddress(fx.Addr1, 1)

	hg := chain.DefaultGenesis()
	hg.ChainID = ChainID
	hg.Alloc = map[common.Address]chain.Account{
		fx.Addr1: {Balance: chain.NewBigInt(fx.InitialBalance)},
		fx.Addr2: {Balance: chain.NewBigInt(fx.InitialBalance)},
	}
	if opts.BaseFee != nil {
		hg.BaseFee = chain.NewBigInt(opts.BaseFee)
	}
	genesis := hg.CoreGenesis() // includes the system contracts Prague calls
	config := genesis.Config
	engine := beacon.New(ethash.NewFaker())
	signer := types.LatestSigner(config)
	price := func(b *core.BlockGen) *big.Int { return new(big.Int).Add(b.BaseFee(), big.NewInt(params.GWei)) }
	if opts.BaseFee == nil {
		price = func(*core.BlockGen) *big.Int { return new(big.Int) }
	}
	_, blocks, _ := core.GenerateChainWithGenesis(genesis, engine, 4, func(i int, g *core.BlockGen) {
		switch i {
		case 0:
			tx1 := types.MustSignNewTx(key1, signer, &types.LegacyTx{
				Nonce: 0, GasPrice: price(g), Gas: 21000, To: &fx.Addr3, Value: big.NewInt(params.Ether),
			})
			tip := big.NewInt(0)
			if opts.BaseFee != nil {
				tip = big.NewInt(params.GWei)
			}
			tx2 := types.MustSignNewTx(key2, signer, &types.DynamicFeeTx{
				ChainID: config.ChainID, Nonce: 0, GasTipCap: tip, GasFeeCap: price(g), Gas: 21000, To: &fx.Addr3, Value: big.NewInt(2),
			})
			g.AddTx(tx1)
			g.AddTx(tx2)
			fx.TransferTx, fx.DynamicTx = tx1.Hash(), tx2.Hash()
		case 1:
			tx := types.MustSignNewTx(key1, signer, &types.LegacyTx{
				Nonce: 1, GasPrice: price(g), Gas: 200_000, Data: DeployCode(),
			})
			g.AddTx(tx)
			fx.DeployTx = tx.Hash()
		case 2:
			tx := types.MustSignNewTx(key1, signer, &types.LegacyTx{
				Nonce: 2, GasPrice: price(g), Gas: 100_000, To: &fx.Contract, Data: StoreCall(42),
			})
			g.AddTx(tx)
			fx.StoreTx = tx.Hash()
		}
	})

	db := rawdb.NewMemoryDatabase()
	bc, err := core.NewBlockChain(db, genesis, engine, core.DefaultConfig().WithArchive(true))
	if err != nil {
		t.Fatalf("rpctest: new blockchain: %v", err)
	}
	t.Cleanup(bc.Stop)
	if n, err := bc.InsertChain(blocks); err != nil {
		t.Fatalf("rpctest: insert block %d: %v", n, err)
	}
	fx.Genesis = bc.GetBlockByNumber(0)
	fx.Blocks = blocks

	b := &Backend{
		chain:   bc,
		config:  config,
		minGas:  opts.MinGasPrice,
		txIndex: make(map[common.Hash]txLocation),
		pool:    make(map[common.Address][]*types.Transaction),
	}
	if b.minGas == nil {
		b.minGas = new(big.Int)
	}
	for _, blk := range blocks {
		for i, tx := range blk.Transactions() {
			b.txIndex[tx.Hash()] = txLocation{blockHash: blk.Hash(), number: blk.NumberU64(), index: uint64(i)}
		}
	}
	return b, fx
}

// ChainConfig implements rpc.Backend.
func (b *Backend) ChainConfig() *params.ChainConfig { return b.config }

// ChainContext implements rpc.Backend.
func (b *Backend) ChainContext() core.ChainContext { return b.chain }

// CurrentHeader implements rpc.Backend.
func (b *Backend) CurrentHeader() *types.Header { return b.chain.CurrentHeader() }

// HeaderByNumber implements rpc.Backend.
func (b *Backend) HeaderByNumber(number uint64) *types.Header {
	return b.chain.GetHeaderByNumber(number)
}

// HeaderByHash implements rpc.Backend.
func (b *Backend) HeaderByHash(hash common.Hash) *types.Header { return b.chain.GetHeaderByHash(hash) }

// BlockByNumber implements rpc.Backend.
func (b *Backend) BlockByNumber(number uint64) *types.Block { return b.chain.GetBlockByNumber(number) }

// BlockByHash implements rpc.Backend.
func (b *Backend) BlockByHash(hash common.Hash) *types.Block { return b.chain.GetBlockByHash(hash) }

// Receipts implements rpc.Backend.
func (b *Backend) Receipts(hash common.Hash, _ uint64) types.Receipts {
	return b.chain.GetReceiptsByHash(hash)
}

// Transaction implements rpc.Backend.
func (b *Backend) Transaction(hash common.Hash) (*types.Transaction, common.Hash, uint64, uint64, bool) {
	loc, ok := b.txIndex[hash]
	if !ok {
		return nil, common.Hash{}, 0, 0, false
	}
	blk := b.chain.GetBlockByHash(loc.blockHash)
	return blk.Transactions()[loc.index], loc.blockHash, loc.number, loc.index, true
}

// StateAt implements rpc.Backend.
func (b *Backend) StateAt(header *types.Header) (*state.StateDB, error) {
	return b.chain.StateAt(header.Root, header.Number, header.Time)
}

// FilterLogs implements rpc.Backend by scanning receipts.
func (b *Backend) FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, limit int) ([]*types.Log, error) {
	var out []*types.Log
	for n := from; n <= to; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		blk := b.chain.GetBlockByNumber(n)
		if blk == nil {
			break
		}
		for _, r := range b.chain.GetReceiptsByHash(blk.Hash()) {
			for _, l := range r.Logs {
				if !logindex.Match(l, addresses, topics) {
					continue
				}
				out = append(out, l)
				if limit > 0 && len(out) > limit {
					return nil, rpc.ErrTooManyLogs
				}
			}
		}
	}
	return out, nil
}

// SendTransaction implements rpc.Backend with a minimal txpool: it checks
// the signature, the chain id, the nonce against the state and duplicates,
// and the minimum gas price, with go-ethereum's txpool error texts.
func (b *Backend) SendTransaction(_ context.Context, tx *types.Transaction) error {
	signer := types.LatestSigner(b.config)
	from, err := types.Sender(signer, tx)
	if err != nil {
		return fmt.Errorf("%w: %v", txpool.ErrInvalidSender, err)
	}
	if tx.GasTipCapIntCmp(b.minGas) < 0 {
		return fmt.Errorf("%w: gas tip cap %v, minimum needed %v", txpool.ErrTxGasPriceTooLow, tx.GasTipCap(), b.minGas)
	}
	st, err := b.StateAt(b.CurrentHeader())
	if err != nil {
		return err
	}
	if next := st.GetNonce(from); tx.Nonce() < next {
		return fmt.Errorf("%w: next nonce %v, tx nonce %v", core.ErrNonceTooLow, next, tx.Nonce())
	}
	b.mu.Lock()
	list := b.pool[from]
	for _, have := range list {
		if have.Hash() == tx.Hash() {
			b.mu.Unlock()
			return txpool.ErrAlreadyKnown
		}
		if have.Nonce() == tx.Nonce() {
			b.mu.Unlock()
			return txpool.ErrReplaceUnderpriced
		}
	}
	list = append(list, tx)
	slices.SortFunc(list, func(x, y *types.Transaction) int { return cmp.Compare(x.Nonce(), y.Nonce()) })
	b.pool[from] = list
	b.mu.Unlock()
	b.newTxFeed.Send(rpc.NewTxsEvent{Txs: []*types.Transaction{tx}})
	return nil
}

// PoolTransaction implements rpc.Backend.
func (b *Backend) PoolTransaction(hash common.Hash) *types.Transaction {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, list := range b.pool {
		for _, tx := range list {
			if tx.Hash() == hash {
				return tx
			}
		}
	}
	return nil
}

// split divides one sender's pooled transactions into the executable run
// starting at the state nonce and the nonce-gapped rest.
func (b *Backend) split(from common.Address, list []*types.Transaction) (pending, queued []*types.Transaction) {
	st, err := b.StateAt(b.CurrentHeader())
	if err != nil {
		return nil, list
	}
	next := st.GetNonce(from)
	for _, tx := range list {
		if tx.Nonce() == next {
			pending = append(pending, tx)
			next++
		} else {
			queued = append(queued, tx)
		}
	}
	return pending, queued
}

// PoolNonce implements rpc.Backend.
func (b *Backend) PoolNonce(addr common.Address) uint64 {
	b.mu.Lock()
	list := b.pool[addr]
	b.mu.Unlock()
	st, err := b.StateAt(b.CurrentHeader())
	if err != nil {
		return 0
	}
	pending, _ := b.split(addr, list)
	return st.GetNonce(addr) + uint64(len(pending))
}

// PoolStatus implements rpc.Backend.
func (b *Backend) PoolStatus() (int, int) {
	pending, queued := b.PoolContent()
	var p, q int
	for _, l := range pending {
		p += len(l)
	}
	for _, l := range queued {
		q += len(l)
	}
	return p, q
}

// PoolContent implements rpc.Backend.
func (b *Backend) PoolContent() (map[common.Address][]*types.Transaction, map[common.Address][]*types.Transaction) {
	b.mu.Lock()
	snapshot := make(map[common.Address][]*types.Transaction, len(b.pool))
	for a, l := range b.pool {
		snapshot[a] = slices.Clone(l)
	}
	b.mu.Unlock()
	pending := make(map[common.Address][]*types.Transaction)
	queued := make(map[common.Address][]*types.Transaction)
	for a, l := range snapshot {
		p, q := b.split(a, l)
		if len(p) > 0 {
			pending[a] = p
		}
		if len(q) > 0 {
			queued[a] = q
		}
	}
	return pending, queued
}

// NextBaseFee implements rpc.Backend: 0 on a free-gas chain, EIP-1559's
// formula over the head otherwise.
func (b *Backend) NextBaseFee() *big.Int {
	head := b.CurrentHeader()
	if head.BaseFee == nil || head.BaseFee.Sign() == 0 {
		return new(big.Int)
	}
	return eip1559.CalcBaseFee(b.config, head)
}

// MinGasPrice implements rpc.Backend.
func (b *Backend) MinGasPrice() *big.Int { return b.minGas }

// SubscribeChainHead implements rpc.Backend. The test chain never grows,
// so nothing is delivered unless a test calls PublishHead.
func (b *Backend) SubscribeChainHead(ch chan<- rpc.ChainHeadEvent) event.Subscription {
	return b.headFeed.Subscribe(ch)
}

// SubscribeNewTxs implements rpc.Backend.
func (b *Backend) SubscribeNewTxs(ch chan<- rpc.NewTxsEvent) event.Subscription {
	return b.newTxFeed.Subscribe(ch)
}

// PublishHead announces the committed block number n to head subscribers
// (for tests of subscriptions); it fails for an unknown block.
func (b *Backend) PublishHead(n uint64) error {
	blk := b.chain.GetBlockByNumber(n)
	if blk == nil {
		return errors.New("rpctest: unknown block")
	}
	b.headFeed.Send(rpc.ChainHeadEvent{Block: blk, Receipts: b.chain.GetReceiptsByHash(blk.Hash())})
	return nil
}
