package main

// Tests of `hansa devnet` and `hansa devnet init`: the files a devnet is
// made of, the port scheme, flag checks, and the in-process run of a
// devnet through run().

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/e2etest"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/node"
)

// devnetInit runs `hansa devnet init --dir dir args...` and returns its
// stdout and stderr.
func devnetInit(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), append([]string{"devnet", "init", "--dir", dir}, args...), &stdout, &stderr); err != nil {
		t.Fatalf("devnet init %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String(), stderr.String()
}

// loadDevnetConfigs reads every node's config of the devnet in dir.
func loadDevnetConfigs(t *testing.T, dir string, n int) []node.Config {
	t.Helper()
	cfgs := make([]node.Config, n)
	for i := range cfgs {
		path := filepath.Join(dir, "node"+strconv.Itoa(i+1), "config.toml")
		cfg, err := node.LoadConfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cfgs[i] = cfg
	}
	return cfgs
}

func TestDevnetInitWritesCluster(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "devnet")
			stdout, _ := devnetInit(t, dir, "--nodes", strconv.Itoa(n), "--port-base", "0")
			cfgs := loadDevnetConfigs(t, dir, n)

			g, err := chain.ReadGenesis(filepath.Join(dir, "genesis.json"))
			if err != nil {
				t.Fatal(err)
			}
			if len(g.Members) != n {
				t.Fatalf("genesis has %d members, want %d", len(g.Members), n)
			}
			d, err := readDevnet(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Nodes) != n {
				t.Fatalf("devnet.json lists %d nodes, want %d", len(d.Nodes), n)
			}
			ports := map[string]string{} // every listener of every node
			for i, cfg := range cfgs {
				id, name := uint64(i+1), "node"+strconv.Itoa(i+1)
				nodeDir := filepath.Join(dir, name)

				// The genesis member is the node's key.
				key, err := keys.Load(cfg.NodeKeyPath())
				if err != nil {
					t.Fatal(err)
				}
				m := g.Members[i]
				if addr := crypto.PubkeyToAddress(key.PublicKey); m.ID != id || m.Name != name || m.Address != addr {
					t.Fatalf("genesis member %d is %+v, want id %d, name %s, address %s", i, m, id, name, addr)
				}
				if cfg.NodeKeyPath() != filepath.Join(nodeDir, "nodekey") || cfg.DataDir != filepath.Join(nodeDir, "data") ||
					cfg.Genesis != filepath.Join(dir, "genesis.json") {
					t.Fatalf("%s: paths node_key %s, datadir %s, genesis %s", name, cfg.NodeKeyPath(), cfg.DataDir, cfg.Genesis)
				}

				// Every listener has a port of its own.
				for what, addr := range map[string]string{"http": cfg.HTTPAddr, "ops": cfg.OpsAddr, "admin": cfg.AdminAddr, "cluster": cfg.Cluster.ListenAddr} {
					if addr == "" && what == "cluster" && n == 1 {
						continue // a single member does not replicate
					}
					host, port, err := net.SplitHostPort(addr)
					if err != nil || host != "127.0.0.1" || port == "0" {
						t.Fatalf("%s %s address %q: want 127.0.0.1 and a port", name, what, addr)
					}
					if prev, ok := ports[port]; ok {
						t.Fatalf("port %s used by %s and %s %s", port, prev, name, what)
					}
					ports[port] = name + " " + what
				}
				if n == 1 && (cfg.Cluster.ListenAddr != "" || len(cfg.Cluster.Peers) != 0) {
					t.Fatalf("one-node devnet has cluster settings %+v", cfg.Cluster)
				}

				// Its peers are exactly the other members, at their listen addresses.
				var want []node.PeerConfig
				for j, other := range cfgs {
					if j != i {
						want = append(want, node.PeerConfig{ID: uint64(j + 1), Addr: other.Cluster.ListenAddr})
					}
				}
				if !slices.Equal(cfg.Cluster.Peers, want) {
					t.Fatalf("%s peers %+v, want %+v", name, cfg.Cluster.Peers, want)
				}

				// devnet.json agrees.
				dn := d.Nodes[i]
				if dn.ID != id || dn.Name != name || dn.Address != m.Address || dn.Cluster != cfg.Cluster.ListenAddr ||
					dn.RPC != "http://"+cfg.HTTPAddr || dn.Admin != "http://"+cfg.AdminAddr || dn.Metrics != "http://"+cfg.OpsAddr+"/metrics" {
					t.Fatalf("devnet.json node %d is %+v; config %+v", i, dn, cfg)
				}
				if !strings.Contains(stdout, "hansa node --config "+filepath.Join(nodeDir, "config.toml")) {
					t.Fatalf("init output does not say how to run %s alone:\n%s", name, stdout)
				}
			}
		})
	}
}

