package logindex

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/ethdb/pebble"
)

var (
	addrA = common.HexToAddress("0xaa")
	addrB = common.HexToAddress("0xbb")
	addrC = common.HexToAddress("0xcc")
	addrD = common.HexToAddress("0xdd") // never emits
	t1    = common.HexToHash("0x01")
	t2    = common.HexToHash("0x02")
	t3    = common.HexToHash("0x03")
	t4    = common.HexToHash("0x04")
	t5    = common.HexToHash("0x05")
	t9    = common.HexToHash("0x09") // never emitted
)

// chain is a fixture: block number -> receipts, with derived log fields set.
type chain map[uint64]types.Receipts

func (c chain) numbers() []uint64 {
	var ns []uint64
	for n := range c {
		ns = append(ns, n)
	}
	slices.Sort(ns)
	return ns
}

func (c chain) receipts(n uint64) (types.Receipts, error) { return c[n], nil }

// bruteForce is the reference: every log of [from, to] that matches.
func (c chain) bruteForce(from, to uint64, addrs []common.Address, topics [][]common.Hash) []*types.Log {
	var out []*types.Log
	for _, n := range c.numbers() {
		if n < from || n > to {
			continue
		}
		for _, r := range c[n] {
			for _, l := range r.Logs {
				if Match(l, addrs, topics) {
					out = append(out, l)
				}
			}
		}
	}
	return out
}

type logSpec struct {
	addr   common.Address
	topics []common.Hash
}

// makeChain builds receipts: one receipt per inner slice of each block.
func makeChain(blocks map[uint64][][]logSpec) chain {
	c := make(chain)
	for n, txs := range blocks {
		var rs types.Receipts
		idx := uint(0)
		for ti, logs := range txs {
			r := &types.Receipt{Status: types.ReceiptStatusSuccessful, TxHash: common.BigToHash(common.Big1), TransactionIndex: uint(ti)}
			for _, ls := range logs {
				r.Logs = append(r.Logs, &types.Log{Address: ls.addr, Topics: ls.topics, BlockNumber: n, TxIndex: uint(ti), Index: idx})
				idx++
			}
			rs = append(rs, r)
		}
		c[n] = rs
	}
	return c
}

func fixture() chain {
	return makeChain(map[uint64][][]logSpec{
		0: nil,
		1: {{{addrA, []common.Hash{t1, t2}}}},
		2: {{{addrB, []common.Hash{t1}}}, {{addrA, []common.Hash{t3}}}},
		3: {{}}, // a transaction without logs
		4: {{{addrC, []common.Hash{t2, t1, t3, t4}}}},
		5: {{{addrA, []common.Hash{t1, t2}}, {addrA, []common.Hash{t1, t4}}}},
		6: {{{addrB, nil}}},
		// 300 and 1<<40 exercise big-endian ordering across several bytes.
		300:     {{{addrA, []common.Hash{t5}}}},
		1 << 40: {{{addrB, []common.Hash{t1}}}},
	})
}

