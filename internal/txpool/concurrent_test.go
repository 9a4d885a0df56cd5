package txpool

import (
	"errors"
	"math/big"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/types"
)

// TestConcurrentAdd adds transactions of several senders from several
// goroutines, in shuffled nonce order and with duplicates, while readers
// query the pool; every transaction must end up pending exactly once and be
// announced exactly once. Run with -race.
func TestConcurrentAdd(t *testing.T) {
	const (
		senders  = 8
		perActor = 20
		workers  = 4
	)
	st := newTestState(t)
	txs := make([][]*types.Transaction, senders)
	for s := range senders {
		key := testKey(t, s)
		fund(st, addrOf(key), oneEther, 0)
		for n := range perActor {
			txs[s] = append(txs[s], legacyTx(t, key, uint64(n), int64(1+s)))
		}
	}
	p := newTestPool(t, testConfig(), st)
	sub := make(chan core.NewTxsEvent)
	subscription := p.SubscribeNewTxs(sub)
	announced := make(map[[32]byte]int)
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case ev := <-sub:
				for _, tx := range ev.Txs {
					announced[tx.Hash()]++
				}
			case <-subscription.Err():
				return
			}
		}
	})
	done := make(chan struct{})
	readers.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			p.Pending(50, 0, 0)
			p.Stats()
			p.Content()
			p.Nonce(addrOf(testKey(t, 0)))
			p.Get(txs[0][0].Hash())
			p.Reset(testHead(30_000_000, new(big.Int)), st) // same state: changes nothing
		}
	})

	var writers sync.WaitGroup
	errs := make(chan error, senders*perActor*2)
	for w := range workers {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			// Each worker adds two senders' transactions, shuffled, and the
			// previous worker's first sender again (duplicates).
			var mine []*types.Transaction
			mine = append(mine, txs[2*w]...)
			mine = append(mine, txs[2*w+1]...)
			mine = append(mine, txs[(2*w+2)%senders]...)
			rng.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
			for _, tx := range mine {
				if err := p.Add(tx); err != nil && !errors.Is(err, txpool.ErrAlreadyKnown) {
					errs <- err
				}
			}
		})
	}
	writers.Wait()
	close(done)
	subscription.Unsubscribe()
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Add: %v", err)
	}

	if pending, queued := p.Stats(); pending != senders*perActor || queued != 0 {
		t.Errorf("Stats = %d, %d; want %d, 0", pending, queued, senders*perActor)
	}
	for s := range senders {
		for _, tx := range txs[s] {
			if !p.Has(tx.Hash()) {
				t.Errorf("sender %d nonce %d missing", s, tx.Nonce())
			}
			if announced[tx.Hash()] != 1 {
				t.Errorf("sender %d nonce %d announced %d times", s, tx.Nonce(), announced[tx.Hash()])
			}
		}
	}
	checkInvariants(t, p)
}
