// Package txpool is Hansa's transaction pool: it admits transactions
// (type, size, chain id, signature, gas, fees, nonce, balance) and orders the
// executable ones for the next block.
//
// Errors are go-ethereum's own values (core, core/txpool,
// core/txpool/legacypool), wrapped as go-ethereum wraps them, so errors.Is
// works and clients see geth's texts.
//
// Invariants, held under the pool's lock:
//   - every pooled transaction is in exactly one sender account, either
//     pending or queued, and in the hash index;
//   - a sender's pending transactions have consecutive nonces starting at the
//     sender's nonce in the state the pool was last given (New or Reset);
//   - a sender's queued transactions have nonces above its pending run with a
//     gap before the first of them;
//   - the worst-case cost (gas * fee cap + value) of a sender's pending run
//     does not exceed its balance in that state.
//
// The pool starts no goroutines. Add may be called concurrently; sender
// recovery and stateless checks run outside the lock.
package txpool

import (
	"log/slog"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/txpool/legacypool"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"
	"github.com/holiman/uint256"
	"github.com/prometheus/client_golang/prometheus"
)

// StateReader is the account state the pool checks nonces and balances
// against: the state after the latest committed block. *state.StateDB
// satisfies it. The pool calls it only while holding its own lock, and only
// until the next Reset; the caller must not use the same instance
// concurrently elsewhere (a StateDB is not safe for concurrent use).
type StateReader interface {
	// GetNonce returns the account's next nonce.
	GetNonce(common.Address) uint64
	// GetBalance returns the account's balance in wei.
	GetBalance(common.Address) *uint256.Int
}

// poolTx is a pooled transaction with what the pool derives from it.
type poolTx struct {
	tx      *types.Transaction
	from    common.Address
	cost    *big.Int  // gas * fee cap + value
	tip     *big.Int  // effective tip at the current head's base fee
	seq     uint64    // arrival order, for FIFO among equal tips
	added   time.Time // arrival time, for the queued lifetime
	pending bool      // whether it is in its account's pending run
}

// account holds one sender's pooled transactions.
type account struct {
	nonce   uint64             // the sender's nonce in the pool's state
	pending []*poolTx          // pending[i] has nonce nonce+i
	queued  map[uint64]*poolTx // nonces above nonce+len(pending), gapped
	total   big.Int            // sum of the costs of pending and queued
}

func (a *account) empty() bool { return len(a.pending) == 0 && len(a.queued) == 0 }

// get returns the pooled transaction with the given nonce, or nil.
func (a *account) get(nonce uint64) *poolTx {
	if nonce >= a.nonce && nonce-a.nonce < uint64(len(a.pending)) {
		return a.pending[nonce-a.nonce]
	}
	return a.queued[nonce]
}

// spent sums the costs of the account's transactions except the one with
// nonce skip.
func (a *account) spent(skip uint64) *big.Int {
	sum := new(big.Int).Set(&a.total)
	if ptx := a.get(skip); ptx != nil {
		sum.Sub(sum, ptx.cost)
	}
	return sum
}

