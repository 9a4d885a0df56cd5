package rpc

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// fuzzService is the trivial receiver the fuzz target serves.
type fuzzService struct{}

func (fuzzService) Echo(v json.RawMessage) json.RawMessage { return v }
func (fuzzService) Add(a, b int64) int64                   { return a + b }
func (fuzzService) Big(n uint16) string                    { return string(bytes.Repeat([]byte("x"), int(n))) }

// FuzzJSONRPCRequest posts arbitrary bodies through Server.Handler: the
// server must never panic, and must answer either a well-formed JSON-RPC
// response (one object, or an array of objects, each with jsonrpc "2.0" and
// exactly one of result or error), an empty body (notifications only), or an
// HTTP error status.
func FuzzJSONRPCRequest(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzJSONRPCRequest.

	cfg := DefaultConfig()
	cfg.MaxRequestBytes = 1 << 14
	cfg.MaxBatchItems = 20
	cfg.MaxResponseBytes = 1 << 12
	cfg.CallTimeout = 5 * time.Second
	s, err := NewServer(cfg, Services{Eth: fuzzService{}}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	defer s.Stop()
	client := hs.Client()
	client.Timeout = 20 * time.Second // a hang fails the input instead of the run

	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := http.NewRequest(http.MethodPost, hs.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading answer: %v", err)
		}
		if resp.StatusCode != http.StatusOK {
			if resp.StatusCode < 400 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			return
		}
		checkJSONRPCAnswer(t, out)
	})
}

func checkJSONRPCAnswer(t *testing.T, out []byte) {
	t.Helper()
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return // only notifications
	}
	var msgs []json.RawMessage
	if out[0] == '[' {
		if err := json.Unmarshal(out, &msgs); err != nil {
			t.Fatalf("batch answer not JSON: %v: %s", err, out)
		}
		if len(msgs) == 0 {
			t.Fatalf("empty batch answer")
		}
	} else {
		msgs = []json.RawMessage{out}
	}
	for _, m := range msgs {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(m, &fields); err != nil {
			t.Fatalf("answer item not a JSON object: %v: %s", err, m)
		}
		_, hasID := fields["id"]
		_, hasResult := fields["result"]
		_, hasError := fields["error"]
		if string(fields["jsonrpc"]) != `"2.0"` || !hasID {
			t.Fatalf("answer item lacks jsonrpc 2.0 or id: %s", m)
		}
		if hasResult == hasError {
			t.Fatalf("answer item must have exactly one of result and error: %s", m)
		}
		var r struct {
			Error *struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m, &r); err != nil || (hasError && r.Error == nil) {
			t.Fatalf("malformed error: %v: %s", err, m)
		}
		if r.Error != nil && (r.Error.Code == 0 || r.Error.Message == "") {
			t.Fatalf("error without code or message: %s", m)
		}
	}
}
