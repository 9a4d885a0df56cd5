package e2etest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// GethVersion is the go-ethereum release the real-peer tests run (the newest
// whose cmd/geth builds from the module proxy here; see DEPENDENCIES.md).
const GethVersion = "v1.17.8"

// GethBinary returns the geth binary for tests that need a real go-ethereum
// peer: $HANSA_GETH, else bin/geth at the repository root (what `make geth`
// builds), else geth on PATH. It fails the test, saying how to get one, when
// none exists: such tests never pass silently without their peer.
func GethBinary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("HANSA_GETH"); p != "" {
		return p
	}
	if root, err := repoRoot(); err == nil {
		if p := filepath.Join(root, "bin", "geth"); fileExists(p) {
			return p
		}
	}
	if p, err := exec.LookPath("geth"); err == nil {
		return p
	}
	tb.Fatalf("geth %s is needed for this test: run `make geth` (go install github.com/ethereum/go-ethereum/cmd/geth@%s into bin/) or set HANSA_GETH", GethVersion, GethVersion)
	return ""
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// Geth is a running `geth --dev` process (instant blocks, one prefunded
// developer account, no peers), bound to 127.0.0.1.
type Geth struct {
	// Dir is its data directory.
	Dir string
	// HTTPAddr and WSAddr are its JSON-RPC listen addresses.
	HTTPAddr, WSAddr string

	tb     testing.TB
	bin    string
	auth   string
	cmd    *exec.Cmd
	logs   *SyncBuffer
	done   chan struct{}
	result error
}

// RPCURL returns the HTTP JSON-RPC endpoint.
func (g *Geth) RPCURL() string { return "http://" + g.HTTPAddr }

// WSURL returns the WebSocket JSON-RPC endpoint.
func (g *Geth) WSURL() string { return "ws://" + g.WSAddr }

// Logs returns what the process wrote so far.
func (g *Geth) Logs() string { return g.logs.String() }

// StartGeth runs `geth --dev` in a new data directory on free loopback
// ports and waits until it answers JSON-RPC. A t.Cleanup stops it.
func StartGeth(tb testing.TB, bin string) *Geth {
	tb.Helper()
	addrs := FreeAddrs(tb, 3)
	g := &Geth{Dir: tb.TempDir(), HTTPAddr: addrs[0], WSAddr: addrs[1], auth: addrs[2], tb: tb, bin: bin}
	if err := g.start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		g.Kill()
		if tb.Failed() {
			tb.Logf("geth output (%s):\n%s", g.Dir, g.Logs())
		}
	})
	return g
}

// Restart starts the process again on the same data directory and ports.
func (g *Geth) Restart() {
	g.tb.Helper()
	g.Kill()
	if err := g.start(); err != nil {
		g.tb.Fatal(err)
	}
}

func (g *Geth) start() error {
	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	g.logs, g.done = new(SyncBuffer), make(chan struct{})
	g.cmd = exec.Command(g.bin, "--dev", "--dev.period", "0", "--datadir", g.Dir,
		"--http", "--http.addr", "127.0.0.1", "--http.port", port(g.HTTPAddr), "--http.api", "eth,net,web3,txpool",
		"--ws", "--ws.addr", "127.0.0.1", "--ws.port", port(g.WSAddr), "--ws.api", "eth,net,web3",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", port(g.auth),
		"--nodiscover", "--maxpeers", "0", "--ipcdisable", "--verbosity", "2")
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		return fmt.Errorf("start geth: %w", err)
	}
	go func() {
		g.result = g.cmd.Wait()
		close(g.done)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}`)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-g.done:
			return fmt.Errorf("geth exited before answering: %v\n%s", g.result, g.Logs())
		default:
		}
		resp, err := client.Post(g.RPCURL(), "application/json", bytes.NewReader(body))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.Kill()
	return fmt.Errorf("geth not answering after a minute\n%s", g.Logs())
}

// Kill stops the process at once (SIGKILL) and waits for it.
func (g *Geth) Kill() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		g.tb.Errorf("kill geth: %v", err)
	}
	<-g.done
}
