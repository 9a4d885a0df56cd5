// Package node wires one Hansa node together: storage, txpool, consensus,
// execution, JSON-RPC and telemetry. It owns the block loop, the only
// goroutine that changes the chain: it cuts proposals when this member leads,
// and applies committed entries in order (decode, check, execute, store,
// announce).
package node

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/lru"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/consensus"
	"github.com/hansa-chain/hansa/internal/consensus/raft"
	"github.com/hansa-chain/hansa/internal/consensus/solo"
	"github.com/hansa-chain/hansa/internal/execution"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/rpc"
	"github.com/hansa-chain/hansa/internal/storage"
	"github.com/hansa-chain/hansa/internal/telemetry"
	"github.com/hansa-chain/hansa/internal/transport"
	"github.com/hansa-chain/hansa/internal/txpool"
	"github.com/hansa-chain/hansa/internal/version"
)

// ErrDiverged is reported when this node computed a different block hash
// than the proposer for the same height. The node stops applying and reports
// itself unready rather than serve a forked chain.
var ErrDiverged = errors.New("chain diverged from the proposer")

// Node is one member of a Hansa chain.
type Node struct {
	cfg     Config
	logger  *slog.Logger
	reg     prometheus.Registerer
	gather  prometheus.Gatherer
	genesis *chain.Genesis
	// genesisRaw is the genesis file as read, served to joining nodes.
	genesisRaw  []byte
	genesisHash common.Hash
	config      *params.ChainConfig
	key         *ecdsa.PrivateKey
	address     common.Address
	id          uint64

	db       *storage.DB
	pool     *txpool.Pool
	exec     *execution.Executor
	chainCtx *execution.ChainContext
	engine   consensus.Engine
	cluster  *cluster // nil on a single-member chain
	members  *members // nil on a single-member chain
	metrics  *metrics
	opts     options

	head      atomic.Pointer[types.Header]
	diverged  atomic.Bool
	ready     atomic.Bool
	kick      chan struct{}
	chainFeed event.Feed
	txFeed    event.Feed

	syncing atomic.Bool // catching up from a snapshot
	recent  recentBlocks

	// Set by the block loop only.
	lastCut      time.Time // when this member last proposed
	inFlight     bool
	inFlightTerm uint64    // the term the in-flight proposal was made in
	inFlightAt   time.Time // when it was proposed
	lastProposal *chain.Proposal
	lastData     []byte

	removed     atomic.Bool             // the cluster removed this member
	stop        context.CancelCauseFunc // ends Run; set by Run
	lastApplied uint64                  // index of the last entry the block loop applied

	// crashOnStop makes Run leave the database as a killed process would
	// (tests of crash recovery).
	crashOnStop atomic.Bool

	addrMu sync.Mutex
	addrs  Addrs
	bound  chan struct{}
}

// Addrs are the addresses the node's listeners are bound to.
type Addrs struct {
	HTTP  string // JSON-RPC over HTTP and WebSocket
	Ops   string // metrics and probes ("" when off)
	Admin string // admin namespace ("" when off)
	// Cluster is the node-to-node listener ("" on a single-member chain or
	// with an injected transport).
	Cluster string
}

// Option changes how New builds the node.
type Option func(*options)

type options struct {
	transport transport.Transport
}

// WithTransport makes a replicated node use t instead of the TCP transport
// on cfg.Cluster.ListenAddr (tests run clusters on an in-memory network).
func WithTransport(t transport.Transport) Option { return func(o *options) { o.transport = t } }

