package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/valyala/fasthttp"
)

// maxUpstreamResponse bounds an upstream answer the gateway reads.
const maxUpstreamResponse = 128 << 20

// errClosedBeforeAnswer: the connection closed before the first byte of
// the answer, most likely a kept-alive connection the upstream closed
// while idle (the request then never reached it).
var errClosedBeforeAnswer = errors.New("connection closed before the answer")

// errUpstream marks a failure to get an answer from an upstream (transport
// error, timeout, HTTP error status, unreadable body): the call may be
// retried elsewhere if it is safe to.
var errUpstream = errors.New("upstream failed")

// upstream is one node behind the gateway. Its config is immutable; the
// counters and the published health are atomics written by the proxy (in
// flight, latency, calls), by the health runner (health and head) and,
// under Gateway.upMu, by the membership round (excluded, draining).
type upstream struct {
	cfg    UpstreamConfig
	source string       // "config", "admin" or "membership"
	client *http.Client // health polls
	// calls carries the proxied JSON-RPC calls: fasthttp's client writes
	// the request and reads the answer on the calling goroutine, where
	// net/http hands each call to two connection goroutines and back
	// (measured: 0.45x -> see docs/gateway-benchmark.md).
	rpc *fasthttp.HostClient
	// direct is rpc's twin on blocking connections, for the few calls
	// the gate admits (lower latency while the gateway is lightly loaded).
	direct *fasthttp.HostClient
	gate   *directGate
	// loop is how the event-loop front reaches the upstream itself (nil:
	// the loops hand every connection to fasthttp while it is in the
	// rotation, and calls to it go through rpc).
	loop  *loopTarget
	auth  string   // Authorization from the URL's user info, if any
	batch *batcher // sends calls through rpc, alone or in batches

	// excluded: the cluster reports the member catching up, down or
	// unknown; draining: the member is leaving or no longer listed. Either
	// keeps new calls away, whatever the upstream's own health.
	excluded atomic.Bool
	draining atomic.Bool

	inFlight atomic.Int64
	latency  atomic.Int64 // moving average of call latency, ns
	calls    atomic.Int64 // since the last poll
	failures atomic.Int64 // since the last poll

	healthy atomic.Bool
	head    atomic.Uint64
	health  atomic.Pointer[Health] // last judgement, for the admin API
}

// newUpstream builds an upstream; m, when set, counts its batches; gate,
// when set, lets some calls use blocking connections.
func newUpstream(cfg UpstreamConfig, source string, client *http.Client, m *Metrics, gate *directGate) *upstream {
	u := &upstream{cfg: cfg, source: source, client: client, gate: gate}
	u.health.Store(&Health{})
	// The URL was validated with the config: http(s) with a host.
	parsed, _ := url.Parse(cfg.URL)
	host, tlsOn := parsed.Host, parsed.Scheme == "https"
	if parsed.Port() == "" {
		if tlsOn {
			host = net.JoinHostPort(parsed.Hostname(), "443")
		} else {
			host = net.JoinHostPort(parsed.Hostname(), "80")
		}
	}
	if parsed.User != nil {
		pass, _ := parsed.User.Password()
		u.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(parsed.User.Username()+":"+pass))
	}
	u.loop = newLoopTarget(cfg, host, parsed.Host, parsed.RequestURI(), u.auth, tlsOn)
	u.rpc = &fasthttp.HostClient{
		Addr:                          host,
		Name:                          "hansa-gateway",
		IsTLS:                         tlsOn,
		TLSConfig:                     &tls.Config{ServerName: parsed.Hostname(), MinVersion: tls.VersionTLS12},
		MaxConns:                      1024,
		MaxIdleConnDuration:           30 * time.Second,
		MaxResponseBodySize:           maxUpstreamResponse,
		DisableHeaderNamesNormalizing: true,
		DisablePathNormalizing:        true,
		NoDefaultUserAgentHeader:      true,
		// Never resend a call on a broken connection: a transaction send
		// may have reached the node (the proxy decides what to retry).
		RetryIfErr: func(*fasthttp.Request, int, error) (bool, bool) { return false, false },
	}
	if gate != nil {
		u.direct = &fasthttp.HostClient{
			Addr: u.rpc.Addr, Name: u.rpc.Name, IsTLS: u.rpc.IsTLS, TLSConfig: u.rpc.TLSConfig,
			MaxConns:                      maxDirectCalls,
			MaxIdleConnDuration:           u.rpc.MaxIdleConnDuration,
			MaxResponseBodySize:           u.rpc.MaxResponseBodySize,
			DisableHeaderNamesNormalizing: true,
			DisablePathNormalizing:        true,
			NoDefaultUserAgentHeader:      true,
			RetryIfErr:                    u.rpc.RetryIfErr,
			// The call's own time bounds the dial, as with rpc's default dialer.
			DialTimeout: func(addr string, timeout time.Duration) (net.Conn, error) {
				if timeout <= 0 {
					timeout = fasthttp.DefaultDialTimeout
				}
				return dialBlocking(&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}, addr)
			},
		}
	}
	u.batch = newBatcher(cfg.BatchMax, cfg.BatchSlots, u.post)
	if m != nil {
		batches, calls := m.UpstreamBatches.WithLabelValues(cfg.Name), m.BatchedCalls.WithLabelValues(cfg.Name)
		u.batch.onBatch = func(n int) {
			batches.Inc()
			calls.Add(float64(n))
		}
	}
	return u
}

func (u *upstream) candidate() Candidate {
	return Candidate{Role: u.cfg.Role, Healthy: u.healthy.Load(), Head: u.head.Load(),
		InFlight: u.inFlight.Load(), Latency: u.latency.Load(), Excluded: !u.routable()}
}

