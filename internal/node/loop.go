package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/consensus"
	"github.com/hansa-chain/hansa/internal/execution"
	"github.com/hansa-chain/hansa/internal/rpc"
)

// loop is the block loop: the only goroutine that changes the chain.
func (n *Node) loop(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	// A replicated node also looks at the engine regularly: it may have
	// become leader with transactions already pooled.
	var poll <-chan time.Time
	if n.cluster != nil {
		t := time.NewTicker(max(n.cfg.Cluster.TickInterval/4, 5*time.Millisecond))
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-n.engine.Committed():
			var err error
			switch {
			case e.Snapshot:
				err = n.applySnapshot(ctx, e)
			case e.Config != nil:
				err = n.applyConfig(e)
			default:
				err = n.apply(ctx, e)
			}
			if err != nil {
				return err
			}
			n.lastApplied = e.Index
			n.checkpoint(e.Index)
			n.maybeCut(ctx, timer)
		case <-n.kick:
			n.maybeCut(ctx, timer)
		case <-timer.C:
			n.maybeCut(ctx, timer)
		case <-poll:
			// A snapshot may be due without a new entry (a member was
			// added before a restart and needs one).
			n.checkpoint(n.lastApplied)
			n.maybeCut(ctx, timer)
		}
	}
}

// checkpoint offers the engine a snapshot point after entry index.
func (n *Node) checkpoint(index uint64) {
	if n.cluster == nil || !n.cluster.engine.SnapshotDue(index) {
		return
	}
	if index == 0 {
		return
	}
	head := n.head.Load()
	reg, err := encodeRecord(membershipRecord{Registry: n.registry()})
	if err != nil {
		n.logger.Error("encode membership for a checkpoint", "err", err)
		return
	}
	data, err := rlp.EncodeToBytes(checkpointData{Height: head.Number.Uint64(), Hash: head.Hash(), Members: reg})
	if err != nil {
		n.logger.Error("encode checkpoint", "err", err)
		return
	}
	n.cluster.engine.Checkpoint(index, data)
}

// maybeCut proposes the next block when this member leads, no proposal is
// in flight, transactions are pending, and either the minimum interval has
// passed or the pending transactions fill a block. Otherwise it arms timer
// for when the interval will have passed.
func (n *Node) maybeCut(ctx context.Context, timer *time.Timer) {
	st := n.engine.Status()
	if n.inFlight && (st.Term != n.inFlightTerm || !st.IsLeader() || time.Since(n.inFlightAt) > proposalTimeout) {
		// Proposed in an earlier term (or lost): it commits after the
		// entries of this term or never; either way a new proposal is safe,
		// because a stale one is skipped when applied.
		n.inFlight = false
	}
	// A new leader first applies every entry committed before it took
	// over, so that it proposes on top of the latest block.
	// (The engine counts a new leader's empty entry as applied at once, so
	// entries still waiting in the channel are checked too.)
	if n.inFlight || n.diverged.Load() || n.syncing.Load() || !st.IsLeader() || st.Applied < st.Commit || len(n.engine.Committed()) > 0 {
		return
	}
	params := n.genesis.Blocks
	maxGas := n.genesis.MaxBlockGas()
	pending, _ := n.pool.Stats()
	if pending == 0 {
		return
	}
	// Within the interval only a full block is cut; selecting transactions
	// costs a heap walk over the senders, so do it only when it can matter
	// (enough pending to fill a block by count, or by gas or size).
	wait := params.MinInterval.D() - time.Since(n.lastCut)
	if wait > 0 && pending < params.MaxTxs && uint64(pending)*minTxGas <= maxGas/2 {
		timer.Reset(wait)
		return
	}
	start := time.Now()
	txs := n.pool.Pending(params.MaxTxs, maxGas, params.MaxBytes)
	if len(txs) == 0 {
		return
	}
	if wait > 0 && !full(txs, params, maxGas) {
		timer.Reset(wait)
		return
	}
	head := n.head.Load()
	p := &chain.Proposal{
		Number:     head.Number.Uint64() + 1,
		ParentHash: head.Hash(),
		Time:       max(uint64(time.Now().Unix()), head.Time),
		Proposer:   n.address,
		Txs:        txs,
	}
	if n.cluster != nil {
		// The pool recovered every sender on admission; followers reuse them.
		signer := types.MakeSigner(n.config, new(big.Int).SetUint64(p.Number), p.Time)
		p.Senders = make([]common.Address, len(txs))
		for i, tx := range txs {
			p.Senders[i], _ = types.Sender(signer, tx)
		}
	}
	data, err := chain.EncodeProposal(p)
	if err != nil {
		n.logger.Error("encode proposal", "height", p.Number, "err", err)
		return
	}
	if err := n.engine.Propose(ctx, data); err != nil {
		if !errors.Is(err, context.Canceled) {
			n.logger.Warn("proposal refused", "height", p.Number, "err", err)
		}
		return
	}
	// The interval runs from one cut to the next, so the time a block takes
	// to commit and execute counts towards it.
	n.inFlight, n.inFlightTerm, n.inFlightAt, n.lastCut = true, st.Term, time.Now(), time.Now()
	n.lastProposal, n.lastData = p, data
	n.metrics.buildSeconds.Observe(time.Since(start).Seconds())
	n.logger.Debug("proposed block", "height", p.Number, "txs", len(txs))
}