// New validates cfg, opens the database and prepares the node. It binds the
// cluster listener of a replicated node (so peers can be told its address)
// but starts no goroutine: Run does. Close releases the database if Run is
// never called.
func New(ctx context.Context, cfg Config, logger *slog.Logger, reg *prometheus.Registry, opts ...Option) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	key, err := loadOrCreateKey(cfg.NodeKeyPath(), logger)
	if err != nil {
		return nil, err
	}
	gen, raw, err := loadGenesis(ctx, cfg, key, logger)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:        cfg,
		logger:     logger,
		reg:        reg,
		gather:     reg,
		genesis:    gen,
		genesisRaw: raw,
		config:     gen.EthereumConfig(),
		key:        key,
		address:    crypto.PubkeyToAddress(key.PublicKey),
		kick:       make(chan struct{}, 1),
		bound:      make(chan struct{}),
	}
	for _, o := range opts {
		o(&n.opts)
	}
	n.recent = newRecentBlocks(recentBlockCache)
	n.id = n.memberID()
	n.db, err = storage.OpenPebble(cfg.DataDir, cfg.Storage)
	if err != nil {
		return nil, err
	}
	if cc := cfg.Cluster; n.id == 0 && len(cc.Join) == 0 && cc.BootstrapExpect == 0 && n.db.Membership() == nil {
		n.db.Close()
		return nil, fmt.Errorf("node key %s (address %s) is not a member in genesis %s; to join a running cluster set cluster.join (--join) and cluster.join_token, or form a new one with cluster.bootstrap_expect",
			cfg.NodeKeyPath(), n.address, cfg.Genesis)
	}
	if err := n.open(ctx); err != nil {
		n.db.Close()
		return nil, err
	}
	return n, nil
}

func (n *Node) memberID() uint64 {
	for _, m := range n.genesis.Members {
		if m.Address == n.address {
			return m.ID
		}
	}
	return 0
}

func loadOrCreateKey(path string, logger *slog.Logger) (*ecdsa.PrivateKey, error) {
	key, err := keys.Load(path)
	if err == nil {
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if key, err = keys.Generate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("save node key: %w", err)
	}
	if err := keys.Save(path, key); err != nil {
		return nil, fmt.Errorf("save node key: %w", err)
	}
	logger.Info("created node key", "path", path, "address", crypto.PubkeyToAddress(key.PublicKey))
	return key, nil
}

// open initialises the chain from the database (writing genesis on first
// start) and builds the components that depend on the head.
func (n *Node) open(ctx context.Context) error {
	genesisBlock, err := n.db.InitGenesis(n.genesis.CoreGenesis())
	if err != nil {
		return err
	}
	head := n.db.HeadHeader()
	if head == nil {
		return errors.New("database has a genesis but no head block")
	}
	n.head.Store(head)
	n.chainCtx = execution.NewChainContext(n.config, (*headers)(n))
	n.exec = execution.New(n.config, n.chainCtx, execution.Rules{FreeGas: n.genesis.FreeGas()})
	if !n.db.StateAvailable(head.Root) {
		if err := n.recoverState(ctx, head); err != nil {
			return err
		}
	}
	st, err := n.db.StateAt(head.Root)
	if err != nil {
		return fmt.Errorf("open state at head %d: %w", head.Number, err)
	}
	poolCfg := n.cfg.TxPool
	if n.genesis.MinGasPrice != nil && (poolCfg.MinGasPrice == nil || poolCfg.MinGasPrice.Cmp(n.genesis.MinGasPrice.Big()) < 0) {
		poolCfg.MinGasPrice = new(big.Int).Set(n.genesis.MinGasPrice.Big())
	}
	n.pool = txpool.New(poolCfg, n.config, n.poolHead(head), st, n.reg, n.logger.With("component", "txpool"))
	n.metrics = newMetrics(n.reg)
	if n.replicated() {
		n.genesisHash = genesisBlock.Hash()
		if err := n.openCluster(ctx, genesisBlock.Hash()); err != nil {
			return err
		}
	} else {
		n.engine = solo.New(n.id, n.db.AppliedIndex())
	}
	n.metrics.head.Set(float64(head.Number.Uint64()))
	n.logger.Info("chain opened",
		"chain_id", n.genesis.ChainID, "genesis", genesisBlock.Hash(), "height", head.Number, "head", head.Hash(),
		"member", n.id, "address", n.address, "free_gas", n.genesis.FreeGas())
	return nil
}

