package txpool

import (
	"container/heap"

	"github.com/ethereum/go-ethereum/core/types"
)

// Pending returns executable transactions for the next block: per sender in
// nonce order without gaps from the sender's state nonce, across senders by
// effective tip at the head's base fee (highest first), then by arrival
// (first come, first served). It stops after maxTxs transactions and keeps
// the sums of gas limits within maxGas and of encoded sizes within maxBytes;
// a sender whose next transaction does not fit is skipped with the rest of
// its run, and smaller transactions of other senders may still fill the
// room. A zero or negative limit means no limit. Senders whose next
// transaction's fee cap is below the base fee are skipped. The pool keeps
// the transactions; Reset removes them once a block includes them.
func (p *Pool) Pending(maxTxs int, maxGas uint64, maxBytes int) []*types.Transaction {
	p.mu.RLock()
	defer p.mu.RUnlock()

	baseFee := p.head.BaseFee
	h := make(senderHeap, 0, len(p.accounts))
	for _, acct := range p.accounts {
		if len(acct.pending) == 0 {
			continue
		}
		if baseFee != nil && acct.pending[0].tx.GasFeeCapIntCmp(baseFee) < 0 {
			continue
		}
		h = append(h, cursor{acct: acct})
	}
	heap.Init(&h)

	var (
		out   []*types.Transaction
		gas   uint64
		bytes int
	)
	for h.Len() > 0 && (maxTxs <= 0 || len(out) < maxTxs) {
		c := &h[0]
		ptx := c.acct.pending[c.idx]
		size := int(ptx.tx.Size())
		if (maxGas > 0 && ptx.tx.Gas() > maxGas-gas) || (maxBytes > 0 && size > maxBytes-bytes) {
			heap.Pop(&h) // skip this sender: its later nonces depend on this one
			continue
		}
		out = append(out, ptx.tx)
		gas += ptx.tx.Gas()
		bytes += size
		c.idx++
		if c.idx == len(c.acct.pending) ||
			(baseFee != nil && c.acct.pending[c.idx].tx.GasFeeCapIntCmp(baseFee) < 0) {
			heap.Pop(&h)
			continue
		}
		heap.Fix(&h, 0)
	}
	return out
}

// cursor is a sender's next transaction in Pending.
type cursor struct {
	acct *account
	idx  int
}

func (c cursor) next() *poolTx { return c.acct.pending[c.idx] }

// senderHeap orders senders by their next transaction: higher effective tip
// first, then earlier arrival.
type senderHeap []cursor

func (h senderHeap) Len() int { return len(h) }

func (h senderHeap) Less(i, j int) bool {
	a, b := h[i].next(), h[j].next()
	if c := a.tip.Cmp(b.tip); c != 0 {
		return c > 0
	}
	return a.seq < b.seq
}

func (h senderHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h *senderHeap) Push(x any) { *h = append(*h, x.(cursor)) }

func (h *senderHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
