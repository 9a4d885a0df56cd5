package rpc

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/event"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/hansa-chain/hansa/internal/logindex"
)

// fltBackend is a growing in-memory chain for the filter tests: blocks with
// receipts and logs, indexed with logindex, announced through event.Feed
// like the node does. Methods the filters do not use return zero values;
// methods added to Backend later fall through to the nil embedded interface.
type fltBackend struct {
	Backend
	config *params.ChainConfig

	mu       sync.Mutex
	blocks   []*types.Block
	receipts map[uint64]types.Receipts
	index    *memorydb.Database

	headFeed, txFeed event.Feed
	headSubs         atomic.Int32
}

// fltLog is one log to put in a block (each in its own transaction).
type fltLog struct {
	addr   common.Address
	topics []common.Hash
}

var (
	fltAddrA = common.HexToAddress("0xa0")
	fltAddrB = common.HexToAddress("0xb0")
	fltAddrC = common.HexToAddress("0xc0")
	fltT1    = common.HexToHash("0x01")
	fltT2    = common.HexToHash("0x02")
	fltT3    = common.HexToHash("0x03")
	fltT4    = common.HexToHash("0x04")
)

func newFltBackend(t *testing.T) *fltBackend {
	b := &fltBackend{config: params.TestChainConfig, receipts: make(map[uint64]types.Receipts), index: memorydb.New()}
	b.appendBlock(t, nil) // genesis
	return b
}

// appendBlock commits a block holding logs (without announcing it).
func (b *fltBackend) appendBlock(t *testing.T, logs []fltLog) *types.Block {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := uint64(len(b.blocks))
	header := &types.Header{Number: new(big.Int).SetUint64(n), Time: n, GasLimit: 30_000_000, Difficulty: new(big.Int), BaseFee: new(big.Int)}
	if n > 0 {
		header.ParentHash = b.blocks[n-1].Hash()
	}
	var (
		txs      types.Transactions
		receipts types.Receipts
	)
	for i, spec := range logs {
		tx := types.NewTx(&types.LegacyTx{Nonce: n*1000 + uint64(i), GasPrice: new(big.Int), Gas: 21000, To: &spec.addr})
		txs = append(txs, tx)
		if spec.topics == nil {
			spec.topics = []common.Hash{} // as the EVM makes them: "topics": []
		}
		receipts = append(receipts, &types.Receipt{Status: types.ReceiptStatusSuccessful, CumulativeGasUsed: 21000, Logs: []*types.Log{{Address: spec.addr, Topics: spec.topics, Data: []byte{byte(i)}}}})
	}
	block := types.NewBlock(header, &types.Body{Transactions: txs}, receipts, trie.NewStackTrie(nil))
	for i, r := range receipts {
		r.TxHash, r.BlockHash, r.BlockNumber, r.TransactionIndex = txs[i].Hash(), block.Hash(), header.Number, uint(i)
		l := r.Logs[0]
		l.TxHash, l.BlockHash, l.BlockNumber, l.TxIndex, l.Index = txs[i].Hash(), block.Hash(), n, uint(i), uint(i)
	}
	if err := logindex.Write(b.index, n, receipts); err != nil {
		t.Fatal(err)
	}
	b.blocks = append(b.blocks, block)
	b.receipts[n] = receipts
	return block
}

// commit appends a block and announces it, as the node does after storing it.
func (b *fltBackend) commit(t *testing.T, logs ...fltLog) *types.Block {
	block := b.appendBlock(t, logs)
	b.headFeed.Send(ChainHeadEvent{Block: block, Receipts: b.receipts[block.NumberU64()]})
	return block
}

