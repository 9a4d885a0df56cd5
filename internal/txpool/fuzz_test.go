package txpool

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
)

// fuzzSeedTxs are valid and invalid transactions of the funded key 0; the
// checked-in corpus under testdata/fuzz holds their encodings and more.
func fuzzSeedTxs(t testing.TB) []*types.Transaction {
	key := testKey(t, 0)
	auth, err := types.SignSetCode(testKey(t, 1), types.SetCodeAuthorization{
		ChainID: *uint256.NewInt(testChainID), Address: common.HexToAddress("0xbb"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return []*types.Transaction{
		legacyTx(t, key, 0, 0),
		dynTx(t, key, 1, params.TxGas, 1, 2),
		dynTx(t, key, 7, params.TxGas, 1, 2), // gapped
		sign(t, key, &types.AccessListTx{
			ChainID: big.NewInt(testChainID), Nonce: 2, GasPrice: big.NewInt(1), Gas: 30_000, To: &testRecipient,
			AccessList: types.AccessList{{Address: testRecipient, StorageKeys: []common.Hash{{1}}}},
		}),
		sign(t, key, &types.SetCodeTx{
			ChainID: uint256.NewInt(testChainID), Nonce: 3, GasTipCap: uint256.NewInt(1), GasFeeCap: uint256.NewInt(1),
			Gas: 100_000, To: testRecipient, Value: new(uint256.Int), AuthList: []types.SetCodeAuthorization{auth},
		}),
		types.NewTx(&types.BlobTx{
			ChainID: uint256.NewInt(testChainID), GasTipCap: uint256.NewInt(1), GasFeeCap: uint256.NewInt(1),
			Gas: params.TxGas, BlobFeeCap: uint256.NewInt(1), BlobHashes: []common.Hash{{1}},
		}),
	}
}

// FuzzAddRawTransaction decodes arbitrary bytes as a transaction and offers
// it to a pool: Add must never panic, an accepted transaction must be
// retrievable, and the pool's counters must stay consistent.
func FuzzAddRawTransaction(f *testing.F) {
	for _, tx := range fuzzSeedTxs(f) {
		raw, err := tx.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	st := newTestState(f)
	fund(st, addrOf(testKey(f, 0)), oneEther, 0)
	cfg := testConfig()
	cfg.MaxPending, cfg.MaxQueued = 64, 64
	p := newTestPool(f, cfg, st)

	f.Fuzz(func(t *testing.T, raw []byte) {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err != nil {
			return
		}
		if err := p.Add(&tx); err == nil {
			if got := p.Get(tx.Hash()); got == nil || got.Hash() != tx.Hash() {
				t.Fatalf("accepted transaction %v not retrievable", tx.Hash())
			}
		}
		pending, queued := p.Stats()
		cp, cq := p.Content()
		var np, nq int
		for _, txs := range cp {
			np += len(txs)
		}
		for _, txs := range cq {
			nq += len(txs)
		}
		if np != pending || nq != queued {
			t.Fatalf("Stats %d/%d, Content %d/%d", pending, queued, np, nq)
		}
		checkInvariants(t, p)
	})
}