// proposalTimeout is how long a leader waits for its proposal to come back
// committed before it proposes again.
const proposalTimeout = 10 * time.Second

// minTxGas is the least gas a transaction can use.
const minTxGas = 21_000

// full reports whether txs fill a block, so it should be cut at once.
func full(txs types.Transactions, p chain.BlockParams, maxGas uint64) bool {
	if len(txs) >= p.MaxTxs {
		return true
	}
	var gas, size uint64
	for _, tx := range txs {
		gas += tx.Gas()
		size += tx.Size()
	}
	return gas+minTxGas > maxGas || size+128 > uint64(p.MaxBytes)
}

// apply executes one committed entry and stores the block it produces.
// Entries that cannot produce the next block (undecodable, stale, built on a
// block that never committed) are skipped identically by every member.
func (n *Node) apply(ctx context.Context, e consensus.Entry) error {
	if n.diverged.Load() {
		return nil
	}
	p, err := n.decode(e)
	head := n.head.Load()
	if err == nil {
		switch {
		case p.Number <= head.Number.Uint64():
			err = fmt.Errorf("stale proposal for height %d, head is %d", p.Number, head.Number)
		case p.Number > head.Number.Uint64()+1:
			err = fmt.Errorf("proposal for height %d does not follow head %d", p.Number, head.Number)
		case p.ParentHash != head.Hash():
			n.diverge(head.Number.Uint64(), head, p.ParentHash, e.Index, fmt.Sprintf("proposal by %s", p.Proposer))
			return nil
		}
	}
	var res *execution.Result
	if err == nil {
		start := time.Now()
		st, serr := n.db.StateAt(head.Root)
		if serr != nil {
			return fmt.Errorf("open state at %d: %w", head.Number, serr)
		}
		res, err = n.exec.Execute(ctx, head, p, st)
		if errors.Is(err, context.Canceled) {
			return nil
		}
		n.metrics.executeSeconds.Observe(time.Since(start).Seconds())
	}
	if err != nil {
		if bytes.Equal(e.Data, n.lastData) {
			n.inFlight = false
		}
		n.metrics.skippedProposals.Inc()
		n.logger.Warn("skipped proposal", "index", e.Index, "err", err)
		if serr := n.db.SetAppliedIndex(e.Index); serr != nil {
			return fmt.Errorf("record applied index %d: %w", e.Index, serr)
		}
		n.engine.Applied(e.Index)
		return nil
	}
	if err := n.store(res, e.Index); err != nil {
		return err
	}
	n.engine.Applied(e.Index)
	if n.cluster != nil && !e.Committed.IsZero() {
		n.cluster.metrics.applyDelay.Observe(time.Since(e.Committed).Seconds())
	}
	n.inFlight = false
	n.lastProposal, n.lastData = nil, nil
	return nil
}

