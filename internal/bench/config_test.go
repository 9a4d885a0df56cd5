package bench

import (
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestConfigValidate(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	base := DefaultConfig()
	base.RPC, base.Key = "http://127.0.0.1:8545", key
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults with an RPC and a key: %v", err)
	}
	tests := []struct {
		name   string
		change func(c *Config)
		want   string
	}{
		{"no rpc", func(c *Config) { c.RPC = "" }, "RPC URL"},
		{"no key", func(c *Config) { c.Key = nil }, "funder key"},
		{"bad workload", func(c *Config) { c.Workload = "mine" }, "unknown workload"},
		{"zero rate", func(c *Config) { c.Rate = 0 }, "rate"},
		{"zero in flight", func(c *Config) { c.Max, c.InFlight = true, 0 }, "in-flight"},
		{"no duration", func(c *Config) { c.Duration = 0 }, "duration"},
		{"no accounts", func(c *Config) { c.Accounts = 0 }, "account"},
		{"revert share", func(c *Config) { c.RevertShare = 1.5 }, "revert share"},
		{"chain id", func(c *Config) { c.ChainID = big.NewInt(0) }, "chain id"},
		{"gas price", func(c *Config) { c.GasPrice = big.NewInt(-1) }, "gas price"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want an error about %q", err, tt.want)
			}
		})
	}
	// Max mode ignores the rate.
	c := base
	c.Max, c.Rate = true, 0
	if err := c.Validate(); err != nil {
		t.Fatalf("max mode without a rate: %v", err)
	}
}

func TestPlanned(t *testing.T) {
	c := DefaultConfig()
	c.Rate, c.Warmup, c.Duration = 20, 1e9, 2e9
	if got := c.planned(); got != 60 {
		t.Fatalf("planned %d at 20/s for 3 s, want 60", got)
	}
	c.Max, c.MaxTxs = true, 1234
	if got := c.planned(); got != 1234 {
		t.Fatalf("planned %d with max-txs 1234", got)
	}
}

func TestSenderAddressesStable(t *testing.T) {
	key, _ := crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	a, err := SenderAddresses(key, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := SenderAddresses(key, 5)
	seen := map[string]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("sender %d differs between calls", i)
		}
		if seen[a[i].Hex()] || a[i] == crypto.PubkeyToAddress(key.PublicKey) {
			t.Fatalf("sender %d repeats an address", i)
		}
		seen[a[i].Hex()] = true
	}
}
