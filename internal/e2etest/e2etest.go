// Package e2etest builds the hansa binary and runs `hansa devnet` (one
// node or a cluster of several, behind its gateway) as a real child process
// on free loopback ports, for end-to-end tests with real clients.
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
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// Nodes are the devnet's nodes with their bound endpoints.
	Nodes []NodeEndpoints `json:"nodes"`
	// Accounts are the funded dev accounts.
	Accounts []Account `json:"accounts"`
}

// NodeEndpoints are one devnet node's endpoints as devnet.json lists them.
type NodeEndpoints struct {
	// ID and Name are the node's genesis member id and name ("node1").
	ID   uint64 `json:"id"`
	Name string `json:"name"`
	// Address is the node key's address, 0x-prefixed hex.
	Address string `json:"address"`
	// RPC and WS are the node's own JSON-RPC endpoints (http://, ws://).
	RPC string `json:"rpc"`
	WS  string `json:"ws"`
	// Metrics is the node's /metrics URL; Admin its admin API URL ("" when
	// off).
	Metrics string `json:"metrics"`
	Admin   string `json:"admin"`
	// Cluster is the node-to-node listener (host:port; "" on a one-node
	// devnet).
	Cluster string `json:"cluster"`
	// Config and DataDir are the node's config file and data directory.
	Config  string `json:"config"`
	DataDir string `json:"datadir"`
}

// OpsURL returns the base URL of the node's metrics and health listener
// ("" when off).
func (n NodeEndpoints) OpsURL() string { return strings.TrimSuffix(n.Metrics, "/metrics") }

// Options change how StartWith runs the devnet.
type Options struct {
	// Nodes is the number of nodes, passed as --nodes; 0 means 1. A devnet
	// that is resumed must have been created with the same number.
	Nodes int
	// ExtraArgs are appended to the command line, e.g. "--log-level",
	// "debug".
	ExtraArgs []string
}

// Devnet is one running `hansa devnet` process. Its methods may be called
// from one goroutine at a time, except Logs, which is safe concurrently.
type Devnet struct {
	// Dir is the devnet directory passed as --dir.
	Dir string
	// HTTPAddr, OpsAddr and AdminAddr are node1's listen addresses: passed
	// as --http, --ops and --admin by Start, read from devnet.json by
	// StartWith.
	HTTPAddr, OpsAddr, AdminAddr string
	// GatewayAddr and GatewayOpsAddr are the gateway's, passed as --gateway
	// and --gateway-ops: the devnet's entry point in front of every node.
	GatewayAddr, GatewayOpsAddr string
	// Info is devnet.json, read once the devnet was ready.
	Info Info
	// Nodes are every node's endpoints (Info.Nodes), node1 first.
	Nodes []NodeEndpoints

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

// WSURL returns node1's JSON-RPC WebSocket endpoint.
func (d *Devnet) WSURL() string { return "ws://" + d.HTTPAddr }

// OpsURL returns the base URL of node1's metrics and health listener.
func (d *Devnet) OpsURL() string { return "http://" + d.OpsAddr }

// Logs returns everything the process wrote to stdout and stderr so far.
func (d *Devnet) Logs() string { return d.logs.String() }

// Start runs a one-node `hansa devnet --dir dir --nodes 1` with node1 and
// the gateway on free loopback ports (--http, --ops, --admin, --gateway,
// --gateway-ops) and waits until node1's and the gateway's GET /readyz
// answer 200 (up to one minute). A dir that does not hold a devnet yet is
// created; one that does is resumed and must hold one node. A t.Cleanup
// stops the process and, if the test failed, logs its output.
func Start(tb testing.TB, bin, dir string) *Devnet {
	tb.Helper()
	return startRetry(tb, bin, dir, Options{Nodes: 1}, true)
}

// StartWith runs `hansa devnet --dir dir --nodes N --port-base 0` with the
// gateway on free loopback ports, waits for the banner, reads every node's
// endpoints from devnet.json and waits until every node's and the
// gateway's GET /readyz answer 200 (up to one minute). A new devnet gets
// free loopback ports for all its nodes; a resumed one keeps the ports it
// was created with. A t.Cleanup stops the process and, if the test failed,
// logs its output.
func StartWith(tb testing.TB, bin, dir string, opts Options) *Devnet {
	tb.Helper()
	return startRetry(tb, bin, dir, opts, false)
}

// startRetry starts the devnet, trying again when a port picked as free was
// taken before the devnet bound it. pinNode1 passes node1's addresses as
// flags.
func startRetry(tb testing.TB, bin, dir string, opts Options, pinNode1 bool) *Devnet {
	tb.Helper()
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		_, err := os.Stat(filepath.Join(dir, "devnet.json"))
		created := errors.Is(err, fs.ErrNotExist)
		d, err := start(tb, bin, dir, opts, pinNode1)
		if err == nil {
			return d
		}
		lastErr = err
		// Only a lost port race is worth another try: a port taken since it
		// was picked, or one the devnet picked that equals one picked here.
		if !strings.Contains(err.Error(), "address already in use") && !strings.Contains(err.Error(), "both want") {
			break
		}
		if created {
			// The new devnet recorded the lost port: create it afresh.
			if err := clearDir(dir); err != nil {
				tb.Fatalf("start hansa devnet: %v (after %v)", err, lastErr)
			}
		}
	}
	tb.Fatalf("start hansa devnet: %v", lastErr)
	return nil
}

