package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/logindex"
)

// Filter limits and error texts. The texts are go-ethereum's (eth/filters)
// where go-ethereum has the error, and hosted providers' where it has not.
const (
	// filterMaxTopics is the number of topic positions a log can have (LOG0..LOG4).
	filterMaxTopics = 4
	// filterMaxPerPosition bounds the addresses, and the topics of one
	// position, of a query (go-ethereum's default LogQueryLimit and maxSubTopics).
	filterMaxPerPosition = 1000
)

var (
	errFilterInvalidTopic        = filterParamsError{"invalid topic(s)"}
	errFilterInvalidBlockRange   = filterParamsError{"invalid block range params"}
	errFilterRangeIntoFuture     = filterParamsError{"block range extends beyond current head block"}
	errFilterUnknownBlock        = errors.New("unknown block")
	errFilterNotFound            = errors.New("filter not found")
	errFilterExceedMaxTopics     = errors.New("exceed max topics")
	errFilterExceedPositionLimit = errors.New("exceed max addresses or topics per search position")
	errFilterBlockHashAndRange   = errors.New("cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other")
	errFilterHeadUnavailable     = errors.New("head block not available")
	errFilterServiceStopped      = errors.New("filter service stopped")
)

// filterParamsError is an invalid-params (-32602) error with go-ethereum's text.
type filterParamsError struct{ msg string }

func (e filterParamsError) Error() string  { return e.msg }
func (e filterParamsError) ErrorCode() int { return -32602 }

// filterLimitError reports a server-side limit (-32005, "limit exceeded",
// the code hosted providers use for these answers).
type filterLimitError struct{ msg string }

func (e filterLimitError) Error() string  { return e.msg }
func (e filterLimitError) ErrorCode() int { return -32005 }

// FilterCriteria is the JSON argument of eth_getLogs, eth_newFilter and the
// "logs" subscription, decoded exactly as go-ethereum decodes it: address is
// a string or an array of strings; topics is an array of null, a string, or
// an array of strings (a null inside an array makes that position a wildcard).
type FilterCriteria struct {
	// BlockHash restricts the query to one block; exclusive with From/ToBlock.
	BlockHash *common.Hash
	// FromBlock and ToBlock bound the range; nil means "latest".
	FromBlock, ToBlock *gethrpc.BlockNumber
	// Addresses lists the emitters (any of; empty = all).
	Addresses []common.Address
	// Topics lists the topics per position (position-wise AND of ORs; an
	// empty position is a wildcard).
	Topics [][]common.Hash
}

