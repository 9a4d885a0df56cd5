package gateway

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the gateway's Prometheus metrics:
//
//   - hansa_gateway_requests_total{method,status,key}: calls answered, by
//     method (unknown methods count as "other"), outcome and key name;
//   - hansa_gateway_request_duration_seconds{method}: time to answer a call;
//   - hansa_gateway_upstream_requests_total{upstream,outcome}: calls sent
//     upstream ("ok", "rpc_error", "failed");
//   - hansa_gateway_upstream_head{upstream}, _lag_blocks, _healthy (0/1),
//     _in_flight: each upstream's last head, lag behind the corroborated
//     head, health and calls in flight;
//   - hansa_gateway_healthy_upstreams: healthy primaries;
//   - hansa_gateway_corroborated_head: the head lag is measured against;
//   - hansa_gateway_fallback_active: 1 while no primary is healthy;
//   - hansa_gateway_failovers_total: upstreams that turned unhealthy;
//   - hansa_gateway_retries_total{method}: calls retried on another upstream;
//   - hansa_gateway_alerts_total{outcome}: webhook alerts sent or dropped;
//   - hansa_gateway_membership_polls_total{result}: membership_status polls
//     ("ok", or "error" when no admin URL gave a usable answer);
//   - hansa_gateway_membership_members{health}: members of the cluster by
//     the health it reports ("up", "catching-up", "down", "unknown");
//   - hansa_gateway_draining_upstreams: upstreams drained out of the
//     membership and not yet removed.
type Metrics struct {
	Requests          *prometheus.CounterVec
	Duration          *prometheus.HistogramVec
	UpstreamRequests  *prometheus.CounterVec
	UpstreamBatches   *prometheus.CounterVec
	BatchedCalls      *prometheus.CounterVec
	UpstreamHead      *prometheus.GaugeVec
	UpstreamLag       *prometheus.GaugeVec
	UpstreamHealthy   *prometheus.GaugeVec
	UpstreamInFlight  *prometheus.GaugeVec
	HealthyCount      prometheus.Gauge
	Head              prometheus.Gauge
	FallbackActive    prometheus.Gauge
	Failovers         prometheus.Counter
	Retries           *prometheus.CounterVec
	Alerts            *prometheus.CounterVec
	FrontLoopRequests prometheus.Counter
	FrontHandoffs     prometheus.Counter

	MembershipPolls   *prometheus.CounterVec
	MembershipMembers *prometheus.GaugeVec
	DrainingUpstreams prometheus.Gauge
}