// sorted returns all the account's transactions in nonce order.
func (a *account) sorted() []*poolTx {
	out := make([]*poolTx, 0, len(a.pending)+len(a.queued))
	out = append(out, a.pending...)
	q := make([]*poolTx, 0, len(a.queued))
	for _, ptx := range a.queued {
		q = append(q, ptx)
	}
	slices.SortFunc(q, func(x, y *poolTx) int { return cmpUint64(x.tx.Nonce(), y.tx.Nonce()) })
	return append(out, q...)
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Pool is the transaction pool. It is safe for concurrent use.
type Pool struct {
	cfg     Config
	signer  types.Signer
	opts    *txpool.ValidationOptions
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time // replaced in tests
	feed    event.Feed

	mu       sync.RWMutex
	head     *types.Header // immutable copy; replaced by Reset
	state    StateReader
	all      map[common.Hash]*poolTx
	accounts map[common.Address]*account
	pending  int // executable transactions
	queued   int // gapped transactions
	seq      uint64
}

// acceptedTypes are the transaction types the pool admits: every type but
// blob transactions.
const acceptedTypes = 1<<types.LegacyTxType | 1<<types.AccessListTxType |
	1<<types.DynamicFeeTxType | 1<<types.SetCodeTxType

// New returns an empty pool that admits transactions on top of head, checking
// nonces and balances against state. cfg must be valid (Config.Validate). reg
// may be nil (no metrics registered); logger may be nil (discard).
func New(cfg Config, chainCfg *params.ChainConfig, head *types.Header, state StateReader, reg prometheus.Registerer, logger *slog.Logger) *Pool {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	minTip := new(big.Int)
	if cfg.MinGasPrice != nil {
		minTip.Set(cfg.MinGasPrice)
	}
	p := &Pool{
		cfg:    cfg,
		signer: types.LatestSigner(chainCfg),
		opts: &txpool.ValidationOptions{
			Config:  chainCfg,
			Accept:  acceptedTypes,
			MaxSize: cfg.MaxTxBytes,
			MinTip:  minTip,
		},
		logger:   logger.With("component", "txpool"),
		metrics:  newMetrics(reg),
		now:      time.Now,
		head:     copyHead(head),
		state:    state,
		all:      make(map[common.Hash]*poolTx),
		accounts: make(map[common.Address]*account),
	}
	return p
}

// copyHead copies h and fills the fields validation dereferences.
func copyHead(h *types.Header) *types.Header {
	c := types.CopyHeader(h)
	if c.Number == nil {
		c.Number = new(big.Int)
	}
	if c.Difficulty == nil {
		c.Difficulty = new(big.Int)
	}
	return c
}

// Add admits tx, or returns why not. A transaction whose nonce is the
// sender's next one (counting its pending transactions) becomes pending and
// is announced to subscribers together with any queued transactions it
// makes executable; one with a nonce gap is queued.
func (p *Pool) Add(tx *types.Transaction) error {
	executable, err := p.add(tx)
	if err != nil {
		p.metrics.rejected.WithLabelValues(rejectReason(err)).Inc()
		return err
	}
	p.metrics.admitted.Inc()
	if len(executable) > 0 {
		p.feed.Send(core.NewTxsEvent{Txs: executable})
	}
	return nil
}

func (p *Pool) add(tx *types.Transaction) ([]*types.Transaction, error) {
	hash := tx.Hash()
	p.mu.RLock()
	known := p.all[hash] != nil
	head := p.head
	p.mu.RUnlock()
	if known {
		return nil, txpool.ErrAlreadyKnown
	}
	// Stateless checks, including sender recovery (cached in tx), unlocked.
	if err := txpool.ValidateTransaction(tx, head, p.signer, p.opts); err != nil {
		return nil, classifyStateless(err)
	}
	from, err := types.Sender(p.signer, tx)
	if err != nil { // cannot happen after ValidateTransaction
		return nil, err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.all[hash] != nil {
		return nil, txpool.ErrAlreadyKnown
	}
	if head != p.head && tx.Gas() > p.head.GasLimit {
		return nil, txpool.ErrGasLimit // the head changed while we validated
	}
	if baseFee := p.head.BaseFee; baseFee != nil && tx.GasFeeCapIntCmp(baseFee) < 0 {
		return nil, errFeeCapTooLow(from, tx.GasFeeCap(), baseFee)
	}
	acct := p.accounts[from]
	var stateNonce uint64
	if acct != nil {
		stateNonce = acct.nonce // read from the same state, kept in sync by Reset
	} else {
		stateNonce = p.state.GetNonce(from)
	}
	if tx.Nonce() < stateNonce {
		return nil, errNonceTooLow(tx.Nonce(), stateNonce)
	}
	ptx := &poolTx{
		tx:    tx,
		from:  from,
		cost:  tx.Cost(),
		tip:   tx.EffectiveGasTipValue(p.head.BaseFee),
		added: p.now(),
	}
	balance := p.state.GetBalance(from).ToBig()
	queued, prev := new(big.Int), (*big.Int)(nil)
	if acct != nil {
		queued.Set(&acct.total)
		if old := acct.get(tx.Nonce()); old != nil {
			prev = old.cost
		}
	}
	if err := errInsufficientFunds(balance, ptx.cost, queued, prev); err != nil {
		return nil, err
	}

	if acct != nil {
		if old := acct.get(tx.Nonce()); old != nil {
			return p.replace(acct, old, ptx)
		}
	}
	next := stateNonce
	if acct != nil {
		next += uint64(len(acct.pending))
	}
	if tx.Nonce() == next {
		if p.pending >= p.cfg.MaxPending && !p.evictCheapest(ptx) {
			return nil, legacypool.ErrTxPoolOverflow
		}
		acct = p.account(from, stateNonce)
		return p.appendPending(acct, ptx), nil
	}
	switch {
	case acct != nil && len(acct.queued) >= p.cfg.MaxQueuedPerAccount,
		acct == nil && p.cfg.MaxQueuedPerAccount == 0:
		return nil, errAccountLimit(p.cfg.MaxQueuedPerAccount)
	case p.queued >= p.cfg.MaxQueued:
		return nil, legacypool.ErrTxPoolOverflow
	}
	acct = p.account(from, stateNonce)
	p.insert(ptx)
	acct.queued[tx.Nonce()] = ptx
	acct.total.Add(&acct.total, ptx.cost)
	p.queued++
	p.setGauges()
	return nil, nil
}

// account returns from's account, creating it with the given state nonce.
func (p *Pool) account(from common.Address, nonce uint64) *account {
	acct := p.accounts[from]
	if acct == nil {
		acct = &account{nonce: nonce, queued: make(map[uint64]*poolTx)}
		p.accounts[from] = acct
	}
	return acct
}

// insert indexes ptx and stamps its arrival order.
func (p *Pool) insert(ptx *poolTx) {
	p.seq++
	ptx.seq = p.seq
	p.all[ptx.tx.Hash()] = ptx
}

// appendPending appends ptx to acct's pending run, promotes the queued
// transactions that follow it, and returns the newly executable ones.
func (p *Pool) appendPending(acct *account, ptx *poolTx) []*types.Transaction {
	p.insert(ptx)
	ptx.pending = true
	acct.pending = append(acct.pending, ptx)
	acct.total.Add(&acct.total, ptx.cost)
	p.pending++
	executable := []*types.Transaction{ptx.tx}
	for {
		n := acct.nonce + uint64(len(acct.pending))
		q := acct.queued[n]
		if q == nil {
			break
		}
		delete(acct.queued, n)
		p.queued--
		q.pending = true
		acct.pending = append(acct.pending, q)
		p.pending++
		executable = append(executable, q.tx)
	}
	p.setGauges()
	return executable
}

// replace puts ptx in old's place if it pays the required price bump.
func (p *Pool) replace(acct *account, old, ptx *poolTx) ([]*types.Transaction, error) {
	if !bumped(old.tx, ptx.tx, p.cfg.PriceBump) {
		return nil, txpool.ErrReplaceUnderpriced
	}
	delete(p.all, old.tx.Hash())
	p.insert(ptx)
	acct.total.Sub(&acct.total, old.cost)
	acct.total.Add(&acct.total, ptx.cost)
	n := ptx.tx.Nonce()
	if old.pending {
		ptx.pending = true
		acct.pending[n-acct.nonce] = ptx
		return []*types.Transaction{ptx.tx}, nil
	}
	acct.queued[n] = ptx
	return nil, nil
}

// bumped reports whether repl raises both old's fee cap and tip by at least
// bump percent (and strictly), go-ethereum's replacement rule.
func bumped(old, repl *types.Transaction, bump uint64) bool {
	if old.GasFeeCapCmp(repl) >= 0 || old.GasTipCapCmp(repl) >= 0 {
		return false
	}
	factor := new(big.Int).SetUint64(100 + bump)
	hundred := big.NewInt(100)
	minFeeCap := new(big.Int).Mul(factor, old.GasFeeCap())
	minFeeCap.Div(minFeeCap, hundred)
	minTip := new(big.Int).Mul(factor, old.GasTipCap())
	minTip.Div(minTip, hundred)
	return repl.GasFeeCapIntCmp(minFeeCap) >= 0 && repl.GasTipCapIntCmp(minTip) >= 0
}

// evictCheapest makes room for ptx in a full pending set by dropping the
// cheapest last-nonce pending transaction of another sender, if ptx pays a
// strictly higher effective tip. Only the last of a sender's run is a
// candidate so that eviction never opens a nonce gap.
func (p *Pool) evictCheapest(ptx *poolTx) bool {
	var (
		victim *account
		worst  *poolTx
	)
	for addr, acct := range p.accounts {
		if addr == ptx.from || len(acct.pending) == 0 {
			continue
		}
		last := acct.pending[len(acct.pending)-1]
		if worst == nil || last.tip.Cmp(worst.tip) < 0 || (last.tip.Cmp(worst.tip) == 0 && last.seq > worst.seq) {
			victim, worst = acct, last
		}
	}
	if worst == nil || ptx.tip.Cmp(worst.tip) <= 0 {
		return false
	}
	victim.pending = victim.pending[:len(victim.pending)-1]
	victim.total.Sub(&victim.total, worst.cost)
	p.pending--
	p.drop(worst)
	if victim.empty() {
		delete(p.accounts, worst.from)
	}
	p.logger.Debug("evicted transaction for a better paying one", "tx_hash", worst.tx.Hash(), "by", ptx.tx.Hash())
	return true
}

// drop removes ptx from the hash index and counts it as evicted; the caller
// removes it from its account.
func (p *Pool) drop(ptx *poolTx) {
	delete(p.all, ptx.tx.Hash())
	p.metrics.evicted.Inc()
}

func (p *Pool) setGauges() {
	p.metrics.pending.Set(float64(p.pending))
	p.metrics.queued.Set(float64(p.queued))
}

// Reset adopts a new head (base fee, gas limit, fork rules) and the state
// after it. It removes transactions whose nonce the state has passed
// (included or replaced in a block), drops pending transactions the sender
// can no longer afford and demotes their successors to queued, promotes
// queued transactions that became executable, and drops queued transactions
// that are unaffordable, older than QueuedLifetime or over the per-account
// limit. Newly executable transactions are announced to subscribers. Call it
// synchronously after each committed block, before admitting on top of it.
func (p *Pool) Reset(head *types.Header, state StateReader) {
	p.mu.Lock()
	p.head = copyHead(head)
	p.state = state
	now := p.now()
	var (
		executable        []*types.Transaction
		included, evicted int
	)
	for addr, acct := range p.accounts {
		ex, inc, ev := p.rebuild(addr, acct, now)
		executable = append(executable, ex...)
		included += inc
		evicted += ev
	}
	p.pending, p.queued = 0, 0
	for _, acct := range p.accounts {
		p.pending += len(acct.pending)
		p.queued += len(acct.queued)
	}
	p.setGauges()
	pending, queued := p.pending, p.queued
	p.mu.Unlock()

	p.logger.Debug("reset", "height", head.Number, "included", included, "evicted", evicted,
		"promoted", len(executable), "pending", pending, "queued", queued)
	if len(executable) > 0 {
		p.feed.Send(core.NewTxsEvent{Txs: executable})
	}
}

// rebuild re-sorts one account against the pool's state: transactions the
// state nonce has passed are removed, the consecutive affordable run from
// the state nonce is pending, the rest is queued or dropped. It returns the
// transactions that became executable and the counts removed as included
// and evicted. The caller holds the lock and recounts the totals.
func (p *Pool) rebuild(addr common.Address, acct *account, now time.Time) (executable []*types.Transaction, included, evicted int) {
	txs := acct.sorted()
	nonce := p.state.GetNonce(addr)
	balance := p.state.GetBalance(addr).ToBig()
	acct.nonce = nonce
	acct.pending = acct.pending[:0]
	clear(acct.queued)
	acct.total.SetUint64(0)
	gapped := false
	need := new(big.Int)
	for _, ptx := range txs {
		ptx.tip = ptx.tx.EffectiveGasTipValue(p.head.BaseFee)
		n := ptx.tx.Nonce()
		switch {
		case n < nonce:
			delete(p.all, ptx.tx.Hash())
			included++
			continue
		case !gapped && n == nonce+uint64(len(acct.pending)):
			if need.Add(&acct.total, ptx.cost).Cmp(balance) <= 0 {
				if !ptx.pending {
					executable = append(executable, ptx.tx)
				}
				ptx.pending = true
				acct.pending = append(acct.pending, ptx)
				acct.total.Set(need)
				continue
			}
			// Unaffordable: drop it; its successors are gapped now.
			p.drop(ptx)
			evicted++
			gapped = true
			continue
		}
		gapped = true
		ptx.pending = false
		if ptx.cost.Cmp(balance) > 0 || now.Sub(ptx.added) > p.cfg.QueuedLifetime || len(acct.queued) >= p.cfg.MaxQueuedPerAccount {
			p.drop(ptx)
			evicted++
			continue
		}
		acct.queued[n] = ptx
		acct.total.Add(&acct.total, ptx.cost)
	}
	if acct.empty() {
		delete(p.accounts, addr)
	}
	return executable, included, evicted
}

// Remove drops the given transactions (unknown hashes are ignored). A
// sender's later transactions become queued until the nonce gap is filled.
// The node removes transactions that block execution refused for a reason
// that will not go away, so they are not proposed again and again.
func (p *Pool) Remove(hashes ...common.Hash) int {
	p.mu.Lock()
	now := p.now()
	touched := map[common.Address]*account{}
	removed := 0
	for _, h := range hashes {
		ptx := p.all[h]
		if ptx == nil {
			continue
		}
		acct := p.accounts[ptx.from]
		if ptx.pending {
			acct.pending = slices.DeleteFunc(acct.pending, func(x *poolTx) bool { return x == ptx })
		} else {
			delete(acct.queued, ptx.tx.Nonce())
		}
		p.drop(ptx)
		touched[ptx.from] = acct
		removed++
	}
	var executable []*types.Transaction
	for addr, acct := range touched {
		ex, _, _ := p.rebuild(addr, acct, now)
		executable = append(executable, ex...)
	}
	p.pending, p.queued = 0, 0
	for _, acct := range p.accounts {
		p.pending += len(acct.pending)
		p.queued += len(acct.queued)
	}
	p.setGauges()
	p.mu.Unlock()
	if len(executable) > 0 {
		p.feed.Send(core.NewTxsEvent{Txs: executable})
	}
	return removed
}

// Get returns the pooled transaction with the given hash, or nil.
func (p *Pool) Get(hash common.Hash) *types.Transaction {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if ptx := p.all[hash]; ptx != nil {
		return ptx.tx
	}
	return nil
}

// Has reports whether a transaction with the given hash is pooled.
func (p *Pool) Has(hash common.Hash) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.all[hash] != nil
}

// Nonce returns addr's next nonce counting its pending transactions: the
// nonce for the "pending" block tag.
func (p *Pool) Nonce(addr common.Address) uint64 {
	p.mu.Lock() // the state is not safe for concurrent reads
	defer p.mu.Unlock()
	if acct := p.accounts[addr]; acct != nil {
		return acct.nonce + uint64(len(acct.pending))
	}
	return p.state.GetNonce(addr)
}

// Stats returns the number of pending (executable) and queued (gapped)
// transactions.
func (p *Pool) Stats() (pending, queued int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.pending, p.queued
}

// Content returns the pooled transactions by sender, each list sorted by
// nonce. The maps and slices are the caller's.
func (p *Pool) Content() (pending, queued map[common.Address][]*types.Transaction) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	pending = make(map[common.Address][]*types.Transaction)
	queued = make(map[common.Address][]*types.Transaction)
	for addr, acct := range p.accounts {
		for _, ptx := range acct.sorted() {
			if ptx.pending {
				pending[addr] = append(pending[addr], ptx.tx)
			} else {
				queued[addr] = append(queued[addr], ptx.tx)
			}
		}
	}
	return pending, queued
}

// SubscribeNewTxs delivers newly executable transactions: admitted as
// pending, or promoted from queued by Add or Reset. Each event lists one
// sender's transactions in nonce order, but events of concurrent Add calls
// may arrive in any order. Delivery happens outside the pool's lock and
// blocks the caller of Add or Reset until every subscriber has received the
// event, so subscribers must keep reading ch.
func (p *Pool) SubscribeNewTxs(ch chan<- core.NewTxsEvent) event.Subscription {
	return p.feed.Subscribe(ch)
}
