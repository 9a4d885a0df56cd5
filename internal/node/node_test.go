package node

import (
	"context"
	"crypto/ecdsa"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/version"
)

type testNet struct {
	dir     string
	cfg     Config
	account *ecdsa.PrivateKey
}

func newTestNet(t *testing.T, mutate func(*chain.Genesis)) *testNet {
	dir := t.TempDir()
	nodeKey, _ := keys.Generate()
	if err := keys.Save(filepath.Join(dir, "nodekey"), nodeKey); err != nil {
		t.Fatal(err)
	}
	account, _ := keys.Generate()
	g := chain.DefaultGenesis()
	g.Members = []chain.Member{{ID: 1, Name: "n1", Address: crypto.PubkeyToAddress(nodeKey.PublicKey)}}
	g.Alloc[crypto.PubkeyToAddress(account.PublicKey)] = chain.Account{Balance: chain.NewBigInt(big.NewInt(1e18))}
	if mutate != nil {
		mutate(g)
	}
	if err := chain.WriteGenesis(filepath.Join(dir, "genesis.json"), g); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Genesis, cfg.NodeKey = filepath.Join(dir, "data"), filepath.Join(dir, "genesis.json"), filepath.Join(dir, "nodekey")
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	return &testNet{dir: dir, cfg: cfg, account: account}
}

// start runs a node until the test ends or stop is called.
func (tn *testNet) start(t *testing.T) (*ethclient.Client, Addrs, func()) {
	return tn.startNode(t, false)
}

// startNode runs a node; with crash, stopping it leaves the database as a
// killed process would.
func (tn *testNet) startNode(t *testing.T, crash bool) (*ethclient.Client, Addrs, func()) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := New(t.Context(), tn.cfg, logger, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	n.crashOnStop.Store(crash)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	actx, acancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer acancel()
	addrs, err := n.Addrs(actx)
	if err != nil {
		cancel()
		t.Fatal(err, <-done)
	}
	client, err := ethclient.Dial("http://" + addrs.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		client.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node run: %v", err)
		}
	}
	t.Cleanup(stop)
	return client, addrs, stop
}

