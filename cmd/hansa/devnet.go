package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/gateway"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/node"
	"github.com/hansa-chain/hansa/internal/telemetry"
)

// devnetFile describes a devnet for people and tools: every endpoint of every
// node and the funded accounts.
type devnetFile struct {
	ChainID  uint64          `json:"chainId"`
	Genesis  string          `json:"genesis"`
	RPC      string          `json:"rpc"` // the gateway, or node1 when the gateway is off
	WS       string          `json:"ws"`
	Gateway  *devnetGateway  `json:"gateway,omitempty"`
	Nodes    []devnetNode    `json:"nodes"`
	Mnemonic string          `json:"mnemonic"`
	Accounts []devnetAccount `json:"accounts"`
}

type devnetGateway struct {
	RPC     string `json:"rpc"`
	WS      string `json:"ws"`
	Metrics string `json:"metrics"`
}

type devnetNode struct {
	ID      uint64         `json:"id"`
	Name    string         `json:"name"`
	Address common.Address `json:"address"`
	RPC     string         `json:"rpc"`
	WS      string         `json:"ws"`
	Metrics string         `json:"metrics"`
	Admin   string         `json:"admin"`
	Config  string         `json:"config"`
	DataDir string         `json:"datadir"`
}

type devnetAccount struct {
	Address    common.Address `json:"address"`
	PrivateKey string         `json:"privateKey"`
	Balance    string         `json:"balance"`
}

const (
	devnetAccounts   = 10
	devnetGatewayRPC = "127.0.0.1:8545" // the devnet's single entry point
	devnetGatewayOps = "127.0.0.1:9546"
	devnetRPCAddr    = "127.0.0.1:18545" // node1's own JSON-RPC
	devnetOpsAddr    = "127.0.0.1:9545"
	devnetAdmin      = "127.0.0.1:9645"
)

// devnetOptions are the devnet command's flags.
type devnetOptions struct {
	dir        string
	node       *nodeFlags
	gateway    string // gateway JSON-RPC address, or "off"
	gatewayOps string
}

func devnetFlags(name string, args []string, stderr io.Writer) (*devnetOptions, error) {
	fs := newFlagSet(name, stderr)
	o := &devnetOptions{}
	fs.StringVar(&o.dir, "dir", "./devnet", "devnet directory (created when missing, resumed otherwise)")
	fs.StringVar(&o.gateway, "gateway", devnetGatewayRPC, `the gateway's JSON-RPC address, the devnet's entry point ("off": clients use node1 directly)`)
	fs.StringVar(&o.gatewayOps, "gateway-ops", devnetGatewayOps, "the gateway's metrics/healthz/readyz address")
	o.node = addNodeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%s: unexpected arguments %v", name, fs.Args())
	}
	return o, nil
}

func runDevnetInit(args []string, stdout, stderr io.Writer) error {
	o, err := devnetFlags("devnet init", args, stderr)
	if err != nil {
		return err
	}
	dir := o.dir
	if _, err := os.Stat(filepath.Join(dir, "devnet.json")); err == nil {
		return fmt.Errorf("devnet init: %s already holds a devnet", dir)
	}
	d, err := initDevnet(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "devnet written to %s (%d node, chain id %d); start it with: hansa devnet --dir %s\n", dir, len(d.Nodes), d.ChainID, dir)
	return nil
}