// routable reports whether the membership lets new calls reach the
// upstream (always true for upstreams not taken from a membership).
func (u *upstream) routable() bool { return !u.excluded.Load() && !u.draining.Load() }

// call sends one call (through the batcher) and returns its answer.
// Errors wrapping errUpstream mean no usable answer came back.
func (u *upstream) call(ctx context.Context, method string, params json.RawMessage) (*rpcResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", errUpstream, err)
	}
	return u.batch.do(ctx, method, params)
}

// post sends one request body with fasthttp's client and returns the
// status and a copy of the answer.
func (u *upstream) post(deadline time.Time, body []byte) (int, []byte, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(u.cfg.URL)
	req.Header.SetMethod(http.MethodPost)
	req.Header.SetContentType("application/json")
	if u.auth != "" {
		req.Header.Set("Authorization", u.auth)
	}
	req.SetBodyRaw(body)
	hc := u.rpc
	if u.direct != nil && u.gate.enter() {
		defer u.gate.leave()
		hc = u.direct
	}
	if err := hc.DoDeadline(req, resp, deadline); err != nil {
		if errors.Is(err, fasthttp.ErrTimeout) {
			// Its timer may fire just before the context's: report the
			// deadline either way.
			err = context.DeadlineExceeded
		}
		if errors.Is(err, fasthttp.ErrConnectionClosed) {
			err = fmt.Errorf("%w: %w", errClosedBeforeAnswer, err)
		}
		return 0, nil, err
	}
	return resp.StatusCode(), bytes.Clone(resp.Body()), nil
}

// defaultUpstreamTimeout bounds a call whose context has no deadline.
const defaultUpstreamTimeout = 30 * time.Second

// forward sends one call and keeps the counters; see call.
func (u *upstream) forward(ctx context.Context, method string, params json.RawMessage, m *Metrics) (*rpcResponse, error) {
	start := u.begin()
	resp, err := u.call(ctx, method, params)
	u.end(start, resp, err, m)
	return resp, err
}

// begin counts a call sent to the upstream; end counts its outcome.
func (u *upstream) begin() time.Time {
	u.inFlight.Add(1)
	return time.Now()
}

func (u *upstream) end(start time.Time, resp *rpcResponse, err error, m *Metrics) {
	u.inFlight.Add(-1)
	u.calls.Add(1)
	outcome := "ok"
	switch {
	case err != nil:
		u.failures.Add(1)
		outcome = "failed"
	case resp.Error != nil:
		outcome = "rpc_error"
	}
	if err == nil {
		u.observeLatency(time.Since(start))
	}
	m.UpstreamRequests.WithLabelValues(u.cfg.Name, outcome).Inc()
}

// observeLatency folds one latency into the moving average (weight 1/8).
// Racing updates may lose a sample, which is harmless.
func (u *upstream) observeLatency(d time.Duration) {
	old := u.latency.Load()
	if old == 0 {
		u.latency.Store(int64(d))
		return
	}
	u.latency.Store(old + (int64(d)-old)/8)
}

// poll asks the upstream for its chain id, head and sync state in one batch.
func (u *upstream) poll(ctx context.Context) Sample {
	const body = `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},` +
		`{"jsonrpc":"2.0","id":2,"method":"eth_blockNumber"},` +
		`{"jsonrpc":"2.0","id":3,"method":"eth_syncing"}]`
	start := time.Now()
	s := Sample{Calls: int(u.calls.Swap(0)), Failures: int(u.failures.Swap(0))}
	fail := func(err error) Sample {
		s.Err = err.Error()
		s.Latency = time.Since(start)
		return s
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.cfg.URL, strings.NewReader(body))
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := u.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fail(fmt.Errorf("HTTP %d", resp.StatusCode))
	}
	var answers []rpcResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&answers); err != nil {
		return fail(fmt.Errorf("bad answer: %v", err))
	}
	byID := map[string]*rpcResponse{}
	for i := range answers {
		byID[string(answers[i].ID)] = &answers[i]
	}
	for _, id := range []string{"1", "2", "3"} {
		a := byID[id]
		if a == nil || a.Error != nil {
			return fail(fmt.Errorf("no answer to call %s of the health batch", id))
		}
	}
	var chainID, head hexutil.Uint64
	if err := json.Unmarshal(byID["1"].Result, &chainID); err != nil {
		return fail(fmt.Errorf("eth_chainId: %v", err))
	}
	if err := json.Unmarshal(byID["2"].Result, &head); err != nil {
		return fail(fmt.Errorf("eth_blockNumber: %v", err))
	}
	s.OK, s.ChainID, s.Head = true, uint64(chainID), uint64(head)
	s.Syncing = syncing(byID["3"].Result)
	s.Latency = time.Since(start)
	u.observeLatency(s.Latency)
	return s
}

// syncing reads an eth_syncing result: false, or a progress object. A node
// counts as syncing only while it is still fetching blocks (highestBlock
// above currentBlock); geth also reports background work such as transaction
// or state indexing there, with its head current, and such a node serves
// correct answers. Any other shape counts as syncing.
func syncing(result json.RawMessage) bool {
	if strings.TrimSpace(string(result)) == "false" {
		return false
	}
	var p struct {
		CurrentBlock *hexutil.Uint64 `json:"currentBlock"`
		HighestBlock *hexutil.Uint64 `json:"highestBlock"`
	}
	if err := json.Unmarshal(result, &p); err != nil || p.CurrentBlock == nil || p.HighestBlock == nil {
		return true
	}
	return *p.HighestBlock > *p.CurrentBlock
}
