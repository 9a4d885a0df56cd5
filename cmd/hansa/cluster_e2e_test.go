package main

// End-to-end test of a three-node `hansa devnet`: one real process running
// a Raft cluster behind its gateway.

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/hansa-chain/hansa/internal/e2etest"
)

// A transaction sent to the gateway is in the same block on every node,
// and each node serves on the endpoints devnet.json gives for it.
func TestE2EDevnetCluster(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "devnet")
	d := e2etest.StartWith(t, hansaBinary(t), dir, e2etest.Options{Nodes: 3})
	if len(d.Nodes) != 3 {
		t.Fatalf("devnet.json lists %d nodes, want 3", len(d.Nodes))
	}
	seen := map[string]bool{}
	for _, n := range d.Nodes {
		for _, addr := range []string{n.RPC, n.Metrics, n.Admin, n.Cluster} {
			if addr == "" || seen[addr] {
				t.Fatalf("%s: endpoint %q missing or shared: %+v", n.Name, addr, d.Nodes)
			}
			seen[addr] = true
		}
	}
	if d.Info.RPC != d.GatewayURL() {
		t.Fatalf("entry point %s, want the gateway %s", d.Info.RPC, d.GatewayURL())
	}

	ctx := t.Context()
	gw, err := ethclient.DialContext(ctx, d.GatewayURL())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	key, err := crypto.HexToECDSA(d.Info.Accounts[0].PrivateKey[2:])
	if err != nil {
		t.Fatal(err)
	}
	nonce, err := gw.PendingNonceAt(ctx, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tx := types.MustSignNewTx(key, e2eSigner(), transferTx(nonce, common.HexToAddress("0xc1"), 1))
	if err := gw.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send through the gateway: %v", err)
	}
	var block common.Hash
	for _, n := range d.Nodes {
		c, err := ethclient.DialContext(ctx, n.RPC)
		if err != nil {
			t.Fatal(err)
		}
		r := waitReceiptAt(t, c, tx.Hash())
		c.Close()
		if block == (common.Hash{}) {
			block = r.BlockHash
		} else if r.BlockHash != block {
			t.Fatalf("%s has the transaction in block %s, another node in %s", n.Name, r.BlockHash, block)
		}
	}

	// Restarting resumes the same three nodes.
	if err := d.Stop(); err != nil {
		t.Fatal(err)
	}
	d = e2etest.StartWith(t, hansaBinary(t), dir, e2etest.Options{Nodes: 3})
	c, err := ethclient.DialContext(ctx, d.Nodes[2].RPC)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if r := waitReceiptAt(t, c, tx.Hash()); r.BlockHash != block {
		t.Fatalf("after a restart node3 has the transaction in block %s, want %s", r.BlockHash, block)
	}
}

// waitReceiptAt polls c for the receipt of hash.
func waitReceiptAt(t *testing.T, c *ethclient.Client, hash common.Hash) *types.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eWait)
	defer cancel()
	for {
		r, err := c.TransactionReceipt(ctx, hash)
		if err == nil {
			return r
		}
		if !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("receipt of %s: %v", hash, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s within %v", hash, e2eWait)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
