package txpool

import (
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// TestResetAfterBlock simulates a block that includes a sender's first two
// transactions and checks removal, promotion, and the new head's rules.
func TestResetAfterBlock(t *testing.T) {
	key := testKey(t, 0)
	addr := addrOf(key)
	st := newTestState(t)
	fund(st, addr, oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	sub := make(chan core.NewTxsEvent, 16)
	defer p.SubscribeNewTxs(sub).Unsubscribe()

	txs := make([]*types.Transaction, 6)
	for i := range txs {
		txs[i] = legacyTx(t, key, uint64(i), 1)
	}
	for _, i := range []int{0, 1, 2, 4, 5} {
		mustAdd(t, p, txs[i])
	}
	drain(sub)
	if pending, queued := p.Stats(); pending != 3 || queued != 2 {
		t.Fatalf("Stats = %d, %d; want 3, 2", pending, queued)
	}

	// A block includes nonces 0 and 1; the new head has a smaller gas limit.
	fund(st, addr, new(big.Int).Sub(oneEther, big.NewInt(2*21000+2)), 2)
	p.Reset(testHead(50_000, new(big.Int)), st)
	if p.Has(txs[0].Hash()) || p.Has(txs[1].Hash()) {
		t.Error("included transactions still pooled")
	}
	if pending, queued := p.Stats(); pending != 1 || queued != 2 {
		t.Errorf("after reset Stats = %d, %d; want 1, 2", pending, queued)
	}
	if n := p.Nonce(addr); n != 3 {
		t.Errorf("Nonce = %d, want 3", n)
	}
	if err := p.Add(legacyTx(t, key, 1, 1)); !errors.Is(err, core.ErrNonceTooLow) {
		t.Errorf("re-adding an included nonce: err = %v, want %v", err, core.ErrNonceTooLow)
	}
	bigGas := sign(t, key, &types.LegacyTx{Nonce: 3, GasPrice: big.NewInt(1), Gas: 60_000, To: &testRecipient})
	if err := p.Add(bigGas); !errors.Is(err, txpool.ErrGasLimit) {
		t.Errorf("gas above the new head's limit: err = %v, want %v", err, txpool.ErrGasLimit)
	}
	// The missing nonce promotes 4 and 5.
	mustAdd(t, p, txs[3])
	if pending, queued := p.Stats(); pending != 4 || queued != 0 {
		t.Errorf("after filling the gap Stats = %d, %d; want 4, 0", pending, queued)
	}
	want := fmt.Sprint([][]common.Hash{{txs[3].Hash(), txs[4].Hash(), txs[5].Hash()}})
	if got := fmt.Sprint(drain(sub)); got != want {
		t.Errorf("events = %s, want %s", got, want)
	}
	checkInvariants(t, p)
}

// TestResetPromotesAfterExternalNonce promotes queued transactions when a
// block advances the sender's nonce to them (the missing ones came through
// another node).
func TestResetPromotesAfterExternalNonce(t *testing.T) {
	key := testKey(t, 0)
	addr := addrOf(key)
	st := newTestState(t)
	fund(st, addr, oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	sub := make(chan core.NewTxsEvent, 16)
	defer p.SubscribeNewTxs(sub).Unsubscribe()

	tx2, tx3 := legacyTx(t, key, 2, 1), legacyTx(t, key, 3, 1)
	mustAdd(t, p, tx2)
	mustAdd(t, p, tx3)
	if got := p.Pending(0, 0, 0); len(got) != 0 {
		t.Fatalf("Pending with a gap = %d txs, want 0", len(got))
	}
	fund(st, addr, oneEther, 2)
	p.Reset(testHead(30_000_000, new(big.Int)), st)
	if got := fmt.Sprint(hashes(p.Pending(0, 0, 0))); got != fmt.Sprint([]common.Hash{tx2.Hash(), tx3.Hash()}) {
		t.Errorf("Pending = %s, want tx2 tx3", got)
	}
	if got := fmt.Sprint(drain(sub)); got != fmt.Sprint([][]common.Hash{{tx2.Hash(), tx3.Hash()}}) {
		t.Errorf("events = %s", got)
	}
	checkInvariants(t, p)
}

// TestResetUnaffordable drops the first pending transaction the sender can
// no longer afford and demotes its successors.
func TestResetUnaffordable(t *testing.T) {
	key := testKey(t, 0)
	addr := addrOf(key)
	st := newTestState(t)
	fund(st, addr, big.NewInt(10*21000), 0)
	p := newTestPool(t, testConfig(), st)

	// Each costs 21000*2+1 (cumulative 42001, 84002, 126003, 168004).
	txs := make([]*types.Transaction, 4)
	for i := range txs {
		txs[i] = legacyTx(t, key, uint64(i), 2)
		mustAdd(t, p, txs[i])
	}
	// The balance drops (e.g. a delegated account's code spent it): only the
	// first two remain affordable.
	fund(st, addr, big.NewInt(90_000), 0)
	p.Reset(testHead(30_000_000, new(big.Int)), st)
	pending, queued := p.Content()
	if got, want := fmt.Sprint(hashes(pending[addr])), fmt.Sprint(hashes(txs[:2])); got != want {
		t.Errorf("pending = %s, want %s", got, want)
	}
	if p.Has(txs[2].Hash()) {
		t.Error("unaffordable tx 2 kept")
	}
	if got, want := fmt.Sprint(hashes(queued[addr])), fmt.Sprint(hashes(txs[3:])); got != want {
		t.Errorf("queued = %s, want %s (demoted)", got, want)
	}
	if n := p.Nonce(addr); n != 2 {
		t.Errorf("Nonce = %d, want 2", n)
	}
	checkInvariants(t, p)
}

// TestResetExpiresQueued drops queued transactions older than the lifetime
// and keeps pending ones.
func TestResetExpiresQueued(t *testing.T) {
	key := testKey(t, 0)
	st := newTestState(t)
	fund(st, addrOf(key), oneEther, 0)
	cfg := testConfig()
	cfg.QueuedLifetime = time.Hour
	p := newTestPool(t, cfg, st)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }

	tx0, old, fresh := legacyTx(t, key, 0, 1), legacyTx(t, key, 5, 1), legacyTx(t, key, 6, 1)
	mustAdd(t, p, tx0)
	mustAdd(t, p, old)
	now = now.Add(50 * time.Minute)
	mustAdd(t, p, fresh)
	now = now.Add(20 * time.Minute)
	p.Reset(testHead(30_000_000, new(big.Int)), st)
	if !p.Has(tx0.Hash()) || p.Has(old.Hash()) || !p.Has(fresh.Hash()) {
		t.Errorf("after expiry Has(pending)=%v Has(old)=%v Has(fresh)=%v; want true false true",
			p.Has(tx0.Hash()), p.Has(old.Hash()), p.Has(fresh.Hash()))
	}
	checkInvariants(t, p)
}

// TestResetBaseFee adopts the new head's base fee for admission.
func TestResetBaseFee(t *testing.T) {
	key := testKey(t, 0)
	st := newTestState(t)
	fund(st, addrOf(key), oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	p.Reset(testHead(30_000_000, big.NewInt(params.InitialBaseFee)), st)
	err := p.Add(legacyTx(t, key, 0, params.InitialBaseFee-1))
	if !errors.Is(err, core.ErrFeeCapTooLow) {
		t.Errorf("err = %v, want %v", err, core.ErrFeeCapTooLow)
	}
	mustAdd(t, p, legacyTx(t, key, 0, params.InitialBaseFee))
}
