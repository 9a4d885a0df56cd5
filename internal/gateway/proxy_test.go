package gateway

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

func threeNodes(t *testing.T) []*fakeNode {
	pool := newTxPool()
	return []*fakeNode{newFakeNode(t, "n0", pool), newFakeNode(t, "n1", pool), newFakeNode(t, "n2", pool)}
}

// TestBadUpstreamLeavesRotation injects one fault into n2 and checks that,
// after two poll intervals, no call reaches it while the honest upstreams
// stay healthy and serve everything.
func TestBadUpstreamLeavesRotation(t *testing.T) {
	tests := []struct {
		name   string
		inject func(n *fakeNode, honest []*fakeNode)
	}{
		{"stalled head", func(n *fakeNode, honest []*fakeNode) {
			for _, h := range honest {
				h.head.Add(3) // moves on each poll (see advance below)
			}
		}},
		{"wrong chain id", func(n *fakeNode, _ []*fakeNode) { n.chainID.Store(5) }},
		{"far-ahead liar", func(n *fakeNode, _ []*fakeNode) { n.head.Store(50_000_000) }},
		{"syncing", func(n *fakeNode, _ []*fakeNode) { n.syncing.Store(true) }},
		{"HTTP 500", func(n *fakeNode, _ []*fakeNode) { n.fail500.Store(true) }},
		{"slow answers", func(n *fakeNode, _ []*fakeNode) { n.delay.Store(int64(time.Second)) }},
		{"dropped connections", func(n *fakeNode, _ []*fakeNode) { n.drop.Store(true) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := threeNodes(t)
			// A stall is visible only once time passes: with the stall timeout
			// at one poll interval it is judged on the two polls that follow.
			h := newHarness(t, nodes, func(c *Config) { c.Health.StallTimeout = c.Health.PollInterval })
			h.poll(1)
			for _, u := range h.g.Upstreams() {
				if !u.Healthy {
					t.Fatalf("%s unhealthy before the fault: %s", u.Name, u.Reason)
				}
			}
			bad, honest := nodes[2], nodes[:2]
			tt.inject(bad, honest)
			for range 2 { // two poll intervals
				if tt.name == "stalled head" {
					for _, n := range honest {
						n.head.Add(1)
					}
				}
				h.poll(1)
			}
			h.resetCalls()
			// At least 30 calls, and on until both honest upstreams served
			// some (selection is random, weighted by latency).
			for i := 0; i < 30 || honest[0].calls.Load() == 0 || honest[1].calls.Load() == 0; i++ {
				if i == 300 {
					t.Fatalf("load not spread over honest upstreams: %d, %d", honest[0].calls.Load(), honest[1].calls.Load())
				}
				if _, err := h.clientVersion(); err != nil {
					t.Fatalf("call %d failed: %v", i, err)
				}
			}
			if c := bad.calls.Load(); c != 0 {
				t.Errorf("bad upstream got %d calls after two poll intervals", c)
			}
			for _, u := range h.g.Upstreams() {
				if u.Name != "n2" && (!u.Healthy || u.Lag != 0) {
					t.Errorf("honest %s: healthy=%v lag=%d (%s)", u.Name, u.Healthy, u.Lag, u.Reason)
				}
			}
			if got := metricValue(t, h.g.metrics.HealthyCount); got != 2 {
				t.Errorf("healthy_upstreams = %v, want 2", got)
			}
		})
	}
}

// TestNoRequestLostDuringFailover keeps a concurrent stream of calls going
// while upstreams fail in turn (dropped connections, then HTTP 500s): every
// call must get the right answer.
func TestNoRequestLostDuringFailover(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, nil)
	h.poll(1)
	const workers, perWorker = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range perWorker {
				_, resp := h.call("/", "eth_getBlockByNumber", fmt.Sprintf(`["0x%x", false]`, 50+i), nil)
				var blk struct{ Number string }
				if resp.Error != nil || json.Unmarshal(resp.Result, &blk) != nil || blk.Number != fmt.Sprintf("0x%x", 50+i) {
					errs <- fmt.Errorf("worker %d call %d: %s %v", w, i, resp.Result, resp.Error)
				}
			}
		})
	}
	close(start)
	nodes[0].drop.Store(true)
	h.poll(2)
	nodes[1].fail500.Store(true)
	nodes[0].drop.Store(false)
	h.poll(3)
	nodes[1].fail500.Store(false)
	h.poll(3)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r := metricValue(t, h.g.metrics.Failovers); r < 1 {
		t.Errorf("failovers_total = %v, want at least 1", r)
	}
}

