package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadDocumentedConfig loads the example of docs/gateway.md (copied to
// testdata) and checks a few fields and derived values.
func TestLoadDocumentedConfig(t *testing.T) {
	cfg, err := LoadConfig(filepath.Join("testdata", "gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.AllowAnonymous || len(cfg.Keys) != 1 || cfg.Keys[0].Rate != 100 || len(cfg.Upstreams) != 2 ||
		cfg.Upstreams[1].Role != RoleFallback || cfg.Upstreams[0].Role != RolePrimary ||
		cfg.Upstreams[0].Labels["region"] != "eu-west" || cfg.Limits.timeoutFor("eth_call") != 5*time.Second ||
		cfg.Limits.timeoutFor("eth_chainId") != 10*time.Second || cfg.Health.MaxAhead != 10 ||
		cfg.Upstreams[0].BatchMax != 32 || cfg.Upstreams[0].BatchSlots != 8 || cfg.Upstreams[1].BatchMax != 0 {
		t.Errorf("unexpected config: %+v", cfg)
	}
	if cfg.StateFile != filepath.Join("testdata", "gateway-state.json") {
		t.Errorf("state_file %q not resolved against the config's directory", cfg.StateFile)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "gateway.md"))
	if err != nil {
		t.Fatal(err)
	}
	example, _ := os.ReadFile(filepath.Join("testdata", "gateway.toml"))
	body := example[strings.Index(string(example), "\n")+1:]
	if !strings.Contains(string(doc), string(body)) {
		t.Error("testdata/gateway.toml differs from the example in docs/gateway.md")
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.AdminToken = "0123456789abcdef"
		c.Upstreams = []UpstreamConfig{{Name: "a", URL: "http://127.0.0.1:1"}}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"default with token", func(*Config) {}, ""},
		{"admin without token", func(c *Config) { c.AdminToken = "" }, "admin_token"},
		{"admin off needs no token", func(c *Config) { c.AdminAddr, c.AdminToken = "", "" }, ""},
		{"bad upstream url", func(c *Config) { c.Upstreams[0].URL = "10.0.0.1:8545" }, "not an http(s) URL"},
		{"bad ws url", func(c *Config) { c.Upstreams[0].WSURL = "http://x" }, "not a ws(s) URL"},
		{"bad role", func(c *Config) { c.Upstreams[0].Role = "leader" }, "role"},
		{"batch too large", func(c *Config) { c.Upstreams[0].BatchMax = 1001 }, "batch_max"},
		{"direct calls above the cap", func(c *Config) { c.Limits.DirectCalls = maxDirectCalls + 1 }, "direct_calls"},
		{"negative direct calls", func(c *Config) { c.Limits.DirectCalls = -1 }, "direct_calls"},
		{"negative batch slots", func(c *Config) { c.Upstreams[0].BatchMax, c.Upstreams[0].BatchSlots = 8, -1 }, "batch_slots"},
		{"duplicate upstream", func(c *Config) { c.Upstreams = append(c.Upstreams, c.Upstreams[0]) }, "defined twice"},
		{"short key", func(c *Config) { c.Keys = []KeyConfig{{Name: "k", Key: "short"}} }, "shorter than 8"},
		{"duplicate key", func(c *Config) {
			c.Keys = []KeyConfig{{Name: "k", Key: "secret-1234"}, {Name: "j", Key: "secret-1234"}}
		}, "used twice"},
		{"bad pattern", func(c *Config) { c.Keys = []KeyConfig{{Name: "k", Key: "secret-1234", Methods: []string{"*_call"}}} }, "method pattern"},
		{"bad contract", func(c *Config) {
			c.Keys = []KeyConfig{{Name: "k", Key: "secret-1234", Contracts: []string{"0x12"}}}
		}, "not an address"},
		{"zero poll", func(c *Config) { c.Health.PollInterval = 0 }, "positive"},
		{"zero batch", func(c *Config) { c.Limits.MaxBatch = 0 }, "limits"},
		{"bad webhook", func(c *Config) { c.Alerts.WebhookURL = "slack" }, "webhook_url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigRejectsUnknownKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.toml")
	os.WriteFile(path, []byte("allow_anonymus = true\n"), 0o644)
	if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), "unknown keys") {
		t.Fatalf("typo accepted: %v", err)
	}
}
