package txpool

import (
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
)

// BenchmarkAdd measures admission throughput of pre-signed transfers from
// 100 senders, 100 nonces each. "recover" decodes each transaction from its
// encoding first, so sender recovery is paid as on the RPC path; "cached"
// offers transactions whose sender is already cached.
func BenchmarkAdd(b *testing.B) {
	const senders, nonces = 100, 100
	st := newTestState(b)
	var raws [][]byte
	var txs []*types.Transaction
	for n := range nonces {
		for s := range senders {
			key := testKey(b, s)
			if n == 0 {
				fund(st, addrOf(key), oneEther, 0)
			}
			tx := legacyTx(b, key, uint64(n), 1)
			raw, err := tx.MarshalBinary()
			if err != nil {
				b.Fatal(err)
			}
			raws = append(raws, raw)
			txs = append(txs, tx)
		}
	}
	run := func(b *testing.B, next func(i int) *types.Transaction) {
		p := newTestPool(b, testConfig(), st)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			j := i % len(txs)
			if j == 0 && i > 0 {
				b.StopTimer()
				p = newTestPool(b, testConfig(), st)
				b.StartTimer()
			}
			if err := p.Add(next(j)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("recover", func(b *testing.B) {
		run(b, func(j int) *types.Transaction {
			tx := new(types.Transaction)
			if err := tx.UnmarshalBinary(raws[j]); err != nil {
				b.Fatal(err)
			}
			return tx
		})
	})
	b.Run("cached", func(b *testing.B) {
		for _, tx := range txs { // cache senders
			if _, err := types.Sender(testSigner(), tx); err != nil {
				b.Fatal(err)
			}
		}
		run(b, func(j int) *types.Transaction { return txs[j] })
	})
}
