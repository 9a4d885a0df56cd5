package execution_test

import (
	"bytes"
	"encoding/json"
	"os"

	"github.com/ethereum/go-ethereum/accounts/abi"
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
		for _, r := range res.Receipts {
			if r.Status != types.ReceiptStatusSuccessful {
				b.Fatalf("transaction %s failed: a benchmark counts only successful transactions", r.TxHash)
			}
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

// tokenArtifact is the ERC-20 the end-to-end tests compile (see tests/e2e).
type tokenArtifact struct {
	ABI      json.RawMessage `json:"abi"`
	Bytecode string          `json:"bytecode"`
}

func loadToken(b *testing.B) (abi.ABI, []byte) {
	data, err := os.ReadFile("../../tests/e2e/contracts/Token.json")
	if err != nil {
		b.Fatal(err)
	}
	var art tokenArtifact
	if err := json.Unmarshal(data, &art); err != nil {
		b.Fatal(err)
	}
	parsed, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		b.Fatal(err)
	}
	return parsed, common.FromHex(art.Bytecode)
}

// erc20BlockTxs ERC-20 transfers (~35k gas each) fit a 60M-gas block.
const erc20BlockTxs = 1500

// BenchmarkERC20Transfers executes and commits blocks of 1,500 ERC-20
// transfers among 10,000 token holders.
func BenchmarkERC20Transfers(b *testing.B) {
	for _, mode := range []struct {
		name    string
		recover bool
	}{{"recovery-included", false}, {"senders-recovered", true}} {
		b.Run(mode.name, func(b *testing.B) {
			const holders = 10_000
			c := newBenchChain(b, holders)
			tokenABI, code := loadToken(b)
			args, err := tokenABI.Pack("", "Bench", "BNC", new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1e9)))
			if err != nil {
				b.Fatal(err)
			}
			chainID := c.g.EthereumConfig().ChainID
			deploy := c.tx(0, &types.DynamicFeeTx{ChainID: chainID, Nonce: 0, Gas: 3_000_000, GasFeeCap: big.NewInt(1), Data: append(code, args...)})
			token := crypto.CreateAddress(c.addr(0), 0)
			nonces := make([]uint64, holders)
			nonces[0] = 1
			call := func(from int, to common.Address, amount int64) *types.Transaction {
				input, err := tokenABI.Pack("transfer", to, big.NewInt(amount))
				if err != nil {
					b.Fatal(err)
				}
				tx := c.tx(from, &types.DynamicFeeTx{ChainID: chainID, Nonce: nonces[from], Gas: 100_000, To: &token, GasFeeCap: big.NewInt(1), Data: input})
				nonces[from]++
				return tx
			}
			// Set-up blocks: deploy, then give every holder tokens.
			setup := types.Transactions{deploy}
			for i := 1; i < holders; i++ {
				setup = append(setup, call(0, c.addr(i), 1_000_000))
				if len(setup) == 500 {
					c.mustExecute(b, setup)
					setup = nil
				}
			}
			c.mustExecute(b, setup)
			rng := rand.New(rand.NewPCG(3, 4))
			blocks := make([][]byte, max(b.N, 1))
			for i := range blocks {
				txs := make(types.Transactions, 0, erc20BlockTxs)
				for j := 0; j < erc20BlockTxs; j++ {
					txs = append(txs, call((i*erc20BlockTxs+j)%holders, c.addr(rng.IntN(holders)), 1))
				}
				if blocks[i], err = chain.EncodeProposal(&chain.Proposal{Txs: txs}); err != nil {
					b.Fatal(err)
				}
			}
			c.runBlocks(b, blocks, mode.recover)
		})
	}
}

func (c *testChain) mustExecute(b *testing.B, txs types.Transactions) {
	res := c.execute(txs...)
	if len(res.Skipped) > 0 {
		b.Fatalf("set-up skipped %v", res.Skipped[0].Err)
	}
	for _, r := range res.Receipts {
		if r.Status != types.ReceiptStatusSuccessful {
			b.Fatalf("set-up transaction %s failed", r.TxHash)
		}
	}
}