func writeChain(t testing.TB, db ethdb.KeyValueStore, c chain) {
	t.Helper()
	b := db.NewBatch()
	for n, rs := range c {
		if err := Write(b, n, rs); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
}

type backend struct {
	name string
	open func(t testing.TB) ethdb.KeyValueStore
}

func backends() []backend {
	return []backend{
		{"memorydb", func(testing.TB) ethdb.KeyValueStore { return memorydb.New() }},
		{"pebble", func(t testing.TB) ethdb.KeyValueStore {
			db, err := pebble.New(t.TempDir(), 16, 16, "", false)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
	}
}

// TestIndex runs the shared suite on every ethdb backend.
func TestIndex(t *testing.T) {
	for _, be := range backends() {
		t.Run(be.name, func(t *testing.T) {
			t.Run("candidates", func(t *testing.T) { testCandidates(t, be.open(t)) })
			t.Run("filter", func(t *testing.T) { testFilter(t, be.open(t)) })
			t.Run("delete", func(t *testing.T) { testDelete(t, be.open(t)) })
			t.Run("foreign keys", func(t *testing.T) { testForeignKeys(t, be.open(t)) })
			t.Run("random", func(t *testing.T) { testRandom(t, be.open(t)) })
		})
	}
}

func testCandidates(t *testing.T, db ethdb.KeyValueStore) {
	c := fixture()
	writeChain(t, db, c)
	const max = uint64(1<<64 - 1)
	tests := []struct {
		name     string
		from, to uint64
		addrs    []common.Address
		topics   [][]common.Hash
		want     []uint64
	}{
		{"no criteria = blocks with logs", 0, max, nil, nil, []uint64{1, 2, 4, 5, 6, 300, 1 << 40}},
		{"no criteria, sub range", 2, 5, nil, nil, []uint64{2, 4, 5}},
		{"empty range", 7, 299, nil, nil, nil},
		{"from > to", 5, 4, nil, nil, nil},
		{"single block", 300, 300, nil, nil, []uint64{300}},
		{"address", 0, max, []common.Address{addrA}, nil, []uint64{1, 2, 5, 300}},
		{"address in range", 2, 300, []common.Address{addrA}, nil, []uint64{2, 5, 300}},
		{"addresses OR", 0, max, []common.Address{addrB, addrC}, nil, []uint64{2, 4, 6, 1 << 40}},
		{"duplicate addresses", 0, max, []common.Address{addrC, addrC}, nil, []uint64{4}},
		{"unknown address", 0, max, []common.Address{addrD}, nil, nil},
		{"topic0", 0, max, nil, [][]common.Hash{{t1}}, []uint64{1, 2, 5, 1 << 40}},
		{"topic0 OR", 0, max, nil, [][]common.Hash{{t2, t5}}, []uint64{4, 300}},
		{"topic position matters", 0, max, nil, [][]common.Hash{{t3}}, []uint64{2}},
		{"wildcard then topic1", 0, max, nil, [][]common.Hash{nil, {t1}}, []uint64{4}},
		{"topic1 = t2", 0, max, nil, [][]common.Hash{{}, {t2}}, []uint64{1, 5}},
		{"topic3", 0, max, nil, [][]common.Hash{nil, nil, nil, {t4}}, []uint64{4}},
		{"all wildcards = blocks with logs", 0, 5, nil, [][]common.Hash{nil, nil}, []uint64{1, 2, 4, 5}},
		{"address AND topic", 0, max, []common.Address{addrA}, [][]common.Hash{{t1}}, []uint64{1, 2, 5}},
		{"address AND topic0 AND topic1", 0, max, []common.Address{addrA}, [][]common.Hash{{t1}, {t4}}, []uint64{5}},
		{"empty intersection", 0, max, []common.Address{addrC}, [][]common.Hash{{t1}}, nil},
		{"unknown topic", 0, max, nil, [][]common.Hash{{t9}}, nil},
		{"five topic positions match nothing", 0, max, nil, [][]common.Hash{nil, nil, nil, nil, nil}, nil},
		{"large block", 1 << 40, 1 << 40, []common.Address{addrB}, [][]common.Hash{{t1}}, []uint64{1 << 40}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Candidates(db, tt.from, tt.to, tt.addrs, tt.topics)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Candidates = %v, want %v", got, tt.want)
			}
			// The index must never miss a block that the exact filter would hit.
			for _, l := range c.bruteForce(tt.from, tt.to, tt.addrs, tt.topics) {
				if !slices.Contains(got, l.BlockNumber) {
					t.Fatalf("block %d has a matching log but is not a candidate", l.BlockNumber)
				}
			}
		})
	}
}

func testFilter(t *testing.T, db ethdb.KeyValueStore) {
	c := fixture()
	writeChain(t, db, c)
	type pos struct{ block, index uint64 }
	tests := []struct {
		name     string
		from, to uint64
		addrs    []common.Address
		topics   [][]common.Hash
		limit    int
		want     []pos
		wantErr  error
	}{
		{"all in 0..5", 0, 5, nil, nil, 0, []pos{{1, 0}, {2, 0}, {2, 1}, {4, 0}, {5, 0}, {5, 1}}, nil},
		{"exact match drops same-block non-matches", 0, 10, []common.Address{addrA}, [][]common.Hash{{t1}, {t2}}, 0, []pos{{1, 0}, {5, 0}}, nil},
		{"topic count: [null] needs one topic", 6, 6, nil, [][]common.Hash{nil}, 0, nil, nil},
		{"no topics criterion matches topic-less log", 6, 6, nil, nil, 0, []pos{{6, 0}}, nil},
		{"limit reached exactly", 0, 5, []common.Address{addrA}, nil, 4, []pos{{1, 0}, {2, 1}, {5, 0}, {5, 1}}, nil},
		{"limit exceeded", 0, 5, []common.Address{addrA}, nil, 3, nil, ErrTooManyLogs},
		{"empty", 7, 299, nil, nil, 1, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs, err := Filter(t.Context(), db, tt.from, tt.to, tt.addrs, tt.topics, tt.limit, c.receipts)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			var got []pos
			for _, l := range logs {
				got = append(got, pos{l.BlockNumber, uint64(l.Index)})
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("logs = %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Filter(ctx, db, 0, 10, nil, nil, 0, c.receipts); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("receipts error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := Filter(t.Context(), db, 0, 10, nil, nil, 0, func(uint64) (types.Receipts, error) { return nil, boom })
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want %v", err, boom)
		}
	})
}

func testDelete(t *testing.T, db ethdb.KeyValueStore) {
	c := fixture()
	writeChain(t, db, c)
	if err := Delete(db, 5, c[5]); err != nil {
		t.Fatal(err)
	}
	got, err := Candidates(db, 0, 10, []common.Address{addrA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2}; !slices.Equal(got, want) {
		t.Fatalf("after Delete(5): %v, want %v", got, want)
	}
	got, err = Candidates(db, 0, 10, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 4, 6}; !slices.Equal(got, want) {
		t.Fatalf("after Delete(5), blocks with logs: %v, want %v", got, want)
	}
}

// testForeignKeys checks that keys of other owners sharing the same bytes
// (a 32-byte hash-scheme trie node key, go-ethereum header keys) never show up.
func testForeignKeys(t *testing.T, db ethdb.KeyValueStore) {
	writeChain(t, db, fixture())
	trieKey := append(valueKey(kindAddress, addrA.Bytes()), 0, 0, 0, 0, 0, 0, 0, 0, 0)[:32]
	if err := db.Put(trieKey, []byte{1}); err != nil {
		t.Fatal(err)
	}
	headerKey := append([]byte("h"), make([]byte, 40)...)
	if err := db.Put(headerKey, []byte{1}); err != nil {
		t.Fatal(err)
	}
	got, err := Candidates(db, 0, 1<<50, []common.Address{addrA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 5, 300}; !slices.Equal(got, want) {
		t.Fatalf("with foreign keys: %v, want %v", got, want)
	}
}

// testRandom compares Filter against the brute-force reference on a random chain.
func testRandom(t *testing.T, db ethdb.KeyValueStore) {
	rng := rand.New(rand.NewPCG(1, 2))
	addrs := []common.Address{addrA, addrB, addrC, addrD}
	topics := []common.Hash{t1, t2, t3, t4, t5}
	blocks := make(map[uint64][][]logSpec)
	for n := uint64(0); n < 400; n++ {
		var txs [][]logSpec
		for range rng.IntN(3) {
			var logs []logSpec
			for range rng.IntN(3) {
				var ts []common.Hash
				for range rng.IntN(5) {
					ts = append(ts, topics[rng.IntN(len(topics))])
				}
				logs = append(logs, logSpec{addrs[rng.IntN(len(addrs))], ts})
			}
			txs = append(txs, logs)
		}
		blocks[n] = txs
	}
	c := makeChain(blocks)
	writeChain(t, db, c)
	for i := range 300 {
		from := uint64(rng.IntN(400))
		to := from + uint64(rng.IntN(100))
		var qa []common.Address
		for range rng.IntN(3) {
			qa = append(qa, addrs[rng.IntN(len(addrs))])
		}
		var qt [][]common.Hash
		for range rng.IntN(4) {
			var sub []common.Hash
			for range rng.IntN(3) {
				sub = append(sub, topics[rng.IntN(len(topics))])
			}
			qt = append(qt, sub)
		}
		got, err := Filter(t.Context(), db, from, to, qa, qt, 0, c.receipts)
		if err != nil {
			t.Fatal(err)
		}
		want := c.bruteForce(from, to, qa, qt)
		if !slices.Equal(got, want) {
			t.Fatalf("query %d [%d,%d] %v %v: got %d logs, want %d", i, from, to, qa, qt, len(got), len(want))
		}
	}
}

func TestMatch(t *testing.T) {
	l := &types.Log{Address: addrA, Topics: []common.Hash{t1, t2}}
	tests := []struct {
		name   string
		addrs  []common.Address
		topics [][]common.Hash
		want   bool
	}{
		{"no criteria", nil, nil, true},
		{"address hit", []common.Address{addrB, addrA}, nil, true},
		{"address miss", []common.Address{addrB}, nil, false},
		{"topic0 hit", nil, [][]common.Hash{{t1}}, true},
		{"topic0 miss", nil, [][]common.Hash{{t2}}, false},
		{"topic OR", nil, [][]common.Hash{{t3, t1}}, true},
		{"wildcard then topic1", nil, [][]common.Hash{nil, {t2}}, true},
		{"both positions", nil, [][]common.Hash{{t1}, {t2}}, true},
		{"more positions than topics", nil, [][]common.Hash{nil, nil, nil}, false},
		{"address and topic, topic misses", []common.Address{addrA}, [][]common.Hash{{t3}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Match(l, tt.addrs, tt.topics); got != tt.want {
				t.Fatalf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWriteNoLogsWritesNothing(t *testing.T) {
	db := memorydb.New()
	if err := Write(db, 7, types.Receipts{{Status: 1}}); err != nil {
		t.Fatal(err)
	}
	if n := db.Len(); n != 0 {
		t.Fatalf("a block without logs wrote %d keys", n)
	}
}

// BenchmarkFilter queries one address and topic over 10,000 blocks of 20 logs each.
func BenchmarkFilter(b *testing.B) {
	const blocks = 10_000
	rng := rand.New(rand.NewPCG(3, 4))
	addrs := make([]common.Address, 200)
	for i := range addrs {
		addrs[i] = common.Address{byte(i), 1}
	}
	topics := make([]common.Hash, 50)
	for i := range topics {
		topics[i][0] = byte(i + 1)
	}
	blockMap := make(map[uint64][][]logSpec, blocks)
	for n := uint64(0); n < blocks; n++ {
		logs := make([]logSpec, 20)
		for i := range logs {
			logs[i] = logSpec{addrs[rng.IntN(len(addrs))], []common.Hash{topics[rng.IntN(len(topics))], topics[rng.IntN(len(topics))]}}
		}
		blockMap[n] = [][]logSpec{logs}
	}
	c := makeChain(blockMap)
	for _, be := range backends() {
		b.Run(be.name, func(b *testing.B) {
			db := be.open(b)
			writeChain(b, db, c)
			for _, q := range []struct {
				name   string
				addrs  []common.Address
				topics [][]common.Hash
			}{
				{"address+topic", addrs[:1], [][]common.Hash{topics[:1]}},
				{"address", addrs[:1], nil},
				{"all", nil, nil},
			} {
				b.Run(q.name, func(b *testing.B) {
					var n int
					for b.Loop() {
						logs, err := Filter(b.Context(), db, 0, blocks-1, q.addrs, q.topics, 0, c.receipts)
						if err != nil {
							b.Fatal(err)
						}
						n = len(logs)
					}
					b.ReportMetric(float64(n), "logs/op")
				})
			}
		})
	}
}

func ExampleFilter() {
	db := memorydb.New()
	token := common.HexToAddress("0x1000")
	transfer := common.HexToHash("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef")
	receipts := map[uint64]types.Receipts{
		7: {{Logs: []*types.Log{{Address: token, Topics: []common.Hash{transfer}, BlockNumber: 7}}}},
		9: {{Logs: []*types.Log{{Address: common.HexToAddress("0x2000"), BlockNumber: 9}}}},
	}
	for n, rs := range receipts {
		if err := Write(db, n, rs); err != nil {
			panic(err)
		}
	}
	logs, err := Filter(context.Background(), db, 0, 100, []common.Address{token}, [][]common.Hash{{transfer}}, 10_000,
		func(n uint64) (types.Receipts, error) { return receipts[n], nil })
	if err != nil {
		panic(err)
	}
	for _, l := range logs {
		fmt.Println(l.BlockNumber, l.Address.Hex())
	}
	// Output: 7 0x0000000000000000000000000000000000001000
}
