package node

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	gethtxpool "github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hansa-chain/hansa/internal/consensus/raft"
	"github.com/hansa-chain/hansa/internal/execution"
	"github.com/hansa-chain/hansa/internal/transport"
)

// Node-to-node call methods.
const (
	methodTxs    = "txs/v1"    // forward transactions to the leader
	methodPool   = "pool/v1"   // copy the leader's own transactions to a follower's pool
	methodBlocks = "blocks/v1" // fetch committed blocks
)

// Limits of node-to-node calls.
const (
	maxForwardBatch = 1024     // transactions per forward call
	maxSyncBlocks   = 128      // blocks per fetch
	maxSyncBytes    = 32 << 20 // bytes of blocks per fetch
)

// ErrNoLeader is returned to a client when a transaction could not reach a
// leader within the forward timeout (an election is in progress or this
// node is cut off). It is safe to retry.
var ErrNoLeader = errors.New("no leader: the cluster is electing one or this node cannot reach it; retry shortly")

// ErrNoQuorum is returned to a client of a leader that could not copy the
// transaction to any follower: it is cut off from the cluster (and cannot
// commit). It is safe to retry.
var ErrNoQuorum = errors.New("no quorum: this node cannot reach the other members; retry shortly")

// checkpointData is what a Raft snapshot carries: the block the log up to
// the snapshot's index produced. A member that receives the snapshot
// fetches the blocks up to it from peers.
type checkpointData struct {
	Height uint64
	Hash   common.Hash
	// Members is the membership record (without Self) at the snapshot's
	// index, so a member restoring it knows every other member's address.
	Members []byte `rlp:"optional"`
}

type blocksRequest struct {
	From, Count uint64
}

// forwardRequest carries transactions to the leader with the senders the
// forwarding member recovered on admission; members trust each other's
// recovery as they trust the leader's proposals.
type forwardRequest struct {
	Txs     types.Transactions
	Senders []common.Address
}

// cluster is the replicated node's plumbing around its transport.
type cluster struct {
	n       *Node
	t       transport.Transport
	engine  *raft.Engine
	cfg     ClusterConfig
	logger  *slog.Logger
	forward chan forwardReq
	copies  chan forwardReq // the leader's own transactions, for a follower's standby store
	metrics *clusterMetrics

	nextCopy  atomic.Uint32 // rotates the follower a copy goes to first
	standbyMu sync.Mutex
	standby   map[common.Hash]standbyTx // copies of the leader's transactions
	signer    types.Signer              // the txpool's
}

type forwardReq struct {
	tx   *types.Transaction
	done chan error // nil: fire and forget (re-forwarding)
}

type clusterMetrics struct {
	forwarded   *prometheus.CounterVec
	copied      *prometheus.CounterVec
	standby     prometheus.Gauge
	synced      prometheus.Counter
	applyDelay  prometheus.Histogram
	syncing     prometheus.Gauge
	forwardWait prometheus.Histogram
}

func newClusterMetrics(reg prometheus.Registerer) *clusterMetrics {
	m := &clusterMetrics{
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hansa_cluster_forwarded_transactions_total",
			Help: "Transactions this node forwarded to the leader, by result (ok, rejected, failed)."}, []string{"result"}),
		copied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hansa_cluster_copied_transactions_total",
			Help: "The leader's own transactions copied to a follower before acknowledging them, by result (ok, failed)."}, []string{"result"}),
		standby: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_cluster_standby_transactions",
			Help: "Copies of the leader's transactions this follower holds until a block includes them."}),
		synced: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_cluster_synced_blocks_total",
			Help: "Blocks fetched from peers and re-executed while catching up from a snapshot."}),
		applyDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_raft_commit_apply_seconds",
			Help: "Time from an entry's commit to its block being stored.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		syncing: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_cluster_syncing",
			Help: "1 while this node catches up from a snapshot by fetching blocks from peers."}),
		forwardWait: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_cluster_forward_seconds",
			Help: "Time to forward a batch of transactions to the leader.", Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.forwarded, m.copied, m.standby, m.synced, m.applyDelay, m.syncing, m.forwardWait)
	}
	return m
}

