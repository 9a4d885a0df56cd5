package rpc

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Outcome label values of hansa_rpc_requests_total.
const (
	srvOutcomeOK       = "ok"        // a result was returned (or a notification was accepted)
	srvOutcomeError    = "error"     // the method (or the dispatcher) answered a JSON-RPC error
	srvOutcomeInvalid  = "invalid"   // parse error or invalid request (-32700, -32600)
	srvOutcomeTimeout  = "timeout"   // the call timeout passed (-32002)
	srvOutcomeTooLarge = "too_large" // request body or response over its limit (-32003, HTTP 413)
)

// srvMethodUnknown is the method label of calls to names that are not
// registered (and of requests whose method could not be read), so that
// clients cannot grow the label set.
const srvMethodUnknown = "unknown"

// srvMethodBatch is the method label under which a whole batch's duration is
// observed.
const srvMethodBatch = "batch"

// serverMetrics are the JSON-RPC server's Prometheus metrics.
//
// Label values are bounded: method is a registered method name, "unknown" or
// (for durations) "batch"; outcome is one of ok, error, invalid, timeout,
// too_large.
type serverMetrics struct {
	// Requests counts JSON-RPC calls (each batch item counts once) by
	// method and outcome.
	Requests *prometheus.CounterVec
	// Duration observes the handling time of single calls by method, and of
	// whole batches under method="batch".
	Duration *prometheus.HistogramVec
	// Inflight is the number of HTTP requests being handled.
	Inflight prometheus.Gauge
	// BatchSize observes the number of items of each batch request.
	BatchSize prometheus.Histogram
	// WSConnections is the number of open WebSocket connections.
	WSConnections prometheus.Gauge
	// WSConnectionsTotal counts accepted WebSocket upgrade attempts.
	WSConnectionsTotal prometheus.Counter
}

// newServerMetrics builds the metrics and registers them on reg (nil = do
// not register).
func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hansa_rpc_requests_total",
			Help: "JSON-RPC calls handled, by method and outcome (ok, error, invalid, timeout, too_large).",
		}, []string{"method", "outcome"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hansa_rpc_request_duration_seconds",
			Help:    "Handling time of single JSON-RPC calls by method, and of whole batches (method=\"batch\").",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"method"}),
		Inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hansa_rpc_inflight",
			Help: "HTTP JSON-RPC requests being handled.",
		}),
		BatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hansa_rpc_batch_size",
			Help:    "Number of items in JSON-RPC batch requests.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}),
		WSConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hansa_rpc_ws_connections",
			Help: "Open JSON-RPC WebSocket connections.",
		}),
		WSConnectionsTotal: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hansa_rpc_ws_connections_total",
			Help: "JSON-RPC WebSocket connection attempts.",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.Requests, m.Duration, m.Inflight, m.BatchSize, m.WSConnections, m.WSConnectionsTotal} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// srvOutcomeOf maps a JSON-RPC error code (0 = no error) to an outcome label.
func srvOutcomeOf(code int) string {
	switch code {
	case 0:
		return srvOutcomeOK
	case -32700, -32600:
		return srvOutcomeInvalid
	case srvCodeTimeout:
		return srvOutcomeTimeout
	case srvCodeResponseTooLarge:
		return srvOutcomeTooLarge
	}
	return srvOutcomeError
}
