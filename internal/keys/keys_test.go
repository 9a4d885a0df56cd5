package keys

import (
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// The accounts every Hardhat/anvil user knows; deriving them correctly is
// what makes existing tooling work against the devnet.
func TestDeriveAccountMatchesWellKnownDevAccounts(t *testing.T) {
	cases := []struct {
		index uint32
		addr  string
		key   string
	}{
		{0, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266", "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"},
		{1, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"},
		{9, "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720", "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"},
	}
	for _, c := range cases {
		key, err := DeriveAccount(DevMnemonic, c.index)
		if err != nil {
			t.Fatal(err)
		}
		if got := crypto.PubkeyToAddress(key.PublicKey).Hex(); got != c.addr {
			t.Errorf("index %d: address %s, want %s", c.index, got, c.addr)
		}
		if got := hexutil.Encode(crypto.FromECDSA(key)); got != c.key {
			t.Errorf("index %d: key %s, want %s", c.index, got, c.key)
		}
	}
}

func TestDeriveAccountRejectsBadMnemonic(t *testing.T) {
	if _, err := DeriveAccount("test test test", 0); err == nil {
		t.Fatal("accepted an invalid mnemonic")
	}
}

func TestSaveLoadRoundTripAndNoOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	key, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if err := Save(path, key); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(key) {
		t.Fatal("loaded key differs from saved key")
	}
	if err := Save(path, key); err == nil {
		t.Fatal("Save overwrote an existing key file")
	}
}
