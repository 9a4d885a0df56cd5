package execution_test

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/execution"
	"github.com/hansa-chain/hansa/internal/storage"
)

// testChain is a genesis in an in-memory database with funded accounts.
type testChain struct {
	t      testing.TB
	g      *chain.Genesis
	db     *storage.DB
	exec   *execution.Executor
	keys   []*ecdsa.PrivateKey
	head   *types.Header
	signer types.Signer
}

type memHeaders struct{ c *testChain }

func (h memHeaders) HeaderByNumber(n uint64) *types.Header    { return h.c.db.HeaderByNumber(n) }
func (h memHeaders) HeaderByHash(x common.Hash) *types.Header { return h.c.db.HeaderByHash(x) }
func (h memHeaders) HeadHeader() *types.Header                { return h.c.head }

func newTestChain(t testing.TB, accounts int, baseFee *big.Int) *testChain {
	g := chain.DefaultGenesis()
	g.Members = []chain.Member{{ID: 1, Address: common.HexToAddress("0x01")}}
	if baseFee != nil {
		g.BaseFee = chain.NewBigInt(baseFee)
	}
	c := &testChain{t: t, g: g, db: storage.OpenMemory()}
	for i := 0; i < accounts; i++ {
		k, _ := crypto.GenerateKey()
		c.keys = append(c.keys, k)
		g.Alloc[crypto.PubkeyToAddress(k.PublicKey)] = chain.Account{Balance: chain.NewBigInt(new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1000)))}
	}
	genesis, err := c.db.InitGenesis(g.CoreGenesis())
	if err != nil {
		t.Fatal(err)
	}
	c.head = genesis.Header()
	cfg := g.EthereumConfig()
	c.exec = execution.New(cfg, execution.NewChainContext(cfg, memHeaders{c}), execution.Rules{FreeGas: g.FreeGas()})
	c.signer = types.LatestSigner(cfg)
	return c
}

func (c *testChain) addr(i int) common.Address { return crypto.PubkeyToAddress(c.keys[i].PublicKey) }

