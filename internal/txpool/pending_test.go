package txpool

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// TestPendingOrdering checks nonce order per sender, tip order across
// senders, FIFO among equal tips, and the three limits.
func TestPendingOrdering(t *testing.T) {
	a, b, c, d := testKey(t, 0), testKey(t, 1), testKey(t, 2), testKey(t, 3)
	st := newTestState(t)
	for _, k := range []int{0, 1, 2, 3} {
		fund(st, addrOf(testKey(t, k)), oneEther, 0)
	}
	p := newTestPool(t, testConfig(), st)

	// Arrival order: c0, a0, b0, a1, d0, a2, c1 (large data).
	c0 := dynTx(t, c, 0, params.TxGas, 5, 100)
	a0 := dynTx(t, a, 0, params.TxGas, 5, 100)
	b0 := dynTx(t, b, 0, params.TxGas, 9, 100)
	a1 := dynTx(t, a, 1, params.TxGas, 50, 100) // high tip, but after a0
	d0 := dynTx(t, d, 0, 100_000, 1, 100)
	a2 := dynTx(t, a, 2, params.TxGas, 1, 100)
	c1 := sign(t, c, &types.DynamicFeeTx{
		ChainID: big.NewInt(testChainID), Nonce: 1, GasTipCap: big.NewInt(5), GasFeeCap: big.NewInt(100),
		Gas: 100_000, To: &testRecipient, Data: make([]byte, 2000),
	})
	for _, tx := range []*types.Transaction{c0, a0, b0, a1, d0, a2, c1} {
		mustAdd(t, p, tx)
	}
	name := map[common.Hash]string{}
	for n, tx := range map[string]*types.Transaction{"a0": a0, "a1": a1, "a2": a2, "b0": b0, "c0": c0, "c1": c1, "d0": d0} {
		name[tx.Hash()] = n
	}
	names := func(txs []*types.Transaction) string {
		var out []string
		for _, tx := range txs {
			out = append(out, name[tx.Hash()])
		}
		return fmt.Sprint(out)
	}

	small := a0.Size()
	tests := []struct {
		name     string
		maxTxs   int
		maxGas   uint64
		maxBytes int
		want     string
	}{
		// b0 (tip 9) first; c0 and a0 tie at 5, c0 arrived first; then
		// a1 (50) is a's next; c1 (5) is c's next; a2 (1) and d0 (1) tie, d0
		// arrived first.
		{"unlimited", 0, 0, 0, "[b0 c0 a0 a1 c1 d0 a2]"},
		{"max txs", 3, 0, 0, "[b0 c0 a0]"},
		// 4*21000 fits b0 c0 a0 a1; c1 and d0 (100k gas) do not; a2 fits.
		{"max gas", 0, 5 * params.TxGas, 0, "[b0 c0 a0 a1 a2]"},
		// Room for five small transactions: c1 (2 KB) is skipped with c.
		{"max bytes", 0, 0, int(5*small + small/2), "[b0 c0 a0 a1 d0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(p.Pending(tt.maxTxs, tt.maxGas, tt.maxBytes)); got != tt.want {
				t.Errorf("Pending = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestPendingBaseFee skips senders whose next transaction's fee cap is below
// the head's base fee, and orders by effective tip.
func TestPendingBaseFee(t *testing.T) {
	a, b, c := testKey(t, 0), testKey(t, 1), testKey(t, 2)
	st := newTestState(t)
	for _, k := range []int{0, 1, 2} {
		fund(st, addrOf(testKey(t, k)), oneEther, 0)
	}
	p := newTestPool(t, testConfig(), st)
	a0 := dynTx(t, a, 0, params.TxGas, 100, 150) // effective tip at 100: 50
	b0 := dynTx(t, b, 0, params.TxGas, 60, 1000) // 60
	c0 := dynTx(t, c, 0, params.TxGas, 60, 90)   // below base fee 100
	for _, tx := range []*types.Transaction{a0, b0, c0} {
		mustAdd(t, p, tx)
	}
	if got := hashes(p.Pending(0, 0, 0)); fmt.Sprint(got) != fmt.Sprint(hashes([]*types.Transaction{a0, b0, c0})) {
		t.Errorf("base fee 0: Pending = %v, want a0 b0 c0 (tips 100, 60, 60 FIFO)", got)
	}
	p.Reset(testHead(30_000_000, big.NewInt(100)), st)
	if got := hashes(p.Pending(0, 0, 0)); fmt.Sprint(got) != fmt.Sprint(hashes([]*types.Transaction{b0, a0})) {
		t.Errorf("base fee 100: Pending = %v, want b0 a0", got)
	}
	if pending, _ := p.Stats(); pending != 3 {
		t.Errorf("pending = %d, want 3: a fee cap below the base fee waits", pending)
	}
}