// store writes an executed block with the applied index, publishes it and
// updates the pool.
func (n *Node) store(res *execution.Result, index uint64) error {
	start := time.Now()
	if err := n.db.CommitBlock(res.Block, res.Receipts, index); err != nil {
		return err
	}
	n.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	block := res.Block
	n.recent.add(block)
	if n.cluster != nil {
		n.cluster.included(block)
	}
	n.head.Store(block.Header())

	st, err := n.db.StateAt(block.Root())
	if err != nil {
		return fmt.Errorf("open state at %d: %w", block.Number(), err)
	}
	n.pool.Reset(n.poolHead(block.Header()), st)
	n.chainFeed.Send(rpc.ChainHeadEvent{Block: block, Receipts: res.Receipts})

	n.metrics.head.Set(float64(block.NumberU64()))
	n.metrics.blocks.Inc()
	n.metrics.txs.Add(float64(len(block.Transactions())))
	n.metrics.blockTxs.Observe(float64(len(block.Transactions())))
	n.metrics.skippedTxs.Add(float64(len(res.Skipped)))
	// A transaction skipped for lack of block gas fits a later block, and one
	// skipped for a nonce gap waits for its predecessor; any other reason
	// will not go away, so drop it rather than propose it again and again.
	var dead []common.Hash
	for _, s := range res.Skipped {
		n.logger.Debug("skipped transaction", "height", block.Number(), "tx_hash", s.Hash, "err", s.Err)
		if !errors.Is(s.Err, core.ErrGasLimitReached) && !errors.Is(s.Err, core.ErrNonceTooHigh) {
			dead = append(dead, s.Hash)
		}
	}
	if len(dead) > 0 {
		n.pool.Remove(dead...)
	}
	n.logger.Debug("committed block", "height", block.Number(), "hash", block.Hash(), "txs", len(block.Transactions()), "gas_used", block.GasUsed())
	return nil
}

// decode returns the proposal of an entry, reusing the leader's own decoded
// proposal (with senders already recovered) when the entry is the one it
// just proposed.
func (n *Node) decode(e consensus.Entry) (*chain.Proposal, error) {
	if n.lastProposal != nil && bytes.Equal(e.Data, n.lastData) {
		return n.lastProposal, nil
	}
	p, err := chain.DecodeProposal(e.Data)
	if err == nil {
		n.exec.PresetSenders(p)
	}
	return p, err
}

// applySnapshot brings the chain to a snapshot's block: a member that fell
// behind the leader's compacted log fetches the missing blocks from peers,
// checks that each extends its chain, re-executes it and checks the result
// is the same block, then records the snapshot's index as applied.
func (n *Node) applySnapshot(ctx context.Context, e consensus.Entry) error {
	var cp checkpointData
	if n.diverged.Load() {
		return nil
	}
	if err := rlp.DecodeBytes(e.Data, &cp); err != nil {
		// Members write checkpoints; one this node cannot read means its
		// log or software differs: stop applying, keep serving reads.
		n.diverge(n.head.Load().Number.Uint64(), n.head.Load(), common.Hash{}, e.Index, fmt.Sprintf("undecodable snapshot data: %v", err))
		return nil
	}
	if head := n.head.Load(); head.Number.Uint64() < cp.Height {
		n.syncing.Store(true)
		n.cluster.metrics.syncing.Set(1)
		defer func() { n.syncing.Store(false); n.cluster.metrics.syncing.Set(0) }()
		n.logger.Info("catching up from a snapshot by fetching blocks from peers", "from", head.Number.Uint64()+1, "to", cp.Height, "index", e.Index)
		if err := n.syncTo(ctx, cp.Height); err != nil || n.diverged.Load() {
			return err
		}
	}
	if h := n.db.HeaderByNumber(cp.Height); h == nil || h.Hash() != cp.Hash {
		n.diverge(cp.Height, h, cp.Hash, e.Index, "snapshot")
		return nil
	}
	if len(cp.Members) > 0 {
		rec, err := decodeRecord(cp.Members)
		if err != nil {
			n.diverge(cp.Height, n.head.Load(), cp.Hash, e.Index, fmt.Sprintf("undecodable membership in snapshot: %v", err))
			return nil
		}
		reg := rec.Registry
		if e.Config != nil {
			reg.Voters, reg.Learners = e.Config.Voters, e.Config.Learners
		}
		if err := n.setRegistry(reg, e.Index); err != nil {
			return err
		}
	} else if err := n.db.SetAppliedIndex(e.Index); err != nil {
		return fmt.Errorf("record applied index %d: %w", e.Index, err)
	}
	n.engine.Applied(e.Index)
	n.inFlight = false
	n.logger.Info("caught up with snapshot", "height", cp.Height, "index", e.Index)
	return nil
}

