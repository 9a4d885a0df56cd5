// Package e2etest builds the hansa binary and runs `hansa devnet` as a real
// child process on free loopback ports, for end-to-end tests with real
// clients.
//
// Invariants: every process a Devnet starts is bound to 127.0.0.1 only, and
// is stopped (SIGTERM, then SIGKILL after a grace period) and waited for by a
// t.Cleanup registered when it is started, so no test leaves a node running.
// The package holds no global state; callers build the binary once (for
// example in TestMain) and pass its path.
package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles the hansa command (import path pkg, e.g.
// "github.com/hansa-chain/hansa/cmd/hansa") into dir and returns the
// binary's path. It runs `go build` in the current directory, which must lie
// inside the module.
func Build(ctx context.Context, dir, pkg string) (string, error) {
	bin := filepath.Join(dir, "hansa")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out.String())
	}
	return bin, nil
}

// FreeAddrs returns n distinct 127.0.0.1:PORT addresses whose ports were
// free a moment ago (all are held open until the last one is picked, so they
// differ). Another process may take one before the caller binds it; Start
// retries with new ports when the node fails to start.
func FreeAddrs(tb testing.TB, n int) []string {
	tb.Helper()
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("pick a free port: %v", err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

// Account is a funded dev account as devnet.json lists it.
type Account struct {
	// Address is the account's address, 0x-prefixed hex.
	Address string `json:"address"`
	// PrivateKey is the account's secp256k1 key, 0x-prefixed hex.
	PrivateKey string `json:"privateKey"`
	// Balance is the genesis balance in wei, in decimal.
	Balance string `json:"balance"`
}

// Info is the part of devnet.json the tests read.
type Info struct {
	// ChainID is the devnet's chain id.
	ChainID uint64 `json:"chainId"`
	// RPC and WS are the devnet's entry point for clients.
	RPC string `json:"rpc"`
	WS  string `json:"ws"`
	// Accounts are the funded dev accounts.
	Accounts []Account `json:"accounts"`
}

// Devnet is one running `hansa devnet` process. Its methods may be called
// from one goroutine at a time, except Logs, which is safe concurrently.
type Devnet struct {
	// Dir is the devnet directory passed as --dir.
	Dir string
	// HTTPAddr, OpsAddr and AdminAddr are node1's listen addresses passed as
	// --http, --ops and --admin.
	HTTPAddr, OpsAddr, AdminAddr string
	// GatewayAddr and GatewayOpsAddr are the gateway's, passed as --gateway
	// and --gateway-ops: the devnet's entry point in front of node1.
	GatewayAddr, GatewayOpsAddr string
	// Info is devnet.json, read once the node was ready.
	Info Info

	tb     testing.TB
	cmd    *exec.Cmd
	logs   *SyncBuffer
	done   chan struct{} // closed when the process has exited
	result error         // cmd.Wait's result, set before done is closed
}

// GatewayURL returns the gateway's JSON-RPC endpoint (HTTP; ws:// on the
// same address).
func (d *Devnet) GatewayURL() string { return "http://" + d.GatewayAddr }

// RPCURL returns node1's JSON-RPC HTTP endpoint.
func (d *Devnet) RPCURL() string { return "http://" + d.HTTPAddr }

// WSURL returns the JSON-RPC WebSocket endpoint.
func (d *Devnet) WSURL() string { return "ws://" + d.HTTPAddr }

// OpsURL returns the base URL of the metrics and health listener.
func (d *Devnet) OpsURL() string { return "http://" + d.OpsAddr }

// Logs returns everything the process wrote to stdout and stderr so far.
func (d *Devnet) Logs() string { return d.logs.String() }

// Start runs `hansa devnet --dir dir` on free loopback ports and waits until
// node1's and the gateway's GET /readyz answer 200 (up to one minute). A dir that does not hold a
// devnet yet is created by the node; one that does is resumed. A t.Cleanup
// stops the process and, if the test failed, logs its output.
func Start(tb testing.TB, bin, dir string) *Devnet {
	tb.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		d, err := start(tb, bin, dir)
		if err == nil {
			return d
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break // only a lost port race is worth another try
		}
	}
	tb.Fatalf("start hansa devnet: %v", lastErr)
	return nil
}

func start(tb testing.TB, bin, dir string) (*Devnet, error) {
	addrs := FreeAddrs(tb, 5)
	d := &Devnet{
		Dir:            dir,
		HTTPAddr:       addrs[0],
		OpsAddr:        addrs[1],
		AdminAddr:      addrs[2],
		GatewayAddr:    addrs[3],
		GatewayOpsAddr: addrs[4],
		tb:             tb,
		logs:           new(SyncBuffer),
		done:           make(chan struct{}),
	}
	d.cmd = exec.Command(bin, "devnet", "--dir", dir,
		"--http", d.HTTPAddr, "--ops", d.OpsAddr, "--admin", d.AdminAddr,
		"--gateway", d.GatewayAddr, "--gateway-ops", d.GatewayOpsAddr)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		d.result = d.cmd.Wait()
		close(d.done)
	}()
	tb.Cleanup(func() {
		if err := d.Stop(); err != nil {
			tb.Errorf("stop hansa devnet: %v", err)
		}
		if tb.Failed() {
			tb.Logf("hansa devnet output (%s):\n%s", d.Dir, d.Logs())
		}
	})
	if err := d.waitReady(time.Minute); err != nil {
		d.Kill()
		return nil, fmt.Errorf("%w\n%s", err, d.Logs())
	}
	data, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &d.Info); err != nil {
		return nil, fmt.Errorf("devnet.json: %w", err)
	}
	return d, nil
}

// devnetBanner starts what `hansa devnet` prints once it serves and has
// written devnet.json.
const devnetBanner = "Hansa devnet is running"

func (d *Devnet) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-d.done:
			return fmt.Errorf("hansa devnet exited before it was ready: %v", d.result)
		default:
		}
		resp, err := client.Get(d.OpsURL() + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			resp, err = client.Get("http://" + d.GatewayOpsAddr + "/readyz") // and the gateway in front
		}
		if err == nil && resp.StatusCode == http.StatusOK && !strings.Contains(d.Logs(), devnetBanner) {
			// devnet.json gets the bound endpoints just before the banner.
			resp.Body.Close()
			last = "waiting for the banner"
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("hansa devnet not ready after %v (last /readyz: %s)", timeout, last)
}

// Exited reports whether the process has exited.
func (d *Devnet) Exited() bool {
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM and waits for the process to exit, sending SIGKILL if
// it has not exited after 30 seconds. It returns an error unless the process
// exited with status 0 in response to SIGTERM. Calling Stop again, or after
// Kill, returns nil.
func (d *Devnet) Stop() error {
	if d.Exited() {
		return nil
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-d.done:
		return d.result
	case <-time.After(30 * time.Second):
		d.Kill()
		return errors.New("no exit within 30s of SIGTERM; killed")
	}
}

// Kill sends SIGKILL and waits for the process to exit.
func (d *Devnet) Kill() {
	if d.Exited() {
		return
	}
	if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		d.tb.Errorf("kill hansa devnet: %v", err)
	}
	<-d.done
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes and reads, for
// capturing a child process's output while a test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
