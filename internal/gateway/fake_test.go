package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// txPool is the set of transaction hashes fake nodes know, shared between
// fakes to model gossip.
type txPool struct {
	mu    sync.Mutex
	known map[string]bool
	order []string // hashes in the order they first arrived
}

func newTxPool() *txPool { return &txPool{known: map[string]bool{}} }

func (p *txPool) add(h string) (isNew bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.known[h] {
		return false
	}
	p.known[h] = true
	p.order = append(p.order, h)
	return true
}

func (p *txPool) arrivals() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.order...)
}

func (p *txPool) has(h string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known[h]
}

// Send modes of a fake node for eth_sendRawTransaction.
const (
	sendAccept     = iota // accept new, "already known" for known
	sendAcceptDrop        // accept, then drop the connection without answering
	sendNonceLow          // "nonce too low" for every transaction (known or not)
)

// fakeNode is an in-process Ethereum JSON-RPC upstream with injectable
// faults, bound to 127.0.0.1.
type fakeNode struct {
	name string
	srv  *httptest.Server
	pool *txPool

	chainID    atomic.Uint64
	head       atomic.Uint64
	syncing    atomic.Bool
	fail500    atomic.Bool
	drop       atomic.Bool
	delay      atomic.Int64 // applied to every request, ns
	slowMethod atomic.Pointer[string]
	slowDelay  atomic.Int64
	sendMode   atomic.Int32

	calls atomic.Int64 // calls other than the health poll's

	wsDown  atomic.Bool
	wsMu    sync.Mutex
	wsConns map[*websocket.Conn]bool

	mu      sync.Mutex
	filters map[string]bool
	nextF   int
}

func newFakeNode(t testing.TB, name string, pool *txPool) *fakeNode {
	n := &fakeNode{name: name, pool: pool, filters: map[string]bool{}, wsConns: map[*websocket.Conn]bool{}}
	n.chainID.Store(1337)
	n.head.Store(100)
	n.srv = httptest.NewServer(http.HandlerFunc(n.serve))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) url() string { return n.srv.URL }

