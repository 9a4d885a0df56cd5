package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hansa-chain/hansa/internal/e2etest"
	"github.com/hansa-chain/hansa/internal/gateway"
)

// Against real geth --dev processes: the gateway routes to both, keeps every
// call succeeding when one is killed, and sends traffic to it again once it
// is back.
func TestGatewayFailoverWithRealGeth(t *testing.T) {
	bin := e2etest.GethBinary(t)
	geths := []*e2etest.Geth{e2etest.StartGeth(t, bin), e2etest.StartGeth(t, bin)}

	cfg := gateway.DefaultConfig()
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = "127.0.0.1:0", "", ""
	cfg.ChainID = 1337
	cfg.AllowAnonymous = true
	cfg.Health.PollInterval = gateway.Duration(100 * time.Millisecond)
	cfg.Health.FallAfter, cfg.Health.RiseAfter = 2, 2
	cfg.Upstreams = []gateway.UpstreamConfig{
		{Name: "geth-a", URL: geths[0].RPCURL()},
		{Name: "geth-b", URL: geths[1].RPCURL()},
	}
	reg := prometheus.NewRegistry()
	g, err := gateway.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	})
	addrs, err := g.Addrs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addrs.HTTP

	waitHealthy := func(want map[string]bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ok := true
			for _, u := range g.Upstreams() {
				ok = ok && u.Healthy == want[u.Name]
			}
			if ok {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("upstream health never became %v: %+v", want, g.Upstreams())
	}
	calls := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			var out struct {
				Result string          `json:"result"`
				Error  json.RawMessage `json:"error"`
			}
			resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`))
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || out.Result != "0x539" {
				t.Fatalf("call %d through the gateway: status %d result %q error %s (%v)", i, resp.StatusCode, out.Result, out.Error, err)
			}
		}
	}
	served := func() map[string]float64 {
		out := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "hansa_gateway_upstream_requests_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				var up, outcome string
				for _, l := range m.GetLabel() {
					switch l.GetName() {
					case "upstream":
						up = l.GetValue()
					case "outcome":
						outcome = l.GetValue()
					}
				}
				if outcome == "ok" {
					out[up] += m.GetCounter().GetValue()
				}
			}
		}
		return out
	}

	waitHealthy(map[string]bool{"geth-a": true, "geth-b": true})
	calls(100)
	before := served()
	if before["geth-a"] == 0 || before["geth-b"] == 0 {
		t.Fatalf("traffic not spread over both upstreams: %v", before)
	}

	// Kill one: every call still succeeds, and it leaves the rotation.
	geths[0].Kill()
	calls(100)
	waitHealthy(map[string]bool{"geth-a": false, "geth-b": true})
	mid := served()
	calls(50)
	if after := served(); after["geth-a"] != mid["geth-a"] {
		t.Fatalf("a dead upstream still got traffic: %v then %v", mid, after)
	}

	// Bring it back on the same address: it returns to the rotation.
	geths[0].Restart()
	waitHealthy(map[string]bool{"geth-a": true, "geth-b": true})
	back := served()
	calls(200)
	if after := served(); after["geth-a"] <= back["geth-a"] {
		t.Fatalf("the restarted upstream got no traffic: %v then %v", back, after)
	}
}
