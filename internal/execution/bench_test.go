package execution_test

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/execution"
	"github.com/hansa-chain/hansa/internal/storage"
)

const benchBlockTxs = 2000

// benchChain is a testChain on a real Pebble database.
func newBenchChain(b *testing.B, accounts int) *testChain {
	c := newTestChain(b, 0, nil)
	db, err := storage.OpenPebble(b.TempDir(), storage.DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	c.db = db
	for i := 0; i < accounts; i++ {
		k, _ := crypto.GenerateKey()
		c.keys = append(c.keys, k)
		c.g.Alloc[crypto.PubkeyToAddress(k.PublicKey)] = chain.Account{Balance: chain.NewBigInt(new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1000)))}
	}
	genesis, err := c.db.InitGenesis(c.g.CoreGenesis())
	if err != nil {
		b.Fatal(err)
	}
	c.head = genesis.Header()
	cfg := c.g.EthereumConfig()
	c.exec = execution.New(cfg, execution.NewChainContext(cfg, memHeaders{c}), execution.Rules{FreeGas: true})
	return c
}

// blocks pre-signs n blocks of native transfers between random accounts,
// each sender used once per block, encoded so decoding drops sender caches.
func (c *testChain) transferBlocks(b *testing.B, n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	nonces := make([]uint64, len(c.keys))
	out := make([][]byte, n)
	for i := range out {
		txs := make(types.Transactions, 0, benchBlockTxs)
		for j := 0; j < benchBlockTxs; j++ {
			from := (i*benchBlockTxs + j) % len(c.keys)
			to := c.addr(rng.IntN(len(c.keys)))
			txs = append(txs, c.transfer(from, nonces[from], to, 1))
			nonces[from]++
		}
		data, err := chain.EncodeProposal(&chain.Proposal{Txs: txs})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = data
	}
	return out
}

func (c *testChain) runBlocks(b *testing.B, blocks [][]byte, recoverFirst bool) {
	b.ReportAllocs()
	b.ResetTimer()
	total := 0
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p, err := chain.DecodeProposal(blocks[i%len(blocks)])
		if err != nil {
			b.Fatal(err)
		}
		p.Number, p.ParentHash, p.Time, p.Proposer = c.head.Number.Uint64()+1, c.head.Hash(), c.head.Time+1, common.HexToAddress("0x01")
		if recoverFirst {
			execution.RecoverSenders(c.signer, p.Txs)
		}
		st, err := c.db.StateAt(c.head.Root)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := c.exec.Execute(b.Context(), c.head, p, st)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.db.CommitBlock(res.Block, res.Receipts, p.Number); err != nil {
			b.Fatal(err)
		}
		if len(res.Skipped) > 0 {
			b.Fatalf("skipped %d txs: %v", len(res.Skipped), res.Skipped[0].Err)
		}
		c.head = res.Block.Header()
		total += len(res.Block.Transactions())
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkNativeTransfers executes and commits (to Pebble, synced) blocks of
// 2,000 native transfers among 10,000 accounts.
func BenchmarkNativeTransfers(b *testing.B) {
	for _, mode := range []struct {
		name    string
		recover bool
	}{{"recovery-included", false}, {"senders-recovered", true}} {
		b.Run(mode.name, func(b *testing.B) {
			c := newBenchChain(b, 10_000)
			blocks := c.transferBlocks(b, max(b.N, 1))
			c.runBlocks(b, blocks, mode.recover)
		})
	}
}