// replicated reports whether the node runs Raft: it has a membership
// record, joins or forms a cluster, or genesis has several members (or one,
// with a cluster listener so that others can join).
func (n *Node) replicated() bool {
	cc := n.cfg.Cluster
	switch {
	case n.db.Membership() != nil || len(cc.Join) > 0 || cc.BootstrapExpect > 0 || len(n.genesis.Members) > 1:
		return true
	case len(n.genesis.Members) == 1 && n.id != 0 && cc.ListenAddr != "":
		if n.db.AppliedIndex() > 0 {
			n.logger.Warn("cluster.listen_addr ignored: this chain has run as a single node without Raft, and cannot switch; others cannot join it")
			return false
		}
		return true
	}
	return false
}

// openCluster starts Raft over the cluster transport: it finds this node's
// membership (stored; the genesis members; a join; or forming a cluster),
// then opens the engine.
func (n *Node) openCluster(ctx context.Context, genesis common.Hash) error {
	cc := n.cfg.Cluster
	var ln *net.TCPListener
	if n.opts.transport != nil && n.db.Membership() == nil && (len(cc.Join) > 0 || cc.BootstrapExpect > 0) {
		return errors.New("joining or forming a cluster needs the TCP transport (cluster.listen_addr)")
	}
	if n.opts.transport == nil {
		if cc.ListenAddr == "" {
			return errors.New("cluster.listen_addr is required: the chain is replicated")
		}
		l, err := net.Listen("tcp", cc.ListenAddr)
		if err != nil {
			return fmt.Errorf("listen on cluster address %s: %w", cc.ListenAddr, err)
		}
		ln = l.(*net.TCPListener)
	}
	fail := func(err error) error {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	configured := map[uint64]string{}
	for _, p := range cc.Peers {
		configured[p.ID] = p.Addr
	}
	var rec membershipRecord
	var founders []uint64 // the initial voters, when this node founds the cluster
	stored := n.db.Membership()
	switch {
	case stored != nil:
		r, err := decodeRecord(stored)
		if err != nil {
			return fail(fmt.Errorf("membership record in %s: %w", n.cfg.DataDir, err))
		}
		rec = r
		if rec.Registry.removed(rec.Self) {
			return fail(fmt.Errorf("%w (member %d); delete the data directory %s to join again as a new member", ErrRemoved, rec.Self, n.cfg.DataDir))
		}
	case len(cc.Join) > 0:
		// Before the genesis case: a founding member whose data was lost
		// must not come back under its old id (the leader refuses it).
		r, err := n.joinCluster(ctx, ln, genesis)
		if err != nil {
			return fail(err)
		}
		rec = r
	case n.id != 0:
		rec = membershipRecord{Self: n.id, Registry: genesisRegistry(n.genesis.Members)}
		founders = rec.Registry.Voters
		for _, m := range n.genesis.Members {
			if _, ok := configured[m.ID]; !ok && m.ID != n.id && n.opts.transport == nil {
				return fail(fmt.Errorf("cluster.peers has no address for member %d (%s, %s)", m.ID, m.Name, m.Address))
			}
			delete(configured, m.ID)
		}
		for id := range configured {
			if id != n.id {
				return fail(fmt.Errorf("cluster.peers lists member %d, which is not in genesis", id))
			}
		}
		for _, p := range cc.Peers {
			configured[p.ID] = p.Addr
		}
	case cc.BootstrapExpect > 0:
		r, err := n.bootstrapCluster(ctx, ln, genesis)
		if err != nil {
			return fail(err)
		}
		rec, founders = r, r.Registry.Voters
	}
	n.id = rec.Self
	n.members = newMembers(n, rec.Registry)
	t := n.opts.transport
	if t == nil {
		tcp, err := n.newTCP(genesis, rec.Registry.peers(n.id, configured), ln)
		if err != nil {
			return fail(err)
		}
		n.registerOpen(tcp)
		t = tcp
	}
	store, err := raft.OpenLogStore(n.db.RaftStore())
	if err != nil {
		return err
	}
	rc := raft.DefaultConfig(n.id, founders)
	rc.TickInterval, rc.ElectionTicks, rc.HeartbeatTicks = cc.TickInterval, cc.ElectionTicks, cc.HeartbeatTicks
	rc.SnapshotEntries, rc.KeepEntries = cc.SnapshotEntries, cc.KeepEntries
	engine, err := raft.New(rc, store, t, n.db.AppliedIndex(), n.logger, n.reg)
	if err != nil {
		return err
	}
	n.engine = engine
	n.cluster = newCluster(n, t, engine)
	t.Handle(methodMember, n.members.serveMember)
	// The record follows the engine's bootstrap snapshot: a crash between
	// the two finds the snapshot and forms (or joins) again identically.
	if stored == nil {
		data, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		if err := n.db.SetMembership(data, 0); err != nil {
			return err
		}
	}
	n.members.metrics.observe(rec.Registry)
	// Every committed entry is in the synced Raft log, in this database: a
	// block lost to a crash is executed again from it.
	n.db.DeferBlockSync()
	return nil
}

// recoverState rebuilds the head's state after an unclean shutdown: blocks
// are durable at once but state is flushed every few blocks, so it
// re-executes the stored blocks after the newest one whose state is available.
// Execution is deterministic; a block that re-executes to a different hash
// means the database is damaged, and the node refuses to start.
func (n *Node) recoverState(ctx context.Context, head *types.Header) error {
	var blocks []*types.Block
	base := head
	for !n.db.StateAvailable(base.Root) {
		if base.Number.Sign() == 0 {
			return errors.New("the genesis state is missing from the database")
		}
		blk := n.db.BlockByNumber(base.Number.Uint64())
		if blk == nil {
			return fmt.Errorf("block %d is missing from the database", base.Number)
		}
		blocks = append(blocks, blk)
		if base = n.db.HeaderByNumber(base.Number.Uint64() - 1); base == nil {
			return fmt.Errorf("block %d is missing from the database", blk.NumberU64()-1)
		}
	}
	n.logger.Warn("head state was not flushed before the last stop; re-executing blocks",
		"from", base.Number.Uint64()+1, "to", head.Number, "blocks", len(blocks))
	start, lastLog := time.Now(), time.Now()
	parent := base
	for i := len(blocks) - 1; i >= 0; i-- {
		blk := blocks[i]
		st, err := n.db.StateAt(parent.Root)
		if err != nil {
			return fmt.Errorf("replay block %d: %w", blk.NumberU64(), err)
		}
		p := &chain.Proposal{Number: blk.NumberU64(), ParentHash: blk.ParentHash(), Time: blk.Time(), Proposer: blk.Coinbase(), Txs: blk.Transactions()}
		res, err := n.exec.Execute(ctx, parent, p, st)
		if err != nil {
			return fmt.Errorf("replay block %d: %w", blk.NumberU64(), err)
		}
		if res.Block.Hash() != blk.Hash() || len(res.Skipped) > 0 {
			return fmt.Errorf("replay block %d: re-execution gave block %s, the database holds %s; the datadir is damaged, restore it from a healthy member",
				blk.NumberU64(), res.Block.Hash(), blk.Hash())
		}
		if err := n.db.KeepState(res.Block.Root()); err != nil {
			return err
		}
		parent = res.Block.Header()
		if time.Since(lastLog) > 5*time.Second {
			n.logger.Info("re-executing blocks", "height", parent.Number, "to", head.Number)
			lastLog = time.Now()
		}
	}
	if err := n.db.FlushState(head.Root); err != nil {
		return err
	}
	n.logger.Info("head state rebuilt", "height", head.Number, "blocks", len(blocks), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// poolHead is the header the txpool validates against: the head with the
// base fee of the next block, which is what new transactions must pay.
func (n *Node) poolHead(head *types.Header) *types.Header {
	h := types.CopyHeader(head)
	h.BaseFee = n.exec.BaseFee(head)
	return h
}

// Close releases the database. Run closes it itself when it returns.
func (n *Node) Close() error { return n.db.Close() }

// Addrs waits until Run has bound the listeners (or ctx ends) and returns
// their addresses.
func (n *Node) Addrs(ctx context.Context) (Addrs, error) {
	select {
	case <-n.bound:
		n.addrMu.Lock()
		defer n.addrMu.Unlock()
		return n.addrs, nil
	case <-ctx.Done():
		return Addrs{}, ctx.Err()
	}
}

// CrashOnStop makes Run leave the database as a killed process would:
// state not yet flushed is lost and recovered on the next start. For fault
// tests; call it before cancelling Run's context.
func (n *Node) CrashOnStop() { n.crashOnStop.Store(true) }

// ID is this node's member id.
func (n *Node) ID() uint64 { return n.id }

// Address is the node key's address (the proposer in block headers).
func (n *Node) Address() common.Address { return n.address }

// Run binds the listeners and runs the node until ctx ends or a component
// fails, then shuts everything down and closes the database.
func (n *Node) Run(ctx context.Context) (err error) {
	defer func() {
		if n.crashOnStop.Load() {
			err = errors.Join(err, n.db.Crash())
			return
		}
		err = errors.Join(err, n.db.Close())
	}()
	n.logger.Info("starting node", "version", version.Version, "config", fmt.Sprintf("%+v", n.cfg))

	listen := func(addr string) (net.Listener, error) {
		if addr == "" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		return ln, nil
	}
	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			if ln != nil {
				ln.Close()
			}
		}
	}
	httpLn, err := listen(n.cfg.HTTPAddr)
	if err != nil {
		return err
	}
	lns = append(lns, httpLn)
	opsLn, err := listen(n.cfg.OpsAddr)
	if err != nil {
		closeAll()
		return err
	}
	lns = append(lns, opsLn)
	adminLn, err := listen(n.cfg.AdminAddr)
	if err != nil {
		closeAll()
		return err
	}
	lns = append(lns, adminLn)

	backend := (*backend)(n)
	filters := rpc.NewFilterService(backend, n.cfg.RPC)
	server, err := rpc.NewServer(n.cfg.RPC, rpc.Services{
		Eth:     rpc.NewEthAPI(backend, n.cfg.RPC),
		Filters: filters.API(),
		Net:     rpc.NewNetAPI(backend),
		Web3:    rpc.NewWeb3API(version.ClientVersion()),
		Txpool:  rpc.NewTxpoolAPI(backend),
		Debug:   rpc.NewDebugAPI(backend, n.cfg.RPC),
	}, n.reg, n.logger.With("component", "rpc"))
	if err != nil {
		closeAll()
		return err
	}
	defer server.Stop()

	n.addrMu.Lock()
	n.addrs = Addrs{HTTP: httpLn.Addr().String()}
	if opsLn != nil {
		n.addrs.Ops = opsLn.Addr().String()
	}
	if adminLn != nil {
		n.addrs.Admin = adminLn.Addr().String()
	}
	if tcp, ok := n.clusterTransport().(interface{ Addr() string }); ok {
		n.addrs.Cluster = tcp.Addr()
	}
	n.addrMu.Unlock()
	close(n.bound)

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	n.stop = cancel
	if n.removed.Load() {
		cancel(ErrRemoved)
	}
	var wg sync.WaitGroup
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				cancel(fmt.Errorf("%s: %w", name, err))
			}
		}()
	}
	if n.cluster != nil {
		// The transport outlives the engine, which hands leadership over
		// on its way out.
		tctx, tcancel := context.WithCancel(context.Background())
		tdone := make(chan struct{})
		go func() {
			defer close(tdone)
			if err := n.cluster.t.Run(tctx); err != nil {
				cancel(fmt.Errorf("cluster transport: %w", err))
			}
		}()
		defer func() { tcancel(); <-tdone }()
		run("cluster", n.cluster.run)
		adv, _ := n.advertiseAddr(n.addrs.Cluster)
		n.members.advertise(adv, n.advertiseRPC(n.addrs.HTTP))
		run("membership", n.members.run)
	}
	run("consensus", n.engine.Run)
	run("filters", filters.Run)
	run("txpool events", n.forwardPoolEvents)
	run("block loop", n.loop)
	run("rpc server", func(ctx context.Context) error {
		return telemetry.Serve(ctx, httpLn, server.Handler(), n.logger.With("component", "rpc"))
	})
	if opsLn != nil {
		run("ops server", func(ctx context.Context) error {
			return telemetry.Serve(ctx, opsLn, telemetry.NewOpsHandler(n.gather, n.healthy, n.readyCheck), n.logger.With("component", "ops"))
		})
	}
	if adminLn != nil {
		admin, err := newAdminHandler(n)
		if err != nil {
			cancel(err)
		} else {
			run("admin server", func(ctx context.Context) error {
				return telemetry.Serve(ctx, adminLn, admin, n.logger.With("component", "admin"))
			})
		}
	}
	n.ready.Store(true)
	n.logger.Info("node ready", "http", n.addrs.HTTP, "ops", n.addrs.Ops, "admin", n.addrs.Admin)
	<-ctx.Done()
	n.ready.Store(false)
	wg.Wait()
	if cause := context.Cause(ctx); errors.Is(cause, ErrRemoved) {
		n.logger.Info("node stopped: removed from the cluster", "member", n.id, "height", n.head.Load().Number)
		return nil
	} else if cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	n.logger.Info("node stopped", "height", n.head.Load().Number)
	return nil
}

