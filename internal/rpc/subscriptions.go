package rpc

import (
	"context"
	"fmt"

	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// filterSubQueue bounds the events waiting for one subscription's client.
// A client that falls this far behind is dropped (see filterSubscriber.dropped).
const filterSubQueue = 1024

// filterSubKind is what a subscription delivers.
type filterSubKind int

const (
	filterSubHeads filterSubKind = iota
	filterSubLogs
	filterSubPendingTxs
)

// filterSubscriber is one live eth_subscribe subscription. The dispatcher (Run)
// queues events on ch without blocking; the subscription's goroutine sends
// them to the client.
type filterSubscriber struct {
	kind     filterSubKind
	crit     FilterCriteria // logs only
	from, to int64          // logs only: live range (see liveRange)
	fullTx   bool           // newPendingTransactions only
	ch       chan any       // *types.Header, []*types.Log or []*types.Transaction
	dropped  chan struct{}  // closed when the queue overflowed
}

// deliver queues an event for sub, dropping a filterSubscriber whose client does
// not keep up so that one slow client cannot stall block processing. Called
// with mu held.
func (s *FilterService) deliver(sub *filterSubscriber, ev any) {
	select {
	case sub.ch <- ev:
	default:
		delete(s.subs, sub)
		close(sub.dropped)
	}
}

// subscribe registers a filterSubscriber within cfg.MaxSubscriptions and starts its
// goroutine, which runs until the client unsubscribes or disconnects, the
// filterSubscriber is dropped, or Run returns.
func (s *FilterService) subscribe(ctx context.Context, sub *filterSubscriber) (*gethrpc.Subscription, error) {
	notifier, ok := gethrpc.NotifierFromContext(ctx)
	if !ok {
		return &gethrpc.Subscription{}, gethrpc.ErrNotificationsUnsupported
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errFilterServiceStopped
	}
	if len(s.subs) >= s.cfg.MaxSubscriptions {
		return nil, filterLimitError{fmt.Sprintf("too many subscriptions (max %d)", s.cfg.MaxSubscriptions)}
	}
	sub.ch = make(chan any, filterSubQueue)
	sub.dropped = make(chan struct{})
	rpcSub := notifier.CreateSubscription()
	s.subs[sub] = struct{}{}
	s.subWG.Add(1)
	go s.serve(notifier, rpcSub, sub)
	return rpcSub, nil
}

// serve sends a subscription's events to its client and releases it at the end.
func (s *FilterService) serve(notifier *gethrpc.Notifier, rpcSub *gethrpc.Subscription, sub *filterSubscriber) {
	defer s.subWG.Done()
	defer func() {
		s.mu.Lock()
		delete(s.subs, sub)
		s.mu.Unlock()
	}()
	var signer types.Signer
	if sub.fullTx {
		signer = types.LatestSigner(s.b.ChainConfig())
	}
	for {
		select {
		case ev := <-sub.ch:
			// A failed send closes the connection, which ends rpcSub.
			switch ev := ev.(type) {
			case *types.Header:
				notifier.Notify(rpcSub.ID, ev)
			case []*types.Log:
				for _, l := range ev {
					notifier.Notify(rpcSub.ID, l)
				}
			case []*types.Transaction:
				for _, tx := range ev {
					if sub.fullTx {
						notifier.Notify(rpcSub.ID, filterPendingTxJSON(tx, signer))
					} else {
						notifier.Notify(rpcSub.ID, tx.Hash())
					}
				}
			}
		case <-rpcSub.Err(): // unsubscribed, or the connection closed
			return
		case <-sub.dropped:
			return
		case <-s.quit:
			return
		}
	}
}

// subscriptionCount is the number of live subscriptions.
func (s *FilterService) subscriptionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// NewHeads notifies the header of every new block, in order
// (eth_subscribe("newHeads")), in go-ethereum's header JSON.
func (api *FilterAPI) NewHeads(ctx context.Context) (*gethrpc.Subscription, error) {
	return api.s.subscribe(ctx, &filterSubscriber{kind: filterSubHeads})
}

// Logs notifies, one by one and in chain order, the logs of new blocks that
// match crit (eth_subscribe("logs", crit)).
func (api *FilterAPI) Logs(ctx context.Context, crit FilterCriteria) (*gethrpc.Subscription, error) {
	if err := crit.checkLimits(); err != nil {
		return nil, err
	}
	from, to, err := crit.liveRange()
	if err != nil {
		return nil, err
	}
	return api.s.subscribe(ctx, &filterSubscriber{kind: filterSubLogs, crit: crit, from: from, to: to})
}

// NewPendingTransactions notifies every transaction newly admitted to the
// txpool (eth_subscribe("newPendingTransactions", fullTx)): its hash, or the
// whole transaction if fullTx is true.
func (api *FilterAPI) NewPendingTransactions(ctx context.Context, fullTx *bool) (*gethrpc.Subscription, error) {
	return api.s.subscribe(ctx, &filterSubscriber{kind: filterSubPendingTxs, fullTx: fullTx != nil && *fullTx})
}
