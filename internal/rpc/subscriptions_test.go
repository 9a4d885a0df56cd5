package rpc

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// fltRecv receives one value or fails after a generous bound.
func fltRecv[T any](t *testing.T, ch <-chan T, errc <-chan error) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case err := <-errc:
		t.Fatalf("subscription ended: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("timed out waiting for a notification")
	}
	panic("unreachable")
}

func TestSubscribeNewHeadsAndLogs(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil)
	ec := ethclient.NewClient(env.dial(t))

	heads := make(chan *types.Header, 16)
	headSub, err := ec.SubscribeNewHead(t.Context(), heads)
	if err != nil {
		t.Fatal(err)
	}
	logs := make(chan types.Log, 16)
	logSub, err := ec.SubscribeFilterLogs(t.Context(), ethereum.FilterQuery{Addresses: []common.Address{fltAddrA}, Topics: [][]common.Hash{nil, {fltT2, fltT3}}}, logs)
	if err != nil {
		t.Fatal(err)
	}

	var blocks []*types.Block
	blocks = append(blocks, b.commit(t, fltLog{fltAddrA, []common.Hash{fltT1, fltT2}}, fltLog{fltAddrA, []common.Hash{fltT1}}))                                                       // 1: (1,0)
	blocks = append(blocks, b.commit(t))                                                                                                                                              // 2: none
	blocks = append(blocks, b.commit(t, fltLog{fltAddrB, []common.Hash{fltT1, fltT2}}, fltLog{fltAddrA, []common.Hash{fltT4, fltT3}}, fltLog{fltAddrA, []common.Hash{fltT1, fltT2}})) // 3: (3,1) (3,2)
	for i, want := range blocks {
		h := fltRecv(t, heads, headSub.Err())
		if h.Hash() != want.Hash() || h.Number.Uint64() != uint64(i+1) {
			t.Fatalf("head %d: number %v hash %v, want %v", i, h.Number, h.Hash(), want.Hash())
		}
	}
	wantLogs := []fltPos{{1, 0}, {3, 1}, {3, 2}}
	for _, want := range wantLogs {
		l := fltRecv(t, logs, logSub.Err())
		if got := (fltPos{l.BlockNumber, uint64(l.Index)}); got != want || l.BlockHash != blocks[l.BlockNumber-1].Hash() {
			t.Fatalf("log %v (block hash %v), want %v", got, l.BlockHash, want)
		}
	}

	if n := env.fs.subscriptionCount(); n != 2 {
		t.Fatalf("%d live subscriptions, want 2", n)
	}
	headSub.Unsubscribe()
	fltEventually(t, "unsubscribe releases the subscription", func() bool { return env.fs.subscriptionCount() == 1 })
	b.commit(t, fltLog{fltAddrA, []common.Hash{fltT1, fltT2}}) // 4: (4,0)
	if l := fltRecv(t, logs, logSub.Err()); l.BlockNumber != 4 {
		t.Fatalf("log after unsubscribing heads: block %d, want 4", l.BlockNumber)
	}
	logSub.Unsubscribe()
	fltEventually(t, "all subscriptions released", func() bool { return env.fs.subscriptionCount() == 0 })
}

func TestSubscribeNewPendingTransactions(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil)
	c := env.dial(t)
	hashes := make(chan common.Hash, 8)
	hashSub, err := c.EthSubscribe(t.Context(), hashes, "newPendingTransactions")
	if err != nil {
		t.Fatal(err)
	}
	full := make(chan map[string]any, 8)
	fullSub, err := c.EthSubscribe(t.Context(), full, "newPendingTransactions", true)
	if err != nil {
		t.Fatal(err)
	}
	txs := fltSignedTxs(t, b.config, 2)
	b.txFeed.Send(NewTxsEvent{Txs: txs})
	for _, tx := range txs {
		if h := fltRecv(t, hashes, hashSub.Err()); h != tx.Hash() {
			t.Fatalf("hash %v, want %v", h, tx.Hash())
		}
		if m := fltRecv(t, full, fullSub.Err()); m["hash"] != tx.Hash().Hex() || m["nonce"] == nil || m["from"] == nil {
			t.Fatalf("full tx %v, want hash %v", m, tx.Hash())
		}
	}
}