// TestFallback checks that fallbacks take traffic only while no primary is
// healthy, and that without fallbacks the error is clear.
func TestFallback(t *testing.T) {
	pool := newTxPool()
	nodes := []*fakeNode{newFakeNode(t, "n0", pool), newFakeNode(t, "n1", pool), newFakeNode(t, "fb0", pool)}
	h := newHarness(t, nodes, nil)
	h.poll(1)
	h.resetCalls()
	for range 10 {
		if who, err := h.clientVersion(); err != nil || who == "fb0" {
			t.Fatalf("served by %q (%v) while primaries are healthy", who, err)
		}
	}
	nodes[0].fail500.Store(true)
	nodes[1].drop.Store(true)
	h.poll(2)
	if got := metricValue(t, h.g.metrics.FallbackActive); got != 1 {
		t.Errorf("fallback_active = %v, want 1", got)
	}
	for range 10 {
		if who, err := h.clientVersion(); err != nil || who != "fb0" {
			t.Fatalf("served by %q (%v); want the fallback", who, err)
		}
	}
	nodes[0].fail500.Store(false)
	nodes[1].drop.Store(false)
	h.poll(2) // RiseAfter
	h.resetCalls()
	for range 10 {
		if who, err := h.clientVersion(); err != nil || who == "fb0" {
			t.Fatalf("served by %q (%v) after the primaries recovered", who, err)
		}
	}
	if got := metricValue(t, h.g.metrics.FallbackActive); got != 0 {
		t.Errorf("fallback_active = %v, want 0", got)
	}

	t.Run("no fallback", func(t *testing.T) {
		n := newFakeNode(t, "only", newTxPool())
		h := newHarness(t, []*fakeNode{n}, nil)
		h.poll(1)
		n.fail500.Store(true)
		h.poll(2)
		_, err := h.clientVersion()
		if err == nil || err.Code != CodeUnavailable || !strings.Contains(err.Message, "no healthy upstream available") {
			t.Fatalf("got %v; want code %d, no healthy upstream available", err, CodeUnavailable)
		}
		if h.g.Ready() == nil {
			t.Error("Ready() = nil with no healthy upstream")
		}
	})
}

// TestRoutesByBlock sends calls about a block only to upstreams that have it.
func TestRoutesByBlock(t *testing.T) {
	nodes := threeNodes(t)
	nodes[0].head.Store(100)
	nodes[1].head.Store(95)
	nodes[2].head.Store(100)
	h := newHarness(t, nodes, nil)
	h.poll(1)
	for i := range 20 {
		_, resp := h.call("/", "eth_getBlockByNumber", `["0x62", false]`, nil) // block 98
		var blk struct{ ServedBy string }
		json.Unmarshal(resp.Result, &blk)
		if resp.Error != nil || blk.ServedBy == "n1" || blk.ServedBy == "" {
			t.Fatalf("call %d: served by %q (%v); n1 (head 95) must not get block 98", i, blk.ServedBy, resp.Error)
		}
	}
	if nodes[1].calls.Load() != 0 {
		t.Errorf("n1 got %d calls about a block it lacks", nodes[1].calls.Load())
	}
}

