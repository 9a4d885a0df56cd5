package main

// End-to-end test of `hansa gateway` (run in-process through run()) in
// front of two real `hansa devnet` processes: routing, failover on SIGKILL,
// return to rotation after a restart on the same address, SIGHUP reload.
// The two devnets are separate chains with the same chain id and genesis
// accounts, which is enough for routing.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/hansa-chain/hansa/internal/e2etest"
)

// fixedDevnet is a `hansa devnet` process on addresses chosen by the test,
// so that a restart comes back on the same URL.
type fixedDevnet struct {
	dir, http, ops, admin string
	cmd                   *exec.Cmd
	out                   *e2etest.SyncBuffer
	done                  chan struct{}
}

func (d *fixedDevnet) start(t *testing.T) {
	t.Helper()
	d.cmd = exec.Command(hansaBinary(t), "devnet", "--dir", d.dir, "--nodes", "1", "--port-base", "0", "--gateway", "off",
		"--http", d.http, "--ops", d.ops, "--admin", d.admin)
	d.out = new(e2etest.SyncBuffer)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	cmd, done := d.cmd, d.done
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { d.kill(syscall.SIGTERM) })
	waitHTTP(t, "http://"+d.ops+"/readyz", 60*time.Second, func() string { return d.out.String() })
}

// kill signals the process and waits for it to exit.
func (d *fixedDevnet) kill(sig syscall.Signal) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// waitHTTP waits until GET url answers 200.
func waitHTTP(t *testing.T, url string, timeout time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready within %v\n%s", url, timeout, logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type gwUpstream struct {
	Name     string `json:"name"`
	Healthy  bool   `json:"healthy"`
	Reason   string `json:"reason"`
	InFlight int64  `json:"in_flight"`
}

func TestGatewayE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two devnet processes")
	}
	base := t.TempDir()
	addrs := e2etest.FreeAddrs(t, 9)
	a := &fixedDevnet{dir: filepath.Join(base, "a"), http: addrs[0], ops: addrs[1], admin: addrs[2]}
	b := &fixedDevnet{dir: filepath.Join(base, "b"), http: addrs[3], ops: addrs[4], admin: addrs[5]}
	a.start(t)
	b.start(t)

	gwHTTP, gwOps, gwAdmin := addrs[6], addrs[7], addrs[8]
	const token = "e2e-admin-token-0123456789"
	cfgPath := filepath.Join(base, "gateway.toml")
	writeCfg := func(extraKeys string) {
		cfg := fmt.Sprintf(`http_addr = %q
ops_addr = %q
admin_addr = %q
admin_token = %q
state_file = "gateway-state.json"
chain_id = 1337

[health]
poll_interval = "100ms"
fall_after = 2
rise_after = 2

[[keys]]
name = "e2e"
key = "e2e-test-key"
methods = ["*"]
%s
[[upstreams]]
name = "a"
url = "http://%s"

[[upstreams]]
name = "b"
url = "http://%s"
`, gwHTTP, gwOps, gwAdmin, token, extraKeys, a.http, b.http)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg("")

	ctx, cancel := context.WithCancel(t.Context())
	logs := new(e2etest.SyncBuffer)
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"gateway", "--config", cfgPath, "--log-level", "debug"}, logs, logs) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
		if t.Failed() {
			t.Logf("gateway logs:\n%s", logs.String())
		}
	}()
	waitHTTP(t, "http://"+gwOps+"/readyz", 30*time.Second, logs.String)

	upstreams := func() map[string]gwUpstream {
		req, _ := http.NewRequest("GET", "http://"+gwAdmin+"/v1/upstreams", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var list []gwUpstream
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
			t.Fatal(err)
		}
		m := map[string]gwUpstream{}
		for _, u := range list {
			m[u.Name] = u
		}
		return m
	}
	waitState := func(name string, healthy bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for upstreams()[name].Healthy != healthy {
			if time.Now().After(deadline) {
				t.Fatalf("upstream %s never became healthy=%v: %+v", name, healthy, upstreams()[name])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitState("a", true)
	waitState("b", true)

	client, err := ethclient.DialContext(t.Context(), "http://"+gwHTTP+"/v1/e2e-test-key")
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	okCalls := func(n int) {
		t.Helper()
		for i := range n {
			id, err := client.ChainID(t.Context())
			if err != nil || id.Uint64() != e2eChainID {
				t.Fatalf("call %d through the gateway: %v %v", i, id, err)
			}
			if _, err := client.BlockNumber(t.Context()); err != nil {
				t.Fatalf("call %d through the gateway: %v", i, err)
			}
		}
	}

	// Route: both upstreams serve calls, and a transaction goes through.
	okCalls(20)
	served := func(name string) float64 {
		return metricSum(t, "http://"+gwOps+"/metrics", `hansa_gateway_upstream_requests_total{outcome="ok",upstream="`+name+`"}`)
	}
	// Selection is random (weighted by latency): keep calling until both
	// upstreams served some, within a generous bound.
	for i := 0; served("a") == 0 || served("b") == 0; i++ {
		if i == 200 {
			t.Fatalf("calls not spread: a=%v b=%v", served("a"), served("b"))
		}
		okCalls(1)
	}
	info, err := os.ReadFile(filepath.Join(a.dir, "devnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var devnet e2etest.Info
	json.Unmarshal(info, &devnet)
	key, err := crypto.HexToECDSA(strings.TrimPrefix(devnet.Accounts[0].PrivateKey, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	tx := types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(e2eChainID)), &types.DynamicFeeTx{
		ChainID: big.NewInt(e2eChainID), Nonce: 0, To: &to, Value: big.NewInt(1), Gas: 21_000,
		GasFeeCap: new(big.Int), GasTipCap: new(big.Int)})
	if err := client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatalf("send through the gateway: %v", err)
	}
	// Resending the same signed transaction is idempotent.
	if err := client.SendTransaction(t.Context(), tx); err != nil {
		t.Fatalf("resend through the gateway: %v", err)
	}

	// Kill a: calls keep succeeding through b, and a leaves the rotation.
	a.kill(syscall.SIGKILL)
	okCalls(30)
	waitState("a", false)
	if !upstreams()["b"].Healthy {
		t.Fatal("b unhealthy after a was killed")
	}
	okCalls(10)

	// Restart a on the same address: it returns to rotation.
	before := served("a")
	a.start(t)
	waitState("a", true)
	for i := 0; served("a") <= before; i++ {
		if i == 200 {
			t.Fatalf("a served no calls after it came back (%v before, %v after)", before, served("a"))
		}
		okCalls(1)
	}

	// SIGHUP reload: an invalid file keeps the running config; a valid one
	// adds a key.
	if err := os.WriteFile(cfgPath, []byte("http_addr = 12\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "config reload failed")
	okCalls(2)
	writeCfg("\n[[keys]]\nname = \"second\"\nkey = \"second-key-123\"\nmethods = [\"eth_chainId\"]\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "config reloaded")
	second, err := ethclient.DialContext(t.Context(), "http://"+gwHTTP+"/v1/second-key-123")
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := second.ChainID(t.Context()); err != nil {
		t.Fatalf("reloaded key refused: %v", err)
	}
	if _, err := second.BlockNumber(t.Context()); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Fatalf("reloaded key's allowlist not applied: %v", err)
	}
}

func waitLog(t *testing.T, logs *e2etest.SyncBuffer, substr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q", substr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricSum returns the value of one exact series line of /metrics (0 if
// absent).
func metricSum(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}
