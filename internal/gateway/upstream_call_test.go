package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The upstream client sends the call as the upstream's URL says (path
// kept, user info as basic auth, no compression asked), reads plain and
// chunked answers, turns HTTP failures into errUpstream, honours the
// context's deadline, and never sends a call twice on its own: on
// netpoller connections and on blocking ones (directGate) alike.
func TestUpstreamCall(t *testing.T) {
	t.Run("netpoller", func(t *testing.T) { testUpstreamCall(t, nil) })
	gate := &directGate{}
	gate.limit.Store(1)
	t.Run("blocking", func(t *testing.T) { testUpstreamCall(t, gate) })
}

func testUpstreamCall(t *testing.T, gate *directGate) {
	var hits atomic.Int64
	var mode atomic.Value
	release := make(chan struct{}) // holds the "slow" upstream's answer
	mode.Store("ok")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		switch mode.Load().(string) {
		case "ok":
			want := "Basic " + base64.StdEncoding.EncodeToString([]byte("user:pass"))
			if r.URL.Path != "/v3/secret" || r.Header.Get("Authorization") != want || r.Header.Get("Content-Type") != "application/json" ||
				r.Header.Get("Accept-Encoding") != "" || string(body) != `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}` {
				http.Error(w, "unexpected request", http.StatusBadRequest)
				return
			}
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":"0x2a"}`)
		case "chunked":
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":"0x`)
			w.(http.Flusher).Flush() // forces chunked encoding
			_, _ = io.WriteString(w, strings.Repeat("ab", 50_000)+`"}`)
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
		case "slow":
			<-release
		case "hangup":
			hj, _ := w.(http.Hijacker)
			c, _, _ := hj.Hijack()
			_ = c.Close()
		}
	}))
	defer srv.Close()
	u := newUpstream(UpstreamConfig{Name: "n", URL: strings.Replace(srv.URL, "http://", "http://user:pass@", 1) + "/v3/secret"}, "config", http.DefaultClient, nil, gate)
	resp, err := u.call(t.Context(), "eth_blockNumber", nil)
	if err != nil || string(resp.Result) != `"0x2a"` || string(resp.ID) != "1" {
		t.Fatalf("plain answer: %+v, %v", resp, err)
	}
	// The call went over the kind of connection the gate chose.
	direct, pooled := 0, u.rpc.ConnsCount()
	if u.direct != nil {
		direct = u.direct.ConnsCount()
	}
	if want := gate != nil; (direct == 1) != want || (pooled == 1) == want {
		t.Fatalf("connections after one call: %d blocking, %d netpoller (gate %v)", direct, pooled, want)
	}
	mode.Store("chunked")
	resp, err = u.call(t.Context(), "eth_blockNumber", nil)
	if err != nil || len(resp.Result) != 100_004 {
		t.Fatalf("chunked answer: %v (result of %d bytes)", err, len(resp.Result))
	}
	mode.Store("500")
	if _, err := u.call(t.Context(), "eth_blockNumber", nil); !errors.Is(err, errUpstream) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("HTTP 500 without a JSON-RPC answer: %v", err)
	}
	// The upstream never answers until released: only the context's
	// deadline can end the call.
	mode.Store("slow")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	_, err = u.call(ctx, "eth_blockNumber", nil)
	cancel()
	close(release)
	if !errors.Is(err, errUpstream) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent upstream: %v, want errUpstream wrapping the deadline", err)
	}
	// A connection closed before any answer is most likely a kept-alive
	// one the upstream closed while idle: a call the proxy would retry
	// anyway is sent once more, a write never.
	mode.Store("hangup")
	for method, sends := range map[string]int64{"eth_blockNumber": 2, "eth_sendTransaction": 1} {
		before := hits.Load()
		if _, err := u.call(t.Context(), method, nil); !errors.Is(err, errUpstream) || !errors.Is(err, errClosedBeforeAnswer) {
			t.Fatalf("hang-up on %s: %v", method, err)
		}
		if got := hits.Load() - before; got != sends {
			t.Fatalf("%s cut off by the upstream was sent %d times, want %d", method, got, sends)
		}
	}
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := u.call(cancelled, "eth_blockNumber", nil); !errors.Is(err, errUpstream) {
		t.Fatalf("cancelled context: %v", err)
	}
}
