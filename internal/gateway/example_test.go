package gateway_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hansa-chain/hansa/internal/gateway"
)

// ExampleNew puts a gateway in front of one Ethereum JSON-RPC node (here a
// stub that answers every call with chain id 1337 and head 0x10) and sends
// it a keyed call and one without a key. Run binds the listeners and
// polls health until its context ends.
func ExampleNew() {
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if strings.HasPrefix(string(body), "[") { // the health poll's batch
			fmt.Fprint(w, `[{"jsonrpc":"2.0","id":1,"result":"0x539"},{"jsonrpc":"2.0","id":2,"result":"0x10"},{"jsonrpc":"2.0","id":3,"result":false}]`)
			return
		}
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":"0x10"}`)
	}))
	defer node.Close()

	cfg := gateway.DefaultConfig()
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = "127.0.0.1:0", "", ""
	cfg.ChainID = 1337
	cfg.Upstreams = []gateway.UpstreamConfig{{Name: "node0", URL: node.URL}}
	cfg.Keys = []gateway.KeyConfig{{Name: "app", Key: "app-secret-key", Methods: []string{"eth_*"}}}
	g, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	addrs, _ := g.Addrs(ctx)
	for g.Ready() != nil { // the first health poll runs at once
		time.Sleep(time.Millisecond)
	}

	for _, path := range []string{"/v1/app-secret-key", "/"} {
		resp, err := http.Post("http://"+addrs.HTTP+path, "application/json",
			strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`))
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	cancel()
	<-done
	// Output:
	// 200 {"jsonrpc":"2.0","id":1,"result":"0x10"}
	// 401 {"jsonrpc":"2.0","id":null,"error":{"code":-32001,"message":"unauthorized: API key required (X-API-Key header or /v1/KEY)"}}
}