func (tn *testNet) transfer(t *testing.T, nonce uint64) *types.Transaction {
	to := common.HexToAddress("0xbeef")
	tx, err := types.SignNewTx(tn.account, types.LatestSigner(chain.EthereumConfig(chain.DefaultChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(chain.DefaultChainID), Nonce: nonce, Gas: 21000, To: &to, Value: big.NewInt(1), GasFeeCap: big.NewInt(0), GasTipCap: big.NewInt(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func waitReceipt(t *testing.T, c *ethclient.Client, hash common.Hash) *types.Receipt {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		r, err := c.TransactionReceipt(ctx, hash)
		if err == nil {
			return r
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s: %v", hash, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestNodeCutsBlocksOnDemandAndSurvivesRestart(t *testing.T) {
	tn := newTestNet(t, nil)
	client, _, stop := tn.start(t)
	ctx := t.Context()
	if n, err := client.BlockNumber(ctx); err != nil || n != 0 {
		t.Fatalf("fresh chain at block %d (%v)", n, err)
	}
	var clientVersion string
	if err := client.Client().CallContext(ctx, &clientVersion, "web3_clientVersion"); err != nil || clientVersion != version.ClientVersion() {
		t.Fatalf("web3_clientVersion %q (%v), want %q", clientVersion, err, version.ClientVersion())
	}
	var last *types.Receipt
	for i := uint64(0); i < 20; i++ {
		tx := tn.transfer(t, i)
		if err := client.SendTransaction(ctx, tx); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if i%5 == 4 {
			last = waitReceipt(t, client, tx.Hash())
		}
	}
	head, err := client.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for n := uint64(1); n <= head; n++ {
		b, err := client.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Transactions()) == 0 {
			t.Fatalf("block %d is empty: blocks must be cut only on demand", n)
		}
		total += len(b.Transactions())
	}
	if total != 20 {
		t.Fatalf("%d transactions in blocks, want 20", total)
	}
	// No new blocks without transactions.
	time.Sleep(300 * time.Millisecond)
	if again, _ := client.BlockNumber(ctx); again != head {
		t.Fatalf("head moved from %d to %d without transactions", head, again)
	}
	stop()

	client, _, _ = tn.start(t)
	if again, err := client.BlockNumber(ctx); err != nil || again != head {
		t.Fatalf("after restart head is %d (%v), want %d", again, err, head)
	}
	r, err := client.TransactionReceipt(ctx, last.TxHash)
	if err != nil || r.BlockHash != last.BlockHash {
		t.Fatalf("receipt after restart: %v %v", r, err)
	}
	tx := tn.transfer(t, 20)
	if err := client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if r := waitReceipt(t, client, tx.Hash()); r.BlockNumber.Uint64() != head+1 {
		t.Fatalf("first block after restart is %d, want %d", r.BlockNumber, head+1)
	}
}

// TestNodeCutsFullBlocksWithinTheInterval checks the cutting rules: after a
// block, pending transactions wait for the minimum interval unless they fill
// a block, which is cut at once.
func TestNodeCutsFullBlocksWithinTheInterval(t *testing.T) {
	const interval = 10 * time.Second
	tn := newTestNet(t, func(g *chain.Genesis) {
		g.Blocks.MinInterval = chain.Duration(interval)
		g.Blocks.MaxTxs = 5
	})
	client, _, _ := tn.start(t)
	ctx := t.Context()
	first := tn.transfer(t, 0)
	if err := client.SendTransaction(ctx, first); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitReceipt(t, client, first.Hash()) // an idle chain cuts at once
	var batch []*types.Transaction
	for i := uint64(1); i <= 4; i++ {
		tx := tn.transfer(t, i)
		if err := client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, tx)
	}
	time.Sleep(time.Second)
	if n, _ := client.BlockNumber(ctx); n != 1 && time.Since(start) < interval {
		t.Fatalf("4 transactions (block not full) were cut %s after the previous block, before the %s interval", time.Since(start), interval)
	}
	fifth := tn.transfer(t, 5)
	if err := client.SendTransaction(ctx, fifth); err != nil {
		t.Fatal(err)
	}
	r := waitReceipt(t, client, fifth.Hash())
	if elapsed := time.Since(start); elapsed >= interval {
		t.Fatalf("the full block came after %s, not before the %s interval", elapsed, interval)
	}
	b, err := client.BlockByNumber(ctx, r.BlockNumber)
	if err != nil || len(b.Transactions()) != 5 {
		t.Fatalf("block %v holds %d transactions (%v), want the full 5", r.BlockNumber, len(b.Transactions()), err)
	}
}

func TestNodeRefusesForeignDatabaseAndNonMemberKey(t *testing.T) {
	tn := newTestNet(t, nil)
	_, _, stop := tn.start(t)
	stop()
	// Same datadir, different genesis.
	other := newTestNet(t, func(g *chain.Genesis) { g.ChainID = 99 })
	cfg := tn.cfg
	cfg.Genesis = other.cfg.Genesis
	cfg.NodeKey = other.cfg.NodeKey
	if _, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()); err == nil {
		t.Fatal("opened a database holding another chain")
	}
	// A key that is not a member.
	cfg = tn.cfg
	cfg.NodeKey = filepath.Join(t.TempDir(), "stranger")
	if _, err := New(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry()); err == nil {
		t.Fatal("started with a key that is not a member")
	}
}

func TestLoadConfigRejectsUnknownKeysAndResolvesPaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Genesis = "data", "genesis.json"
	if err := WriteConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.DataDir != filepath.Join(dir, "data") || got.Genesis != filepath.Join(dir, "genesis.json") {
		t.Fatalf("paths not resolved: %q %q", got.DataDir, got.Genesis)
	}
	if got.RPC.CallTimeout != cfg.RPC.CallTimeout || got.TxPool.PriceBump != cfg.TxPool.PriceBump {
		t.Fatalf("config did not round-trip: %+v", got)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := writeFile(bad, "datadir = \"x\"\nhttp_adr = \"typo\"\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); err == nil {
		t.Fatal("accepted an unknown key")
	}
}

// After a crash the head's state may not be on disk; the node re-executes
// the blocks since the last flush and ends up with the same state.
func TestNodeRebuildsStateAfterCrash(t *testing.T) {
	tn := newTestNet(t, nil)
	client, _, stop := tn.startNode(t, true)
	ctx := t.Context()
	var last *types.Receipt
	for i := uint64(0); i < 12; i++ {
		tx := tn.transfer(t, i)
		if err := client.SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		last = waitReceipt(t, client, tx.Hash()) // one block per transaction
	}
	before, err := client.BalanceAt(ctx, common.HexToAddress("0xbeef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	head, _ := client.HeaderByNumber(ctx, nil)
	stop()

	// The crash left the head's state unflushed.
	st, err := storageOpen(tn.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.StateAvailable(head.Root) {
		t.Fatal("test premise: the head state must not be on disk after the crash")
	}
	st.Crash()

	client, _, _ = tn.start(t)
	after, err := client.BalanceAt(ctx, common.HexToAddress("0xbeef"), nil)
	if err != nil || after.Cmp(before) != 0 || after.Int64() != 12 {
		t.Fatalf("balance after recovery %v (%v), before %v", after, err, before)
	}
	if r, err := client.TransactionReceipt(ctx, last.TxHash); err != nil || r.BlockHash != last.BlockHash {
		t.Fatalf("receipt after recovery: %v %v", r, err)
	}
	tx := tn.transfer(t, 12)
	if err := client.SendTransaction(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if r := waitReceipt(t, client, tx.Hash()); r.BlockNumber.Uint64() != head.Number.Uint64()+1 {
		t.Fatalf("next block %d, want %d", r.BlockNumber, head.Number.Uint64()+1)
	}
}
