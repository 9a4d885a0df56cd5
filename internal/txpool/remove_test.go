package txpool

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

func TestRemoveDemotesSuccessors(t *testing.T) {
	st := newTestState(t)
	key := testKey(t, 1)
	fund(st, addrOf(key), oneEther, 0)
	p := newTestPool(t, testConfig(), st)
	var txs []common.Hash
	for n := uint64(0); n < 4; n++ {
		tx := dynTx(t, key, n, 21000, 0, 1)
		if err := p.Add(tx); err != nil {
			t.Fatalf("add %d: %v", n, err)
		}
		txs = append(txs, tx.Hash())
	}
	if got := p.Remove(txs[1], common.HexToHash("0x01")); got != 1 {
		t.Fatalf("removed %d, want 1 (unknown hashes are ignored)", got)
	}
	checkInvariants(t, p)
	if p.Has(txs[1]) {
		t.Fatal("removed transaction still pooled")
	}
	if pending, queued := p.Stats(); pending != 1 || queued != 2 {
		t.Fatalf("pending %d queued %d, want 1 and 2: successors of a removed nonce wait for the gap", pending, queued)
	}
	if n := p.Nonce(addrOf(key)); n != 1 {
		t.Fatalf("pending nonce %d, want 1", n)
	}
	if got := len(p.Pending(0, 0, 0)); got != 1 {
		t.Fatalf("Pending returned %d txs, want 1", got)
	}
	// Refilling the gap promotes the queued ones again.
	if err := p.Add(dynTx(t, key, 1, 21000, 0, 1)); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, p)
	if pending, queued := p.Stats(); pending != 4 || queued != 0 {
		t.Fatalf("after refilling: pending %d queued %d", pending, queued)
	}
}
