package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The embedded token must be the artifact the end-to-end tests use.
func TestTokenArtifactMatchesE2E(t *testing.T) {
	want, err := os.ReadFile(filepath.Join("..", "..", "tests", "e2e", "contracts", "Token.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tokenJSON, want) {
		t.Fatal("internal/bench/contracts/Token.json differs from tests/e2e/contracts/Token.json: copy it again")
	}
}

func TestContractsLoad(t *testing.T) {
	k, err := loadContracts()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"transfer", "balanceOf"} {
		if _, ok := k.token.ABI.Methods[m]; !ok {
			t.Errorf("token ABI lacks %s", m)
		}
	}
	for _, m := range []string{"open", "query", "transfer"} {
		if _, ok := k.simple.ABI.Methods[m]; !ok {
			t.Errorf("simple ABI lacks %s", m)
		}
	}
	if len(k.token.Bytecode) == 0 || len(k.simple.Bytecode) == 0 {
		t.Fatal("empty bytecode")
	}
}
