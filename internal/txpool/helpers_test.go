package txpool

import (
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/holiman/uint256"
)

const testChainID = 1337

var oneEther = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

func testChainConfig() *params.ChainConfig { return chain.EthereumConfig(testChainID) }

func testSigner() types.Signer { return types.LatestSigner(testChainConfig()) }

// testKey returns a deterministic key; i selects it.
func testKey(t testing.TB, i int) *ecdsa.PrivateKey {
	t.Helper()
	b := make([]byte, 32)
	b[30] = byte(i >> 8)
	b[31] = byte(i + 1)
	key, err := crypto.ToECDSA(b)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func addrOf(key *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(key.PublicKey) }

// testHead is a post-merge head with the given gas limit and base fee.
func testHead(gasLimit uint64, baseFee *big.Int) *types.Header {
	return &types.Header{
		Number:     big.NewInt(1),
		GasLimit:   gasLimit,
		BaseFee:    baseFee,
		Difficulty: new(big.Int),
		Time:       1,
	}
}

// newTestState returns an empty in-memory StateDB.
func newTestState(t testing.TB) *state.StateDB {
	t.Helper()
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func fund(st *state.StateDB, addr common.Address, wei *big.Int, nonce uint64) {
	st.SetBalance(addr, uint256.MustFromBig(wei), tracing.BalanceChangeUnspecified)
	st.SetNonce(addr, nonce, tracing.NonceChangeUnspecified)
}

func testConfig() Config {
	cfg := DefaultConfig()
	return cfg
}

// newTestPool returns a free-gas pool (base fee 0, min price 0) with a 30M
// gas limit over st.
func newTestPool(t testing.TB, cfg Config, st *state.StateDB) *Pool {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return New(cfg, testChainConfig(), testHead(30_000_000, new(big.Int)), st, nil, nil)
}

func sign(t testing.TB, key *ecdsa.PrivateKey, inner types.TxData) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(key, testSigner(), inner)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

var testRecipient = common.HexToAddress("0x00000000000000000000000000000000000000aa")

// dynTx is a signed EIP-1559 transfer of 1 wei.
func dynTx(t testing.TB, key *ecdsa.PrivateKey, nonce, gas uint64, tip, feeCap int64) *types.Transaction {
	t.Helper()
	return sign(t, key, &types.DynamicFeeTx{
		ChainID:   big.NewInt(testChainID),
		Nonce:     nonce,
		GasTipCap: big.NewInt(tip),
		GasFeeCap: big.NewInt(feeCap),
		Gas:       gas,
		To:        &testRecipient,
		Value:     big.NewInt(1),
	})
}

// legacyTx is a signed legacy transfer of 1 wei.
func legacyTx(t testing.TB, key *ecdsa.PrivateKey, nonce uint64, price int64) *types.Transaction {
	t.Helper()
	return sign(t, key, &types.LegacyTx{
		Nonce:    nonce,
		GasPrice: big.NewInt(price),
		Gas:      params.TxGas,
		To:       &testRecipient,
		Value:    big.NewInt(1),
	})
}

func hashes(txs []*types.Transaction) []common.Hash {
	out := make([]common.Hash, len(txs))
	for i, tx := range txs {
		out[i] = tx.Hash()
	}
	return out
}

// checkInvariants verifies the pool's counters and structure against its
// contents.
func checkInvariants(t testing.TB, p *Pool) {
	t.Helper()
	p.mu.RLock()
	defer p.mu.RUnlock()
	var pending, queued int
	for addr, acct := range p.accounts {
		if acct.empty() {
			t.Errorf("account %v is empty but kept", addr)
		}
		for i, ptx := range acct.pending {
			if ptx.tx.Nonce() != acct.nonce+uint64(i) || !ptx.pending || p.all[ptx.tx.Hash()] != ptx {
				t.Errorf("account %v: bad pending entry %d (nonce %d, base %d)", addr, i, ptx.tx.Nonce(), acct.nonce)
			}
		}
		for n, ptx := range acct.queued {
			if n != ptx.tx.Nonce() || n <= acct.nonce+uint64(len(acct.pending)) || ptx.pending || p.all[ptx.tx.Hash()] != ptx {
				t.Errorf("account %v: bad queued entry %d", addr, n)
			}
		}
		total := new(big.Int)
		for _, ptx := range acct.sorted() {
			total.Add(total, ptx.cost)
		}
		if total.Cmp(&acct.total) != 0 {
			t.Errorf("account %v: total cost %v, sum of costs %v", addr, &acct.total, total)
		}
		pending += len(acct.pending)
		queued += len(acct.queued)
	}
	if pending != p.pending || queued != p.queued || pending+queued != len(p.all) {
		t.Errorf("counters pending=%d queued=%d all=%d, counted pending=%d queued=%d", p.pending, p.queued, len(p.all), pending, queued)
	}
}

// drain returns the events delivered to ch so far.
func drain(ch chan core.NewTxsEvent) [][]common.Hash {
	var out [][]common.Hash
	for {
		select {
		case ev := <-ch:
			out = append(out, hashes(ev.Txs))
		default:
			return out
		}
	}
}