func (b *fltBackend) ChainConfig() *params.ChainConfig { return b.config }
func (b *fltBackend) ChainContext() core.ChainContext  { return nil }
func (b *fltBackend) CurrentHeader() *types.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.blocks[len(b.blocks)-1].Header()
}
func (b *fltBackend) HeaderByNumber(number uint64) *types.Header {
	if blk := b.BlockByNumber(number); blk != nil {
		return blk.Header()
	}
	return nil
}
func (b *fltBackend) HeaderByHash(hash common.Hash) *types.Header {
	if blk := b.BlockByHash(hash); blk != nil {
		return blk.Header()
	}
	return nil
}
func (b *fltBackend) BlockByNumber(number uint64) *types.Block {
	b.mu.Lock()
	defer b.mu.Unlock()
	if number < uint64(len(b.blocks)) {
		return b.blocks[number]
	}
	return nil
}
func (b *fltBackend) BlockByHash(hash common.Hash) *types.Block {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, blk := range b.blocks {
		if blk.Hash() == hash {
			return blk
		}
	}
	return nil
}
func (b *fltBackend) Receipts(hash common.Hash, number uint64) types.Receipts {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.receipts[number]
}
func (b *fltBackend) Transaction(common.Hash) (*types.Transaction, common.Hash, uint64, uint64, bool) {
	return nil, common.Hash{}, 0, 0, false
}
func (b *fltBackend) StateAt(*types.Header) (*state.StateDB, error) {
	return nil, errors.New("no state")
}
func (b *fltBackend) FilterLogs(ctx context.Context, from, to uint64, addresses []common.Address, topics [][]common.Hash, limit int) ([]*types.Log, error) {
	logs, err := logindex.Filter(ctx, b.index, from, to, addresses, topics, limit, func(n uint64) (types.Receipts, error) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.receipts[n], nil
	})
	if errors.Is(err, logindex.ErrTooManyLogs) {
		return nil, ErrTooManyLogs
	}
	return logs, err
}
func (b *fltBackend) SendTransaction(context.Context, *types.Transaction) error { return nil }
func (b *fltBackend) PoolTransaction(common.Hash) *types.Transaction            { return nil }
func (b *fltBackend) PoolNonce(common.Address) uint64                           { return 0 }
func (b *fltBackend) PoolStatus() (int, int)                                    { return 0, 0 }
func (b *fltBackend) PoolContent() (map[common.Address][]*types.Transaction, map[common.Address][]*types.Transaction) {
	return nil, nil
}
func (b *fltBackend) MinGasPrice() *big.Int { return new(big.Int) }
func (b *fltBackend) SubscribeChainHead(ch chan<- ChainHeadEvent) event.Subscription {
	b.headSubs.Add(1)
	return b.headFeed.Subscribe(ch)
}
func (b *fltBackend) SubscribeNewTxs(ch chan<- NewTxsEvent) event.Subscription {
	return b.txFeed.Subscribe(ch)
}

// fltEnv is a running FilterService behind a real WebSocket server on 127.0.0.1.
type fltEnv struct {
	b    *fltBackend
	fs   *FilterService
	url  string
	stop func() // cancels Run and waits for it (idempotent)
}

func fltTestConfig() Config {
	cfg := DefaultConfig()
	cfg.LogsMaxBlockRange = 8
	cfg.LogsMaxResults = 5
	cfg.MaxFilters = 3
	cfg.MaxSubscriptions = 3
	cfg.FilterTimeout = time.Minute
	return cfg
}

// startFlt starts the service (Run) and a WebSocket server; clock, if set,
// replaces the service's clock. Cleanup stops both and checks Run's result.
func startFlt(t *testing.T, b *fltBackend, cfg Config, clock func() time.Time) *fltEnv {
	t.Helper()
	fs := NewFilterService(b, cfg)
	if clock != nil {
		fs.now = clock
	}
	srv := gethrpc.NewServer()
	if err := srv.RegisterName("eth", fs.API()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.WebsocketHandler([]string{"*"}))
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	before := b.headSubs.Load()
	go func() { runErr <- fs.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-runErr; err != nil {
				t.Errorf("Run: %v", err)
			}
			if n := fs.subscriptionCount(); n != 0 {
				t.Errorf("%d subscriptions left after Run returned", n)
			}
		})
	}
	t.Cleanup(func() {
		stop()
		hs.Close()
		srv.Stop()
	})
	fltEventually(t, "Run subscribes to chain heads", func() bool { return b.headSubs.Load() > before })
	return &fltEnv{b: b, fs: fs, url: "ws" + strings.TrimPrefix(hs.URL, "http"), stop: stop}
}

