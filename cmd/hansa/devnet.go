package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/hansa-chain/hansa/internal/gateway"
	"github.com/hansa-chain/hansa/internal/node"
	"github.com/hansa-chain/hansa/internal/telemetry"
)

// devnetOptions are the devnet command's flags.
type devnetOptions struct {
	dir        string
	nodes      int
	nodesSet   bool // --nodes was given
	portBase   int
	node       *nodeFlags // node1's overrides; the log flags apply to every node
	gateway    string     // gateway JSON-RPC address, or "off"
	gatewayOps string
}

func devnetFlags(name string, args []string, stderr io.Writer) (*devnetOptions, error) {
	fs := newFlagSet(name, stderr)
	o := &devnetOptions{}
	fs.StringVar(&o.dir, "dir", "./devnet", "devnet directory (created when missing, resumed otherwise)")
	fs.IntVar(&o.nodes, "nodes", devnetNodes, "number of nodes when the devnet is created (odd numbers recommended); on resume it must match")
	fs.IntVar(&o.portBase, "port-base", devnetPortBase, "first port when the devnet is created: node K gets JSON-RPC BASE+K-1, cluster BASE+100+K-1, ops BASE+1000+K-1, admin BASE+1100+K-1 (0: free loopback ports)")
	fs.StringVar(&o.gateway, "gateway", devnetGatewayRPC, `the gateway's JSON-RPC address, the devnet's entry point ("off": clients use node1 directly)`)
	fs.StringVar(&o.gatewayOps, "gateway-ops", devnetGatewayOps, "the gateway's metrics/healthz/readyz address")
	o.node = addNodeFlags(fs)
	for name, usage := range map[string]string{
		"http":     "node1's JSON-RPC HTTP+WebSocket listen address (overrides its config)",
		"ops":      "node1's metrics/healthz/readyz listen address (overrides its config)",
		"admin":    "node1's admin API listen address (overrides its config)",
		"datadir":  "node1's data directory (overrides its config)",
		"genesis":  "node1's genesis.json (overrides its config)",
		"node-key": "node1's node key file (overrides its config)",
		"config":   "not used: node K reads DIR/nodeK/config.toml",
	} {
		fs.Lookup(name).Usage = usage
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	var configSet bool
	fs.Visit(func(f *flag.Flag) {
		o.nodesSet = o.nodesSet || f.Name == "nodes"
		configSet = configSet || f.Name == "config"
	})
	if configSet {
		return nil, fmt.Errorf("%s: --config is not used: node K reads DIR/nodeK/config.toml", name)
	}
	if err := checkDevnetSize(o.nodes, o.portBase); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return o, nil
}

func runDevnetInit(args []string, stdout, stderr io.Writer) error {
	o, err := devnetFlags("devnet init", args, stderr)
	if err != nil {
		return err
	}
	dir := o.dir
	if _, err := readDevnet(dir); err == nil {
		return fmt.Errorf("devnet init: %s already holds a devnet", dir)
	}
	warnEvenDevnet(stderr, o.nodes)
	d, err := initDevnet(dir, o.nodes, o.portBase)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "devnet written to %s (%s, chain id %d)\n", dir, plural(len(d.Nodes), "node"), d.ChainID)
	fmt.Fprintf(&b, "start it with:  hansa devnet --dir %s\n", dir)
	fmt.Fprintf(&b, "or run each node as its own process:\n")
	for _, n := range d.Nodes {
		fmt.Fprintf(&b, "  hansa node --config %s\n", n.Config)
	}
	io.WriteString(stdout, b.String())
	return nil
}

// warnEvenDevnet warns that an even-sized cluster tolerates no more
// failures than one node smaller.
func warnEvenDevnet(w io.Writer, n int) {
	if n%2 == 0 {
		fmt.Fprintf(w, "devnet: warning: %s tolerate no more failures than %d (%s); odd numbers are recommended\n",
			plural(n, "node"), n-1, plural((n-1)/2, "failure"))
	}
}

func runDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := devnetFlags("devnet", args, stderr)
	if err != nil {
		return err
	}
	// Every node, the gateway and the banner write to the same streams.
	var mu sync.Mutex // stdout and stderr may be one writer
	stdout, stderr = &lockedWriter{mu: &mu, w: stdout}, &lockedWriter{mu: &mu, w: stderr}
	d, cfgs, err := openDevnet(o, stdout, stderr)
	if err != nil {
		return err
	}
	loggers := make([]*slog.Logger, len(cfgs))
	for i, cfg := range cfgs {
		logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
		if err != nil {
			return fmt.Errorf("%s: %w", d.Nodes[i].Name, err)
		}
		loggers[i] = logger.With("node", d.Nodes[i].Name)
	}
	gwLogger, err := newLogger(stderr, cfgs[0].Log.Level, cfgs[0].Log.Format)
	if err != nil {
		return err
	}

	// A plain cancel: a failing node's error must not become the others'
	// cancellation cause, which they would return as their own.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	type boundNode struct {
		i     int
		addrs node.Addrs
	}
	bound := make(chan boundNode, len(cfgs))
	errs := make([]error, len(cfgs)+1) // one per node, then the gateway's
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		wg.Go(func() {
			err := startNode(ctx, cfg, loggers[i], func(addrs node.Addrs) { bound <- boundNode{i, addrs} })
			if err != nil {
				err = fmt.Errorf("%s: %w", d.Nodes[i].Name, err)
				errs[i] = err
			}
			stop() // one node stopping stops the devnet
		})
	}
	wg.Go(func() {
		addrs := make([]node.Addrs, len(cfgs))
		for range cfgs {
			select {
			case b := <-bound:
				addrs[b.i] = b.addrs
			case <-ctx.Done():
				return
			}
		}
		for i, a := range addrs {
			d.setEndpoints(i, a)
		}
		if o.gateway == "off" {
			d.RPC, d.WS, d.Gateway = d.Nodes[0].RPC, d.Nodes[0].WS, nil
			finishDevnetStart(stdout, stderr, o.dir, d)
			return
		}
		err := runDevnetGateway(ctx, o, d, addrs, gwLogger, func() { finishDevnetStart(stdout, stderr, o.dir, d) })
		if err != nil {
			errs[len(cfgs)] = fmt.Errorf("gateway: %w", err)
			stop()
		}
	})
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// openDevnet resumes the devnet in o.dir, or creates it when the directory
// holds none, and returns it with each node's effective config.
func openDevnet(o *devnetOptions, stdout, stderr io.Writer) (*devnetFile, []node.Config, error) {
	d, err := readDevnet(o.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if d, err = initDevnet(o.dir, o.nodes, o.portBase); err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(stdout, "created a new devnet in %s (%s)\n", o.dir, plural(len(d.Nodes), "node"))
	case err != nil:
		return nil, nil, err
	case o.nodesSet && o.nodes != len(d.Nodes):
		return nil, nil, fmt.Errorf("devnet: this devnet has %s; --nodes %d cannot change that (omit --nodes to resume it, or choose another --dir for a new devnet)",
			plural(len(d.Nodes), "node"), o.nodes)
	}
	warnEvenDevnet(stderr, len(d.Nodes))
	cfgs := make([]node.Config, len(d.Nodes))
	for i := range d.Nodes {
		n := &d.Nodes[i]
		n.Config = filepath.Join(o.dir, n.Name, "config.toml")
		if cfgs[i], err = o.node.forDevnetNode(i, n.Config).load(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		n.DataDir = cfgs[i].DataDir
	}
	if err := checkDevnetAddrs(o, d, cfgs); err != nil {
		return nil, nil, err
	}
	return d, cfgs, nil
}

// forDevnetNode returns the overrides for node i of a devnet, whose config
// file is config: every flag for node1, only the log flags for the others.
func (f *nodeFlags) forDevnetNode(i int, config string) *nodeFlags {
	g := *f
	g.config = &config
	if i > 0 {
		none := ""
		g.datadir, g.genesis, g.nodeKey, g.http, g.ops, g.admin = &none, &none, &none, &none, &none, &none
	}
	return &g
}

// checkDevnetAddrs reports two listeners of the devnet configured on the
// same address, naming both.
func checkDevnetAddrs(o *devnetOptions, d *devnetFile, cfgs []node.Config) error {
	type listener struct{ who, addr string }
	var ls []listener
	if o.gateway != "off" {
		ls = append(ls, listener{"the gateway (--gateway)", o.gateway}, listener{"the gateway's ops (--gateway-ops)", o.gatewayOps})
	}
	for i, cfg := range cfgs {
		name := d.Nodes[i].Name
		ls = append(ls,
			listener{name + "'s JSON-RPC", cfg.HTTPAddr}, listener{name + "'s ops", cfg.OpsAddr},
			listener{name + "'s admin", cfg.AdminAddr}, listener{name + "'s cluster listener", cfg.Cluster.ListenAddr})
	}
	seen := map[string]string{}
	for _, l := range ls {
		host, port, err := net.SplitHostPort(l.addr)
		if err != nil || port == "0" {
			continue // empty (off), or a port chosen at bind time; the node reports bad addresses itself
		}
		key := net.JoinHostPort(host, port)
		if prev, ok := seen[key]; ok {
			return fmt.Errorf("devnet: %s and %s both want %s; change one (node1: --http, --ops, --admin; other nodes: their config.toml)", prev, l.who, l.addr)
		}
		seen[key] = l.who
	}
	return nil
}

// finishDevnetStart records the bound endpoints in devnet.json and prints
// the banner, once everything serves.
func finishDevnetStart(stdout, stderr io.Writer, dir string, d *devnetFile) {
	if err := writeDevnet(dir, d); err != nil {
		fmt.Fprintf(stderr, "devnet: update %s/devnet.json: %v\n", dir, err)
	}
	printDevnet(stdout, dir, d)
}

// runDevnetGateway runs the gateway in front of every node until ctx ends:
// open access on loopback for every namespace the nodes serve, no admin API.
// ready is called once it serves and some node is healthy behind it.
func runDevnetGateway(ctx context.Context, o *devnetOptions, d *devnetFile, nodeAddrs []node.Addrs, logger *slog.Logger, ready func()) error {
	cfg := gateway.DefaultConfig()
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = o.gateway, o.gatewayOps, ""
	cfg.ChainID = d.ChainID
	cfg.AllowAnonymous = true
	cfg.Anonymous = gateway.KeyConfig{Name: "devnet", Methods: []string{"eth_*", "net_*", "web3_*", "txpool_*", "debug_*"}}
	cfg.Health.PollInterval = gateway.Duration(250 * time.Millisecond)
	switch {
	case len(nodeAddrs) > 1 && allAdmin(nodeAddrs):
		// The cluster's membership names the upstreams: nodes that join get
		// traffic once caught up, nodes that leave are drained.
		for _, a := range nodeAddrs {
			cfg.Membership.AdminURLs = append(cfg.Membership.AdminURLs, "http://"+a.Admin)
		}
		cfg.Membership.Interval = gateway.Duration(500 * time.Millisecond)
	default:
		for i, a := range nodeAddrs {
			cfg.Upstreams = append(cfg.Upstreams, gateway.UpstreamConfig{Name: d.Nodes[i].Name, URL: "http://" + a.HTTP})
		}
	}
	g, err := gateway.New(cfg, logger, telemetry.NewRegistry())
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- g.Run(ctx) }()
	addrs, err := g.Addrs(ctx)
	if err != nil {
		return errors.Join(err, <-errc)
	}
	for g.Ready() != nil { // wait until a node counts as healthy
		select {
		case <-ctx.Done():
			return <-errc
		case err := <-errc:
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
	d.Gateway = &devnetGateway{RPC: "http://" + addrs.HTTP, WS: "ws://" + addrs.HTTP}
	if addrs.Ops != "" {
		d.Gateway.Metrics = "http://" + addrs.Ops + "/metrics"
	}
	d.RPC, d.WS = d.Gateway.RPC, d.Gateway.WS
	ready()
	return <-errc
}

func printDevnet(w io.Writer, dir string, d *devnetFile) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nHansa devnet is running (chain id %d, %s, directory %s)\n\n", d.ChainID, plural(len(d.Nodes), "node"), dir)
	fmt.Fprintf(&b, "  JSON-RPC   %s\n  WebSocket  %s\n", d.RPC, d.WS)
	if d.Gateway != nil {
		fmt.Fprintf(&b, "             (the gateway in front of every node: open to anyone on this machine, no API key; metrics %s)\n", d.Gateway.Metrics)
	}
	b.WriteString("\nNodes:\n")
	orOff := func(s string) string {
		if s == "" {
			return "off"
		}
		return s
	}
	for _, n := range d.Nodes {
		fmt.Fprintf(&b, "  %-7s rpc %s  metrics %s  admin %s", n.Name, n.RPC, orOff(n.Metrics), orOff(n.Admin))
		if n.Cluster != "" {
			fmt.Fprintf(&b, "  cluster %s", n.Cluster)
		}
		b.WriteString("\n")
	}
	if d.JoinToken != "" && len(d.Nodes) > 0 && d.Nodes[0].Cluster != "" {
		fmt.Fprintf(&b, "\nAdd a node (it joins as a learner; the gateway routes to it once it caught up):\n"+
			"  hansa node --datadir DIR --genesis %s --http 127.0.0.1:PORT --ops 127.0.0.1:PORT --cluster-listen 127.0.0.1:PORT --join %s --join-token %s\n"+
			"Cluster status: hansa cluster status --admin %s\n", d.Genesis, d.Nodes[0].Cluster, d.JoinToken, d.Nodes[0].Admin)
	}
	fmt.Fprintf(&b, "\nAccounts (10,000 ETH each; mnemonic %q):\n", d.Mnemonic)
	for i, a := range d.Accounts {
		fmt.Fprintf(&b, "  (%d) %s  %s\n", i, a.Address, a.PrivateKey)
	}
	fmt.Fprintf(&b, "\nThese keys are public knowledge: never use them outside this devnet.\nEndpoints and accounts are in %s. Stop with Ctrl-C; run again to resume.\n\n", filepath.Join(dir, "devnet.json"))
	io.WriteString(w, b.String())
}

// lockedWriter serialises writes to w from several goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// allAdmin reports whether every node serves the admin API.
func allAdmin(addrs []node.Addrs) bool {
	for _, a := range addrs {
		if a.Admin == "" {
			return false
		}
	}
	return true
}