func (c *testChain) transfer(from int, nonce uint64, to common.Address, value int64) *types.Transaction {
	tx, err := types.SignNewTx(c.keys[from], c.signer, &types.DynamicFeeTx{
		ChainID: c.g.EthereumConfig().ChainID, Nonce: nonce, Gas: 21000, To: &to, Value: big.NewInt(value),
		GasFeeCap: big.NewInt(params.GWei * 10), GasTipCap: big.NewInt(0),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return tx
}

func (c *testChain) tx(from int, data types.TxData) *types.Transaction {
	tx, err := types.SignNewTx(c.keys[from], c.signer, data)
	if err != nil {
		c.t.Fatal(err)
	}
	return tx
}

// execute runs a proposal on the head and commits the result.
func (c *testChain) execute(txs ...*types.Transaction) *execution.Result {
	p := &chain.Proposal{Number: c.head.Number.Uint64() + 1, ParentHash: c.head.Hash(), Time: c.head.Time + 1, Proposer: common.HexToAddress("0x01"), Txs: txs}
	st, err := c.db.StateAt(c.head.Root)
	if err != nil {
		c.t.Fatal(err)
	}
	res, err := c.exec.Execute(c.t.Context(), c.head, p, st)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.db.CommitBlock(res.Block, res.Receipts, p.Number); err != nil {
		c.t.Fatal(err)
	}
	c.head = res.Block.Header()
	return res
}

func (c *testChain) balance(addr common.Address) *big.Int {
	st, err := c.db.StateAt(c.head.Root)
	if err != nil {
		c.t.Fatal(err)
	}
	return st.GetBalance(addr).ToBig()
}

func TestExecuteTransfersAndReceipts(t *testing.T) {
	c := newTestChain(t, 2, nil)
	to := common.HexToAddress("0xbeef")
	res := c.execute(c.transfer(0, 0, to, 100), c.transfer(0, 1, to, 50), c.transfer(1, 0, to, 7))
	if n := len(res.Block.Transactions()); n != 3 || len(res.Skipped) != 0 {
		t.Fatalf("included %d, skipped %v", n, res.Skipped)
	}
	if got := c.balance(to); got.Int64() != 157 {
		t.Fatalf("recipient balance %v, want 157", got)
	}
	h := res.Block.Header()
	if h.GasUsed != 3*21000 || h.BaseFee.Sign() != 0 || h.Difficulty.Sign() != 0 || h.WithdrawalsHash == nil || h.RequestsHash == nil || h.ParentBeaconRoot == nil {
		t.Fatalf("header fields: %+v", h)
	}
	if common.BytesToAddress(h.Extra) != common.HexToAddress("0x01") || h.Coinbase != common.HexToAddress("0x01") {
		t.Fatalf("proposer not recorded: extra %x coinbase %s", h.Extra, h.Coinbase)
	}
	for i, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful || r.BlockHash != res.Block.Hash() || r.TransactionIndex != uint(i) || r.CumulativeGasUsed != uint64(i+1)*21000 {
			t.Fatalf("receipt %d: %+v", i, r)
		}
	}
	stored := c.db.Receipts(res.Block.Hash(), res.Block.NumberU64(), c.g.EthereumConfig())
	if len(stored) != 3 || stored[2].TxHash != res.Receipts[2].TxHash || stored[2].BlockHash != res.Block.Hash() {
		t.Fatalf("stored receipts differ: %+v", stored)
	}
}

func TestExecuteIsDeterministic(t *testing.T) {
	a, b := newTestChain(t, 1, nil), newTestChain(t, 1, nil)
	b.keys, b.g = a.keys, a.g // same genesis, same keys
	b.db = storage.OpenMemory()
	genesis, err := b.db.InitGenesis(a.g.CoreGenesis())
	if err != nil {
		t.Fatal(err)
	}
	b.head = genesis.Header()
	txs := []*types.Transaction{a.transfer(0, 0, common.HexToAddress("0x1"), 1), a.transfer(0, 1, common.HexToAddress("0x2"), 2)}
	ra, rb := a.execute(txs...), b.execute(txs...)
	if ra.Block.Hash() != rb.Block.Hash() || ra.Block.Root() != rb.Block.Root() {
		t.Fatalf("same proposal, different blocks: %s/%s vs %s/%s", ra.Block.Hash(), ra.Block.Root(), rb.Block.Hash(), rb.Block.Root())
	}
}

func TestExecuteSkipsInvalidTransactionsWithoutSideEffects(t *testing.T) {
	c := newTestChain(t, 2, nil)
	to := common.HexToAddress("0xbeef")
	poor, _ := crypto.GenerateKey()
	c.keys = append(c.keys, poor)
	good := c.transfer(0, 0, to, 1)
	replay := c.transfer(0, 0, to, 2) // nonce already used by good
	gap := c.transfer(1, 5, to, 3)    // nonce gap
	broke := c.transfer(2, 0, to, 4)  // sender has no funds
	tooBig := c.tx(1, &types.DynamicFeeTx{ChainID: c.g.EthereumConfig().ChainID, Nonce: 0, Gas: params.MaxTxGas + 1, To: &to, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(0)})
	res := c.execute(good, replay, gap, broke, tooBig)
	if len(res.Block.Transactions()) != 1 || res.Block.Transactions()[0].Hash() != good.Hash() {
		t.Fatalf("included %d txs", len(res.Block.Transactions()))
	}
	wantErr := map[common.Hash]error{replay.Hash(): core.ErrNonceTooLow, gap.Hash(): core.ErrNonceTooHigh, broke.Hash(): core.ErrInsufficientFunds, tooBig.Hash(): core.ErrGasLimitTooHigh}
	if len(res.Skipped) != len(wantErr) {
		t.Fatalf("skipped %v", res.Skipped)
	}
	for _, s := range res.Skipped {
		if !errors.Is(s.Err, wantErr[s.Hash]) {
			t.Errorf("tx %s skipped with %v, want %v", s.Hash, s.Err, wantErr[s.Hash])
		}
	}
	if got := c.balance(to); got.Int64() != 1 {
		t.Fatalf("skipped transactions changed state: recipient has %v", got)
	}
}

func TestExecuteSkipsTransactionsOverBlockGas(t *testing.T) {
	c := newTestChain(t, 1, nil)
	to := common.HexToAddress("0xbeef")
	limit := c.head.GasLimit
	var txs []*types.Transaction
	for i := uint64(0); i < limit/21000+2; i++ {
		txs = append(txs, c.transfer(0, i, to, 1))
	}
	res := c.execute(txs...)
	if uint64(len(res.Block.Transactions())) != limit/21000 {
		t.Fatalf("included %d, want %d", len(res.Block.Transactions()), limit/21000)
	}
	// The first transaction that does not fit is skipped for block gas; the
	// sender's later ones then have a nonce gap.
	if len(res.Skipped) != 2 || !errors.Is(res.Skipped[0].Err, core.ErrGasLimitReached) || !errors.Is(res.Skipped[1].Err, core.ErrNonceTooHigh) {
		t.Fatalf("skipped %v", res.Skipped)
	}
}

func TestExecuteRejectsWrongParentAndTime(t *testing.T) {
	c := newTestChain(t, 1, nil)
	st, _ := c.db.StateAt(c.head.Root)
	bad := &chain.Proposal{Number: 1, ParentHash: common.HexToHash("0x01"), Time: c.head.Time}
	if _, err := c.exec.Execute(t.Context(), c.head, bad, st); !errors.Is(err, execution.ErrWrongParent) {
		t.Fatalf("wrong parent: got %v", err)
	}
	bad = &chain.Proposal{Number: 2, ParentHash: c.head.Hash(), Time: c.head.Time}
	if _, err := c.exec.Execute(t.Context(), c.head, bad, st); !errors.Is(err, execution.ErrWrongParent) {
		t.Fatalf("wrong number: got %v", err)
	}
	c.execute(c.transfer(0, 0, common.HexToAddress("0x1"), 1))
	st, _ = c.db.StateAt(c.head.Root)
	bad = &chain.Proposal{Number: 2, ParentHash: c.head.Hash(), Time: c.head.Time - 1}
	if _, err := c.exec.Execute(t.Context(), c.head, bad, st); !errors.Is(err, execution.ErrTimeTravel) {
		t.Fatalf("time travel: got %v", err)
	}
}

// PUSH0 (Shanghai) and CLZ-era opcodes must work: the London trap would make
// solc >= 0.8.20 output fail as an invalid opcode.
func TestExecuteRunsPostMergeOpcodes(t *testing.T) {
	c := newTestChain(t, 1, nil)
	// init code: PUSH0 PUSH0 RETURN -> deploys empty code; fails on London rules.
	create := c.tx(0, &types.DynamicFeeTx{ChainID: c.g.EthereumConfig().ChainID, Nonce: 0, Gas: 100000, GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(0), Data: []byte{0x5f, 0x5f, 0xf3}})
	res := c.execute(create)
	if len(res.Receipts) != 1 || res.Receipts[0].Status != types.ReceiptStatusSuccessful {
		t.Fatalf("PUSH0 contract creation failed: %+v", res.Receipts)
	}
	if res.Receipts[0].ContractAddress != crypto.CreateAddress(c.addr(0), 0) {
		t.Fatalf("contract address %s", res.Receipts[0].ContractAddress)
	}
}

func TestBaseFeeModeFollowsEIP1559(t *testing.T) {
	c := newTestChain(t, 1, big.NewInt(params.InitialBaseFee))
	res := c.execute(c.transfer(0, 0, common.HexToAddress("0x1"), 1))
	if got := res.Block.BaseFee(); got.Int64() >= params.InitialBaseFee {
		t.Fatalf("base fee %v did not fall below %d after an almost empty parent", got, params.InitialBaseFee)
	}
	if r := res.Receipts[0]; r.EffectiveGasPrice.Cmp(res.Block.BaseFee()) != 0 {
		t.Fatalf("effective gas price %v, base fee %v", r.EffectiveGasPrice, res.Block.BaseFee())
	}
}

func TestRecoverSendersFindsBadSignature(t *testing.T) {
	c := newTestChain(t, 1, nil)
	var txs types.Transactions
	for i := uint64(0); i < 200; i++ {
		txs = append(txs, c.transfer(0, i, common.HexToAddress("0x1"), 1))
	}
	if bad := execution.RecoverSenders(c.signer, txs); bad != -1 {
		t.Fatalf("valid batch reported bad tx %d", bad)
	}
	// r = s = 0 is not a valid secp256k1 signature.
	forged, err := txs[0].WithSignature(c.signer, make([]byte, 65))
	if err != nil {
		t.Fatal(err)
	}
	fresh := types.Transactions{c.transfer(0, 500, common.HexToAddress("0x1"), 1), forged}
	if bad := execution.RecoverSenders(c.signer, fresh); bad != 1 {
		t.Fatalf("forged signature reported at %d, want 1", bad)
	}
}

// EIP-7702: an account delegates to code, and calls to it run that code.
func TestExecuteSetCodeTransaction(t *testing.T) {
	c := newTestChain(t, 2, nil)
	chainID := c.g.EthereumConfig().ChainID
	// Runtime code: SSTORE(0, 0x2a), STOP.
	runtime := []byte{0x60, 0x2a, 0x60, 0x00, 0x55, 0x00}
	initCode := append([]byte{0x60, byte(len(runtime)), 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, byte(len(runtime)), 0x60, 0x00, 0xf3}, runtime...)
	deploy := c.tx(0, &types.DynamicFeeTx{ChainID: chainID, Nonce: 0, Gas: 200000, GasFeeCap: big.NewInt(1), Data: initCode})
	target := crypto.CreateAddress(c.addr(0), 0)
	c.execute(deploy)

	auth, err := types.SignSetCode(c.keys[1], types.SetCodeAuthorization{ChainID: *uint256.MustFromBig(chainID), Address: target, Nonce: 0})
	if err != nil {
		t.Fatal(err)
	}
	delegator := c.addr(1)
	setCode := c.tx(0, &types.SetCodeTx{ChainID: uint256.MustFromBig(chainID), Nonce: 1, Gas: 200000, GasFeeCap: uint256.NewInt(1),
		To: delegator, AuthList: []types.SetCodeAuthorization{auth}})
	res := c.execute(setCode)
	if len(res.Receipts) != 1 || res.Receipts[0].Status != types.ReceiptStatusSuccessful || res.Receipts[0].Type != types.SetCodeTxType {
		t.Fatalf("set-code tx: %+v skipped %v", res.Receipts, res.Skipped)
	}
	st, err := c.db.StateAt(c.head.Root)
	if err != nil {
		t.Fatal(err)
	}
	if addr, ok := types.ParseDelegation(st.GetCode(delegator)); !ok || addr != target {
		t.Fatalf("delegation not installed: code %x", st.GetCode(delegator))
	}
	if got := st.GetState(delegator, common.Hash{}); got != common.BigToHash(big.NewInt(0x2a)) {
		t.Fatalf("delegated code did not run in the account's context: slot 0 = %s", got)
	}
}

func TestPresetSendersAreUsedInsteadOfRecovery(t *testing.T) {
	c := newTestChain(t, 2, nil)
	// The proposal claims account 1 sent account 0's transaction: a
	// follower trusts the proposer, so execution charges account 1.
	tx := c.transfer(0, 0, common.HexToAddress("0xbeef"), 1000)
	p := &chain.Proposal{Number: 1, ParentHash: c.head.Hash(), Time: c.head.Time + 1, Proposer: common.HexToAddress("0x01"),
		Txs: types.Transactions{tx}, Senders: []common.Address{c.addr(1)}}
	c.exec.PresetSenders(p)
	st, err := c.db.StateAt(c.head.Root)
	if err != nil {
		t.Fatal(err)
	}
	before0, before1 := st.GetBalance(c.addr(0)), st.GetBalance(c.addr(1))
	res, err := c.exec.Execute(t.Context(), c.head, p, st)
	if err != nil || len(res.Block.Transactions()) != 1 {
		t.Fatalf("execute: %v", err)
	}
	if st.GetBalance(c.addr(0)).Cmp(before0) != 0 || st.GetBalance(c.addr(1)).Cmp(before1) >= 0 {
		t.Fatalf("preset sender ignored: balances %v→%v, %v→%v", before0, st.GetBalance(c.addr(0)), before1, st.GetBalance(c.addr(1)))
	}
	// Without senders (or with the wrong count) execution recovers them.
	tx2 := c.transfer(0, 0, common.HexToAddress("0xbeef"), 1000)
	c.exec.PresetSenders(&chain.Proposal{Number: 1, Txs: types.Transactions{tx2}, Senders: []common.Address{c.addr(1), c.addr(1)}})
	if from, _ := types.Sender(c.signer, tx2); from != c.addr(0) {
		t.Fatalf("sender %s, want the recovered %s", from, c.addr(0))
	}
}
