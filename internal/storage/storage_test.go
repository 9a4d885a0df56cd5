package storage_test

import (
	"crypto/ecdsa"
	"errors"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/execution"
	"github.com/hansa-chain/hansa/internal/storage"
)

// backends are the storage backends every case runs against.
var backends = map[string]func(t *testing.T) *storage.DB{
	"memory": func(t *testing.T) *storage.DB { return storage.OpenMemory() },
	"pebble": func(t *testing.T) *storage.DB {
		db, err := storage.OpenPebble(t.TempDir(), storage.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		return db
	},
}

func forEachBackend(t *testing.T, f func(t *testing.T, db *storage.DB)) {
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			defer db.Close()
			f(t, db)
		})
	}
}

// headerSource serves the executor's header lookups from the database.
type headerSource struct {
	db   *storage.DB
	head *types.Header
}

func (h *headerSource) HeaderByNumber(n uint64) *types.Header    { return h.db.HeaderByNumber(n) }
func (h *headerSource) HeaderByHash(x common.Hash) *types.Header { return h.db.HeaderByHash(x) }
func (h *headerSource) HeadHeader() *types.Header                { return h.head }

// logContract's init code deploys runtime code that emits LOG1 with topic
// 0x2a and no data on every call: PUSH1 0x2a PUSH1 0 PUSH1 0 LOG1 STOP.
var logRuntime = []byte{0x60, 0x2a, 0x60, 0x00, 0x60, 0x00, 0xa1, 0x00}

func initCode(runtime []byte) []byte {
	// PUSH1 len PUSH1 12 PUSH1 0 CODECOPY PUSH1 len PUSH1 0 RETURN, then runtime.
	return append([]byte{0x60, byte(len(runtime)), 0x60, 0x0c, 0x60, 0x00, 0x39, 0x60, byte(len(runtime)), 0x60, 0x00, 0xf3}, runtime...)
}

type chainFixture struct {
	g      *chain.Genesis
	key    *ecdsa.PrivateKey
	db     *storage.DB
	exec   *execution.Executor
	hs     *headerSource
	nonce  uint64
	signer types.Signer
}

func newFixture(t *testing.T, db *storage.DB) *chainFixture {
	key, _ := crypto.GenerateKey()
	g := chain.DefaultGenesis()
	g.Members = []chain.Member{{ID: 1, Address: common.HexToAddress("0x01")}}
	g.Alloc[crypto.PubkeyToAddress(key.PublicKey)] = chain.Account{Balance: chain.NewBigInt(big.NewInt(1e18))}
	genesis, err := db.InitGenesis(g.CoreGenesis())
	if err != nil {
		t.Fatal(err)
	}
	cfg := g.EthereumConfig()
	hs := &headerSource{db: db, head: genesis.Header()}
	return &chainFixture{g: g, key: key, db: db, hs: hs, signer: types.LatestSigner(cfg),
		exec: execution.New(cfg, execution.NewChainContext(cfg, hs), execution.Rules{FreeGas: true})}
}

func (f *chainFixture) tx(t *testing.T, to *common.Address, data []byte) *types.Transaction {
	tx, err := types.SignNewTx(f.key, f.signer, &types.DynamicFeeTx{ChainID: f.g.EthereumConfig().ChainID, Nonce: f.nonce, Gas: 200_000, To: to, GasFeeCap: new(big.Int), GasTipCap: new(big.Int), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	f.nonce++
	return tx
}

func (f *chainFixture) commit(t *testing.T, index uint64, txs ...*types.Transaction) (*types.Block, types.Receipts) {
	head := f.hs.head
	st, err := f.db.StateAt(head.Root)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.exec.Execute(t.Context(), head, &chain.Proposal{Number: head.Number.Uint64() + 1, ParentHash: head.Hash(), Time: head.Time + 1, Txs: txs}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.CommitBlock(res.Block, res.Receipts, index); err != nil {
		t.Fatal(err)
	}
	f.hs.head = res.Block.Header()
	return res.Block, res.Receipts
}

func TestInitGenesisIsIdempotentAndRefusesAnotherChain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		g := chain.DefaultGenesis()
		first, err := db.InitGenesis(g.CoreGenesis())
		if err != nil {
			t.Fatal(err)
		}
		again, err := db.InitGenesis(g.CoreGenesis())
		if err != nil || again.Hash() != first.Hash() {
			t.Fatalf("second init: %v %v", again, err)
		}
		g.ChainID = 4242
		g.Alloc[common.HexToAddress("0x01")] = chain.Account{Balance: chain.NewBigInt(big.NewInt(1))}
		if _, err := db.InitGenesis(g.CoreGenesis()); !errors.Is(err, storage.ErrGenesisMismatch) {
			t.Fatalf("another genesis: got %v, want ErrGenesisMismatch", err)
		}
		if h := db.HeadHeader(); h == nil || h.Hash() != first.Hash() {
			t.Fatal("head is not the genesis")
		}
	})
}

func TestCommitBlockAndRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T, db *storage.DB) {
		f := newFixture(t, db)
		deploy := f.tx(t, nil, initCode(logRuntime))
		b1, _ := f.commit(t, 7, deploy)
		contract := crypto.CreateAddress(crypto.PubkeyToAddress(f.key.PublicKey), 0)
		call := f.tx(t, &contract, nil)
		b2, r2 := f.commit(t, 9, call)

		if h := db.HeadHeader(); h.Hash() != b2.Hash() {
			t.Fatalf("head %s, want %s", h.Hash(), b2.Hash())
		}
		if got := db.AppliedIndex(); got != 9 {
			t.Fatalf("applied index %d, want 9", got)
		}
		if db.BlockByNumber(1).Hash() != b1.Hash() || db.BlockByHash(b2.Hash()).NumberU64() != 2 || db.HeaderByNumber(3) != nil || db.BlockByHash(common.Hash{1}) != nil {
			t.Fatal("block lookups wrong")
		}
		tx, blockHash, number, index, ok := db.Transaction(call.Hash())
		if !ok || tx.Hash() != call.Hash() || blockHash != b2.Hash() || number != 2 || index != 0 {
			t.Fatalf("tx lookup: %v %s %d %d %v", tx, blockHash, number, index, ok)
		}
		if _, _, _, _, ok := db.Transaction(common.Hash{2}); ok {
			t.Fatal("found an unknown transaction")
		}
		rs := db.Receipts(b2.Hash(), 2, f.g.EthereumConfig())
		if len(rs) != 1 || rs[0].TxHash != call.Hash() || len(rs[0].Logs) != 1 || rs[0].Logs[0].BlockHash != b2.Hash() || rs[0].Logs[0].Address != contract {
			t.Fatalf("receipts: %+v", rs)
		}
		if rs[0].Bloom != r2[0].Bloom {
			t.Fatal("stored bloom differs")
		}
		topic := common.BigToHash(big.NewInt(0x2a))
		logs, err := db.FilterLogs(t.Context(), 0, 2, []common.Address{contract}, [][]common.Hash{{topic}}, 10, f.g.EthereumConfig())
		if err != nil || len(logs) != 1 || logs[0].TxHash != call.Hash() {
			t.Fatalf("filter logs: %v %v", logs, err)
		}
		logs, err = db.FilterLogs(t.Context(), 0, 2, []common.Address{common.HexToAddress("0xdead")}, nil, 10, f.g.EthereumConfig())
		if err != nil || len(logs) != 0 {
			t.Fatalf("filter for another address: %v %v", logs, err)
		}
		if err := db.SetAppliedIndex(10); err != nil || db.AppliedIndex() != 10 {
			t.Fatalf("set applied index: %v", err)
		}
		st, err := db.StateAt(b2.Root())
		if err != nil || st.GetNonce(crypto.PubkeyToAddress(f.key.PublicKey)) != 2 || len(st.GetCode(contract)) != len(logRuntime) {
			t.Fatalf("state after block 2: %v", err)
		}
	})
}