func (e *fltEnv) dial(t *testing.T) *gethrpc.Client {
	t.Helper()
	c, err := gethrpc.DialContext(t.Context(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// fltEventually waits for cond (which must become true), failing after a generous bound.
func fltEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fltStdChain commits blocks 1..9: logs in 1, 2, 4, 5; none in 3, 6..9.
func fltStdChain(t *testing.T, b *fltBackend) {
	b.appendBlock(t, []fltLog{{fltAddrA, []common.Hash{fltT1, fltT2}}})                                   // 1
	b.appendBlock(t, []fltLog{{fltAddrB, []common.Hash{fltT1}}, {fltAddrA, []common.Hash{fltT3}}})        // 2
	b.appendBlock(t, nil)                                                                                 // 3
	b.appendBlock(t, []fltLog{{fltAddrC, []common.Hash{fltT2, fltT1}}})                                   // 4
	b.appendBlock(t, []fltLog{{fltAddrA, []common.Hash{fltT1}}, {fltAddrA, []common.Hash{fltT1, fltT4}}}) // 5
	for range 4 {
		b.appendBlock(t, nil) // 6..9
	}
}

type fltPos struct{ Block, Index uint64 }

func fltPositions(logs []types.Log) []fltPos {
	out := []fltPos{}
	for _, l := range logs {
		out = append(out, fltPos{l.BlockNumber, uint64(l.Index)})
	}
	return out
}

func fltCheckErr(t *testing.T, err error, wantMsg string, wantCode int) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", wantMsg)
	}
	if err.Error() != wantMsg {
		t.Fatalf("error %q, want %q", err.Error(), wantMsg)
	}
	var rpcErr gethrpc.Error
	if wantCode != 0 && (!errors.As(err, &rpcErr) || rpcErr.ErrorCode() != wantCode) {
		t.Fatalf("error %q: code %v, want %d", err, rpcErr, wantCode)
	}
}

func TestFilterGetLogs(t *testing.T) {
	b := newFltBackend(t)
	fltStdChain(t, b)
	env := startFlt(t, b, fltTestConfig(), nil)
	c := env.dial(t)
	block2 := b.BlockByNumber(2).Hash()

	tests := []struct {
		name     string
		crit     string // JSON filter object, as a client sends it
		want     []fltPos
		wantErr  string
		wantCode int
	}{
		{name: "address string", crit: `{"fromBlock":"0x0","toBlock":"0x5","address":"0x00000000000000000000000000000000000000a0"}`,
			want: []fltPos{{1, 0}, {2, 1}, {5, 0}, {5, 1}}},
		{name: "address array", crit: `{"fromBlock":"0x0","toBlock":"0x5","address":["0x00000000000000000000000000000000000000b0","0x00000000000000000000000000000000000000c0"]}`,
			want: []fltPos{{2, 0}, {4, 0}}},
		{name: "topic0", crit: `{"fromBlock":"0x0","toBlock":"0x5","topics":["0x0000000000000000000000000000000000000000000000000000000000000001"]}`,
			want: []fltPos{{1, 0}, {2, 0}, {5, 0}, {5, 1}}},
		{name: "null then topic1", crit: `{"fromBlock":"0x0","toBlock":"0x5","topics":[null,"0x0000000000000000000000000000000000000000000000000000000000000001"]}`,
			want: []fltPos{{4, 0}}},
		{name: "OR in a position", crit: `{"fromBlock":"0x0","toBlock":"0x5","topics":[["0x0000000000000000000000000000000000000000000000000000000000000003","0x0000000000000000000000000000000000000000000000000000000000000002"]]}`,
			want: []fltPos{{2, 1}, {4, 0}}},
		{name: "null inside an array is a wildcard", crit: `{"fromBlock":"0x0","toBlock":"0x4","topics":[["0x0000000000000000000000000000000000000000000000000000000000000003",null]]}`,
			want: []fltPos{{1, 0}, {2, 0}, {2, 1}, {4, 0}}},
		{name: "address and two topics", crit: `{"fromBlock":"0x0","toBlock":"0x5","address":"0x00000000000000000000000000000000000000a0","topics":["0x0000000000000000000000000000000000000000000000000000000000000001","0x0000000000000000000000000000000000000000000000000000000000000004"]}`,
			want: []fltPos{{5, 1}}},
		{name: "blockHash", crit: `{"blockHash":"` + block2.Hex() + `"}`, want: []fltPos{{2, 0}, {2, 1}}},
		{name: "earliest to number", crit: `{"fromBlock":"earliest","toBlock":"0x2"}`, want: []fltPos{{1, 0}, {2, 0}, {2, 1}}},
		{name: "tags safe/finalized/pending are the head", crit: `{"fromBlock":"0x2","toBlock":"finalized","address":"0x00000000000000000000000000000000000000c0"}`, want: []fltPos{{4, 0}}},
		{name: "pending", crit: `{"fromBlock":"0x4","toBlock":"pending"}`, want: []fltPos{{4, 0}, {5, 0}, {5, 1}}},
		{name: "safe", crit: `{"fromBlock":"0x5","toBlock":"safe"}`, want: []fltPos{{5, 0}, {5, 1}}},
		{name: "default range is latest", crit: `{}`, want: []fltPos{}},
		{name: "empty range", crit: `{"fromBlock":"0x6","toBlock":"0x9"}`, want: []fltPos{}},

		{name: "unknown blockHash", crit: `{"blockHash":"0x1111111111111111111111111111111111111111111111111111111111111111"}`,
			wantErr: "unknown block", wantCode: -32000},
		{name: "blockHash with range", crit: `{"blockHash":"` + block2.Hex() + `","fromBlock":"0x1"}`,
			wantErr: "invalid argument 0: cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other", wantCode: -32602},
		{name: "from > to", crit: `{"fromBlock":"0x4","toBlock":"0x2"}`, wantErr: "invalid block range params", wantCode: -32602},
		{name: "from beyond head", crit: `{"fromBlock":"0x10"}`, wantErr: "invalid block range params", wantCode: -32602},
		{name: "to beyond head", crit: `{"fromBlock":"0x5","toBlock":"0x10"}`, wantErr: "block range extends beyond current head block", wantCode: -32602},
		{name: "range too long", crit: `{"fromBlock":"0x0","toBlock":"latest"}`, wantErr: "exceed maximum block range 8", wantCode: -32602},
		{name: "too many results", crit: `{"fromBlock":"0x0","toBlock":"0x7"}`, wantErr: "query returned more than 5 results", wantCode: -32005},
		{name: "five topics", crit: `{"topics":[null,null,null,null,null]}`, wantErr: "invalid argument 0: exceed max topics", wantCode: -32602},
		{name: "bad address", crit: `{"address":"0x1234"}`,
			wantErr: "invalid argument 0: invalid address: hex has invalid length 2 after decoding; expected 20 for address", wantCode: -32602},
		{name: "bad topic", crit: `{"topics":[7]}`, wantErr: "invalid argument 0: invalid topic(s)", wantCode: -32602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw json.RawMessage
			err := c.CallContext(t.Context(), &raw, "eth_getLogs", json.RawMessage(tt.crit))
			if tt.wantErr != "" {
				fltCheckErr(t, err, tt.wantErr, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var logs []types.Log
			if err := json.Unmarshal(raw, &logs); err != nil {
				t.Fatalf("decode %s: %v", raw, err)
			}
			if logs == nil {
				t.Fatalf("result %s, want an array", raw)
			}
			got := fltPositions(logs)
			if len(got) != len(tt.want) {
				t.Fatalf("logs %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("logs %v, want %v", got, tt.want)
				}
			}
		})
	}

	t.Run("ethclient", func(t *testing.T) {
		ec := ethclient.NewClient(c)
		logs, err := ec.FilterLogs(t.Context(), ethereum.FilterQuery{FromBlock: big.NewInt(1), ToBlock: big.NewInt(5), Addresses: []common.Address{fltAddrA}, Topics: [][]common.Hash{{fltT1}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) != 3 || logs[0].BlockHash != b.BlockByNumber(1).Hash() || logs[0].TxHash != b.BlockByNumber(1).Transactions()[0].Hash() {
			t.Fatalf("logs %+v", logs)
		}
	})
}

func TestFilterLifecycle(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil)
	c := env.dial(t)
	call := func(t *testing.T, result any, method string, args ...any) {
		t.Helper()
		if err := c.CallContext(t.Context(), result, method, args...); err != nil {
			t.Fatalf("%s: %v", method, err)
		}
	}

	var logFilter, ranged, blockFilter gethrpc.ID
	call(t, &logFilter, "eth_newFilter", map[string]any{"address": fltAddrA})
	call(t, &ranged, "eth_newFilter", map[string]any{"fromBlock": "0x2", "toBlock": "0x2"})
	call(t, &blockFilter, "eth_newBlockFilter")

	b1 := b.commit(t, fltLog{fltAddrA, []common.Hash{fltT1}}, fltLog{fltAddrB, nil})
	b2 := b.commit(t, fltLog{fltAddrB, nil}, fltLog{fltAddrA, []common.Hash{fltT2}})
	b3 := b.commit(t)

	// Blocks reach filters asynchronously: poll until all three have arrived.
	var hashes []common.Hash
	fltEventually(t, "block filter sees 3 blocks", func() bool {
		var got []common.Hash
		call(t, &got, "eth_getFilterChanges", blockFilter)
		hashes = append(hashes, got...)
		return len(hashes) >= 3
	})
	if want := []common.Hash{b1.Hash(), b2.Hash(), b3.Hash()}; len(hashes) != 3 || hashes[0] != want[0] || hashes[1] != want[1] || hashes[2] != want[2] {
		t.Fatalf("block hashes %v, want %v", hashes, want)
	}
	var logs []types.Log
	call(t, &logs, "eth_getFilterChanges", logFilter)
	if got := fltPositions(logs); len(got) != 2 || got[0] != (fltPos{1, 0}) || got[1] != (fltPos{2, 1}) {
		t.Fatalf("log filter changes %v, want [{1 0} {2 1}]", got)
	}
	var raw json.RawMessage
	call(t, &raw, "eth_getFilterChanges", logFilter)
	if string(raw) != "[]" {
		t.Fatalf("second poll = %s, want []", raw)
	}
	call(t, &logs, "eth_getFilterChanges", ranged)
	if got := fltPositions(logs); len(got) != 2 || got[0] != (fltPos{2, 0}) || got[1] != (fltPos{2, 1}) {
		t.Fatalf("ranged filter changes %v, want block 2's logs", got)
	}

	// eth_getFilterLogs answers from the chain with the filter's criteria.
	call(t, &logs, "eth_getFilterLogs", ranged)
	if got := fltPositions(logs); len(got) != 2 || got[0] != (fltPos{2, 0}) {
		t.Fatalf("getFilterLogs %v, want block 2's logs", got)
	}
	err := c.CallContext(t.Context(), &logs, "eth_getFilterLogs", blockFilter)
	fltCheckErr(t, err, "filter not found", -32000)

	var ok bool
	call(t, &ok, "eth_uninstallFilter", logFilter)
	if !ok {
		t.Fatal("uninstall returned false for an installed filter")
	}
	call(t, &ok, "eth_uninstallFilter", logFilter)
	if ok {
		t.Fatal("second uninstall returned true")
	}
	err = c.CallContext(t.Context(), &raw, "eth_getFilterChanges", logFilter)
	fltCheckErr(t, err, "filter not found", -32000)

	err = c.CallContext(t.Context(), &raw, "eth_newFilter", map[string]any{"fromBlock": "latest", "toBlock": "0x1"})
	fltCheckErr(t, err, "invalid block range params", -32602)
}

func fltSignedTxs(t *testing.T, config *params.ChainConfig, n int) []*types.Transaction {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return fltSign(t, config, key, n)
}

func fltSign(t *testing.T, config *params.ChainConfig, key *ecdsa.PrivateKey, n int) []*types.Transaction {
	var txs []*types.Transaction
	for i := range n {
		tx, err := types.SignNewTx(key, types.LatestSigner(config), &types.DynamicFeeTx{ChainID: config.ChainID, Nonce: uint64(i), GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(7), Gas: 21000, To: &fltAddrA, Value: big.NewInt(1)})
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	return txs
}

func TestFilterPendingTransactions(t *testing.T) {
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), nil)
	c := env.dial(t)
	var hashFilter, fullFilter gethrpc.ID
	if err := c.CallContext(t.Context(), &hashFilter, "eth_newPendingTransactionFilter"); err != nil {
		t.Fatal(err)
	}
	if err := c.CallContext(t.Context(), &fullFilter, "eth_newPendingTransactionFilter", true); err != nil {
		t.Fatal(err)
	}
	txs := fltSignedTxs(t, b.config, 3)
	b.txFeed.Send(NewTxsEvent{Txs: txs[:2]})
	b.txFeed.Send(NewTxsEvent{Txs: txs[2:]})

	var hashes []common.Hash
	fltEventually(t, "3 pending tx hashes", func() bool {
		var got []common.Hash
		if err := c.CallContext(t.Context(), &got, "eth_getFilterChanges", hashFilter); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, got...)
		return len(hashes) >= 3
	})
	for i, tx := range txs {
		if hashes[i] != tx.Hash() {
			t.Fatalf("hash %d = %v, want %v", i, hashes[i], tx.Hash())
		}
	}
	var full []map[string]any
	if err := c.CallContext(t.Context(), &full, "eth_getFilterChanges", fullFilter); err != nil {
		t.Fatal(err)
	}
	if len(full) != 3 {
		t.Fatalf("full txs: %d, want 3", len(full))
	}
	from, _ := types.Sender(types.LatestSigner(b.config), txs[0])
	if full[0]["hash"] != txs[0].Hash().Hex() || !strings.EqualFold(full[0]["from"].(string), from.Hex()) ||
		full[0]["gasPrice"] != "0x7" || full[0]["blockHash"] != nil || full[0]["maxFeePerGas"] != "0x7" {
		t.Fatalf("full tx JSON %v", full[0])
	}
}

func TestFilterExpiry(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), clock) // FilterTimeout: 1 minute
	c := env.dial(t)
	var id, idle gethrpc.ID
	if err := c.CallContext(t.Context(), &id, "eth_newBlockFilter"); err != nil {
		t.Fatal(err)
	}
	if err := c.CallContext(t.Context(), &idle, "eth_newBlockFilter"); err != nil {
		t.Fatal(err)
	}
	var hashes []common.Hash
	for range 3 { // polling keeps a filter alive past the timeout
		advance(59 * time.Second)
		if err := c.CallContext(t.Context(), &hashes, "eth_getFilterChanges", id); err != nil {
			t.Fatalf("poll within timeout: %v", err)
		}
	}
	err := c.CallContext(t.Context(), &hashes, "eth_getFilterChanges", idle)
	fltCheckErr(t, err, "filter not found", -32000)
	advance(time.Minute)
	err = c.CallContext(t.Context(), &hashes, "eth_getFilterChanges", id)
	fltCheckErr(t, err, "filter not found", -32000)
}