func (n *fakeNode) hijackClose(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (n *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	if websocket.IsWebSocketUpgrade(r) {
		n.serveWS(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if d := n.delay.Load(); d > 0 {
		sleepCtx(r.Context(), time.Duration(d))
	}
	if n.drop.Load() {
		n.hijackClose(w)
		return
	}
	if n.fail500.Load() {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var reqs []rpcRequest
		if json.Unmarshal(body, &reqs) != nil {
			http.Error(w, "bad batch", http.StatusBadRequest)
			return
		}
		var outs []json.RawMessage
		for i := range reqs {
			out, _ := n.answer(r, &reqs[i])
			outs = append(outs, out)
		}
		b, _ := json.Marshal(outs)
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
		return
	}
	var req rpcRequest
	if json.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	out, drop := n.answer(r, &req)
	if drop {
		n.hijackClose(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

func (n *fakeNode) answer(r *http.Request, req *rpcRequest) (out []byte, drop bool) {
	result := func(v any) []byte {
		b, _ := json.Marshal(v)
		return encodeResult(req.ID, b)
	}
	rpcErr := func(code int, msg string) []byte { return encodeError(req.ID, &rpcError{Code: code, Message: msg}) }
	switch req.Method {
	case "eth_chainId":
		return result(hexutil.Uint64(n.chainID.Load())), false
	case "eth_blockNumber":
		return result(hexutil.Uint64(n.head.Load())), false
	case "eth_syncing":
		if n.syncing.Load() {
			return result(map[string]string{"currentBlock": "0x1", "highestBlock": "0x100"}), false
		}
		return result(false), false
	}
	n.calls.Add(1)
	if m := n.slowMethod.Load(); m != nil && *m == req.Method {
		sleepCtx(r.Context(), time.Duration(n.slowDelay.Load()))
	}
	switch req.Method {
	case "web3_clientVersion":
		return result(n.name), false
	case "eth_call":
		return result("0x" + fmt.Sprintf("%x", n.name)), false
	case "eth_getBlockByNumber":
		var ps []any
		json.Unmarshal(req.Params, &ps)
		return result(map[string]any{"number": ps[0], "servedBy": n.name}), false
	case "eth_sendTransaction":
		return nil, true
	case "eth_sendRawTransaction":
		raw, _ := firstParamString(req.Params)
		var tx types.Transaction
		if err := tx.UnmarshalBinary(hexutil.MustDecode(raw)); err != nil {
			return rpcErr(-32000, "bad tx"), false
		}
		h := tx.Hash().Hex()
		switch n.sendMode.Load() {
		case sendNonceLow:
			return rpcErr(-32000, "nonce too low: next nonce 5, tx nonce 0"), false
		case sendAcceptDrop:
			n.pool.add(h)
			return nil, true
		}
		if !n.pool.add(h) {
			return rpcErr(-32000, "already known"), false
		}
		return result(h), false
	case "eth_getTransactionByHash":
		h, _ := firstParamString(req.Params)
		if n.pool.has(h) {
			return result(map[string]string{"hash": h}), false
		}
		return result(nil), false
	case "eth_newFilter", "eth_newBlockFilter":
		n.mu.Lock()
		defer n.mu.Unlock()
		n.nextF++
		id := fmt.Sprintf("0x%d", n.nextF) // collides across nodes on purpose
		n.filters[id] = true
		return result(id), false
	case "eth_getFilterChanges":
		id, _ := firstParamString(req.Params)
		n.mu.Lock()
		defer n.mu.Unlock()
		if !n.filters[id] {
			return rpcErr(-32000, "filter not found"), false
		}
		return result([]string{n.name + "/" + id}), false
	}
	return rpcErr(-32601, "the method "+req.Method+" does not exist/is not available"), false
}

// serveWS answers calls on a WebSocket; each eth_subscribe starts a stream
// of notifications {"node": name, "seq": k} every 10ms.
func (n *fakeNode) serveWS(w http.ResponseWriter, r *http.Request) {
	if n.wsDown.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	n.wsMu.Lock()
	n.wsConns[conn] = true
	n.wsMu.Unlock()
	var wmu sync.Mutex
	write := func(b []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteMessage(websocket.TextMessage, b)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(done)
		conn.Close()
		wg.Wait()
	}()
	subs := 0
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var req rpcRequest
		if json.Unmarshal(msg, &req) != nil {
			return
		}
		if req.Method != "eth_subscribe" {
			out, _ := n.answer(r, &req)
			write(out)
			continue
		}
		subs++
		id := fmt.Sprintf("0x%s%d", n.name, subs)
		write(encodeResult(req.ID, json.RawMessage(strconv.Quote(id))))
		wg.Go(func() {
			for k := 0; ; k++ {
				select {
				case <-done:
					return
				case <-time.After(10 * time.Millisecond):
				}
				note := fmt.Sprintf(`{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":%q,"result":{"node":%q,"seq":%d}}}`, id, n.name, k)
				if write([]byte(note)) != nil {
					return
				}
			}
		})
	}
}

// killWS closes every WebSocket and refuses new ones.
func (n *fakeNode) killWS() {
	n.wsDown.Store(true)
	n.wsMu.Lock()
	defer n.wsMu.Unlock()
	for c := range n.wsConns {
		c.Close()
	}
}

// harness is a gateway over fake nodes with a manual clock: each poll
// advances it by one poll interval.
type harness struct {
	t     *testing.T
	g     *Gateway
	front struct{ URL string } // the JSON-RPC front
	reg   *prometheus.Registry
	nodes []*fakeNode
	now   time.Time
}

func testConfig(nodes []*fakeNode) Config {
	cfg := DefaultConfig()
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = "127.0.0.1:0", "", ""
	cfg.AllowAnonymous = true
	cfg.Anonymous.Methods = []string{"*"}
	cfg.Health.PollTimeout = Duration(500 * time.Millisecond)
	cfg.Health.MaxLatency = Duration(450 * time.Millisecond)
	cfg.Health.StallTimeout = Duration(2 * time.Second)
	cfg.Health.FallAfter, cfg.Health.RiseAfter = 2, 2
	cfg.Limits.Timeout = Duration(5 * time.Second)
	for _, n := range nodes {
		role := RolePrimary
		if strings.HasPrefix(n.name, "fb") {
			role = RoleFallback
		}
		cfg.Upstreams = append(cfg.Upstreams, UpstreamConfig{Name: n.name, URL: n.url(), Role: role})
	}
	return cfg
}

func newHarness(t *testing.T, nodes []*fakeNode, mutate func(*Config)) *harness {
	t.Helper()
	cfg := testConfig(nodes)
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, g: g, reg: reg, nodes: nodes, now: time.Unix(1_700_000_000, 0)}
	h.front.URL = testFront(t, g)
	return h
}

// testFront serves g's JSON-RPC front on a loopback port until the test
// ends and returns its URL.
func testFront(t testing.TB, g *Gateway) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.serveFront(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("front: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// poll runs k health rounds, one poll interval apart.
func (h *harness) poll(k int) {
	for range k {
		h.now = h.now.Add(h.g.rt.Load().cfg.Health.PollInterval.Std())
		h.g.pollOnce(h.t.Context(), h.now)
	}
}

func (h *harness) resetCalls() {
	for _, n := range h.nodes {
		n.calls.Store(0)
	}
}

// post sends a raw body to path with headers and returns status and body.
func (h *harness) post(path, body string, hdr map[string]string) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequestWithContext(h.t.Context(), http.MethodPost, h.front.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// call sends one JSON-RPC call and decodes the answer.
func (h *harness) call(path, method, params string, hdr map[string]string) (int, rpcResponse) {
	h.t.Helper()
	if params == "" {
		params = "[]"
	}
	status, _, b := h.post(path, fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":%s}`, method, params), hdr)
	var resp rpcResponse
	if err := json.Unmarshal(b, &resp); err != nil {
		h.t.Fatalf("answer %q is not JSON-RPC: %v", b, err)
	}
	return status, resp
}

// clientVersion asks which upstream serves a call.
func (h *harness) clientVersion() (string, *rpcError) {
	h.t.Helper()
	_, resp := h.call("/", "web3_clientVersion", "", nil)
	if resp.Error != nil {
		return "", resp.Error
	}
	var s string
	json.Unmarshal(resp.Result, &s)
	return s, nil
}

// metricValue returns the value of a collector holding one gauge or counter.
func metricValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
