package chain

import (
	"bytes"
	"encoding/json"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
)

func TestEthereumConfigEnablesForksThroughOsaka(t *testing.T) {
	cfg := EthereumConfig(7)
	if err := cfg.CheckConfigForkOrder(); err != nil {
		t.Fatal(err)
	}
	rules := cfg.Rules(big.NewInt(1), true, 0)
	for name, on := range map[string]bool{
		"London": rules.IsLondon, "Merge": rules.IsMerge, "Shanghai": rules.IsShanghai,
		"Cancun": rules.IsCancun, "Prague": rules.IsPrague, "Osaka": rules.IsOsaka,
	} {
		if !on {
			t.Errorf("%s not active at genesis", name)
		}
	}
	if rules.IsAmsterdam {
		t.Error("Amsterdam must stay off: it is not final in the pinned go-ethereum")
	}
	if cfg.ChainID.Uint64() != 7 {
		t.Errorf("chain id %v", cfg.ChainID)
	}
}

func validGenesis() *Genesis {
	g := DefaultGenesis()
	g.Members = []Member{{ID: 1, Name: "a", Address: common.HexToAddress("0x01")}}
	g.Alloc[common.HexToAddress("0xaa")] = Account{Balance: NewBigInt(big.NewInt(5))}
	return g
}

func TestGenesisValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Genesis)
		want   string
	}{
		{"valid", func(*Genesis) {}, ""},
		{"zero chain id", func(g *Genesis) { g.ChainID = 0 }, "chainId"},
		{"tiny gas limit", func(g *Genesis) { g.GasLimit = 10 }, "gasLimit"},
		{"no max txs", func(g *Genesis) { g.Blocks.MaxTxs = 0 }, "maxTxs"},
		{"small max bytes", func(g *Genesis) { g.Blocks.MaxBytes = 1000 }, "maxBytes"},
		{"max gas over limit", func(g *Genesis) { g.Blocks.MaxGas = g.GasLimit + 1 }, "maxGas"},
		{"member id 0", func(g *Genesis) { g.Members[0].ID = 0 }, "id 0"},
		{"duplicate member id", func(g *Genesis) { g.Members = append(g.Members, Member{ID: 1, Address: common.HexToAddress("0x02")}) }, "twice"},
		{"duplicate member address", func(g *Genesis) { g.Members = append(g.Members, Member{ID: 2, Address: common.HexToAddress("0x01")}) }, "twice"},
		{"negative balance", func(g *Genesis) { g.Alloc[common.HexToAddress("0xbb")] = Account{Balance: NewBigInt(big.NewInt(-1))} }, "negative"},
		{"missing balance", func(g *Genesis) { g.Alloc[common.HexToAddress("0xbb")] = Account{} }, "no balance"},
		{"long extra", func(g *Genesis) { g.ExtraData = make([]byte, 33) }, "extraData"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := validGenesis()
			c.mutate(g)
			err := g.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
}

func TestGenesisFileRoundTrip(t *testing.T) {
	g := validGenesis()
	g.BaseFee = NewBigInt(big.NewInt(params.InitialBaseFee))
	path := filepath.Join(t.TempDir(), "genesis.json")
	if err := WriteGenesis(path, g); err != nil {
		t.Fatal(err)
	}
	got, err := ReadGenesis(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.CoreGenesis().ToBlock().Hash() != g.CoreGenesis().ToBlock().Hash() {
		t.Fatal("genesis block hash changed across a file round trip")
	}
	if got.FreeGas() || got.BaseFee.Big().Int64() != params.InitialBaseFee {
		t.Fatalf("base fee lost: %v", got.BaseFee)
	}
	if got.Blocks.MinInterval.D() != DefaultMinInterval {
		t.Fatalf("min interval %v", got.Blocks.MinInterval.D())
	}
}

func TestGenesisAcceptsHexAndDecimalBalances(t *testing.T) {
	var acc Account
	if err := json.Unmarshal([]byte(`{"balance":"0x10"}`), &acc); err != nil || acc.Balance.Big().Int64() != 16 {
		t.Fatalf("hex: %v %v", acc.Balance, err)
	}
	if err := json.Unmarshal([]byte(`{"balance":"1000000000000000000000"}`), &acc); err != nil || acc.Balance.Big().String() != "1000000000000000000000" {
		t.Fatalf("decimal: %v %v", acc.Balance, err)
	}
	if err := json.Unmarshal([]byte(`{"balance":"ten"}`), &acc); err == nil {
		t.Fatal("accepted a non-number balance")
	}
}

func TestCoreGenesisIncludesSystemContracts(t *testing.T) {
	core := validGenesis().CoreGenesis()
	for _, addr := range []common.Address{params.BeaconRootsAddress, params.HistoryStorageAddress, params.WithdrawalQueueAddress, params.ConsolidationQueueAddress} {
		if len(core.Alloc[addr].Code) == 0 {
			t.Errorf("system contract %s missing", addr)
		}
	}
	if core.BaseFee.Sign() != 0 {
		t.Errorf("free-gas genesis has base fee %v", core.BaseFee)
	}
}

func signedTx(t testing.TB, nonce uint64) *types.Transaction {
	key, _ := crypto.GenerateKey()
	to := common.HexToAddress("0x1234")
	tx, err := types.SignNewTx(key, types.LatestSigner(EthereumConfig(1337)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: nonce, Gas: 21000, To: &to, Value: big.NewInt(1), GasFeeCap: new(big.Int), GasTipCap: new(big.Int),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestProposalRoundTrip(t *testing.T) {
	p := &Proposal{Number: 9, ParentHash: common.HexToHash("0xab"), Time: 1700000000, Proposer: common.HexToAddress("0x01"),
		Txs: types.Transactions{signedTx(t, 0), signedTx(t, 1)}}
	data, err := EncodeProposal(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeProposal(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeProposal(got)
	if !bytes.Equal(data, again) {
		t.Fatal("encoding is not canonical across a round trip")
	}
	if got.Number != 9 || got.Txs[1].Hash() != p.Txs[1].Hash() {
		t.Fatalf("decoded %+v", got)
	}
}

func TestProposalCarriesSenders(t *testing.T) {
	txs := types.Transactions{signedTx(t, 0), signedTx(t, 1)}
	senders := []common.Address{common.HexToAddress("0xaa"), common.HexToAddress("0xbb")}
	data, err := EncodeProposal(&Proposal{Number: 3, Txs: txs, Senders: senders})
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeProposal(data)
	if err != nil || len(got.Senders) != 2 || got.Senders[1] != senders[1] {
		t.Fatalf("senders %v (%v), want %v", got.Senders, err, senders)
	}
	bad, _ := EncodeProposal(&Proposal{Number: 3, Txs: txs, Senders: senders[:1]})
	if _, err := DecodeProposal(bad); err == nil {
		t.Fatal("a proposal with 1 sender for 2 transactions decoded")
	}
}

func TestDecodeProposalRejectsGarbage(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":    nil,
		"garbage":  []byte("hello"),
		"trailing": append(mustEncode(t), 0x01),
		"too big":  make([]byte, MaxProposalBytes+1),
	} {
		if _, err := DecodeProposal(data); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func mustEncode(t *testing.T) []byte {
	data, err := EncodeProposal(&Proposal{Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzDecodeProposal checks that no input makes the proposal decoder panic and
// that anything it accepts re-encodes to the same bytes (one canonical form,
// so every node agrees on what a committed entry means).
func FuzzDecodeProposal(f *testing.F) {
	f.Add(mustEncodeF(f, &Proposal{Number: 1}))
	f.Add(mustEncodeF(f, &Proposal{Number: 2, Txs: types.Transactions{signedTx(f, 0)}}))
	f.Add([]byte{0xc0})
	f.Add([]byte{0xf8, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := DecodeProposal(data)
		if err != nil {
			return
		}
		again, err := EncodeProposal(p)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted a non-canonical encoding")
		}
	})
}

func mustEncodeF(f *testing.F, p *Proposal) []byte {
	data, err := EncodeProposal(p)
	if err != nil {
		f.Fatal(err)
	}
	return data
}
