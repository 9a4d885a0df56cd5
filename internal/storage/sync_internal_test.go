package storage

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/trie"

	"github.com/hansa-chain/hansa/internal/chain"
)

func TestDeferBlockSyncLeavesBlocksToTheNextSync(t *testing.T) {
	syncs := 0
	db := newDB(memorydb.New(), func() error { syncs++; return nil }, DefaultOptions())
	g := chain.DefaultGenesis()
	g.Members = []chain.Member{{ID: 1, Address: common.HexToAddress("0x01")}}
	genesis, err := db.InitGenesis(g.CoreGenesis())
	if err != nil {
		t.Fatal(err)
	}
	child := func(parent *types.Header) *types.Block {
		h := types.CopyHeader(parent)
		h.ParentHash, h.Number, h.Time = parent.Hash(), new(big.Int).Add(parent.Number, big.NewInt(1)), parent.Time+1
		return types.NewBlock(h, &types.Body{Withdrawals: []*types.Withdrawal{}}, nil, trie.NewStackTrie(nil))
	}
	b1 := child(genesis.Header())
	before := syncs
	if err := db.CommitBlock(b1, nil, 1); err != nil {
		t.Fatal(err)
	}
	if syncs != before+1 {
		t.Fatalf("CommitBlock synced %d times, want 1", syncs-before)
	}
	db.DeferBlockSync()
	before = syncs
	b2 := child(b1.Header())
	if err := db.CommitBlock(b2, nil, 2); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAppliedIndex(3); err != nil {
		t.Fatal(err)
	}
	if syncs != before {
		t.Fatalf("with DeferBlockSync, CommitBlock and SetAppliedIndex synced %d times", syncs-before)
	}
	if db.HeadHeader().Hash() != b2.Hash() || db.AppliedIndex() != 3 {
		t.Fatalf("head %s applied %d; want block 2 and index 3 written", db.HeadHeader().Hash(), db.AppliedIndex())
	}
}
