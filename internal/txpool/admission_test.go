package txpool

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/txpool/legacypool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
	"github.com/prometheus/client_golang/prometheus"
)

// TestAddRejections checks every refusal with go-ethereum's error value and
// exact text. The pool: block gas limit 10M (below the Osaka cap), base fee
// 1000 wei, minimum tip 10 wei; "rich" has 1 ether and nonce 2, "poor" has
// 1000 wei and nonce 0.
func TestAddRejections(t *testing.T) {
	rich, poor := testKey(t, 0), testKey(t, 1)
	richAddr, poorAddr := addrOf(rich), addrOf(poor)
	const (
		baseFee = 1000
		gasCap  = 10_000_000
	)
	// ok returns a valid transaction of rich, modified by f.
	ok := func(f func(*types.DynamicFeeTx)) *types.Transaction {
		inner := &types.DynamicFeeTx{
			ChainID: big.NewInt(testChainID), Nonce: 2, GasTipCap: big.NewInt(100), GasFeeCap: big.NewInt(2000),
			Gas: params.TxGas, To: &testRecipient, Value: big.NewInt(1),
		}
		if f != nil {
			f(inner)
		}
		return sign(t, rich, inner)
	}
	bigData := make([]byte, 131_072)
	oversized := ok(func(d *types.DynamicFeeTx) { d.Data = bigData; d.Gas = 9_000_000 })
	floorData := make([]byte, 1000)
	for i := range floorData {
		floorData[i] = 1
	}
	wrongChain, err := types.SignNewTx(rich, types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1), Nonce: 2, GasTipCap: big.NewInt(100), GasFeeCap: big.NewInt(2000),
		Gas: params.TxGas, To: &testRecipient,
	})
	if err != nil {
		t.Fatal(err)
	}
	badSig, err := ok(nil).WithSignature(testSigner(), make([]byte, 65))
	if err != nil {
		t.Fatal(err)
	}
	poorTx := sign(t, poor, &types.DynamicFeeTx{
		ChainID: big.NewInt(testChainID), GasTipCap: big.NewInt(100), GasFeeCap: big.NewInt(2000),
		Gas: params.TxGas, To: &testRecipient, Value: big.NewInt(1),
	})
	known := ok(nil)

	tests := []struct {
		name  string
		setup func(t *testing.T, p *Pool)
		tx    *types.Transaction
		is    []error
		want  string
	}{
		{
			name:  "already known",
			setup: func(t *testing.T, p *Pool) { mustAdd(t, p, known) },
			tx:    known,
			is:    []error{txpool.ErrAlreadyKnown},
			want:  "already known",
		},
		{
			name: "blob transaction",
			tx: types.NewTx(&types.BlobTx{
				ChainID: uint256.NewInt(testChainID), GasTipCap: uint256.NewInt(100), GasFeeCap: uint256.NewInt(2000),
				Gas: params.TxGas, BlobFeeCap: uint256.NewInt(1), BlobHashes: []common.Hash{{1}},
			}),
			is:   []error{core.ErrTxTypeNotSupported},
			want: "transaction type not supported: tx type 3 not supported by this pool",
		},
		{
			name: "oversized data",
			tx:   oversized,
			is:   []error{txpool.ErrOversizedData},
			want: fmt.Sprintf("oversized data: transaction size %d, limit 131072", oversized.Size()),
		},
		{
			name: "init code too large",
			tx: ok(func(d *types.DynamicFeeTx) {
				d.To = nil
				d.Data = make([]byte, params.MaxInitCodeSize+1)
				d.Gas = 9_000_000
			}),
			is:   []error{vm.ErrMaxInitCodeSizeExceeded},
			want: "max initcode size exceeded: code size 49153 limit 49152",
		},
		{
			name: "osaka per-transaction gas cap",
			tx:   ok(func(d *types.DynamicFeeTx) { d.Gas = params.MaxTxGas + 1 }),
			is:   []error{core.ErrGasLimitTooHigh},
			want: "transaction gas limit too high (cap: 16777216, tx: 16777217)",
		},
		{
			name: "negative value",
			tx:   sign(t, rich, &types.LegacyTx{Nonce: 2, GasPrice: big.NewInt(2000), Gas: params.TxGas, To: &testRecipient, Value: big.NewInt(-1)}),
			is:   []error{txpool.ErrNegativeValue},
			want: "negative value",
		},
		{
			name: "gas above block gas limit",
			tx:   ok(func(d *types.DynamicFeeTx) { d.Gas = gasCap + 1 }),
			is:   []error{txpool.ErrGasLimit},
			want: "exceeds block gas limit",
		},
		{
			name: "tip above fee cap",
			tx:   ok(func(d *types.DynamicFeeTx) { d.GasTipCap = big.NewInt(2001) }),
			is:   []error{core.ErrTipAboveFeeCap},
			want: "max priority fee per gas higher than max fee per gas",
		},
		{
			name: "wrong chain id",
			tx:   wrongChain,
			is:   []error{txpool.ErrInvalidSender},
			want: "invalid sender: invalid chain id for signer: have 1 want 1337",
		},
		{
			name: "bad signature",
			tx:   badSig,
			is:   []error{txpool.ErrInvalidSender},
			want: "invalid sender: invalid transaction v, r, s values",
		},
		{
			name: "intrinsic gas too low",
			tx:   ok(func(d *types.DynamicFeeTx) { d.Gas = params.TxGas - 1 }),
			is:   []error{core.ErrIntrinsicGas},
			want: "intrinsic gas too low: gas 20999, minimum needed 21000",
		},
		{
			name: "below EIP-7623 floor data gas",
			// 1000 non-zero bytes: intrinsic 21000+16*1000, floor 21000+10*4*1000.
			tx:   ok(func(d *types.DynamicFeeTx) { d.Data = floorData; d.Gas = 40_000 }),
			is:   []error{core.ErrFloorDataGas},
			want: "insufficient gas for floor data gas cost: gas 40000, minimum needed 61000",
		},
		{
			name: "set-code transaction without authorizations",
			tx: sign(t, rich, &types.SetCodeTx{
				ChainID: uint256.NewInt(testChainID), Nonce: 2, GasTipCap: uint256.NewInt(100), GasFeeCap: uint256.NewInt(2000),
				Gas: 100_000, To: testRecipient, Value: new(uint256.Int),
			}),
			want: "set code tx must have at least one authorization tuple",
		},
		{
			name: "tip below minimum gas price",
			tx:   ok(func(d *types.DynamicFeeTx) { d.GasTipCap = big.NewInt(9) }),
			is:   []error{txpool.ErrTxGasPriceTooLow, txpool.ErrUnderpriced},
			want: "transaction gas price below minimum: gas tip cap 9, minimum needed 10",
		},
		{
			name: "fee cap below base fee",
			tx:   ok(func(d *types.DynamicFeeTx) { d.GasFeeCap = big.NewInt(baseFee - 1) }),
			is:   []error{core.ErrFeeCapTooLow},
			want: fmt.Sprintf("max fee per gas less than block base fee: address %s, maxFeePerGas: 999, baseFee: 1000", richAddr.Hex()),
		},
		{
			name: "nonce too low",
			tx:   ok(func(d *types.DynamicFeeTx) { d.Nonce = 1 }),
			is:   []error{core.ErrNonceTooLow},
			want: "nonce too low: next nonce 2, tx nonce 1",
		},
		{
			name: "insufficient funds",
			tx:   poorTx,
			is:   []error{core.ErrInsufficientFunds},
			want: fmt.Sprintf("insufficient funds for gas * price + value: balance 1000, tx cost %d, overshot %d", 21000*2000+1, 21000*2000+1-1000),
		},
		{
			name: "insufficient funds counting pooled transactions",
			setup: func(t *testing.T, p *Pool) {
				mustAdd(t, p, ok(func(d *types.DynamicFeeTx) { d.Value = new(big.Int).Sub(oneEther, big.NewInt(50_000_000)) }))
			},
			tx: ok(func(d *types.DynamicFeeTx) { d.Nonce = 3 }),
			is: []error{core.ErrInsufficientFunds},
			want: fmt.Sprintf("insufficient funds for gas * price + value: balance %s, queued cost %s, tx cost %d, overshot %d", oneEther,
				new(big.Int).Add(oneEther, big.NewInt(21000*2000-50_000_000)), 21000*2000+1, 2*21000*2000+1-50_000_000),
		},
		{
			name:  "replacement without price bump",
			setup: func(t *testing.T, p *Pool) { mustAdd(t, p, ok(nil)) },
			tx: ok(func(d *types.DynamicFeeTx) {
				d.GasTipCap, d.GasFeeCap = big.NewInt(109), big.NewInt(2200) // tip +9%, cap +10%
			}),
			is:   []error{txpool.ErrReplaceUnderpriced},
			want: "replacement transaction underpriced",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newTestState(t)
			fund(st, richAddr, oneEther, 2)
			fund(st, poorAddr, big.NewInt(1000), 0)
			cfg := testConfig()
			cfg.MinGasPrice = big.NewInt(10)
			p := New(cfg, testChainConfig(), testHead(gasCap, big.NewInt(baseFee)), st, nil, nil)
			if tt.setup != nil {
				tt.setup(t, p)
			}
			pendingBefore, queuedBefore := p.Stats()
			err := p.Add(tt.tx)
			if err == nil {
				t.Fatal("Add succeeded, want an error")
			}
			if err.Error() != tt.want {
				t.Errorf("error text\n got: %s\nwant: %s", err, tt.want)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("errors.Is(%v, %v) = false", err, target)
				}
			}
			if pending, queued := p.Stats(); pending != pendingBefore || queued != queuedBefore {
				t.Errorf("Stats changed by a refused tx: %d/%d -> %d/%d", pendingBefore, queuedBefore, pending, queued)
			}
			if tt.name != "already known" && p.Has(tt.tx.Hash()) {
				t.Error("refused transaction is in the pool")
			}
			checkInvariants(t, p)
		})
	}
}