// syncTo fetches, verifies, executes and stores blocks until the head is at
// height. Blocks are stored with the current applied index, so a crash in
// the middle makes the engine hand the snapshot over again.
func (n *Node) syncTo(ctx context.Context, height uint64) error {
	applied := n.db.AppliedIndex()
	lastLog := time.Now()
	for {
		head := n.head.Load()
		if head.Number.Uint64() >= height {
			return nil
		}
		blocks, from, err := n.cluster.fetchBlocks(ctx, head.Number.Uint64()+1, height-head.Number.Uint64())
		if err != nil {
			n.logger.Warn("block sync: no member could serve blocks; retrying", "from", head.Number.Uint64()+1, "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(500 * time.Millisecond):
				continue
			}
		}
		for _, b := range blocks {
			head = n.head.Load()
			if b.NumberU64() != head.Number.Uint64()+1 || b.NumberU64() > height {
				break
			}
			if b.ParentHash() != head.Hash() {
				n.diverge(head.Number.Uint64(), head, b.ParentHash(), applied, fmt.Sprintf("block sync from member %d", from))
				return nil
			}
			st, err := n.db.StateAt(head.Root)
			if err != nil {
				return fmt.Errorf("open state at %d: %w", head.Number, err)
			}
			p := &chain.Proposal{Number: b.NumberU64(), ParentHash: b.ParentHash(), Time: b.Time(), Proposer: b.Coinbase(), Txs: b.Transactions()}
			res, err := n.exec.Execute(ctx, head, p, st)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			if err != nil || res.Block.Hash() != b.Hash() || len(res.Skipped) > 0 {
				n.diverged.Store(true)
				n.metrics.diverged.Set(1)
				n.logger.Error("DIVERGED: a block fetched from a peer re-executes to a different block; this node stops applying and reports unready",
					"height", b.NumberU64(), "peer", from, "peer_hash", b.Hash(), "err", err)
				return nil
			}
			if err := n.store(res, applied); err != nil {
				return err
			}
			n.cluster.metrics.synced.Inc()
		}
		if time.Since(lastLog) > 5*time.Second {
			n.logger.Info("block sync", "height", n.head.Load().Number, "target", height)
			lastLog = time.Now()
		}
	}
}

// diverge stops applying: this node's block at height (local, nil when
// missing) is not the one the cluster agreed on (want).
func (n *Node) diverge(height uint64, local *types.Header, want common.Hash, index uint64, source string) {
	n.diverged.Store(true)
	n.metrics.diverged.Set(1)
	var localHash common.Hash
	if local != nil {
		localHash = local.Hash()
	}
	n.logger.Error("DIVERGED: this node's block differs from the cluster's; it stops applying and reports unready. Restore it from a healthy member's data.",
		"height", height, "local_hash", localHash, "cluster_hash", want, "index", index, "source", source)
}