// TestFilterExpirySweep checks that Run uninstalls unpolled filters by
// itself, freeing their memory, with a short real timeout.
func TestFilterExpirySweep(t *testing.T) {
	cfg := fltTestConfig()
	cfg.FilterTimeout = 20 * time.Millisecond
	b := newFltBackend(t)
	env := startFlt(t, b, cfg, nil)
	c := env.dial(t)
	var id gethrpc.ID
	if err := c.CallContext(t.Context(), &id, "eth_newBlockFilter"); err != nil {
		t.Fatal(err)
	}
	fltEventually(t, "sweep removes the filter", func() bool {
		env.fs.mu.Lock()
		defer env.fs.mu.Unlock()
		return len(env.fs.filters) == 0
	})
}

func TestFilterMaxFilters(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b := newFltBackend(t)
	env := startFlt(t, b, fltTestConfig(), clock) // MaxFilters: 3
	c := env.dial(t)
	var ids []gethrpc.ID
	for range 3 {
		var id gethrpc.ID
		if err := c.CallContext(t.Context(), &id, "eth_newBlockFilter"); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	var id gethrpc.ID
	err := c.CallContext(t.Context(), &id, "eth_newFilter", map[string]any{})
	fltCheckErr(t, err, "too many installed filters (max 3): uninstall unused filters with eth_uninstallFilter", -32005)

	var ok bool
	if err := c.CallContext(t.Context(), &ok, "eth_uninstallFilter", ids[0]); err != nil || !ok {
		t.Fatalf("uninstall: %v %v", ok, err)
	}
	if err := c.CallContext(t.Context(), &id, "eth_newPendingTransactionFilter"); err != nil {
		t.Fatalf("install after uninstall: %v", err)
	}
	err = c.CallContext(t.Context(), &id, "eth_newBlockFilter")
	fltCheckErr(t, err, "too many installed filters (max 3): uninstall unused filters with eth_uninstallFilter", -32005)

	// Expired filters do not count.
	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	if err := c.CallContext(t.Context(), &id, "eth_newBlockFilter"); err != nil {
		t.Fatalf("install after the others expired: %v", err)
	}
}

// FuzzFilterCriteria decodes arbitrary filter objects: no input may panic,
// and an accepted one respects the topic bound.
func FuzzFilterCriteria(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"fromBlock":"0x1","toBlock":"latest","address":"0x00000000000000000000000000000000000000a0"}`,
		`{"blockHash":"0x1111111111111111111111111111111111111111111111111111111111111111"}`,
		`{"address":["0x00000000000000000000000000000000000000a0",1]}`,
		`{"topics":[null,["0x0000000000000000000000000000000000000000000000000000000000000001",null],"0x0000000000000000000000000000000000000000000000000000000000000002"]}`,
		`{"topics":[[]],"fromBlock":"earliest","toBlock":"pending"}`,
		`{"topics":[1]}`,
		`[]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var c FilterCriteria
		if err := json.Unmarshal(data, &c); err != nil {
			return
		}
		if len(c.Topics) > filterMaxTopics {
			t.Fatalf("accepted %d topic positions", len(c.Topics))
		}
		if c.BlockHash != nil && (c.FromBlock != nil || c.ToBlock != nil) {
			t.Fatal("accepted blockHash with a range")
		}
		_ = c.checkLimits()
		_, _, _ = c.liveRange()
	})
}
