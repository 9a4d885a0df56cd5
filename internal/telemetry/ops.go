package telemetry

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HealthFunc reports whether the process is alive and serving: nil means
// healthy, an error says why not. It must be cheap and safe for concurrent use.
type HealthFunc func() error

// ReadyFunc reports whether the process should receive traffic (for a node:
// caught up and not diverged): nil means ready, an error says why not (for
// example "starting" or "diverged"). It must be cheap and safe for concurrent use.
type ReadyFunc func() error

// probeStatus is the JSON body of a /healthz or /readyz answer.
type probeStatus struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// NewOpsHandler returns the operator HTTP handler:
//
//   - GET /metrics: the gatherer's metrics in the Prometheus exposition format;
//   - GET /healthz: 200 "ok" while health returns nil, else 503 with the reason;
//   - GET /readyz: 200 "ok" while ready returns nil, else 503 with the reason.
//
// /healthz and /readyz answer plain text by default and JSON
// ({"status":"ok"} or {"status":"unavailable","reason":"..."}) when the
// request's Accept header asks for application/json. A nil health or ready
// function counts as always healthy or always ready.
func NewOpsHandler(reg prometheus.Gatherer, health HealthFunc, ready ReadyFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("GET /healthz", probeHandler(health))
	mux.Handle("GET /readyz", probeHandler(ready))
	return mux
}

// probeHandler answers a health or readiness probe from check.
func probeHandler(check func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var err error
		if check != nil {
			err = check()
		}
		w.Header().Set("Cache-Control", "no-store")
		code, st := http.StatusOK, probeStatus{Status: "ok"}
		if err != nil {
			code, st = http.StatusServiceUnavailable, probeStatus{Status: "unavailable", Reason: err.Error()}
		}
		if wantsJSON(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_ = json.NewEncoder(w).Encode(st)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(code)
		if err != nil {
			_, _ = w.Write([]byte(st.Reason + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// wantsJSON reports whether the client asked for a JSON answer.
func wantsJSON(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		if containsToken(v, "application/json") {
			return true
		}
	}
	return false
}

// containsToken reports whether a comma-separated header value lists media
// type mt (parameters such as ;q=0.9 are ignored).
func containsToken(v, mt string) bool {
	for part := range strings.SplitSeq(v, ",") {
		part, _, _ = strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(part), mt) {
			return true
		}
	}
	return false
}