func runDevnet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := devnetFlags("devnet", args, stderr)
	if err != nil {
		return err
	}
	dir := o.dir
	d, err := readDevnet(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if d, err = initDevnet(dir); err == nil {
			fmt.Fprintf(stdout, "created a new devnet in %s\n", dir)
		}
	}
	if err != nil {
		return err
	}
	*o.node.config = d.Nodes[0].Config
	cfg, err := o.node.load()
	if err != nil {
		return err
	}
	withGateway := o.gateway != "off"
	if withGateway && o.gateway == cfg.HTTPAddr {
		return fmt.Errorf("devnet: the gateway and node1 both want %s; pass --http for the node or --gateway", o.gateway)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var nodeErr, gwErr error
	wg.Go(func() {
		nodeErr = startNode(ctx, cfg, stderr, func(addrs node.Addrs) {
			d.setEndpoints(0, addrs)
			if !withGateway {
				d.RPC, d.WS, d.Gateway = d.Nodes[0].RPC, d.Nodes[0].WS, nil
				finishDevnetStart(stdout, stderr, dir, d)
				return
			}
			wg.Go(func() {
				gwErr = runDevnetGateway(ctx, o, d, addrs, logger, func() { finishDevnetStart(stdout, stderr, dir, d) })
				if gwErr != nil {
					cancel(gwErr)
				}
			})
		})
		cancel(nodeErr)
	})
	wg.Wait()
	return errors.Join(nodeErr, gwErr)
}

// finishDevnetStart records the bound endpoints in devnet.json and prints
// the banner, once everything serves.
func finishDevnetStart(stdout, stderr io.Writer, dir string, d *devnetFile) {
	if err := writeDevnet(dir, d); err != nil {
		fmt.Fprintf(stderr, "devnet: update %s/devnet.json: %v\n", dir, err)
	}
	printDevnet(stdout, dir, d)
}

// runDevnetGateway runs the gateway in front of node1 until ctx ends: open
// access on loopback for every namespace the node serves, no admin API.
// ready is called once it serves and node1 is healthy behind it.
func runDevnetGateway(ctx context.Context, o *devnetOptions, d *devnetFile, nodeAddrs node.Addrs, logger *slog.Logger, ready func()) error {
	cfg := gateway.DefaultConfig()
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = o.gateway, o.gatewayOps, ""
	cfg.ChainID = d.ChainID
	cfg.AllowAnonymous = true
	cfg.Anonymous = gateway.KeyConfig{Name: "devnet", Methods: []string{"eth_*", "net_*", "web3_*", "txpool_*", "debug_*"}}
	cfg.Health.PollInterval = gateway.Duration(250 * time.Millisecond)
	cfg.Upstreams = []gateway.UpstreamConfig{{Name: d.Nodes[0].Name, URL: "http://" + nodeAddrs.HTTP}}
	g, err := gateway.New(cfg, logger, telemetry.NewRegistry())
	if err != nil {
		return fmt.Errorf("devnet gateway: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- g.Run(ctx) }()
	addrs, err := g.Addrs(ctx)
	if err != nil {
		return errors.Join(err, <-errc)
	}
	for g.Ready() != nil { // wait until node1 counts as healthy
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

// initDevnet writes a one-node devnet: a node key, genesis funding the dev
// accounts, the node's config and devnet.json.
func initDevnet(dir string) (*devnetFile, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s exists, is not empty and holds no devnet.json; choose another --dir", dir)
	}
	nodeDir := filepath.Join(dir, "node1")
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		return nil, err
	}
	nodeKey, err := keys.Generate()
	if err != nil {
		return nil, err
	}
	if err := keys.Save(filepath.Join(nodeDir, "nodekey"), nodeKey); err != nil {
		return nil, err
	}
	nodeAddr := crypto.PubkeyToAddress(nodeKey.PublicKey)

	g := chain.DefaultGenesis()
	g.Timestamp = uint64(time.Now().Unix())
	g.Members = []chain.Member{{ID: 1, Name: "node1", Address: nodeAddr}}
	balance := new(big.Int).Mul(big.NewInt(10_000), big.NewInt(1e18))
	d := &devnetFile{
		ChainID:  g.ChainID,
		Genesis:  filepath.Join(dir, "genesis.json"),
		RPC:      "http://" + devnetGatewayRPC,
		WS:       "ws://" + devnetGatewayRPC,
		Gateway:  &devnetGateway{RPC: "http://" + devnetGatewayRPC, WS: "ws://" + devnetGatewayRPC, Metrics: "http://" + devnetGatewayOps + "/metrics"},
		Mnemonic: keys.DevMnemonic,
	}
	for i := uint32(0); i < devnetAccounts; i++ {
		key, err := keys.DeriveAccount(keys.DevMnemonic, i)
		if err != nil {
			return nil, err
		}
		addr := crypto.PubkeyToAddress(key.PublicKey)
		g.Alloc[addr] = chain.Account{Balance: chain.NewBigInt(balance)}
		d.Accounts = append(d.Accounts, devnetAccount{Address: addr, PrivateKey: hexutil.Encode(crypto.FromECDSA(key)), Balance: balance.String()})
	}
	if err := chain.WriteGenesis(d.Genesis, g); err != nil {
		return nil, err
	}
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Genesis, cfg.NodeKey = "data", filepath.Join("..", "genesis.json"), "nodekey"
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = devnetRPCAddr, devnetOpsAddr, devnetAdmin
	cfg.RPC.Namespaces = append(cfg.RPC.Namespaces, "debug")
	cfg.RPC.AllowUnprotectedTxs = true // deterministic-deployment tools need them on a dev chain
	configPath := filepath.Join(nodeDir, "config.toml")
	if err := node.WriteConfig(configPath, cfg); err != nil {
		return nil, err
	}
	d.Nodes = []devnetNode{{
		ID: 1, Name: "node1", Address: nodeAddr,
		RPC: "http://" + devnetRPCAddr, WS: "ws://" + devnetRPCAddr,
		Metrics: "http://" + devnetOpsAddr + "/metrics", Admin: "http://" + devnetAdmin,
		Config: configPath, DataDir: filepath.Join(nodeDir, "data"),
	}}
	return d, writeDevnet(dir, d)
}

// setEndpoints records node i's bound addresses.
func (d *devnetFile) setEndpoints(i int, addrs node.Addrs) {
	n := &d.Nodes[i]
	n.RPC, n.WS = "http://"+addrs.HTTP, "ws://"+addrs.HTTP
	n.Metrics, n.Admin = "", ""
	if addrs.Ops != "" {
		n.Metrics = "http://" + addrs.Ops + "/metrics"
	}
	if addrs.Admin != "" {
		n.Admin = "http://" + addrs.Admin
	}
}

func writeDevnet(dir string, d *devnetFile) error {
	data, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "devnet.json"), append(data, '\n'), 0o644)
}

