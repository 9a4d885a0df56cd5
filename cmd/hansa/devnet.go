package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/node"
)

// devnetFile describes a devnet for people and tools: every endpoint of every
// node and the funded accounts.
type devnetFile struct {
	ChainID  uint64          `json:"chainId"`
	Genesis  string          `json:"genesis"`
	RPC      string          `json:"rpc"`
	WS       string          `json:"ws"`
	Nodes    []devnetNode    `json:"nodes"`
	Mnemonic string          `json:"mnemonic"`
	Accounts []devnetAccount `json:"accounts"`
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
	devnetAccounts = 10
	devnetRPCAddr  = "127.0.0.1:8545"
	devnetOpsAddr  = "127.0.0.1:9545"
	devnetAdmin    = "127.0.0.1:9645"
)

func devnetFlags(name string, args []string, stderr io.Writer) (string, *nodeFlags, error) {
	fs := newFlagSet(name, stderr)
	dir := fs.String("dir", "./devnet", "devnet directory (created when missing, resumed otherwise)")
	flags := addNodeFlags(fs)
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	if fs.NArg() > 0 {
		return "", nil, fmt.Errorf("%s: unexpected arguments %v", name, fs.Args())
	}
	return *dir, flags, nil
}

func runDevnetInit(args []string, stdout, stderr io.Writer) error {
	dir, _, err := devnetFlags("devnet init", args, stderr)
	if err != nil {
		return err
	}
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
	dir, flags, err := devnetFlags("devnet", args, stderr)
	if err != nil {
		return err
	}
	d, err := readDevnet(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if d, err = initDevnet(dir); err == nil {
			fmt.Fprintf(stdout, "created a new devnet in %s\n", dir)
		}
	}
	if err != nil {
		return err
	}
	n := d.Nodes[0]
	*flags.config = n.Config
	cfg, err := flags.load()
	if err != nil {
		return err
	}
	return startNode(ctx, cfg, stderr, func(addrs node.Addrs) {
		// Record the addresses actually bound (flags may override the
		// defaults), so tools reading devnet.json find the node.
		d.setEndpoints(0, addrs)
		if err := writeDevnet(dir, d); err != nil {
			fmt.Fprintf(stderr, "devnet: update %s/devnet.json: %v\n", dir, err)
		}
		printDevnet(stdout, dir, d, addrs)
	})
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
		RPC:      "http://" + devnetRPCAddr,
		WS:       "ws://" + devnetRPCAddr,
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

// setEndpoints records node i's bound addresses; node 0's RPC is also the
// devnet's entry point.
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
	if i == 0 {
		d.RPC, d.WS = n.RPC, n.WS
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

func printDevnet(w io.Writer, dir string, d *devnetFile, addrs node.Addrs) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nHansa devnet is running (chain id %d, directory %s)\n\n", d.ChainID, dir)
	fmt.Fprintf(&b, "  JSON-RPC   http://%s\n  WebSocket  ws://%s\n", addrs.HTTP, addrs.HTTP)
	if addrs.Ops != "" {
		fmt.Fprintf(&b, "  Metrics    http://%s/metrics   (health: /healthz, /readyz)\n", addrs.Ops)
	}
	if addrs.Admin != "" {
		fmt.Fprintf(&b, "  Admin      http://%s\n", addrs.Admin)
	}
	fmt.Fprintf(&b, "\nAccounts (10,000 ETH each; mnemonic %q):\n", d.Mnemonic)
	for i, a := range d.Accounts {
		fmt.Fprintf(&b, "  (%d) %s  %s\n", i, a.Address, a.PrivateKey)
	}
	fmt.Fprintf(&b, "\nThese keys are public knowledge: never use them outside this devnet.\nEndpoints and accounts are in %s. Stop with Ctrl-C; run again to resume.\n\n", filepath.Join(dir, "devnet.json"))
	io.WriteString(w, b.String())
}
