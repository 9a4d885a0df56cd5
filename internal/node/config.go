package node

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/ethereum/go-ethereum/common"

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

	// Name is this member's name in the membership (default "nodeN").
	Name string `toml:"name"`
	// AdvertiseAddr is the cluster address other members dial (default:
	// the bound listen address, unless it is a wildcard such as 0.0.0.0).
	AdvertiseAddr string `toml:"advertise_addr"`
	// AdvertiseRPC is this node's public JSON-RPC URL, published in the
	// membership for gateways (default: http:// and the bound http_addr,
	// unless it is a wildcard).
	AdvertiseRPC string `toml:"advertise_rpc"`

	// Join lists members' cluster addresses (host:port) to ask for
	// admission when this node is not a member yet; any one is enough. It
	// takes precedence over membership in genesis (a founder that lost its
	// data must not return under its old id), so founders of a genesis
	// cluster must not set it.
	Join []string `toml:"join"`
	// JoinToken is the shared secret a joining node presents; members
	// refuse joins when it is empty.
	JoinToken string `toml:"join_token"`
	// AllowedKeys, when set, are the only node addresses allowed to join.
	AllowedKeys []common.Address `toml:"allowed_keys"`
	// GenesisHash lets a joining node without a genesis file fetch it from
	// the member it joins through; the fetched genesis must hash to it.
	GenesisHash string `toml:"genesis_hash"`
	// BootstrapExpect forms a new cluster of that many fresh nodes: each
	// waits until BootstrapPeers shows that many and all agree, then the
	// members are numbered in order of node address.
	BootstrapExpect int      `toml:"bootstrap_expect"`
	BootstrapPeers  []string `toml:"bootstrap_peers"`

	// TargetVoters is the number of voters the leader promotes caught-up
	// learners towards (odd counts preferred); -1 turns automatic changes
	// off.
	TargetVoters int `toml:"target_voters"`
	// A learner is promoted once it stayed within PromoteMaxLag entries of
	// the leader for PromoteAfter.
	PromoteAfter  time.Duration `toml:"promote_after"`
	PromoteMaxLag uint64        `toml:"promote_max_lag"`
	// DeadAfter is how long a voter may be unreachable before it is
	// reported dead (status, metric, webhook); with ReplaceDead a caught-up
	// learner replaces it.
	DeadAfter   time.Duration `toml:"dead_after"`
	ReplaceDead bool          `toml:"replace_dead"`
	// AlertWebhook receives membership alerts as Slack-compatible JSON.
	AlertWebhook string `toml:"alert_webhook"`
	// LeaveDrain is how long a leaving node stays unready, so gateways stop
	// sending it traffic, before it asks to be removed.
	LeaveDrain time.Duration `toml:"leave_drain"`
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
		TargetVoters: 3, PromoteAfter: 5 * time.Second, PromoteMaxLag: 100, DeadAfter: 30 * time.Second,
		LeaveDrain: 2 * time.Second,
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
	case c.TargetVoters < -1 || c.TargetVoters == 0:
		return errors.New("cluster.target_voters must be positive, or -1 to turn automatic membership changes off")
	case c.PromoteAfter < 0 || c.DeadAfter <= 0 || c.LeaveDrain < 0:
		return errors.New("cluster.promote_after and cluster.leave_drain must not be negative; cluster.dead_after must be positive")
	case c.BootstrapExpect < 0:
		return errors.New("cluster.bootstrap_expect must not be negative")
	case c.BootstrapExpect > 0 && len(c.BootstrapPeers) == 0:
		return errors.New("cluster.bootstrap_expect needs cluster.bootstrap_peers (--peers): the addresses of the other founding nodes")
	case c.BootstrapExpect > 0 && len(c.Join) > 0:
		return errors.New("cluster.bootstrap_expect and cluster.join exclude each other: form a new cluster or join a running one")
	case (c.BootstrapExpect > 0 || len(c.Join) > 0) && c.ListenAddr == "":
		return errors.New("cluster.listen_addr is required to join or form a cluster")
	case c.GenesisHash != "" && !isHash(c.GenesisHash):
		return fmt.Errorf("cluster.genesis_hash %q is not a 32-byte hex hash", c.GenesisHash)
	}
	for _, a := range append(slices.Clone(c.Join), c.BootstrapPeers...) {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("cluster address %q (join / bootstrap_peers) is not host:port", a)
		}
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

func isHash(s string) bool {
	b, err := hexDecode(s)
	return err == nil && len(b) == common.HashLength
}

func hexDecode(s string) ([]byte, error) {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	return hex.DecodeString(s)
}