func TestSubscribeErrors(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil) // MaxSubscriptions: 3
	ec := ethclient.NewClient(env.dial(t))

	var subs []ethereum.Subscription
	for range 3 {
		sub, err := ec.SubscribeNewHead(t.Context(), make(chan *types.Header))
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	_, err := ec.SubscribeNewHead(t.Context(), make(chan *types.Header))
	fltCheckErr(t, err, "too many subscriptions (max 3)", -32005)
	subs[0].Unsubscribe()
	fltEventually(t, "a slot is freed", func() bool { return env.fs.subscriptionCount() == 2 })
	if _, err := ec.SubscribeFilterLogs(t.Context(), ethereum.FilterQuery{}, make(chan types.Log)); err != nil {
		t.Fatalf("subscribe after unsubscribe: %v", err)
	}

	// Criteria are validated as for eth_newFilter (the limit is not reached here:
	// the check happens before a slot is taken).
	subs[1].Unsubscribe()
	fltEventually(t, "a slot is freed", func() bool { return env.fs.subscriptionCount() == 2 })
	_, err = ec.SubscribeFilterLogs(t.Context(), ethereum.FilterQuery{FromBlock: big.NewInt(5), ToBlock: big.NewInt(2)}, make(chan types.Log))
	fltCheckErr(t, err, "invalid block range params", -32602)
}

func TestSubscriptionsReleasedOnDisconnect(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil)
	c := env.dial(t)
	ec := ethclient.NewClient(c)
	if _, err := ec.SubscribeNewHead(t.Context(), make(chan *types.Header, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := ec.SubscribeFilterLogs(t.Context(), ethereum.FilterQuery{}, make(chan types.Log, 1)); err != nil {
		t.Fatal(err)
	}
	if n := env.fs.subscriptionCount(); n != 2 {
		t.Fatalf("%d subscriptions, want 2", n)
	}
	c.Close()
	fltEventually(t, "disconnect releases subscriptions", func() bool { return env.fs.subscriptionCount() == 0 })
	// The service keeps working for other clients.
	ec2 := ethclient.NewClient(env.dial(t))
	heads := make(chan *types.Header, 1)
	sub, err := ec2.SubscribeNewHead(t.Context(), heads)
	if err != nil {
		t.Fatal(err)
	}
	blk := b.commit(t)
	if h := fltRecv(t, heads, sub.Err()); h.Hash() != blk.Hash() {
		t.Fatalf("head %v, want %v", h.Hash(), blk.Hash())
	}
}

// TestSubscriptionSlowClientDropped checks that a filterSubscriber whose queue
// overflows is dropped instead of blocking the dispatcher.
func TestSubscriptionSlowClientDropped(t *testing.T) {
	b := newFltBackend(t)
	fs := NewFilterService(b, fltTestConfig())
	sub := &filterSubscriber{kind: filterSubHeads, ch: make(chan any, 2), dropped: make(chan struct{})}
	fs.subs[sub] = struct{}{}
	blk := b.appendBlock(t, nil)
	for range 3 {
		fs.dispatchHead(ChainHeadEvent{Block: blk})
	}
	select {
	case <-sub.dropped:
	default:
		t.Fatal("overflowing filterSubscriber not dropped")
	}
	if n := fs.subscriptionCount(); n != 0 {
		t.Fatalf("%d subscriptions after drop, want 0", n)
	}
}

// TestRunEndsSubscriptions checks that Run ends live subscriptions (it
// returns only after their goroutines did) and refuses new work afterwards.
func TestRunEndsSubscriptions(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil)
	c := env.dial(t)
	ec := ethclient.NewClient(c)
	if _, err := ec.SubscribeNewHead(t.Context(), make(chan *types.Header, 1)); err != nil {
		t.Fatal(err)
	}
	if n := env.fs.subscriptionCount(); n != 1 {
		t.Fatalf("%d subscriptions, want 1", n)
	}
	env.stop() // fails the test if a subscription outlives Run
	if _, err := ec.SubscribeNewHead(t.Context(), make(chan *types.Header, 1)); err == nil || err.Error() != errFilterServiceStopped.Error() {
		t.Fatalf("subscribe after Run: %v, want %v", err, errFilterServiceStopped)
	}
	var id string
	err := c.CallContext(t.Context(), &id, "eth_newBlockFilter")
	fltCheckErr(t, err, errFilterServiceStopped.Error(), -32000)
}