// UnmarshalJSON decodes a filter object with go-ethereum's rules and error texts.
func (c *FilterCriteria) UnmarshalJSON(data []byte) error {
	var raw struct {
		BlockHash *common.Hash         `json:"blockHash"`
		FromBlock *gethrpc.BlockNumber `json:"fromBlock"`
		ToBlock   *gethrpc.BlockNumber `json:"toBlock"`
		Addresses any                  `json:"address"`
		Topics    []any                `json:"topics"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*c = FilterCriteria{}
	if raw.BlockHash != nil {
		if raw.FromBlock != nil || raw.ToBlock != nil {
			return errFilterBlockHashAndRange
		}
		c.BlockHash = raw.BlockHash
	} else {
		c.FromBlock, c.ToBlock = raw.FromBlock, raw.ToBlock
	}

	switch a := raw.Addresses.(type) {
	case nil:
	case string:
		addr, err := filterDecodeHex(a, common.AddressLength, "address")
		if err != nil {
			return fmt.Errorf("invalid address: %v", err)
		}
		c.Addresses = []common.Address{common.BytesToAddress(addr)}
	case []any:
		for i, v := range a {
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("non-string address at index %d", i)
			}
			addr, err := filterDecodeHex(s, common.AddressLength, "address")
			if err != nil {
				return fmt.Errorf("invalid address at index %d: %v", i, err)
			}
			c.Addresses = append(c.Addresses, common.BytesToAddress(addr))
		}
	default:
		return errors.New("invalid addresses in query")
	}

	if len(raw.Topics) > filterMaxTopics {
		return errFilterExceedMaxTopics
	}
	if len(raw.Topics) > 0 {
		c.Topics = make([][]common.Hash, len(raw.Topics))
	}
	for i, t := range raw.Topics {
		switch t := t.(type) {
		case nil: // wildcard
		case string:
			h, err := filterDecodeHex(t, common.HashLength, "topic")
			if err != nil {
				return err
			}
			c.Topics[i] = []common.Hash{common.BytesToHash(h)}
		case []any:
			if len(t) > filterMaxPerPosition {
				return errFilterExceedMaxTopics
			}
			for _, v := range t {
				if v == nil { // a null alternative matches anything
					c.Topics[i] = nil
					break
				}
				s, ok := v.(string)
				if !ok {
					return errFilterInvalidTopic
				}
				h, err := filterDecodeHex(s, common.HashLength, "topic")
				if err != nil {
					return err
				}
				c.Topics[i] = append(c.Topics[i], common.BytesToHash(h))
			}
		default:
			return errFilterInvalidTopic
		}
	}
	return nil
}

func filterDecodeHex(s string, size int, what string) ([]byte, error) {
	b, err := hexutil.Decode(s)
	if err != nil {
		return nil, err
	}
	if len(b) != size {
		return nil, fmt.Errorf("hex has invalid length %d after decoding; expected %d for %s", len(b), size, what)
	}
	return b, nil
}

// checkLimits applies go-ethereum's per-query size limits.
func (c *FilterCriteria) checkLimits() error {
	if len(c.Topics) > filterMaxTopics {
		return errFilterExceedMaxTopics
	}
	if len(c.Addresses) > filterMaxPerPosition {
		return errFilterExceedPositionLimit
	}
	for _, sub := range c.Topics {
		if len(sub) > filterMaxPerPosition {
			return errFilterExceedPositionLimit
		}
	}
	return nil
}

// liveRange validates and normalises the range of a filter that follows new
// blocks (eth_newFilter, the "logs" subscription) with go-ethereum's rules:
// "earliest" is block 0; "latest", "pending", "safe" and "finalized" all mean
// the head (finality is immediate). from < 0 or to < 0 below means latest.
func (c *FilterCriteria) liveRange() (from, to int64, err error) {
	norm := func(bn *gethrpc.BlockNumber) int64 {
		switch {
		case bn == nil:
			return -1
		case *bn == gethrpc.EarliestBlockNumber:
			return 0
		case *bn < 0:
			return -1
		default:
			return bn.Int64()
		}
	}
	from, to = norm(c.FromBlock), norm(c.ToBlock)
	switch {
	case c.BlockHash != nil:
		return -1, -1, nil // never matches a new block: see matchLive
	case from < 0 && to < 0, from >= 0 && to < 0, from >= 0 && to >= from:
		return from, to, nil
	}
	return 0, 0, errFilterInvalidBlockRange
}

// filterKind is what an installed filter collects.
type filterKind int

const (
	filterKindLogs filterKind = iota
	filterKindBlocks
	filterKindPendingTxs
)

// installedFilter is one eth_newFilter / eth_newBlockFilter /
// eth_newPendingTransactionFilter filter. Guarded by FilterService.mu.
type installedFilter struct {
	kind     filterKind
	crit     FilterCriteria
	from, to int64 // live range of a log filter (see liveRange)
	fullTx   bool
	lastUsed time.Time

	hashes []common.Hash
	txs    []*types.Transaction
	logs   []*types.Log
}

// FilterService owns the installed filters and live subscriptions of the
// "eth" namespace and the loop that feeds them from the Backend's events.
// Its RPC methods are on FilterAPI (see API); Run must be running for
// filters and subscriptions to receive new blocks and transactions.
//
// Concurrency: all methods are safe for concurrent use. One goroutine (Run)
// receives the Backend's events; each subscription has one goroutine, started
// by its eth_subscribe call and waited for by Run before it returns.
type FilterService struct {
	b   Backend
	cfg Config
	now func() time.Time // injectable clock for filter expiry

	mu      sync.Mutex
	filters map[gethrpc.ID]*installedFilter
	subs    map[*filterSubscriber]struct{}
	stopped bool          // Run has returned: no new subscriptions
	quit    chan struct{} // closed when Run returns
	subWG   sync.WaitGroup
	api     *FilterAPI
}

// NewFilterService returns a filter service for b with cfg's limits. It
// starts nothing; run it with Run.
func NewFilterService(b Backend, cfg Config) *FilterService {
	s := &FilterService{
		b:       b,
		cfg:     cfg,
		now:     time.Now,
		filters: make(map[gethrpc.ID]*installedFilter),
		subs:    make(map[*filterSubscriber]struct{}),
		quit:    make(chan struct{}),
	}
	s.api = &FilterAPI{s: s}
	return s
}

// API returns the receiver to register under the "eth" namespace. It serves
// eth_getLogs, the filter methods and eth_subscribe("newHeads" | "logs" |
// "newPendingTransactions").
func (s *FilterService) API() *FilterAPI { return s.api }

// Run feeds filters and subscriptions with the Backend's new blocks and
// transactions and uninstalls filters not polled for cfg.FilterTimeout, until
// ctx is done. It is called once. Before returning it ends every live
// subscription and waits for their goroutines. It returns nil when ctx is
// done and an error if a Backend event subscription fails.
func (s *FilterService) Run(ctx context.Context) error {
	heads := make(chan ChainHeadEvent, 64)
	txs := make(chan NewTxsEvent, 256)
	headSub := s.b.SubscribeChainHead(heads)
	defer headSub.Unsubscribe()
	txSub := s.b.SubscribeNewTxs(txs)
	defer txSub.Unsubscribe()

	defer func() {
		s.mu.Lock()
		s.stopped = true
		close(s.quit)
		clear(s.filters)
		s.mu.Unlock()
		s.subWG.Wait()
	}()

	sweep := time.NewTicker(max(s.cfg.FilterTimeout/2, 10*time.Millisecond))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-heads:
			s.dispatchHead(ev)
		case ev := <-txs:
			s.dispatchTxs(ev)
		case <-sweep.C:
			s.expire()
		case err := <-headSub.Err():
			return fmt.Errorf("rpc: chain head subscription ended: %v", err)
		case err := <-txSub.Err():
			return fmt.Errorf("rpc: new transactions subscription ended: %v", err)
		}
	}
}

// expired reports whether f was not polled for the filter timeout. Called with mu held.
func (s *FilterService) expired(f *installedFilter, now time.Time) bool {
	return now.Sub(f.lastUsed) >= s.cfg.FilterTimeout
}

// expire uninstalls every filter not polled for the filter timeout.
func (s *FilterService) expire() {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.filters {
		if s.expired(f, now) {
			delete(s.filters, id)
		}
	}
}

// dispatchHead hands a new block to the filters and subscriptions.
func (s *FilterService) dispatchHead(ev ChainHeadEvent) {
	header := ev.Block.Header()
	hash := ev.Block.Hash()
	number := header.Number.Uint64()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.filters {
		switch f.kind {
		case filterKindBlocks:
			f.hashes = append(f.hashes, hash)
		case filterKindLogs:
			f.logs = append(f.logs, matchLive(ev.Receipts, number, f.from, f.to, &f.crit)...)
		}
	}
	for sub := range s.subs {
		switch sub.kind {
		case filterSubHeads:
			s.deliver(sub, header)
		case filterSubLogs:
			if logs := matchLive(ev.Receipts, number, sub.from, sub.to, &sub.crit); len(logs) > 0 {
				s.deliver(sub, logs)
			}
		}
	}
}

// dispatchTxs hands newly admitted transactions to the filters and subscriptions.
func (s *FilterService) dispatchTxs(ev NewTxsEvent) {
	if len(ev.Txs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.filters {
		if f.kind == filterKindPendingTxs {
			f.txs = append(f.txs, ev.Txs...)
		}
	}
	for sub := range s.subs {
		if sub.kind == filterSubPendingTxs {
			s.deliver(sub, ev.Txs)
		}
	}
}

// matchLive returns the logs of a new block that a live filter wants, in order.
func matchLive(receipts types.Receipts, number uint64, from, to int64, crit *FilterCriteria) []*types.Log {
	if crit.BlockHash != nil || (from >= 0 && number < uint64(from)) || (to >= 0 && number > uint64(to)) {
		return nil
	}
	var out []*types.Log
	for _, r := range receipts {
		for _, l := range r.Logs {
			if logindex.Match(l, crit.Addresses, crit.Topics) {
				out = append(out, l)
			}
		}
	}
	return out
}

// install adds a filter, enforcing cfg.MaxFilters, and returns its id.
func (s *FilterService) install(f *installedFilter) (gethrpc.ID, error) {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return "", errFilterServiceStopped
	}
	if len(s.filters) >= s.cfg.MaxFilters {
		for id, old := range s.filters {
			if s.expired(old, now) {
				delete(s.filters, id)
			}
		}
	}
	if len(s.filters) >= s.cfg.MaxFilters {
		return "", filterLimitError{fmt.Sprintf("too many installed filters (max %d): uninstall unused filters with eth_uninstallFilter", s.cfg.MaxFilters)}
	}
	f.lastUsed = now
	id := gethrpc.NewID()
	s.filters[id] = f
	return id, nil
}

// lookup returns a live filter, uninstalling it if it has expired. Called with mu held.
func (s *FilterService) lookup(id gethrpc.ID, now time.Time) *installedFilter {
	f := s.filters[id]
	if f == nil {
		return nil
	}
	if s.expired(f, now) {
		delete(s.filters, id)
		return nil
	}
	return f
}

// headNumber is the number of the head block.
func (s *FilterService) headNumber() (uint64, error) {
	h := s.b.CurrentHeader()
	if h == nil {
		return 0, errFilterHeadUnavailable
	}
	return h.Number.Uint64(), nil
}

// logs runs a query against the chain: one block by hash, or a range whose
// tags are resolved against the head. The result is never nil.
func (s *FilterService) logs(ctx context.Context, crit *FilterCriteria) ([]*types.Log, error) {
	if err := crit.checkLimits(); err != nil {
		return nil, err
	}
	var from, to uint64
	if crit.BlockHash != nil {
		h := s.b.HeaderByHash(*crit.BlockHash)
		if h == nil {
			return nil, errFilterUnknownBlock
		}
		from, to = h.Number.Uint64(), h.Number.Uint64()
	} else {
		var err error
		if from, to, err = s.resolveRange(crit.FromBlock, crit.ToBlock); err != nil {
			return nil, err
		}
	}
	logs, err := s.b.FilterLogs(ctx, from, to, crit.Addresses, crit.Topics, s.cfg.LogsMaxResults)
	if errors.Is(err, ErrTooManyLogs) || errors.Is(err, logindex.ErrTooManyLogs) {
		return nil, filterLimitError{fmt.Sprintf("query returned more than %d results", s.cfg.LogsMaxResults)}
	}
	if err != nil {
		return nil, err
	}
	if logs == nil {
		logs = []*types.Log{}
	}
	return logs, nil
}

// resolveRange turns fromBlock/toBlock into block numbers and checks the
// range: ordered, not beyond the head, at most cfg.LogsMaxBlockRange blocks.
func (s *FilterService) resolveRange(fromBN, toBN *gethrpc.BlockNumber) (from, to uint64, err error) {
	if fromBN != nil && toBN != nil && *fromBN >= 0 && *toBN >= 0 && *fromBN > *toBN {
		return 0, 0, errFilterInvalidBlockRange
	}
	head, err := s.headNumber()
	if err != nil {
		return 0, 0, err
	}
	resolve := func(bn *gethrpc.BlockNumber) uint64 {
		switch {
		case bn == nil:
			return head
		case *bn == gethrpc.EarliestBlockNumber:
			return 0
		case *bn < 0: // latest, pending, safe, finalized: finality is immediate
			return head
		default:
			return uint64(*bn)
		}
	}
	from, to = resolve(fromBN), resolve(toBN)
	switch {
	case from > to:
		return 0, 0, errFilterInvalidBlockRange
	case to > head:
		return 0, 0, errFilterRangeIntoFuture
	case to-from >= s.cfg.LogsMaxBlockRange:
		return 0, 0, filterParamsError{fmt.Sprintf("exceed maximum block range %d", s.cfg.LogsMaxBlockRange)}
	}
	return from, to, nil
}

// FilterAPI serves eth_getLogs, the eth filter methods and eth_subscribe. Its
// state lives in the FilterService it belongs to.
type FilterAPI struct {
	s *FilterService
}

// GetLogs returns the logs matching crit (eth_getLogs).
func (api *FilterAPI) GetLogs(ctx context.Context, crit FilterCriteria) ([]*types.Log, error) {
	return api.s.logs(ctx, &crit)
}

// NewFilter installs a log filter and returns its id (eth_newFilter). Its
// changes are the matching logs of blocks committed after it was installed
// (within its fromBlock/toBlock, if numbers).
func (api *FilterAPI) NewFilter(crit FilterCriteria) (gethrpc.ID, error) {
	if err := crit.checkLimits(); err != nil {
		return "", err
	}
	from, to, err := crit.liveRange()
	if err != nil {
		return "", err
	}
	return api.s.install(&installedFilter{kind: filterKindLogs, crit: crit, from: from, to: to})
}

// NewBlockFilter installs a filter of new block hashes (eth_newBlockFilter).
func (api *FilterAPI) NewBlockFilter() (gethrpc.ID, error) {
	return api.s.install(&installedFilter{kind: filterKindBlocks})
}

// NewPendingTransactionFilter installs a filter of transactions newly admitted
// to the txpool (eth_newPendingTransactionFilter); its changes are hashes, or
// full transactions if fullTx is true.
func (api *FilterAPI) NewPendingTransactionFilter(fullTx *bool) (gethrpc.ID, error) {
	return api.s.install(&installedFilter{kind: filterKindPendingTxs, fullTx: fullTx != nil && *fullTx})
}

// GetFilterChanges returns what a filter collected since it was last polled
// and restarts its expiry timer (eth_getFilterChanges): block hashes,
// transaction hashes (or transactions) or logs.
func (api *FilterAPI) GetFilterChanges(id gethrpc.ID) (any, error) {
	s := api.s
	now := s.now()
	s.mu.Lock()
	f := s.lookup(id, now)
	if f == nil {
		s.mu.Unlock()
		return nil, errFilterNotFound
	}
	f.lastUsed = now
	hashes, txs, logs := f.hashes, f.txs, f.logs
	f.hashes, f.txs, f.logs = nil, nil, nil
	kind, fullTx := f.kind, f.fullTx
	s.mu.Unlock()

	switch kind {
	case filterKindBlocks:
		if hashes == nil {
			hashes = []common.Hash{}
		}
		return hashes, nil
	case filterKindPendingTxs:
		if fullTx {
			signer := types.LatestSigner(s.b.ChainConfig())
			out := make([]map[string]any, 0, len(txs))
			for _, tx := range txs {
				out = append(out, filterPendingTxJSON(tx, signer))
			}
			return out, nil
		}
		out := make([]common.Hash, 0, len(txs))
		for _, tx := range txs {
			out = append(out, tx.Hash())
		}
		return out, nil
	default:
		if logs == nil {
			logs = []*types.Log{}
		}
		return logs, nil
	}
}

// GetFilterLogs returns all logs matching a log filter's criteria, as
// eth_getLogs would (eth_getFilterLogs). It does not restart the filter's
// expiry timer.
func (api *FilterAPI) GetFilterLogs(ctx context.Context, id gethrpc.ID) ([]*types.Log, error) {
	s := api.s
	now := s.now()
	s.mu.Lock()
	f := s.lookup(id, now)
	var crit FilterCriteria
	if f != nil {
		crit = f.crit
	}
	s.mu.Unlock()
	if f == nil || f.kind != filterKindLogs {
		return nil, errFilterNotFound
	}
	return s.logs(ctx, &crit)
}

// UninstallFilter removes a filter and reports whether it existed (eth_uninstallFilter).
func (api *FilterAPI) UninstallFilter(id gethrpc.ID) bool {
	s := api.s
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.lookup(id, now)
	delete(s.filters, id)
	return f != nil
}

// filterPendingTxJSON is go-ethereum's JSON of a transaction not yet in a
// block: the transaction's own fields plus from, gasPrice (the fee cap for
// dynamic-fee transactions) and null block fields.
func filterPendingTxJSON(tx *types.Transaction, signer types.Signer) map[string]any {
	out := make(map[string]any)
	if enc, err := tx.MarshalJSON(); err == nil {
		var fields map[string]json.RawMessage
		if json.Unmarshal(enc, &fields) == nil {
			for k, v := range fields {
				out[k] = v
			}
		}
	}
	from, _ := types.Sender(signer, tx)
	out["from"] = from
	out["gasPrice"] = (*hexutil.Big)(tx.GasFeeCap())
	out["blockHash"] = nil
	out["blockNumber"] = nil
	out["transactionIndex"] = nil
	return out
}