func (n *Node) healthy() error { return nil }

func (n *Node) readyCheck() error {
	switch {
	case n.diverged.Load():
		return ErrDiverged
	case !n.ready.Load():
		return errors.New("not serving")
	case n.syncing.Load():
		return errors.New("catching up from a snapshot")
	case n.removed.Load():
		return ErrRemoved
	case n.members != nil && n.members.isLeaving():
		return errors.New("leaving the cluster")
	case n.members != nil && n.engine.Status().Role == "joining":
		return errors.New("joining: waiting for the leader's snapshot")
	}
	return nil
}

func (n *Node) clusterTransport() transport.Transport {
	if n.cluster == nil {
		return nil
	}
	return n.cluster.t
}

// forwardPoolEvents republishes newly executable txpool transactions to RPC
// subscribers and wakes the block loop.
func (n *Node) forwardPoolEvents(ctx context.Context) error {
	ch := make(chan core.NewTxsEvent, 256)
	sub := n.pool.SubscribeNewTxs(ch)
	defer sub.Unsubscribe()
	for {
		select {
		case ev := <-ch:
			n.txFeed.Send(rpc.NewTxsEvent{Txs: ev.Txs})
			n.wake()
		case err := <-sub.Err():
			return err
		case <-ctx.Done():
			return nil
		}
	}
}

func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// recentBlockCache is how many of the latest blocks are kept decoded, with
// their transactions' senders: clients read new blocks and receipts most.
const recentBlockCache = 128

type recentBlocks struct {
	byNumber *lru.Cache[uint64, *types.Block]
	byHash   *lru.Cache[common.Hash, *types.Block]
}

func newRecentBlocks(size int) recentBlocks {
	return recentBlocks{byNumber: lru.NewCache[uint64, *types.Block](size), byHash: lru.NewCache[common.Hash, *types.Block](size)}
}

func (r recentBlocks) add(b *types.Block) {
	r.byNumber.Add(b.NumberU64(), b)
	r.byHash.Add(b.Hash(), b)
}

// headers exposes committed headers to execution without exposing blocks
// above the published head.
type headers Node

func (h *headers) HeaderByNumber(number uint64) *types.Header {
	if head := h.head.Load(); head == nil || number > head.Number.Uint64() {
		return nil
	}
	return h.db.HeaderByNumber(number)
}

func (h *headers) HeaderByHash(hash common.Hash) *types.Header { return h.db.HeaderByHash(hash) }

func (h *headers) HeadHeader() *types.Header { return h.head.Load() }