func TestDevnetPortScheme(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	devnetInit(t, dir, "--nodes", "3", "--port-base", "20000")
	cfgs := loadDevnetConfigs(t, dir, 3)
	for i, cfg := range cfgs {
		at := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
		got := []string{cfg.HTTPAddr, cfg.Cluster.ListenAddr, cfg.OpsAddr, cfg.AdminAddr}
		want := []string{at(20000 + i), at(20100 + i), at(21000 + i), at(21100 + i)}
		if !slices.Equal(got, want) {
			t.Fatalf("node%d listens on %v, want %v", i+1, got, want)
		}
	}
	if got, want := cfgs[1].Cluster.Peers, []node.PeerConfig{{ID: 1, Addr: "127.0.0.1:20100"}, {ID: 3, Addr: "127.0.0.1:20102"}}; !slices.Equal(got, want) {
		t.Fatalf("node2 peers %+v, want %+v", got, want)
	}

	// The default base gives the documented ports.
	addrs, err := devnetAddrs(3, devnetPortBase)
	if err != nil {
		t.Fatal(err)
	}
	if want := (devnetListen{http: "127.0.0.1:18547", cluster: "127.0.0.1:18647", ops: "127.0.0.1:19547", admin: "127.0.0.1:19647"}); addrs[2] != want {
		t.Fatalf("node3 of the default scheme: %+v, want %+v", addrs[2], want)
	}
}

func TestDevnetPortBaseZeroPicksFreePorts(t *testing.T) {
	addrs, err := devnetAddrs(5, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, a := range addrs {
		for _, addr := range []string{a.http, a.cluster, a.ops, a.admin} {
			host, port, err := net.SplitHostPort(addr)
			if err != nil || host != "127.0.0.1" || port == "0" || seen[port] {
				t.Fatalf("node%d address %q: want a distinct 127.0.0.1 port (seen: %v)", i+1, addr, seen)
			}
			seen[port] = true
			ln, err := net.Listen("tcp", addr) // released, so bindable
			if err != nil {
				t.Fatalf("node%d address %s is not free: %v", i+1, addr, err)
			}
			ln.Close()
		}
	}
}

func TestDevnetFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "0"}, "--nodes 0: a devnet has 1 to 100 nodes"},
		{[]string{"--nodes", "101"}, "--nodes 101"},
		{[]string{"--port-base", "-1"}, "--port-base -1"},
		{[]string{"--port-base", "64500", "--nodes", "3"}, "leaves no room for 3 nodes"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "devnet")
			var out bytes.Buffer
			err := run(t.Context(), append([]string{"devnet", "init", "--dir", dir}, tc.args...), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestDevnetEvenNodesWarn(t *testing.T) {
	for _, tc := range []struct {
		nodes int
		warn  bool
	}{{1, false}, {2, true}, {3, false}, {4, true}} {
		t.Run(strconv.Itoa(tc.nodes), func(t *testing.T) {
			_, stderr := devnetInit(t, filepath.Join(t.TempDir(), "devnet"), "--nodes", strconv.Itoa(tc.nodes), "--port-base", "0")
			if got := strings.Contains(stderr, "warning") && strings.Contains(stderr, "odd numbers are recommended"); got != tc.warn {
				t.Fatalf("%d nodes: warned %v, want %v; stderr:\n%s", tc.nodes, got, tc.warn, stderr)
			}
		})
	}
}

func TestDevnetResumeChecksNodes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	devnetInit(t, dir, "--nodes", "3", "--port-base", "0")
	var out bytes.Buffer
	err := run(t.Context(), []string{"devnet", "--dir", dir, "--nodes", "5"}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "this devnet has 3 nodes; --nodes 5") {
		t.Fatalf("resume with --nodes 5: %v, want a mismatch error", err)
	}
	if err := run(t.Context(), []string{"devnet", "init", "--dir", dir}, &out, &out); err == nil || !strings.Contains(err.Error(), "already holds a devnet") {
		t.Fatalf("second init: %v", err)
	}

	// The same count, or none, resumes; the default count does not apply.
	for _, args := range [][]string{{"--nodes", "3"}, {}} {
		o, err := devnetFlags("devnet", append([]string{"--dir", dir}, args...), &out)
		if err != nil {
			t.Fatal(err)
		}
		d, cfgs, err := openDevnet(o, &out, &out)
		if err != nil || len(d.Nodes) != 3 || len(cfgs) != 3 {
			t.Fatalf("resume with %v: %v", args, err)
		}
	}
	one := filepath.Join(t.TempDir(), "one")
	devnetInit(t, one, "--nodes", "1", "--port-base", "0")
	o, err := devnetFlags("devnet", []string{"--dir", one}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if d, _, err := openDevnet(o, &out, &out); err != nil || len(d.Nodes) != 1 {
		t.Fatalf("resume a one-node devnet without --nodes: %v", err)
	}
}

func TestDevnetFlagsOverrideNode1(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	devnetInit(t, dir, "--nodes", "3", "--port-base", "0")
	files := loadDevnetConfigs(t, dir, 3)
	var out bytes.Buffer
	o, err := devnetFlags("devnet", []string{"--dir", dir, "--http", "127.0.0.1:1", "--admin", "127.0.0.1:3", "--log-level", "debug", "--log-format", "json"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	_, cfgs, err := openDevnet(o, &out, &out)
	if err != nil {
		t.Fatal(err)
	}
	if cfgs[0].HTTPAddr != "127.0.0.1:1" || cfgs[0].AdminAddr != "127.0.0.1:3" {
		t.Fatalf("node1 does not take --http/--admin: %s %s", cfgs[0].HTTPAddr, cfgs[0].AdminAddr)
	}
	for i, cfg := range cfgs {
		if cfg.Log.Level != "debug" || cfg.Log.Format != "json" {
			t.Fatalf("node%d log %+v, want the flags' debug/json", i+1, cfg.Log)
		}
		if i > 0 && (cfg.HTTPAddr != files[i].HTTPAddr || cfg.OpsAddr != files[i].OpsAddr || cfg.AdminAddr != files[i].AdminAddr) {
			t.Fatalf("node%d took node1's overrides: %s %s %s", i+1, cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr)
		}
	}
}

func TestDevnetAddressCollisions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	devnetInit(t, dir, "--nodes", "3", "--port-base", "0")
	cfgs := loadDevnetConfigs(t, dir, 3)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--gateway", cfgs[0].HTTPAddr}, "the gateway (--gateway) and node1's JSON-RPC both want " + cfgs[0].HTTPAddr},
		{[]string{"--gateway-ops", cfgs[1].Cluster.ListenAddr}, "node2's cluster listener both want"},
		{[]string{"--http", cfgs[2].AdminAddr}, "node1's JSON-RPC and node3's admin both want " + cfgs[2].AdminAddr},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(t.Context(), append([]string{"devnet", "--dir", dir}, tc.args...), &out, &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// startDevnetInProcess runs `hansa devnet` through run() and waits for its
// banner; the returned stop cancels it and returns run's error.
func startDevnetInProcess(t *testing.T, args ...string) (logs *e2etest.SyncBuffer, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	logs = new(e2etest.SyncBuffer)
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"devnet"}, args...), logs, logs) }()
	stop = func() error { cancel(); return <-done }
	deadline := time.After(time.Minute)
	for !strings.Contains(logs.String(), "Hansa devnet is running") {
		select {
		case err := <-done:
			done <- err
			return logs, stop
		case <-deadline:
			cancel()
			t.Fatalf("no banner within a minute:\n%s", logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return logs, stop
}

func TestDevnetRunsOneNodeInProcess(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	gw := e2etest.FreeAddrs(t, 2)
	logs, stop := startDevnetInProcess(t, "--dir", dir, "--nodes", "1", "--port-base", "0", "--gateway", gw[0], "--gateway-ops", gw[1])
	d, err := readDevnet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("devnet: %v\n%s", err, logs.String())
	}
	if d.RPC != "http://"+gw[0] || len(d.Nodes) != 1 || d.Nodes[0].Cluster != "" || d.Nodes[0].RPC == "" {
		t.Fatalf("devnet.json after start: %+v", d)
	}
	for _, want := range []string{"node=node1", "created a new devnet in " + dir + " (1 node)", "node1   rpc " + d.Nodes[0].RPC} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("output lacks %q:\n%s", want, logs.String())
		}
	}
}

