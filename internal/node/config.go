package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/hansa-chain/hansa/internal/rpc"
	"github.com/hansa-chain/hansa/internal/storage"
	"github.com/hansa-chain/hansa/internal/telemetry"
	"github.com/hansa-chain/hansa/internal/txpool"
)

// Config is a node's configuration: the TOML file, then flag overrides.
// Relative paths are resolved against the directory of the config file.
type Config struct {
	// DataDir holds the database and, by default, the node key.
	DataDir string `toml:"datadir"`
	// Genesis is the path of genesis.json.
	Genesis string `toml:"genesis"`
	// NodeKey is the path of the node's secp256k1 key (default DataDir/nodekey;
	// created on first start when missing).
	NodeKey string `toml:"node_key"`
	// HTTPAddr serves JSON-RPC over HTTP and WebSocket on one port.
	HTTPAddr string `toml:"http_addr"`
	// OpsAddr serves /metrics, /healthz and /readyz. Empty disables it.
	OpsAddr string `toml:"ops_addr"`
	// AdminAddr serves the admin namespace. Empty disables it; keep it on
	// loopback.
	AdminAddr string `toml:"admin_addr"`

	Cluster ClusterConfig   `toml:"cluster"`
	Log     LogConfig       `toml:"log"`
	RPC     rpc.Config      `toml:"rpc"`
	TxPool  txpool.Config   `toml:"txpool"`
	Storage storage.Options `toml:"storage"`
}

// ClusterConfig configures replication. A genesis with one member runs
// without it (the single-voter orderer); with several members every node
// needs ListenAddr and the address of every other member.
type ClusterConfig struct {
	// ListenAddr serves node-to-node traffic (Raft, forwarded transactions,
	// block sync) over mutual TLS bound to the node keys.
	ListenAddr string `toml:"listen_addr"`
	// Peers are the other members' cluster addresses (host:port; hostnames
	// allowed), by genesis member id. Their identities are the addresses in
	// genesis.
	Peers []PeerConfig `toml:"peers"`
	// TickInterval is Raft's clock: heartbeats go every HeartbeatTicks
	// ticks, and a follower that hears no leader for ElectionTicks ticks
	// (randomised up to twice that) starts an election.
	TickInterval   time.Duration `toml:"tick_interval"`
	ElectionTicks  int           `toml:"election_ticks"`
	HeartbeatTicks int           `toml:"heartbeat_ticks"`
	// SnapshotEntries is how many applied entries pass between snapshots
	// (after which the log is compacted); KeepEntries are kept behind a
	// snapshot so that a briefly lagging follower still catches up from the
	// log rather than by block sync.
	SnapshotEntries uint64 `toml:"snapshot_entries"`
	KeepEntries     uint64 `toml:"keep_entries"`
	// ForwardTimeout bounds forwarding a transaction to the leader,
	// including waiting for an election to finish.
	ForwardTimeout time.Duration `toml:"forward_timeout"`
	// FaultInjection enables the admin methods that cut links to peers.
	// For tests of partitions only; never in production.
	FaultInjection bool `toml:"fault_injection"`
}

// PeerConfig is one other member's cluster address.
type PeerConfig struct {
	ID   uint64 `toml:"id"`
	Addr string `toml:"addr"`
}

// DefaultClusterConfig returns the replication defaults: a 50 ms tick
// (heartbeats), elections after 0.5–1 s without a leader.
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		TickInterval: 50 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
		SnapshotEntries: 1_000, KeepEntries: 500, ForwardTimeout: 5 * time.Second,
	}
}

// Validate reports the first invalid setting.
func (c *ClusterConfig) Validate() error {
	switch {
	case c.TickInterval <= 0:
		return errors.New("cluster.tick_interval must be positive")
	case c.HeartbeatTicks < 1 || c.ElectionTicks <= c.HeartbeatTicks:
		return errors.New("cluster.election_ticks must exceed cluster.heartbeat_ticks, which must be at least 1")
	case c.SnapshotEntries == 0:
		return errors.New("cluster.snapshot_entries must be positive")
	case c.ForwardTimeout <= 0:
		return errors.New("cluster.forward_timeout must be positive")
	}
	seen := map[uint64]bool{}
	for _, p := range c.Peers {
		switch {
		case p.ID == 0:
			return fmt.Errorf("cluster.peers: id 0 (address %q); member ids start at 1", p.Addr)
		case seen[p.ID]:
			return fmt.Errorf("cluster.peers: member %d listed twice", p.ID)
		case p.Addr == "":
			return fmt.Errorf("cluster.peers: member %d has no addr", p.ID)
		}
		seen[p.ID] = true
	}
	return nil
}

// LogConfig selects the log level and format.
type LogConfig struct {
	Level  string `toml:"level"`  // debug, info, warn, error
	Format string `toml:"format"` // text or json
}

// DefaultConfig returns a configuration with every default filled in and no
// datadir or genesis.
func DefaultConfig() Config {
	return Config{
		HTTPAddr: "127.0.0.1:8545",
		OpsAddr:  "127.0.0.1:9545",
		Cluster:  DefaultClusterConfig(),
		Log:      LogConfig{Level: "info", Format: "text"},
		RPC:      rpc.DefaultConfig(),
		TxPool:   txpool.DefaultConfig(),
		Storage:  storage.DefaultOptions(),
	}
}

// LoadConfig reads a TOML file over the defaults. Unknown keys are errors,
// so a typo never silently falls back to a default.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.DecodeFile(path, &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		return cfg, fmt.Errorf("config %s: unknown keys %v", path, undecoded)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&cfg.DataDir, &cfg.Genesis, &cfg.NodeKey} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return cfg, nil
}

// WriteConfig writes cfg as TOML, refusing to overwrite.
func WriteConfig(path string, cfg Config) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = toml.NewEncoder(f).Encode(cfg)
	return errors.Join(err, f.Close())
}

// Validate reports the first problem that would stop the node from starting.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("datadir is required")
	}
	if c.Genesis == "" {
		return errors.New("genesis is required")
	}
	if c.HTTPAddr == "" {
		return errors.New("http_addr is required")
	}
	if _, err := telemetry.ParseLevel(c.Log.Level); err != nil {
		return err
	}
	if _, err := telemetry.ParseFormat(c.Log.Format); err != nil {
		return err
	}
	if err := c.Cluster.Validate(); err != nil {
		return err
	}
	if err := c.Storage.Validate(); err != nil {
		return err
	}
	if err := c.RPC.Validate(); err != nil {
		return err
	}
	return c.TxPool.Validate()
}

// NodeKeyPath is the node key's path after defaults.
func (c *Config) NodeKeyPath() string {
	if c.NodeKey != "" {
		return c.NodeKey
	}
	return filepath.Join(c.DataDir, "nodekey")
}
