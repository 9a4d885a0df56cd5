package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkProxy measures one eth_blockNumber call sent directly to an
// httptest upstream and through the gateway (keyed, allowlisted, rate
// limited, routed), sequentially and from parallel clients. The difference
// is the gateway's added latency; p50 and p99 are reported per op.
func BenchmarkProxy(b *testing.B) {
	up := newFakeNode(b, "up", newTxPool())
	cfg := testConfig([]*fakeNode{up})
	cfg.AllowAnonymous = false
	cfg.Keys = []KeyConfig{{Name: "bench", Key: "bench-secret", Methods: []string{"eth_*"}, Rate: 1e9}}
	g, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	g.pollOnce(b.Context(), time.Now())
	front := testFront(b, g)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`)
	do := func(b *testing.B, url string) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-API-Key", "bench-secret")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("HTTP %d", resp.StatusCode)
		}
	}
	for _, target := range []struct{ name, url string }{{"direct", up.url()}, {"gateway", front}} {
		b.Run(target.name+"/serial", func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				do(b, target.url)
				lat = append(lat, time.Since(start))
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
		b.Run(target.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					do(b, target.url)
				}
			})
		})
	}
}