func newCluster(n *Node, t transport.Transport, engine *raft.Engine) *cluster {
	c := &cluster{n: n, t: t, engine: engine, cfg: n.cfg.Cluster, logger: n.logger.With("component", "cluster"),
		forward: make(chan forwardReq, 4096), copies: make(chan forwardReq, 4096), standby: map[common.Hash]standbyTx{}, metrics: newClusterMetrics(n.reg), signer: types.LatestSigner(n.config)}
	t.Handle(methodTxs, c.serveTxs)
	t.Handle(methodPool, c.servePool)
	t.Handle(methodBlocks, c.serveBlocks)
	return c
}

// run pumps transport reports into the engine and forwards transactions
// until ctx ends.
func (c *cluster) run(ctx context.Context) error {
	go func() {
		for {
			select {
			case r := <-c.t.Reports():
				if r.Snapshot {
					c.engine.ReportSnapshot(r.To, r.Failed)
				} else if r.Failed {
					c.engine.ReportUnreachable(r.To)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	go c.copyLoop(ctx)
	return c.forwardLoop(ctx)
}

// keep makes a transaction the leader accepted from its own client survive
// the leader: it returns nil once a follower holds a copy (which it hands to
// the next leader if this one dies before proposing it), or ErrNoQuorum when
// no follower took it within the forward timeout.
func (c *cluster) keep(ctx context.Context, tx *types.Transaction) error {
	return enqueue(ctx, c.copies, tx)
}

// submit forwards tx to the leader and waits for its verdict. The
// transaction is already in this node's pool.
func (c *cluster) submit(ctx context.Context, tx *types.Transaction) error {
	return enqueue(ctx, c.forward, tx)
}

// enqueue hands tx to the loop reading ch and waits for its answer.
func enqueue(ctx context.Context, ch chan<- forwardReq, tx *types.Transaction) error {
	req := forwardReq{tx: tx, done: make(chan error, 1)}
	select {
	case ch <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain appends to batch what ch holds right now, up to a full batch.
func drain(ch <-chan forwardReq, batch []forwardReq) []forwardReq {
	for len(batch) < maxForwardBatch {
		select {
		case r := <-ch:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

// copyLoop batches the leader's own transactions to a follower and releases
// each batch once one follower has it.
func (c *cluster) copyLoop(ctx context.Context) {
	for {
		var batch []forwardReq
		select {
		case <-ctx.Done():
			return
		case r := <-c.copies:
			batch = drain(c.copies, append(batch, r))
		}
		// One batch at a time: what arrives meanwhile makes the next batch
		// larger (measured: 8 batches in flight cost a quarter of the
		// leader's throughput in smaller calls).
		if c.copyBatch(ctx, batch) {
			for _, r := range batch {
				r.finish(nil)
			}
			continue
		}
		// No follower answered: this leader is cut off (it cannot commit
		// either) and a crash would lose the transactions, so refuse them.
		for _, r := range batch {
			c.n.pool.Remove(r.tx.Hash())
			r.finish(ErrNoQuorum)
		}
	}
}

// copyBatch hands batch to one follower's standby store (trying each in
// turn, starting with the next in rotation) and reports whether one took it
// within the forward timeout.
func (c *cluster) copyBatch(ctx context.Context, batch []forwardReq) bool {
	data, err := c.encodeBatch(batch)
	if err != nil {
		c.logger.Error("encode transactions for followers", "err", err)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ForwardTimeout)
	defer cancel()
	// Voters first: one of them, not a learner, becomes the next leader.
	reg := c.n.registry()
	var followers []uint64
	for _, id := range append(slices.Clone(reg.Voters), reg.Learners...) {
		if id != c.n.id {
			followers = append(followers, id)
		}
	}
	if len(followers) == 0 {
		return true // a single voter: its own log is the quorum
	}
	var errs []error
	first := int(c.nextCopy.Add(1))
	for i := range followers {
		id := followers[(first+i)%len(followers)]
		if _, err := c.t.Call(ctx, id, methodPool, data); err != nil {
			errs = append(errs, fmt.Errorf("member %d: %w", id, err))
			continue
		}
		c.metrics.copied.WithLabelValues("ok").Add(float64(len(batch)))
		return true
	}
	c.metrics.copied.WithLabelValues("failed").Add(float64(len(batch)))
	c.logger.Warn("no follower took a copy of the leader's transactions; refusing them", "txs", len(batch), "err", errors.Join(errs...))
	return false
}

// servePool keeps the leader's own transactions in this follower's standby
// store (not its pool: nothing to validate or select), from where they are
// handed to the next leader if the current one dies.
func (c *cluster) servePool(_ context.Context, from uint64, req []byte) ([]byte, error) {
	txs, err := c.decodeBatch(req)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	c.standbyMu.Lock()
	defer c.standbyMu.Unlock()
	for _, tx := range txs {
		c.standby[tx.Hash()] = standbyTx{tx: tx, at: now}
	}
	c.metrics.standby.Set(float64(len(c.standby)))
	return nil, nil
}

// standbyTx is a copy of a transaction the leader acknowledged.
type standbyTx struct {
	tx *types.Transaction
	at time.Time
}

// standbyLifetime bounds how long a copy waits for a block; one never
// included (replaced, or refused by execution) is dropped after it.
const standbyLifetime = 10 * time.Minute

// included drops the copies a new block made unnecessary, and expired ones.
func (c *cluster) included(block *types.Block) {
	c.standbyMu.Lock()
	defer c.standbyMu.Unlock()
	if len(c.standby) == 0 {
		return
	}
	for _, tx := range block.Transactions() {
		delete(c.standby, tx.Hash())
	}
	if block.NumberU64()%64 == 0 {
		for h, st := range c.standby {
			if time.Since(st.at) > standbyLifetime {
				delete(c.standby, h)
			}
		}
	}
	c.metrics.standby.Set(float64(len(c.standby)))
}

// standbyTxs returns the standby store's transactions; with take it also
// empties the store (when they move into this member's own pool). Copies
// forwarded to a new leader stay until a block includes them, so a forward
// that fails loses nothing.
func (c *cluster) standbyTxs(take bool) []*types.Transaction {
	c.standbyMu.Lock()
	defer c.standbyMu.Unlock()
	out := make([]*types.Transaction, 0, len(c.standby))
	for _, st := range c.standby {
		out = append(out, st.tx)
	}
	if take {
		clear(c.standby)
		c.metrics.standby.Set(0)
	}
	return out
}

// forwardLoop batches transactions for the leader. When the leader changes,
// every transaction still in this node's pool is forwarded again, so one
// accepted here survives the loss of the leader it first reached (nonces
// make a second inclusion impossible).
func (c *cluster) forwardLoop(ctx context.Context) error {
	ticker := time.NewTicker(c.cfg.TickInterval)
	defer ticker.Stop()
	lastLeader := c.engine.Status().LeaderID
	var batch []forwardReq
	for {
		select {
		case <-ctx.Done():
			for _, r := range batch {
				r.finish(ctx.Err())
			}
			return nil
		case r := <-c.forward:
			batch = drain(c.forward, append(batch[:0], r))
			c.send(ctx, batch) // callers get the verdicts
			batch = batch[:0]
			continue
		case <-ticker.C:
		}
		st := c.engine.Status()
		if st.LeaderID == lastLeader {
			continue
		}
		lastLeader = st.LeaderID
		if st.LeaderID == 0 {
			continue
		}
		if st.IsLeader() {
			// The copies of the old leader's transactions are this member's
			// to propose now.
			if txs := sortForAdmission(c.standbyTxs(true), c.signer); len(txs) > 0 {
				c.logger.Info("became leader; pooling the previous leader's transactions", "txs", len(txs))
				for _, tx := range txs {
					_ = c.n.pool.Add(tx) // already included or known: fine
				}
				c.n.wake()
			}
			continue
		}
		pending, queued := c.n.pool.Content()
		txs := c.standbyTxs(false)
		for _, m := range []map[common.Address][]*types.Transaction{pending, queued} {
			for _, list := range m {
				txs = append(txs, list...)
			}
		}
		txs = sortForAdmission(txs, c.signer)
		if len(txs) == 0 {
			continue
		}
		c.logger.Info("leader changed; forwarding pooled transactions to the new leader", "leader", st.LeaderID, "txs", len(txs))
		for chunk := range slices.Chunk(txs, maxForwardBatch) {
			reqs := make([]forwardReq, len(chunk))
			for i, tx := range chunk {
				reqs[i] = forwardReq{tx: tx}
			}
			if !c.send(ctx, reqs) {
				lastLeader = 0 // not delivered: try again at the next tick
				break
			}
		}
	}
}

// sortForAdmission orders txs by sender, then nonce (duplicates dropped), so
// a pool admits each sender's run in order instead of queueing gaps.
func sortForAdmission(txs []*types.Transaction, signer types.Signer) []*types.Transaction {
	type keyed struct {
		from common.Address
		tx   *types.Transaction
	}
	seen := map[common.Hash]bool{}
	ks := make([]keyed, 0, len(txs))
	for _, tx := range txs {
		if seen[tx.Hash()] {
			continue
		}
		seen[tx.Hash()] = true
		from, _ := types.Sender(signer, tx)
		ks = append(ks, keyed{from, tx})
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := a.from.Cmp(b.from); c != 0 {
			return c
		}
		return cmp.Compare(a.tx.Nonce(), b.tx.Nonce())
	})
	out := make([]*types.Transaction, len(ks))
	for i, k := range ks {
		out[i] = k.tx
	}
	return out
}

func (r forwardReq) finish(err error) {
	if r.done != nil {
		r.done <- err
	}
}

// send forwards one batch, waiting up to the forward timeout for a leader,
// and reports whether a leader took it. Transactions this node leads for
// itself are already in its pool.
func (c *cluster) send(ctx context.Context, batch []forwardReq) bool {
	deadline := time.Now().Add(c.cfg.ForwardTimeout)
	data, err := c.encodeBatch(batch)
	if err != nil {
		for _, r := range batch {
			r.finish(err)
		}
		return false
	}
	for {
		st := c.engine.Status()
		if st.IsLeader() {
			c.n.wake()
			for _, r := range batch {
				r.finish(nil)
			}
			return true
		}
		if st.LeaderID != 0 {
			start := time.Now()
			callCtx, cancel := context.WithDeadline(ctx, deadline)
			resp, err := c.t.Call(callCtx, st.LeaderID, methodTxs, data)
			cancel()
			c.metrics.forwardWait.Observe(time.Since(start).Seconds())
			if err == nil {
				c.results(batch, resp)
				return true
			}
			c.logger.Debug("forward to leader failed", "leader", st.LeaderID, "txs", len(batch), "err", err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.metrics.forwarded.WithLabelValues("failed").Add(float64(len(batch)))
			for _, r := range batch {
				if r.done != nil {
					c.n.pool.Remove(r.tx.Hash())
				}
				r.finish(ErrNoLeader)
			}
			return false
		}
		select {
		case <-time.After(c.cfg.TickInterval / 2):
		case <-ctx.Done():
		}
	}
}

// results hands the leader's verdicts to the waiting callers. A transaction
// the leader refused leaves this node's pool too; one it already had counts
// as accepted.
func (c *cluster) results(batch []forwardReq, resp []byte) {
	var verdicts []string
	if err := rlp.DecodeBytes(resp, &verdicts); err != nil || len(verdicts) != len(batch) {
		err = fmt.Errorf("leader answered a forward with %d verdicts for %d transactions (%v)", len(verdicts), len(batch), err)
		for _, r := range batch {
			r.finish(err)
		}
		return
	}
	for i, r := range batch {
		v := verdicts[i]
		if v == "" || v == gethtxpool.ErrAlreadyKnown.Error() {
			c.metrics.forwarded.WithLabelValues("ok").Inc()
			r.finish(nil)
			continue
		}
		c.metrics.forwarded.WithLabelValues("rejected").Inc()
		if r.done != nil {
			c.n.pool.Remove(r.tx.Hash())
		}
		r.finish(errors.New(v))
	}
}

// encodeBatch encodes transactions with their senders (cached by the pool).
func (c *cluster) encodeBatch(batch []forwardReq) ([]byte, error) {
	req := forwardRequest{Txs: make(types.Transactions, len(batch)), Senders: make([]common.Address, len(batch))}
	for i, r := range batch {
		req.Txs[i] = r.tx
		req.Senders[i], _ = types.Sender(c.signer, r.tx)
	}
	return rlp.EncodeToBytes(&req)
}

// decodeBatch decodes what encodeBatch encoded and caches the senders.
func (c *cluster) decodeBatch(req []byte) (types.Transactions, error) {
	var fr forwardRequest
	if err := rlp.DecodeBytes(req, &fr); err != nil {
		return nil, fmt.Errorf("decode forwarded transactions: %w", err)
	}
	if len(fr.Txs) > maxForwardBatch {
		return nil, fmt.Errorf("%d forwarded transactions; at most %d per call", len(fr.Txs), maxForwardBatch)
	}
	if len(fr.Senders) == len(fr.Txs) {
		for i, tx := range fr.Txs {
			execution.PresetSender(c.signer, tx, fr.Senders[i])
		}
	}
	return fr.Txs, nil
}

// serveTxs admits forwarded transactions into the leader's pool; the
// response holds one verdict per transaction ("" for accepted).
func (c *cluster) serveTxs(_ context.Context, from uint64, req []byte) ([]byte, error) {
	txs, err := c.decodeBatch(req)
	if err != nil {
		return nil, err
	}
	verdicts := make([]string, len(txs))
	for i, tx := range txs {
		if tx.Type() == types.BlobTxType {
			verdicts[i] = core.ErrTxTypeNotSupported.Error()
			continue
		}
		if err := c.n.pool.Add(tx); err != nil {
			// A member re-forwarding its pool after a leader change may send
			// a transaction already in a block: that is an acceptance.
			if _, _, _, _, included := (*backend)(c.n).Transaction(tx.Hash()); !included {
				verdicts[i] = err.Error()
			}
		}
	}
	c.n.wake()
	return rlp.EncodeToBytes(verdicts)
}

// serveBlocks returns committed blocks from the requested height.
func (c *cluster) serveBlocks(_ context.Context, from uint64, req []byte) ([]byte, error) {
	var r blocksRequest
	if err := rlp.DecodeBytes(req, &r); err != nil {
		return nil, fmt.Errorf("decode block request: %w", err)
	}
	head := c.n.head.Load().Number.Uint64()
	var blocks []*types.Block
	size := 0
	for num := r.From; num <= head && uint64(len(blocks)) < min(r.Count, maxSyncBlocks) && size < maxSyncBytes; num++ {
		b := c.n.db.BlockByNumber(num)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
		size += int(b.Size())
	}
	return rlp.EncodeToBytes(blocks)
}

// fetchBlocks asks the leader, then every other member, for blocks from
// height from.
func (c *cluster) fetchBlocks(ctx context.Context, from, count uint64) ([]*types.Block, uint64, error) {
	req, err := rlp.EncodeToBytes(blocksRequest{From: from, Count: count})
	if err != nil {
		return nil, 0, err
	}
	peers := []uint64{c.engine.Status().LeaderID}
	for _, m := range c.n.registry().Members {
		if m.ID != c.n.id && m.ID != peers[0] {
			peers = append(peers, m.ID)
		}
	}
	var errs []error
	for _, p := range peers {
		if p == 0 {
			continue
		}
		callCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := c.t.Call(callCtx, p, methodBlocks, req)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("member %d: %w", p, err))
			continue
		}
		var blocks []*types.Block
		if err := rlp.DecodeBytes(resp, &blocks); err != nil {
			errs = append(errs, fmt.Errorf("member %d sent undecodable blocks: %w", p, err))
			continue
		}
		if len(blocks) == 0 {
			errs = append(errs, fmt.Errorf("member %d has no block %d", p, from))
			continue
		}
		return blocks, p, nil
	}
	return nil, 0, errors.Join(errs...)
}
