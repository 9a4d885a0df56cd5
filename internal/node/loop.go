package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"

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
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-n.engine.Committed():
			if err := n.apply(ctx, e); err != nil {
				return err
			}
			n.maybeCut(ctx, timer)
		case <-n.kick:
			n.maybeCut(ctx, timer)
		case <-timer.C:
			n.maybeCut(ctx, timer)
		}
	}
}

// maybeCut proposes the next block when this member leads, no proposal is
// in flight, transactions are pending, and either the minimum interval has
// passed or the pending transactions fill a block. Otherwise it arms timer
// for when the interval will have passed.
func (n *Node) maybeCut(ctx context.Context, timer *time.Timer) {
	if n.inFlight || n.diverged.Load() || !n.engine.Status().IsLeader() {
		return
	}
	params := n.genesis.Blocks
	maxGas := n.genesis.MaxBlockGas()
	start := time.Now()
	txs := n.pool.Pending(params.MaxTxs, maxGas, params.MaxBytes)
	if len(txs) == 0 {
		return
	}
	if wait := params.MinInterval.D() - time.Since(n.lastBlock); wait > 0 && !full(txs, params, maxGas) {
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
	n.inFlight = true
	n.lastProposal, n.lastData = p, data
	n.metrics.buildSeconds.Observe(time.Since(start).Seconds())
	n.logger.Debug("proposed block", "height", p.Number, "txs", len(txs))
}

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
	const smallestTx = 21_000
	return gas+smallestTx > maxGas || size+128 > uint64(p.MaxBytes)
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
			n.diverged.Store(true)
			n.metrics.diverged.Set(1)
			n.logger.Error("DIVERGED: the proposer's parent hash differs from this node's block; this node stops applying and reports unready. Restore it from a healthy member's data.",
				"height", head.Number, "local_hash", head.Hash(), "proposer_hash", p.ParentHash, "proposer", p.Proposer, "index", e.Index)
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
		n.inFlight = false
		n.metrics.skippedProposals.Inc()
		n.logger.Warn("skipped proposal", "index", e.Index, "err", err)
		if serr := n.db.SetAppliedIndex(e.Index); serr != nil {
			return fmt.Errorf("record applied index %d: %w", e.Index, serr)
		}
		n.engine.Applied(e.Index)
		return nil
	}
	start := time.Now()
	if err := n.db.CommitBlock(res.Block, res.Receipts, e.Index); err != nil {
		return err
	}
	n.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	block := res.Block
	n.head.Store(block.Header())
	n.engine.Applied(e.Index)
	n.inFlight = false
	n.lastBlock = time.Now()
	n.lastProposal, n.lastData = nil, nil

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
	return chain.DecodeProposal(e.Data)
}