// A node that cannot start stops the devnet with an error that names it.
func TestDevnetNodeFailureIsNamed(t *testing.T) {
	for _, n := range []int{1, 3} { // 3 needs the replicated node
		t.Run(fmt.Sprintf("nodes=%d", n), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "devnet")
			devnetInit(t, dir, "--nodes", strconv.Itoa(n), "--port-base", "0")
			cfgs := loadDevnetConfigs(t, dir, n)
			victim := cfgs[n-1]
			ln, err := net.Listen("tcp", victim.HTTPAddr) // take the last node's JSON-RPC port
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			// Free ports for the gateway that the nodes did not get too (the
			// OS may hand out a port again once it was released).
			taken := map[string]bool{}
			for _, c := range cfgs {
				for _, a := range []string{c.HTTPAddr, c.OpsAddr, c.AdminAddr, c.Cluster.ListenAddr} {
					taken[a] = true
				}
			}
			gw := e2etest.FreeAddrs(t, 2)
			for try := 0; taken[gw[0]] || taken[gw[1]]; try++ {
				if try == 10 {
					t.Fatalf("no free gateway ports apart from the nodes' %v", taken)
				}
				gw = e2etest.FreeAddrs(t, 2)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			err = run(ctx, []string{"devnet", "--dir", dir, "--gateway", gw[0], "--gateway-ops", gw[1]}, &out, &out)
			want := fmt.Sprintf("node%d: listen %s", n, victim.HTTPAddr)
			if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "address already in use") {
				t.Fatalf("error %v, want one containing %q\n%s", err, want, out.String())
			}
		})
	}
}
