package telemetry_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/hansa-chain/hansa/internal/telemetry"
)

// ExampleNewOpsHandler exposes metrics and probes for a process that is alive
// but not ready yet.
func ExampleNewOpsHandler() {
	logger := telemetry.NewLogger(os.Stderr, slog.LevelInfo, "json")
	reg := telemetry.NewRegistry()
	ready := func() error { return errors.New("starting") }
	srv := httptest.NewServer(telemetry.NewOpsHandler(reg, nil, ready))
	defer srv.Close()
	logger.Debug("ops endpoint up", "addr", srv.URL)

	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d %s", path, resp.StatusCode, body)
	}
	// Output:
	// /healthz 200 ok
	// /readyz 503 starting
}