// TestTimeoutRetriesElsewhere gives a hanging upstream half the method's
// time and then retries on another; if all hang the client gets a timeout.
func TestTimeoutRetriesElsewhere(t *testing.T) {
	nodes := threeNodes(t)
	slow := "eth_call"
	nodes[0].slowMethod.Store(&slow)
	nodes[0].slowDelay.Store(int64(10 * time.Second))
	h := newHarness(t, nodes, func(c *Config) {
		c.Limits.MethodTimeouts = map[string]Duration{"eth_call": Duration(600 * time.Millisecond)}
	})
	h.poll(1)
	for i := range 6 {
		_, resp := h.call("/", "eth_call", `[{"to":"0x00000000000000000000000000000000000000aa"},"latest"]`, nil)
		if resp.Error != nil {
			t.Fatalf("call %d: %v", i, resp.Error)
		}
	}
	if nodes[0].calls.Load() == 0 {
		t.Fatal("the slow upstream was never tried: the test proves nothing")
	}
	for _, n := range nodes {
		n.slowMethod.Store(&slow)
		n.slowDelay.Store(int64(10 * time.Second))
	}
	_, resp := h.call("/", "eth_call", `[{"to":"0x00000000000000000000000000000000000000aa"},"latest"]`, nil)
	if resp.Error == nil || resp.Error.Code != CodeUnavailable || !strings.Contains(resp.Error.Message, "timeout") {
		t.Fatalf("all upstreams hang: got %v; want code %d with timeout", resp.Error, CodeUnavailable)
	}
}

func TestSendRawTransaction(t *testing.T) {
	key, _ := crypto.GenerateKey()
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	tests := []struct {
		name    string
		setup   func(nodes []*fakeNode)
		wantErr string // "" means the hash comes back
	}{
		{"plain", func([]*fakeNode) {}, ""},
		{"ambiguous drop then already known elsewhere", func(ns []*fakeNode) {
			for _, n := range ns[:2] {
				n.sendMode.Store(sendAcceptDrop)
			}
		}, ""},
		{"nonce too low for the same hash", func(ns []*fakeNode) {
			for _, n := range ns {
				n.sendMode.Store(sendNonceLow)
			}
		}, ""},
		{"nonce too low for another transaction", func(ns []*fakeNode) {
			for _, n := range ns {
				n.sendMode.Store(sendNonceLow)
			}
		}, "nonce too low"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodes := threeNodes(t)
			h := newHarness(t, nodes, nil)
			h.poll(1)
			raw, hash := signedTx(t, key, &to, 0)
			tt.setup(nodes)
			if tt.name == "nonce too low for the same hash" {
				nodes[0].pool.add(hash.Hex()) // the transaction was already mined
			}
			_, resp := h.call("/", "eth_sendRawTransaction", `["`+raw+`"]`, nil)
			if tt.wantErr != "" {
				if resp.Error == nil || !strings.Contains(resp.Error.Message, tt.wantErr) {
					t.Fatalf("got %s %v; want error %q", resp.Result, resp.Error, tt.wantErr)
				}
				return
			}
			var got string
			if resp.Error != nil || json.Unmarshal(resp.Result, &got) != nil || got != hash.Hex() {
				t.Fatalf("got %s %v; want hash %s", resp.Result, resp.Error, hash.Hex())
			}
		})
	}
	t.Run("other writes are never retried", func(t *testing.T) {
		nodes := threeNodes(t)
		h := newHarness(t, nodes, nil)
		h.poll(1)
		_, resp := h.call("/", "eth_sendTransaction", `[{"to":"`+to.Hex()+`"}]`, nil)
		if resp.Error == nil || resp.Error.Code != CodeUnavailable {
			t.Fatalf("got %v; want code %d", resp.Error, CodeUnavailable)
		}
		total := nodes[0].calls.Load() + nodes[1].calls.Load() + nodes[2].calls.Load()
		if total != 1 {
			t.Fatalf("eth_sendTransaction reached upstreams %d times; want exactly once", total)
		}
	})
}

// TestStickyFilters checks that filter calls go to the upstream that
// created the filter, even though upstream filter ids collide.
func TestStickyFilters(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, nil)
	h.poll(1)
	ids := map[string]bool{}
	for range 9 {
		_, resp := h.call("/", "eth_newBlockFilter", "", nil)
		var id string
		if resp.Error != nil || json.Unmarshal(resp.Result, &id) != nil || ids[id] {
			t.Fatalf("new filter: %s %v", resp.Result, resp.Error)
		}
		ids[id] = true
	}
	served := map[string]bool{}
	for id := range ids {
		_, resp := h.call("/", "eth_getFilterChanges", `["`+id+`"]`, nil)
		var changes []string
		if resp.Error != nil || json.Unmarshal(resp.Result, &changes) != nil || len(changes) != 1 {
			t.Fatalf("changes of %s: %s %v", id, resp.Result, resp.Error)
		}
		served[strings.Split(changes[0], "/")[0]] = true
	}
	if len(served) < 2 {
		t.Errorf("filters all lived on %v; the test needs them spread to prove stickiness", served)
	}
	_, resp := h.call("/", "eth_getFilterChanges", `["0xdeadbeef"]`, nil)
	if resp.Error == nil || resp.Error.Message != "filter not found" {
		t.Errorf("unknown filter: %v; want filter not found", resp.Error)
	}
}