func readDevnet(dir string) (*devnetFile, error) {
	data, err := os.ReadFile(filepath.Join(dir, "devnet.json"))
	if err != nil {
		return nil, err
	}
	d := new(devnetFile)
	if err := json.Unmarshal(data, d); err != nil {
		return nil, fmt.Errorf("%s/devnet.json: %w", dir, err)
	}
	if len(d.Nodes) == 0 {
		return nil, fmt.Errorf("%s/devnet.json lists no nodes", dir)
	}
	return d, nil
}

func printDevnet(w io.Writer, dir string, d *devnetFile) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nHansa devnet is running (chain id %d, directory %s)\n\n", d.ChainID, dir)
	fmt.Fprintf(&b, "  JSON-RPC   %s\n  WebSocket  %s\n", d.RPC, d.WS)
	if d.Gateway != nil {
		fmt.Fprintf(&b, "             (the gateway: open to anyone on this machine, no API key; metrics %s)\n", d.Gateway.Metrics)
	}
	for _, n := range d.Nodes {
		fmt.Fprintf(&b, "  %-10s %s  metrics %s  admin %s\n", n.Name, n.RPC, n.Metrics, n.Admin)
	}
	fmt.Fprintf(&b, "\nAccounts (10,000 ETH each; mnemonic %q):\n", d.Mnemonic)
	for i, a := range d.Accounts {
		fmt.Fprintf(&b, "  (%d) %s  %s\n", i, a.Address, a.PrivateKey)
	}
	fmt.Fprintf(&b, "\nThese keys are public knowledge: never use them outside this devnet.\nEndpoints and accounts are in %s. Stop with Ctrl-C; run again to resume.\n\n", filepath.Join(dir, "devnet.json"))
	io.WriteString(w, b.String())
}