func openPebble(t *testing.T, dir string, archive bool) *storage.DB {
	opts := storage.DefaultOptions()
	opts.Archive = archive
	db, err := storage.OpenPebble(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// Both state modes: a clean close keeps the head, blocks and state; a crash
// keeps every committed block, and the head state only in archive mode.
func TestReopenAfterCloseAndAfterCrash(t *testing.T) {
	for _, archive := range []bool{false, true} {
		t.Run(map[bool]string{false: "recent", true: "archive"}[archive], func(t *testing.T) {
			dir := t.TempDir()
			db := openPebble(t, dir, archive)
			f := newFixture(t, db)
			to := common.HexToAddress("0xbeef")
			var blocks []*types.Block
			for i := 0; i < 3; i++ {
				b, _ := f.commit(t, uint64(i+1), f.tx(t, &to, nil))
				blocks = append(blocks, b)
			}
			for _, b := range blocks {
				if !db.StateAvailable(b.Root()) {
					t.Fatalf("state of recent block %d not readable", b.NumberU64())
				}
			}
			if err := db.Crash(); err != nil {
				t.Fatal(err)
			}

			db = openPebble(t, dir, archive)
			if h := db.HeadHeader(); h == nil || h.Hash() != blocks[2].Hash() || db.AppliedIndex() != 3 {
				t.Fatalf("after crash: head %v applied %d; committed blocks must survive", h, db.AppliedIndex())
			}
			if got := db.StateAvailable(blocks[2].Root()); got != archive {
				t.Fatalf("head state after crash available = %v, want %v (recent mode keeps it in memory)", got, archive)
			}
			if archive {
				for _, b := range blocks {
					if !db.StateAvailable(b.Root()) {
						t.Fatalf("archive lost the state of block %d", b.NumberU64())
					}
				}
			}
			if !db.StateAvailable(db.HeaderByNumber(0).Root) {
				t.Fatal("genesis state lost")
			}
			// Rebuild the head state as the node's recovery does, then close
			// cleanly: the next open has it on disk.
			f.db, f.hs.head = db, db.HeaderByNumber(0)
			f.nonce = 0
			for i, b := range blocks {
				if archive {
					break
				}
				got, _ := f.replay(t, b)
				if got.Hash() != blocks[i].Hash() {
					t.Fatalf("replayed block %d differs", i+1)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			db = openPebble(t, dir, archive)
			defer db.Close()
			if !db.StateAvailable(blocks[2].Root()) {
				t.Fatal("Close did not flush the newest state")
			}
			st, err := db.StateAt(blocks[2].Root())
			if err != nil || st.GetNonce(crypto.PubkeyToAddress(f.key.PublicKey)) != 3 {
				t.Fatalf("state after reopen: %v", err)
			}
		})
	}
}

// replay re-executes a stored block on the fixture's head without storing it.
func (f *chainFixture) replay(t *testing.T, b *types.Block) (*types.Block, types.Receipts) {
	head := f.hs.head
	st, err := f.db.StateAt(head.Root)
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.exec.Execute(t.Context(), head, &chain.Proposal{Number: b.NumberU64(), ParentHash: b.ParentHash(), Time: b.Time(), Proposer: b.Coinbase(), Txs: b.Transactions()}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.KeepState(res.Block.Root()); err != nil {
		t.Fatal(err)
	}
	f.hs.head = res.Block.Header()
	return res.Block, res.Receipts
}

func TestOpenRefusesTheOtherStateMode(t *testing.T) {
	for _, archive := range []bool{false, true} {
		dir := t.TempDir()
		db := openPebble(t, dir, archive)
		newFixture(t, db)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		opts := storage.DefaultOptions()
		opts.Archive = !archive
		if db, err := storage.OpenPebble(dir, opts); !errors.Is(err, storage.ErrStateModeMismatch) {
			if db != nil {
				db.Close()
			}
			t.Fatalf("created with archive=%v, reopened with archive=%v: got %v, want ErrStateModeMismatch", archive, !archive, err)
		}
		db = openPebble(t, dir, archive) // the original mode still opens
		db.Close()
	}
}

// A process killed right after the first start keeps the genesis state:
// FlushState (which InitGenesis uses) must be on disk when it returns, not
// flushed in the background. Repeated, because the window is short.
func TestGenesisStateSurvivesAnImmediateCrash(t *testing.T) {
	for i := range 20 {
		dir := t.TempDir()
		db := openPebble(t, dir, false)
		f := newFixture(t, db)
		root := f.hs.head.Root
		if err := db.Crash(); err != nil {
			t.Fatal(err)
		}
		db = openPebble(t, dir, false)
		if !db.StateAvailable(root) {
			t.Fatalf("round %d: the genesis state was lost by a crash right after it was committed", i)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
