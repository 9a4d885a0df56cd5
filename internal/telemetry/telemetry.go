// Package telemetry sets up what every Hansa process exposes to its operator:
// structured logs (log/slog), a Prometheus registry, and the ops HTTP endpoints
// /metrics, /healthz and /readyz.
//
// Invariants: nothing here touches global state (no slog.SetDefault, no
// prometheus.DefaultRegisterer); main builds one logger and one registry and
// passes them down. The ops handler only reads: it calls the health and
// readiness functions it was given and gathers the registry it was given.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// NewLogger returns a logger writing to w at the given minimum level, as
// logfmt-like text when format is "text" (or empty) and as one JSON object per
// line when format is "json". Any other format is treated as "text"; use
// ParseFormat to reject unknown formats at configuration time.
func NewLogger(w io.Writer, level slog.Level, format string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(format, "json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ParseFormat validates a log format name and returns it in canonical form
// ("text" or "json"); the empty string means "text".
func ParseFormat(format string) (string, error) {
	switch strings.ToLower(format) {
	case "", "text":
		return "text", nil
	case "json":
		return "json", nil
	}
	return "", fmt.Errorf("telemetry: unknown log format %q (want text or json)", format)
}

// ParseLevel parses a log level name: debug, info, warn or error (any case).
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("telemetry: unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// NewRegistry returns a fresh Prometheus registry with the Go runtime and
// process collectors registered. Components register their own metrics
// structs on it; it is never the global default registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
