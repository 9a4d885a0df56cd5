package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
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
	RPC      string          `json:"rpc"` // the gateway, or node1 when the gateway is off
	WS       string          `json:"ws"`
	Gateway  *devnetGateway  `json:"gateway,omitempty"`
	Nodes    []devnetNode    `json:"nodes"`
	Mnemonic string          `json:"mnemonic"`
	Accounts []devnetAccount `json:"accounts"`
	// JoinToken admits more nodes: hansa node --join CLUSTER_ADDR --join-token TOKEN.
	JoinToken string `json:"joinToken,omitempty"`
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
	// Cluster is the node-to-node listener (host:port); empty on a
	// one-node devnet, which does not replicate.
	Cluster string `json:"cluster"`
	Config  string `json:"config"`
	DataDir string `json:"datadir"`
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
	devnetNodes      = 3
	devnetMaxNodes   = 100 // each kind of listener has a range of 100 ports

	// Node K (1-based) of a devnet created with --port-base P listens on
	// P+K-1 (JSON-RPC), P+100+K-1 (cluster), P+1000+K-1 (ops) and
	// P+1100+K-1 (admin), all on 127.0.0.1.
	devnetPortBase      = 18545
	devnetClusterOffset = 100
	devnetOpsOffset     = 1000
	devnetAdminOffset   = 1100
)

// devnetListen are one devnet node's listen addresses.
type devnetListen struct {
	http, cluster, ops, admin string
}

// devnetAddrs returns the listen addresses of n nodes: the port scheme from
// base, or, when base is 0, loopback ports that were free a moment ago. A
// one-node devnet gets no cluster address.
func devnetAddrs(n, base int) ([]devnetListen, error) {
	if err := checkDevnetSize(n, base); err != nil {
		return nil, err
	}
	addrs := make([]devnetListen, n)
	if base == 0 {
		var lns []net.Listener
		defer func() {
			for _, ln := range lns {
				ln.Close()
			}
		}()
		// Every listener stays open until all are picked, so the ports differ.
		pick := func(dst *string) error {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return fmt.Errorf("pick a free port: %w", err)
			}
			lns = append(lns, ln)
			*dst = ln.Addr().String()
			return nil
		}
		for i := range addrs {
			a := &addrs[i]
			dsts := []*string{&a.http, &a.ops, &a.admin}
			if n > 1 {
				dsts = append(dsts, &a.cluster)
			}
			for _, dst := range dsts {
				if err := pick(dst); err != nil {
					return nil, err
				}
			}
		}
		return addrs, nil
	}
	at := func(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
	for i := range addrs {
		addrs[i] = devnetListen{http: at(base + i), ops: at(base + devnetOpsOffset + i), admin: at(base + devnetAdminOffset + i)}
		if n > 1 {
			addrs[i].cluster = at(base + devnetClusterOffset + i)
		}
	}
	return addrs, nil
}

// checkDevnetSize validates --nodes and --port-base.
func checkDevnetSize(n, base int) error {
	if n < 1 || n > devnetMaxNodes {
		return fmt.Errorf("--nodes %d: a devnet has 1 to %d nodes", n, devnetMaxNodes)
	}
	if base < 0 {
		return fmt.Errorf("--port-base %d: want a port, or 0 for free ports", base)
	}
	if last := base + devnetAdminOffset + n - 1; base > 0 && last > 65535 {
		return fmt.Errorf("--port-base %d leaves no room for %s: the admin ports would end at %d (> 65535)", base, plural(n, "node"), last)
	}
	return nil
}

// initDevnet writes an n-node devnet into dir: a node key and a config per
// node (dir/nodeK/), a genesis with the n members funding the dev accounts,
// and devnet.json. Ports follow the --port-base scheme from base (0: free
// loopback ports).
func initDevnet(dir string, n, base int) (*devnetFile, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s exists, is not empty and holds no devnet.json; choose another --dir", dir)
	}
	addrs, err := devnetAddrs(n, base)
	if err != nil {
		return nil, err
	}
	g := chain.DefaultGenesis()
	g.Timestamp = uint64(time.Now().Unix())
	for i := range n {
		id := uint64(i + 1)
		name := "node" + strconv.Itoa(i+1)
		nodeDir := filepath.Join(dir, name)
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		key, err := keys.Generate()
		if err != nil {
			return nil, err
		}
		if err := keys.Save(filepath.Join(nodeDir, "nodekey"), key); err != nil {
			return nil, err
		}
		g.Members = append(g.Members, chain.Member{ID: id, Name: name, Address: crypto.PubkeyToAddress(key.PublicKey)})
	}

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

	if n > 1 {
		token := make([]byte, 16)
		if _, err := rand.Read(token); err != nil {
			return nil, err
		}
		d.JoinToken = hex.EncodeToString(token)
	}
	for i, m := range g.Members {
		cfg := devnetNodeConfig(addrs, i)
		cfg.Cluster.JoinToken, cfg.Cluster.Name = d.JoinToken, m.Name
		nodeDir := filepath.Join(dir, m.Name)
		configPath := filepath.Join(nodeDir, "config.toml")
		if err := node.WriteConfig(configPath, cfg); err != nil {
			return nil, err
		}
		a := addrs[i]
		d.Nodes = append(d.Nodes, devnetNode{
			ID: m.ID, Name: m.Name, Address: m.Address,
			RPC: "http://" + a.http, WS: "ws://" + a.http,
			Metrics: "http://" + a.ops + "/metrics", Admin: "http://" + a.admin, Cluster: a.cluster,
			Config: configPath, DataDir: filepath.Join(nodeDir, "data"),
		})
	}
	return d, writeDevnet(dir, d)
}

// devnetNodeConfig is node i's config file: paths relative to its
// directory, its listeners, and every other member as a cluster peer.
func devnetNodeConfig(addrs []devnetListen, i int) node.Config {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Genesis, cfg.NodeKey = "data", filepath.Join("..", "genesis.json"), "nodekey"
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = addrs[i].http, addrs[i].ops, addrs[i].admin
	if len(addrs) > 1 {
		cfg.Cluster.ListenAddr = addrs[i].cluster
		for j, a := range addrs {
			if j != i {
				cfg.Cluster.Peers = append(cfg.Cluster.Peers, node.PeerConfig{ID: uint64(j + 1), Addr: a.cluster})
			}
		}
	}
	cfg.RPC.Namespaces = append(cfg.RPC.Namespaces, "debug")
	cfg.RPC.AllowUnprotectedTxs = true // deterministic-deployment tools need them on a dev chain
	return cfg
}

// setEndpoints records node i's bound addresses.
func (d *devnetFile) setEndpoints(i int, addrs node.Addrs) {
	n := &d.Nodes[i]
	n.RPC, n.WS = "http://"+addrs.HTTP, "ws://"+addrs.HTTP
	n.Metrics, n.Admin, n.Cluster = "", "", addrs.Cluster
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
	for i, n := range d.Nodes {
		if n.Name == "" || n.Name != filepath.Base(n.Name) {
			return nil, fmt.Errorf("%s/devnet.json: node %d has no valid name (%q)", dir, i+1, n.Name)
		}
	}
	return d, nil
}

// plural formats a count with its noun: "1 node", "3 nodes".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
