package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"

	"github.com/hansa-chain/hansa/internal/node"
	"github.com/hansa-chain/hansa/internal/telemetry"
)

// nodeFlags are the flags that override a node's config file.
type nodeFlags struct {
	config, datadir, genesis, nodeKey, http, ops, admin, logLevel, logFormat *string
	// membership
	listen, advertise, join, joinToken, genesisHash, peers, name *string
	bootstrapExpect                                              *int
}

func addNodeFlags(fs *flag.FlagSet) *nodeFlags {
	return &nodeFlags{
		config:    fs.String("config", "", "TOML config file"),
		datadir:   fs.String("datadir", "", "data directory (overrides the config)"),
		genesis:   fs.String("genesis", "", "genesis.json (overrides the config)"),
		nodeKey:   fs.String("node-key", "", "node key file (default DATADIR/nodekey)"),
		http:      fs.String("http", "", "JSON-RPC HTTP+WebSocket listen address (overrides the config)"),
		ops:       fs.String("ops", "", "metrics/healthz/readyz listen address (overrides the config)"),
		admin:     fs.String("admin", "", "admin API listen address (overrides the config; keep on loopback)"),
		logLevel:  fs.String("log-level", "", "debug, info, warn or error (overrides the config)"),
		logFormat: fs.String("log-format", "", "text or json (overrides the config)"),

		listen:          fs.String("cluster-listen", "", "cluster (node-to-node) listen address (overrides cluster.listen_addr)"),
		advertise:       fs.String("advertise", "", "cluster address other members dial (overrides cluster.advertise_addr)"),
		join:            fs.String("join", "", "join a running cluster through these members' cluster addresses, comma-separated (cluster.join)"),
		joinToken:       fs.String("join-token", "", "the cluster's join token (cluster.join_token; prefer the config file or HANSA_JOIN_TOKEN)"),
		genesisHash:     fs.String("genesis-hash", "", "fetch genesis from the member joined and check it has this hash (cluster.genesis_hash)"),
		peers:           fs.String("peers", "", "the other founding nodes' cluster addresses, comma-separated (cluster.bootstrap_peers)"),
		bootstrapExpect: fs.Int("bootstrap-expect", 0, "form a new cluster of this many fresh nodes (cluster.bootstrap_expect)"),
		name:            fs.String("name", "", "this member's name in the membership (cluster.name)"),
	}
}

// load reads the config file (if any) and applies the flag overrides.
func (f *nodeFlags) load() (node.Config, error) {
	cfg := node.DefaultConfig()
	if *f.config != "" {
		var err error
		if cfg, err = node.LoadConfig(*f.config); err != nil {
			return cfg, err
		}
	}
	override(map[*string]string{
		&cfg.DataDir: *f.datadir, &cfg.Genesis: *f.genesis, &cfg.NodeKey: *f.nodeKey,
		&cfg.HTTPAddr: *f.http, &cfg.OpsAddr: *f.ops, &cfg.AdminAddr: *f.admin,
		&cfg.Log.Level: *f.logLevel, &cfg.Log.Format: *f.logFormat,
		&cfg.Cluster.ListenAddr: *f.listen, &cfg.Cluster.AdvertiseAddr: *f.advertise, &cfg.Cluster.JoinToken: *f.joinToken,
		&cfg.Cluster.GenesisHash: *f.genesisHash, &cfg.Cluster.Name: *f.name,
	})
	if cfg.Cluster.JoinToken == "" {
		cfg.Cluster.JoinToken = os.Getenv("HANSA_JOIN_TOKEN")
	}
	if *f.join != "" {
		cfg.Cluster.Join = splitList(*f.join)
	}
	if *f.peers != "" {
		cfg.Cluster.BootstrapPeers = splitList(*f.peers)
	}
	if *f.bootstrapExpect != 0 {
		cfg.Cluster.BootstrapExpect = *f.bootstrapExpect
	}
	return cfg, cfg.Validate()
}

func runNode(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("node", stderr)
	flags := addNodeFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := flags.load()
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	return startNode(ctx, cfg, logger, nil)
}

// startNode runs a node until ctx ends, logging to logger; onReady, if set,
// is called once its listeners are bound.
func startNode(ctx context.Context, cfg node.Config, logger *slog.Logger, onReady func(node.Addrs)) error {
	n, err := node.New(ctx, cfg, logger, telemetry.NewRegistry())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	if onReady != nil {
		go func() {
			if addrs, err := n.Addrs(ctx); err == nil {
				onReady(addrs)
			}
		}()
	}
	return <-done
}
