package node

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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

	Log     LogConfig       `toml:"log"`
	RPC     rpc.Config      `toml:"rpc"`
	TxPool  txpool.Config   `toml:"txpool"`
	Storage storage.Options `toml:"storage"`
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