func mustAdd(t testing.TB, p *Pool, tx *types.Transaction) {
	t.Helper()
	if err := p.Add(tx); err != nil {
		t.Fatalf("Add(nonce %d): %v", tx.Nonce(), err)
	}
}

// TestAddAccepts admits every supported transaction type, including free
// (price 0) transactions and EIP-7702 set-code transactions.
func TestAddAccepts(t *testing.T) {
	key := testKey(t, 0)
	authKey := testKey(t, 1)
	auth, err := types.SignSetCode(authKey, types.SetCodeAuthorization{
		ChainID: *uint256.NewInt(testChainID), Address: common.HexToAddress("0xbb"), Nonce: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	txs := []*types.Transaction{
		legacyTx(t, key, 0, 0),
		sign(t, key, &types.AccessListTx{
			ChainID: big.NewInt(testChainID), Nonce: 1, GasPrice: new(big.Int), Gas: 30_000, To: &testRecipient,
			AccessList: types.AccessList{{Address: testRecipient, StorageKeys: []common.Hash{{1}}}},
		}),
		dynTx(t, key, 2, params.TxGas, 0, 0),
		sign(t, key, &types.SetCodeTx{
			ChainID: uint256.NewInt(testChainID), Nonce: 3, GasTipCap: new(uint256.Int), GasFeeCap: new(uint256.Int),
			Gas: 100_000, To: testRecipient, Value: new(uint256.Int), AuthList: []types.SetCodeAuthorization{auth},
		}),
	}
	st := newTestState(t)
	fund(st, addrOf(key), oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	for _, tx := range txs {
		if err := p.Add(tx); err != nil {
			t.Fatalf("Add(type %d): %v", tx.Type(), err)
		}
		if got := p.Get(tx.Hash()); got == nil || got.Hash() != tx.Hash() {
			t.Fatalf("Get(type %d) = %v", tx.Type(), got)
		}
	}
	if pending, queued := p.Stats(); pending != len(txs) || queued != 0 {
		t.Errorf("Stats = %d, %d; want %d, 0", pending, queued, len(txs))
	}
	if got := p.Nonce(addrOf(key)); got != uint64(len(txs)) {
		t.Errorf("Nonce = %d, want %d", got, len(txs))
	}
}

// TestReplacement replaces pending and queued transactions with and without
// the required price bump.
func TestReplacement(t *testing.T) {
	key := testKey(t, 0)
	st := newTestState(t)
	fund(st, addrOf(key), oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	sub := make(chan core.NewTxsEvent, 16)
	defer p.SubscribeNewTxs(sub).Unsubscribe()

	for _, nonce := range []uint64{0, 5} { // pending, queued
		orig := dynTx(t, key, nonce, params.TxGas, 100, 1000)
		mustAdd(t, p, orig)
		drain(sub)
		// Equal, +9% on both, and +10% on the cap only are refused.
		for _, r := range [][2]int64{{100, 1000}, {109, 1090}, {100, 1100}} {
			repl := dynTx(t, key, nonce, params.TxGas+1, r[0], r[1])
			if err := p.Add(repl); !errors.Is(err, txpool.ErrReplaceUnderpriced) {
				t.Errorf("nonce %d: replacement tip %d cap %d: err = %v, want %v", nonce, r[0], r[1], err, txpool.ErrReplaceUnderpriced)
			}
		}
		repl := dynTx(t, key, nonce, params.TxGas, 110, 1100)
		mustAdd(t, p, repl)
		if p.Has(orig.Hash()) || !p.Has(repl.Hash()) {
			t.Errorf("nonce %d: after replacement Has(orig)=%v Has(repl)=%v", nonce, p.Has(orig.Hash()), p.Has(repl.Hash()))
		}
		events := drain(sub)
		if nonce == 0 && (len(events) != 1 || events[0][0] != repl.Hash()) {
			t.Errorf("pending replacement events = %v, want [[%v]]", events, repl.Hash())
		}
		if nonce == 5 && len(events) != 0 {
			t.Errorf("queued replacement announced: %v", events)
		}
	}
	if pending, queued := p.Stats(); pending != 1 || queued != 1 {
		t.Errorf("Stats = %d, %d; want 1, 1", pending, queued)
	}
	checkInvariants(t, p)
}

// TestLimits checks the pending, global queued and per-account queued
// limits and eviction of the cheapest other sender.
func TestLimits(t *testing.T) {
	a, b, c, d := testKey(t, 0), testKey(t, 1), testKey(t, 2), testKey(t, 3)
	st := newTestState(t)
	for _, k := range []int{0, 1, 2, 3} {
		fund(st, addrOf(testKey(t, k)), oneEther, 0)
	}
	cfg := testConfig()
	cfg.MaxPending = 3
	cfg.MaxQueued = 2
	cfg.MaxQueuedPerAccount = 1
	p := newTestPool(t, cfg, st)

	aCheap := dynTx(t, a, 0, params.TxGas, 1, 10)
	aCheap2 := dynTx(t, a, 1, params.TxGas, 1, 10)
	bMid := dynTx(t, b, 0, params.TxGas, 5, 10)
	for _, tx := range []*types.Transaction{aCheap, aCheap2, bMid} {
		mustAdd(t, p, tx)
	}
	// Full: an equally cheap newcomer is refused.
	if err := p.Add(dynTx(t, c, 0, params.TxGas, 1, 10)); err != legacypool.ErrTxPoolOverflow || err.Error() != "txpool is full" {
		t.Errorf("cheap newcomer: err = %v, want %v", err, legacypool.ErrTxPoolOverflow)
	}
	// A better paying one evicts a's last transaction, never its first.
	cRich := dynTx(t, c, 0, params.TxGas, 3, 10)
	mustAdd(t, p, cRich)
	if p.Has(aCheap2.Hash()) || !p.Has(aCheap.Hash()) {
		t.Errorf("eviction: Has(a0)=%v Has(a1)=%v, want true, false", p.Has(aCheap.Hash()), p.Has(aCheap2.Hash()))
	}
	// The next better paying one evicts a's remaining transaction.
	mustAdd(t, p, dynTx(t, c, 1, params.TxGas, 100, 100))
	if p.Has(aCheap.Hash()) {
		t.Error("a0 should have been evicted by c1")
	}
	if pending, _ := p.Stats(); pending != 3 {
		t.Errorf("pending = %d, want 3", pending)
	}

	// Per-account queued limit (1): the second gapped tx of d is refused.
	mustAdd(t, p, dynTx(t, d, 5, params.TxGas, 1, 10))
	err := p.Add(dynTx(t, d, 6, params.TxGas, 1, 10))
	if !errors.Is(err, txpool.ErrAccountLimitExceeded) || err.Error() != "account limit exceeded: pooled 1 txs" {
		t.Errorf("per-account queued limit: err = %v", err)
	}
	// Global queued limit (2).
	mustAdd(t, p, dynTx(t, a, 7, params.TxGas, 1, 10))
	if err := p.Add(dynTx(t, b, 7, params.TxGas, 1, 10)); err != legacypool.ErrTxPoolOverflow {
		t.Errorf("global queued limit: err = %v, want %v", err, legacypool.ErrTxPoolOverflow)
	}
	if pending, queued := p.Stats(); pending != 3 || queued != 2 {
		t.Errorf("Stats = %d, %d; want 3, 2", pending, queued)
	}
	checkInvariants(t, p)
}

// TestGapQueuedPromoted queues a gapped transaction and promotes it when the
// missing nonce arrives, announcing both.
func TestGapQueuedPromoted(t *testing.T) {
	key := testKey(t, 0)
	st := newTestState(t)
	fund(st, addrOf(key), oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	sub := make(chan core.NewTxsEvent, 16)
	defer p.SubscribeNewTxs(sub).Unsubscribe()

	tx0, tx1, tx2, tx3 := legacyTx(t, key, 0, 1), legacyTx(t, key, 1, 1), legacyTx(t, key, 2, 1), legacyTx(t, key, 3, 1)
	mustAdd(t, p, tx0)
	mustAdd(t, p, tx2)
	mustAdd(t, p, tx3)
	if pending, queued := p.Stats(); pending != 1 || queued != 2 {
		t.Fatalf("Stats = %d, %d; want 1, 2", pending, queued)
	}
	if n := p.Nonce(addrOf(key)); n != 1 {
		t.Errorf("Nonce = %d, want 1", n)
	}
	if got := p.Pending(0, 0, 0); len(got) != 1 || got[0].Hash() != tx0.Hash() {
		t.Errorf("Pending = %v, want [tx0]", hashes(got))
	}
	mustAdd(t, p, tx1)
	if pending, queued := p.Stats(); pending != 4 || queued != 0 {
		t.Errorf("Stats = %d, %d; want 4, 0", pending, queued)
	}
	if n := p.Nonce(addrOf(key)); n != 4 {
		t.Errorf("Nonce = %d, want 4", n)
	}
	want := fmt.Sprint([][]common.Hash{{tx0.Hash()}, {tx1.Hash(), tx2.Hash(), tx3.Hash()}})
	if got := fmt.Sprint(drain(sub)); got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	pending, queued := p.Content()
	if got, want := fmt.Sprint(hashes(pending[addrOf(key)])), fmt.Sprint(hashes([]*types.Transaction{tx0, tx1, tx2, tx3})); got != want || len(queued) != 0 {
		t.Errorf("Content pending = %s queued = %v, want %s and none", got, queued, want)
	}
	checkInvariants(t, p)
}

// TestMetrics checks the admitted and rejected counters and the gauges.
func TestMetrics(t *testing.T) {
	key := testKey(t, 0)
	st := newTestState(t)
	fund(st, addrOf(key), oneEther, 0)
	reg := prometheus.NewPedanticRegistry()
	p := New(testConfig(), testChainConfig(), testHead(30_000_000, nil), st, reg, nil)
	tx := legacyTx(t, key, 0, 0)
	mustAdd(t, p, tx)
	_ = p.Add(tx)                               // known
	_ = p.Add(legacyTx(t, key, 5, 0))           // queued
	_ = p.Add(legacyTx(t, testKey(t, 9), 0, 1)) // unfunded
	got := map[string]float64{}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"hansa_txpool_admitted_total":                            2,
		"hansa_txpool_pending":                                   1,
		"hansa_txpool_queued":                                    1,
		"hansa_txpool_evicted_total":                             0,
		"hansa_txpool_rejected_total{reason=known}":              1,
		"hansa_txpool_rejected_total{reason=insufficient_funds}": 1,
		"hansa_txpool_rejected_total{reason=nonce_too_low}":      0,
	} {
		if v, ok := got[name]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"max tx bytes", func(c *Config) { c.MaxTxBytes = 0 }, "txpool: max_tx_bytes must be positive"},
		{"max pending", func(c *Config) { c.MaxPending = 0 }, "txpool: max_pending must be positive"},
		{"max queued", func(c *Config) { c.MaxQueued = -1 }, "txpool: max_queued must not be negative"},
		{"per account", func(c *Config) { c.MaxQueuedPerAccount = -1 }, "txpool: max_queued_per_account must not be negative"},
		{"lifetime", func(c *Config) { c.QueuedLifetime = 0 }, "txpool: queued_lifetime must be positive"},
		{"min gas price", func(c *Config) { c.MinGasPrice = big.NewInt(-1) }, "txpool: min_gas_price must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); err == nil || err.Error() != tt.want {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
