package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestNewLogger(t *testing.T) {
	tests := []struct {
		name, format string
		level        slog.Level
		check        func(t *testing.T, out string)
	}{
		{"text", "text", slog.LevelInfo, func(t *testing.T, out string) {
			if !strings.Contains(out, "msg=hello") || !strings.Contains(out, "height=7") {
				t.Errorf("text output %q lacks msg or attr", out)
			}
			if strings.Contains(out, "hidden") {
				t.Errorf("debug record written at info level: %q", out)
			}
		}},
		{"json", "json", slog.LevelDebug, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 {
				t.Fatalf("want 2 JSON lines (debug enabled), got %d: %q", len(lines), out)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if rec["msg"] != "hello" || rec["height"] != float64(7) {
				t.Errorf("record = %v", rec)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := NewLogger(&buf, tt.level, tt.format)
			l.Debug("hidden")
			l.Info("hello", "height", 7)
			tt.check(t, buf.String())
		})
	}
}

func TestParseFormatAndLevel(t *testing.T) {
	if f, err := ParseFormat("JSON"); err != nil || f != "json" {
		t.Errorf("ParseFormat(JSON) = %q, %v", f, err)
	}
	if f, err := ParseFormat(""); err != nil || f != "text" {
		t.Errorf("ParseFormat(\"\") = %q, %v", f, err)
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("ParseFormat(xml) accepted")
	}
	if l, err := ParseLevel("warn"); err != nil || l != slog.LevelWarn {
		t.Errorf("ParseLevel(warn) = %v, %v", l, err)
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) accepted")
	}
}

func TestNewRegistryHasRuntimeCollectors(t *testing.T) {
	mfs, err := NewRegistry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{"go_goroutines", "process_start_time_seconds"} {
		if !names[want] {
			t.Errorf("registry lacks %s", want)
		}
	}
}

func get(t *testing.T, url, accept string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestOpsHandler(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(3)

	var healthErr, readyErr atomic.Pointer[error]
	health := func() error {
		if p := healthErr.Load(); p != nil {
			return *p
		}
		return nil
	}
	ready := func() error {
		if p := readyErr.Load(); p != nil {
			return *p
		}
		return nil
	}
	srv := httptest.NewServer(NewOpsHandler(reg, health, ready))
	defer srv.Close()

	code, _, body := get(t, srv.URL+"/metrics", "")
	if code != 200 || !strings.Contains(body, "hansa_test_things_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d %q", code, body)
	}

	if code, _, body := get(t, srv.URL+"/healthz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, _, body := get(t, srv.URL+"/readyz", ""); code != 200 || body != "ok\n" {
		t.Errorf("/readyz = %d %q", code, body)
	}

	starting := errors.New("starting")
	readyErr.Store(&starting)
	if code, _, body := get(t, srv.URL+"/readyz", ""); code != 503 || body != "starting\n" {
		t.Errorf("/readyz while starting = %d %q", code, body)
	}
	diverged := errors.New("diverged")
	readyErr.Store(&diverged)
	code, ctype, body := get(t, srv.URL+"/readyz", "text/html, application/json;q=0.9")
	var st probeStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 503 || ctype != "application/json" ||
		st.Status != "unavailable" || st.Reason != "diverged" {
		t.Errorf("/readyz JSON = %d %s %q (%v)", code, ctype, body, err)
	}
	// Readiness does not affect liveness.
	if code, _, _ := get(t, srv.URL+"/healthz", ""); code != 200 {
		t.Errorf("/healthz while not ready = %d", code)
	}
	stopping := errors.New("stopping")
	healthErr.Store(&stopping)
	if code, _, body := get(t, srv.URL+"/healthz", ""); code != 503 || body != "stopping\n" {
		t.Errorf("/healthz unhealthy = %d %q", code, body)
	}
	if code, _, body := get(t, srv.URL+"/healthz", "application/json"); code != 503 || !strings.Contains(body, `"reason":"stopping"`) {
		t.Errorf("/healthz JSON unhealthy = %d %q", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/nope", ""); code != 404 {
		t.Errorf("/nope = %d, want 404", code)
	}
}

func TestOpsHandlerNilChecks(t *testing.T) {
	srv := httptest.NewServer(NewOpsHandler(prometheus.NewRegistry(), nil, nil))
	defer srv.Close()
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, _, _ := get(t, srv.URL+p, ""); code != 200 {
			t.Errorf("%s with nil check = %d", p, code)
		}
	}
}

func TestServeGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{})
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		_, _ = w.Write([]byte("done"))
	})
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, slog.New(slog.DiscardHandler)) }()

	url := "http://" + ln.Addr().String()
	if code, _, body := get(t, url+"/", ""); code != 200 || body != "done" {
		t.Fatalf("GET / = %d %q", code, body)
	}

	// An in-flight request survives the shutdown signal and completes.
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(url + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-entered
	cancel()
	// Wait until the listener is closed (new connections refused) before
	// releasing the in-flight request, so the shutdown is really in progress.
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	if got := <-slow; got != "done" {
		t.Errorf("in-flight request got %q, want done", got)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v after ctx cancel", err)
	}
}

func TestServeReportsListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if err := Serve(t.Context(), ln, http.NotFoundHandler(), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("Serve on a closed listener returned nil")
	}
}

func TestPostWebhook(t *testing.T) {
	var got map[string]string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.Header.Get("Content-Type"))
		}
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(status)
	}))
	defer srv.Close()
	if err := PostWebhook(t.Context(), nil, srv.URL, "voter 3 is down"); err != nil {
		t.Fatal(err)
	}
	if got["text"] != "voter 3 is down" || len(got) != 1 {
		t.Fatalf("posted %v, want {text: ...}", got)
	}
	status = http.StatusBadGateway
	if err := PostWebhook(t.Context(), srv.Client(), srv.URL, "x"); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("a 502 answer gave %v", err)
	}
}