// clearDir removes everything inside dir.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func start(tb testing.TB, bin, dir string, opts Options, pinNode1 bool) (*Devnet, error) {
	nodes := max(opts.Nodes, 1)
	addrs := FreeAddrs(tb, 5)
	d := &Devnet{
		Dir:            dir,
		GatewayAddr:    addrs[0],
		GatewayOpsAddr: addrs[1],
		tb:             tb,
		logs:           new(SyncBuffer),
		done:           make(chan struct{}),
	}
	args := []string{"devnet", "--dir", dir, "--nodes", strconv.Itoa(nodes), "--port-base", "0",
		"--gateway", d.GatewayAddr, "--gateway-ops", d.GatewayOpsAddr}
	if pinNode1 {
		d.HTTPAddr, d.OpsAddr, d.AdminAddr = addrs[2], addrs[3], addrs[4]
		args = append(args, "--http", d.HTTPAddr, "--ops", d.OpsAddr, "--admin", d.AdminAddr)
	}
	d.cmd = exec.Command(bin, append(args, opts.ExtraArgs...)...)
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
	return d, nil
}

// devnetBanner starts what `hansa devnet` prints once the gateway serves
// and devnet.json holds the bound endpoints.
const devnetBanner = "Hansa devnet is running"

// waitReady waits for the banner, reads devnet.json and then waits until
// every node's and the gateway's /readyz answer 200.
func (d *Devnet) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(d.Logs(), devnetBanner) {
		select {
		case <-d.done:
			return fmt.Errorf("hansa devnet exited before it was ready: %v", d.result)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hansa devnet printed no banner within %v", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	data, err := os.ReadFile(filepath.Join(d.Dir, "devnet.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &d.Info); err != nil {
		return fmt.Errorf("devnet.json: %w", err)
	}
	if len(d.Info.Nodes) == 0 {
		return errors.New("devnet.json lists no nodes")
	}
	d.Nodes = d.Info.Nodes
	if d.HTTPAddr == "" {
		n := d.Nodes[0]
		d.HTTPAddr = strings.TrimPrefix(n.RPC, "http://")
		d.OpsAddr = strings.TrimPrefix(n.OpsURL(), "http://")
		d.AdminAddr = strings.TrimPrefix(n.Admin, "http://")
	}
	var probes []string
	for _, n := range d.Nodes {
		if n.Metrics != "" {
			probes = append(probes, n.OpsURL()+"/readyz")
		}
	}
	if d.Info.RPC == d.GatewayURL() {
		probes = append(probes, "http://"+d.GatewayOpsAddr+"/readyz")
	}
	for _, url := range probes {
		err := waitOK(url, deadline, d.done, func() error {
			return fmt.Errorf("hansa devnet exited before it was ready: %v", d.result)
		})
		if err != nil {
			return fmt.Errorf("hansa devnet not ready after %v: %w", timeout, err)
		}
	}
	return nil
}

// waitOK polls url until it answers 200 (nil), exited is closed (the error
// of exitErr), or deadline passes (an error with the last answer).
func waitOK(url string, deadline time.Time, exited <-chan struct{}, exitErr func() error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	for {
		select {
		case <-exited:
			return exitErr()
		default:
		}
		resp, err := client.Get(url)
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
		if time.Now().After(deadline) {
			return fmt.Errorf("last %s: %s", url, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
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
