//go:build !linux

package gateway

import (
	"context"
	"net"

	"github.com/valyala/fasthttp"
)

// The event-loop front needs epoll: elsewhere the fasthttp server serves
// every connection.

type loopTarget struct{}

func newLoopTarget(UpstreamConfig, string, string, string, string, bool) *loopTarget { return nil }

func loopsFor(int) int { return 0 }

func (g *Gateway) serveLoops(context.Context, net.Listener, *fasthttp.Server, int, int64) (bool, error) {
	return false, nil
}
