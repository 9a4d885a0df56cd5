// Package clustertest runs whole Hansa nodes — real Pebble databases, real
// execution, real JSON-RPC listeners — as a cluster on the in-memory network
// of package transport, where a test cuts links, crashes members and injects
// message faults drawn from a seed. It checks the cluster's promises: one
// block per height, the same blocks (and so state roots) on every member,
// and every acknowledged transaction included once.
package clustertest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/node"
	"github.com/hansa-chain/hansa/internal/transport"
)

// Options shape a test cluster.
type Options struct {
	Members  int
	Accounts int // funded accounts (default 16)
	// Cluster overrides the replication settings (ticks, snapshots); zero
	// values take the test defaults: 10 ms ticks, elections after 10 ticks.
	Cluster node.ClusterConfig
	// Logs receives every node's log (default: discarded).
	Logs io.Writer
}

// Cluster is a running test cluster.
type Cluster struct {
	tb       testing.TB
	dir      string
	Net      *transport.Network
	genesis  string
	Members  []chain.Member
	Accounts []*ecdsa.PrivateKey
	opts     Options
	signer   types.Signer

	mu    sync.Mutex
	nodes map[uint64]*Member
}

// Member is one running node.
type Member struct {
	ID     uint64
	Node   *node.Node
	Addrs  node.Addrs
	Client *ethclient.Client
	Admin  *gethrpc.Client
	cancel context.CancelFunc
	done   chan error
}

// New creates and starts a cluster of opts.Members nodes.
func New(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	if opts.Accounts == 0 {
		opts.Accounts = 16
	}
	cc := node.DefaultClusterConfig()
	cc.TickInterval, cc.ElectionTicks = 10*time.Millisecond, 10
	cc.ForwardTimeout = 2 * time.Second
	if opts.Cluster.TickInterval != 0 {
		cc.TickInterval = opts.Cluster.TickInterval
	}
	if opts.Cluster.ElectionTicks != 0 {
		cc.ElectionTicks = opts.Cluster.ElectionTicks
	}
	if opts.Cluster.SnapshotEntries != 0 {
		cc.SnapshotEntries, cc.KeepEntries = opts.Cluster.SnapshotEntries, opts.Cluster.KeepEntries
	}
	if opts.Cluster.ForwardTimeout != 0 {
		cc.ForwardTimeout = opts.Cluster.ForwardTimeout
	}
	opts.Cluster = cc
	c := &Cluster{tb: tb, dir: tb.TempDir(), Net: transport.NewNetwork(), opts: opts, nodes: map[uint64]*Member{},
		signer: types.LatestSigner(chain.EthereumConfig(chain.DefaultChainID))}
	g := chain.DefaultGenesis()
	g.Blocks.MinInterval = chain.Duration(5 * time.Millisecond)
	for i := 1; i <= opts.Members; i++ {
		key, err := keys.Generate()
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.MkdirAll(c.nodeDir(uint64(i)), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := keys.Save(filepath.Join(c.nodeDir(uint64(i)), "nodekey"), key); err != nil {
			tb.Fatal(err)
		}
		c.Members = append(c.Members, chain.Member{ID: uint64(i), Name: fmt.Sprintf("n%d", i), Address: crypto.PubkeyToAddress(key.PublicKey)})
	}
	g.Members = c.Members
	for range opts.Accounts {
		key, err := keys.Generate()
		if err != nil {
			tb.Fatal(err)
		}
		c.Accounts = append(c.Accounts, key)
		g.Alloc[crypto.PubkeyToAddress(key.PublicKey)] = chain.Account{Balance: chain.NewBigInt(new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1000)))}
	}
	c.genesis = filepath.Join(c.dir, "genesis.json")
	if err := chain.WriteGenesis(c.genesis, g); err != nil {
		tb.Fatal(err)
	}
	for _, m := range c.Members {
		c.Start(m.ID)
	}
	tb.Cleanup(c.StopAll)
	return c
}

func (c *Cluster) nodeDir(id uint64) string { return filepath.Join(c.dir, fmt.Sprintf("n%d", id)) }

