package telemetry

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Timeouts of the HTTP servers Serve runs. Reading a request (headers and
// body) is bounded; writing is bounded by the handlers themselves (the
// JSON-RPC server has its own call timeout, and WebSocket connections, whose
// deadlines are cleared on upgrade, are long-lived).
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
	maxHeaderBytes    = 1 << 20
)

// Serve runs an HTTP server for h on ln until ctx ends, then shuts it down
// gracefully: it stops accepting, lets in-flight requests finish for a few
// seconds, and then closes what is left. It returns nil after a shutdown
// caused by ctx, or the error that stopped the server otherwise. Serve closes
// ln. Errors inside the server are logged to logger at debug level.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	logger.Info("http server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}

	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		// In-flight requests outlived the grace period: cut them off.
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	logger.Info("http server stopped", "addr", ln.Addr().String())
	if errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