// NewMetrics creates the gateway's metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "hansa", "gateway"
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "requests_total", Help: "JSON-RPC calls answered, by method, status and key."},
			[]string{"method", "status", "key"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "request_duration_seconds", Help: "Time to answer one JSON-RPC call.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
			[]string{"method"}),
		UpstreamRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_requests_total", Help: "Calls sent to each upstream, by outcome."},
			[]string{"upstream", "outcome"}),
		UpstreamBatches: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_batches_total", Help: "Requests that carried several calls to each upstream as one JSON-RPC batch (batch_max)."},
			[]string{"upstream"}),
		BatchedCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_batched_calls_total", Help: "Calls sent to each upstream inside such batches."},
			[]string{"upstream"}),
		UpstreamHead: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_head", Help: "Last head block number each upstream reported."}, []string{"upstream"}),
		UpstreamLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_lag_blocks", Help: "Blocks each upstream is behind the corroborated head."}, []string{"upstream"}),
		UpstreamHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_healthy", Help: "1 if the upstream is healthy, else 0."}, []string{"upstream"}),
		UpstreamInFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "upstream_in_flight", Help: "Calls in flight to each upstream."}, []string{"upstream"}),
		HealthyCount: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "healthy_upstreams", Help: "Number of healthy primary upstreams."}),
		Head: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "corroborated_head", Help: "Head block number corroborated by enough upstreams."}),
		FallbackActive: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "fallback_active", Help: "1 while no primary is healthy and fallbacks serve traffic."}),
		Failovers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "failovers_total", Help: "Upstreams that turned unhealthy and left the rotation."}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "retries_total", Help: "Calls retried on another upstream, by method."}, []string{"method"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "alerts_total", Help: "Webhook alerts, by outcome (sent, failed, dropped)."}, []string{"outcome"}),
		FrontLoopRequests: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "front_loop_requests_total", Help: "HTTP requests an event loop of the front answered itself " +
				"(single calls forwarded on its own connections, and their refusals)."}),
		FrontHandoffs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "front_handoffs_total", Help: "Client connections an event loop of the front handed to the fasthttp server: " +
				"HTTP it does not read itself (WebSocket upgrades, chunked bodies, Expect, HTTP/1.0, ...), batches, " +
				"transaction sends, filter calls, or any call while an upstream is one it does not dial."}),
		MembershipPolls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "membership_polls_total", Help: "Polls of the cluster's membership_status, by result (ok, error)."},
			[]string{"result"}),
		MembershipMembers: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "membership_members", Help: "Members of the cluster, by the health the cluster reports."},
			[]string{"health"}),
		DrainingUpstreams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "draining_upstreams", Help: "Upstreams leaving the membership, drained but not yet removed."}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.UpstreamRequests, m.UpstreamBatches, m.BatchedCalls, m.UpstreamHead, m.UpstreamLag,
		m.UpstreamHealthy, m.UpstreamInFlight, m.HealthyCount, m.Head, m.FallbackActive, m.Failovers,
		m.Retries, m.Alerts, m.FrontLoopRequests, m.FrontHandoffs, m.MembershipPolls, m.MembershipMembers, m.DrainingUpstreams)
	return m
}

// forget drops an upstream's labelled series once it is removed.
func (m *Metrics) forget(name string) {
	for _, v := range []*prometheus.GaugeVec{m.UpstreamHead, m.UpstreamLag, m.UpstreamHealthy, m.UpstreamInFlight} {
		v.DeleteLabelValues(name)
	}
	for _, v := range []*prometheus.CounterVec{m.UpstreamRequests, m.UpstreamBatches, m.BatchedCalls} {
		v.DeletePartialMatch(prometheus.Labels{"upstream": name})
	}
}

// knownMethods bounds the method label of the request metrics.
var knownMethods = func() map[string]bool {
	s := map[string]bool{}
	for _, m := range []string{
		"eth_blockNumber", "eth_chainId", "eth_syncing", "eth_gasPrice", "eth_maxPriorityFeePerGas",
		"eth_blobBaseFee", "eth_feeHistory", "eth_getBalance", "eth_getCode", "eth_getStorageAt",
		"eth_getTransactionCount", "eth_call", "eth_estimateGas", "eth_createAccessList", "eth_getProof",
		"eth_getBlockByNumber", "eth_getBlockByHash", "eth_getBlockReceipts",
		"eth_getBlockTransactionCountByNumber", "eth_getBlockTransactionCountByHash",
		"eth_getTransactionByHash", "eth_getTransactionReceipt", "eth_getTransactionByBlockNumberAndIndex",
		"eth_getTransactionByBlockHashAndIndex", "eth_getLogs", "eth_sendRawTransaction",
		"eth_sendTransaction", "eth_newFilter", "eth_newBlockFilter", "eth_newPendingTransactionFilter",
		"eth_getFilterChanges", "eth_getFilterLogs", "eth_uninstallFilter", "eth_subscribe",
		"eth_unsubscribe", "eth_accounts", "net_version", "net_listening", "net_peerCount",
		"web3_clientVersion", "web3_sha3", "debug_traceTransaction", "debug_traceCall",
		"debug_traceBlockByNumber", "txpool_status", "txpool_content",
	} {
		s[m] = true
	}
	return s
}()

func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return "other"
}