// Start starts (or restarts) member id.
func (c *Cluster) Start(id uint64) *Member {
	c.tb.Helper()
	cfg := node.DefaultConfig()
	dir := c.nodeDir(id)
	cfg.DataDir, cfg.Genesis, cfg.NodeKey = filepath.Join(dir, "data"), c.genesis, filepath.Join(dir, "nodekey")
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = "127.0.0.1:0", "", "127.0.0.1:0"
	cfg.Cluster = c.opts.Cluster
	logs := c.opts.Logs
	if logs == nil {
		logs = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("node", id)
	c.Net.Restart(id)
	n, err := node.New(context.Background(), cfg, logger, prometheus.NewRegistry(), node.WithTransport(c.Net.Endpoint(id)))
	if err != nil {
		c.tb.Fatalf("start member %d: %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Member{ID: id, Node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- n.Run(ctx) }()
	actx, acancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer acancel()
	if m.Addrs, err = n.Addrs(actx); err != nil {
		cancel()
		c.tb.Fatalf("member %d did not bind: %v (%v)", id, err, <-m.done)
	}
	if m.Client, err = ethclient.Dial("http://" + m.Addrs.HTTP); err != nil {
		c.tb.Fatal(err)
	}
	if m.Admin, err = gethrpc.Dial("http://" + m.Addrs.Admin); err != nil {
		c.tb.Fatal(err)
	}
	c.mu.Lock()
	c.nodes[id] = m
	c.mu.Unlock()
	return m
}

// Stop stops member id gracefully (a leader hands its leadership over).
func (c *Cluster) Stop(id uint64) { c.stop(id, false) }

// Crash stops member id as a kill would: its in-flight messages are lost
// and its unflushed state must be rebuilt on restart.
func (c *Cluster) Crash(id uint64) { c.stop(id, true) }

func (c *Cluster) stop(id uint64, crash bool) {
	c.mu.Lock()
	m := c.nodes[id]
	delete(c.nodes, id)
	c.mu.Unlock()
	if m == nil {
		return
	}
	if crash {
		c.Net.Crash(id)
		m.Node.CrashOnStop()
	}
	m.cancel()
	if err := <-m.done; err != nil {
		c.tb.Errorf("member %d stopped with %v", id, err)
	}
	m.Client.Close()
	m.Admin.Close()
}

// StopAll stops every running member.
func (c *Cluster) StopAll() {
	for _, m := range c.Running() {
		c.Stop(m.ID)
	}
}

// Running returns the running members, by id.
func (c *Cluster) Running() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Member
	for _, m := range c.Members {
		if n := c.nodes[m.ID]; n != nil {
			out = append(out, n)
		}
	}
	return out
}

// Member returns running member id, or nil.
func (c *Cluster) Member(id uint64) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

// Leader waits until the running members in ids (all running when empty)
// agree on one leader among them, and returns it.
func (c *Cluster) Leader(timeout time.Duration, ids ...uint64) uint64 {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, m := range c.Running() {
			if len(ids) > 0 && !contains(ids, m.ID) {
				continue
			}
			var l uint64
			if err := m.Admin.Call(&l, "raft_leader"); err != nil || l == 0 || (lead != 0 && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != 0 && (len(ids) == 0 || contains(ids, lead)) {
			return lead
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.tb.Fatalf("no agreed leader among %v within %s", ids, timeout)
	return 0
}

// LeaderNow returns a running member that considers itself leader, or 0.
func (c *Cluster) LeaderNow() uint64 {
	for _, m := range c.Running() {
		var role string
		if err := m.Admin.Call(&role, "raft_role"); err == nil && role == "leader" {
			return m.ID
		}
	}
	return 0
}

func contains(ids []uint64, id uint64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Transfer signs a transfer of 1 wei from account i with nonce.
func (c *Cluster) Transfer(i int, nonce uint64) *types.Transaction {
	to := common.BigToAddress(big.NewInt(int64(0xbeef + i)))
	tx, err := types.SignNewTx(c.Accounts[i], c.signer, &types.DynamicFeeTx{
		ChainID: big.NewInt(chain.DefaultChainID), Nonce: nonce, Gas: 21000, To: &to, Value: big.NewInt(1),
		GasFeeCap: big.NewInt(0), GasTipCap: big.NewInt(0),
	})
	if err != nil {
		c.tb.Fatal(err)
	}
	return tx
}

// WaitConverged waits until every running member has the same head at or
// above height and holds every transaction in want, then checks agreement.
func (c *Cluster) WaitConverged(timeout time.Duration, height uint64, want []common.Hash) {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for time.Now().Before(deadline) {
		why = c.converged(height, want)
		if why == "" {
			c.CheckAgreement()
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	c.tb.Fatalf("cluster did not converge within %s: %s", timeout, why)
}

func (c *Cluster) converged(height uint64, want []common.Hash) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var head *types.Header
	for _, m := range c.Running() {
		h, err := m.Client.HeaderByNumber(ctx, nil)
		if err != nil {
			return fmt.Sprintf("member %d: %v", m.ID, err)
		}
		if h.Number.Uint64() < height {
			return fmt.Sprintf("member %d at height %d, want ≥ %d", m.ID, h.Number, height)
		}
		if head != nil && h.Hash() != head.Hash() {
			return fmt.Sprintf("member %d head %d %s, another member has %d %s", m.ID, h.Number, h.Hash(), head.Number, head.Hash())
		}
		head = h
		for _, tx := range want {
			if _, err := m.Client.TransactionReceipt(ctx, tx); err != nil {
				return fmt.Sprintf("member %d has no receipt for %s: %v", m.ID, tx, err)
			}
		}
	}
	return ""
}

// CheckAgreement checks that the running members hold identical blocks at
// every height they all have, and that no transaction appears twice.
func (c *Cluster) CheckAgreement() {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	running := c.Running()
	if len(running) == 0 {
		return
	}
	top := ^uint64(0)
	for _, m := range running {
		n, err := m.Client.BlockNumber(ctx)
		if err != nil {
			c.tb.Fatalf("member %d: %v", m.ID, err)
		}
		top = min(top, n)
	}
	seen := map[common.Hash]uint64{}
	for h := uint64(1); h <= top; h++ {
		var ref *types.Block
		for _, m := range running {
			b, err := m.Client.BlockByNumber(ctx, new(big.Int).SetUint64(h))
			if err != nil {
				c.tb.Fatalf("member %d block %d: %v", m.ID, h, err)
			}
			if ref == nil {
				ref = b
				continue
			}
			if b.Hash() != ref.Hash() || b.Root() != ref.Root() {
				c.tb.Fatalf("FORK at height %d: member %d has %s (root %s), member %d has %s (root %s)",
					h, running[0].ID, ref.Hash(), ref.Root(), m.ID, b.Hash(), b.Root())
			}
		}
		for _, tx := range ref.Transactions() {
			if prev, dup := seen[tx.Hash()]; dup {
				c.tb.Fatalf("transaction %s included twice (blocks %d and %d)", tx.Hash(), prev, h)
			}
			seen[tx.Hash()] = h
		}
	}
}