func TestBatch(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, func(c *Config) { c.Limits.MaxBatch = 6 })
	h.poll(1)
	body := `[
		{"jsonrpc":"2.0","id":1,"method":"web3_clientVersion"},
		{"jsonrpc":"2.0","id":"two","method":"eth_getBlockByNumber","params":["0x5",false]},
		{"jsonrpc":"2.0","id":3,"method":"no_suchMethod"},
		{"jsonrpc":"1.0","id":4,"method":"web3_clientVersion"},
		42,
		{"jsonrpc":"2.0","id":6,"method":"eth_call","params":[{"to":"0x00000000000000000000000000000000000000aa"},"latest"]}
	]`
	status, _, b := h.post("/", body, nil)
	var answers []rpcResponse
	if status != 200 || json.Unmarshal(b, &answers) != nil || len(answers) != 6 {
		t.Fatalf("status %d body %s", status, b)
	}
	wantIDs := []string{"1", `"two"`, "3", "4", "null", "6"}
	wantErr := []int{0, 0, -32601, CodeInvalidRequest, CodeInvalidRequest, 0}
	for i, a := range answers {
		if string(a.ID) != wantIDs[i] {
			t.Errorf("answer %d has id %s, want %s", i, a.ID, wantIDs[i])
		}
		code := 0
		if a.Error != nil {
			code = a.Error.Code
		}
		if code != wantErr[i] {
			t.Errorf("answer %d: error %v, want code %d", i, a.Error, wantErr[i])
		}
	}
	status, _, b = h.post("/", "["+strings.Repeat(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},`, 6)+`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}]`, nil)
	if status != 400 || !strings.Contains(string(b), "batch too large: 7 calls, limit 6") {
		t.Errorf("oversized batch: %d %s", status, b)
	}
}

// TestBatchKeepsEachSendersTransactionsInOrder sends a batch of two
// senders' transactions: calls run concurrently and spread over the
// upstreams, yet each sender's transactions reach the upstreams in nonce
// order (a node queues gapped nonces; a cluster member forwards in order).
func TestBatchKeepsEachSendersTransactionsInOrder(t *testing.T) {
	nodes := threeNodes(t)
	h := newHarness(t, nodes, nil)
	h.poll(1)
	alice, _ := crypto.GenerateKey()
	bob, _ := crypto.GenerateKey()
	to := common.HexToAddress("0xc0ffee")
	var calls []string
	order := map[string]int{} // hash → position in its sender's sequence
	sender := map[string]int{}
	for nonce := range uint64(24) {
		for who, key := range []*ecdsa.PrivateKey{alice, bob} {
			raw, hash := signedTx(t, key, &to, nonce)
			calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":["%s"]}`, len(calls), raw))
			order[hash.Hex()], sender[hash.Hex()] = int(nonce), who
		}
	}
	status, _, body := h.post("/", "["+strings.Join(calls, ",")+"]", nil)
	if status != 200 || strings.Contains(string(body), `"error"`) {
		t.Fatalf("batch: %d %s", status, body)
	}
	last := []int{-1, -1}
	arrived := nodes[0].pool.arrivals()
	if len(arrived) != len(calls) {
		t.Fatalf("%d of %d transactions reached an upstream", len(arrived), len(calls))
	}
	for _, h := range arrived {
		who := sender[h]
		if order[h] != last[who]+1 {
			t.Fatalf("sender %d's nonce %d arrived after nonce %d", who, order[h], last[who])
		}
		last[who] = order[h]
	}
	served := 0
	for _, n := range nodes {
		if n.calls.Load() > 0 {
			served++
		}
	}
	if served < 2 {
		t.Fatalf("all writes went to one upstream; the test wants them spread")
	}
}
