package rpc_test

import (
	"crypto/ecdsa"
	"math/big"
	"strings"
	"testing"

	ethereum "github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethdb/memorydb"
	"github.com/ethereum/go-ethereum/rlp"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/ethereum/go-ethereum/trie"
	"github.com/holiman/uint256"

	"github.com/hansa-chain/hansa/internal/rpc/rpctest"
)

type keyPair struct{ k *ecdsa.PrivateKey }

func (p *keyPair) sign(t *testing.T, signer types.Signer, inner types.TxData) *types.Transaction {
	t.Helper()
	tx, err := types.SignNewTx(p.k, signer, inner)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func uint256FromUint64(v uint64) *uint256.Int { return uint256.NewInt(v) }

// Hand-assembled snippets used as state overrides.
var (
	codeReturnNumber = hexutil.Bytes{0x43, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3} // NUMBER PUSH0 MSTORE PUSH1 32 PUSH0 RETURN
	codeReturnGas    = hexutil.Bytes{0x5a, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3} // GAS ...
)

func (e *ethEnv) callArgs(to common.Address, data []byte) map[string]any {
	return map[string]any{"from": e.fx.Addr1, "to": to, "input": hexutil.Bytes(data)}
}

func TestCall(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	ctx := t.Context()

	// The contract uses PUSH0: this fails unless the block context is post-merge.
	out, err := e.ec.CallContract(ctx, ethereum.CallMsg{To: &e.fx.Contract}, nil)
	if err != nil || new(big.Int).SetBytes(out).Uint64() != 42 {
		t.Fatalf("call latest = %x, %v; want 42", out, err)
	}
	out, err = e.ec.CallContract(ctx, ethereum.CallMsg{To: &e.fx.Contract}, big.NewInt(2))
	if err != nil || new(big.Int).SetBytes(out).Uint64() != rpctest.InitialValue {
		t.Errorf("call at block 2 = %x, %v; want 7", out, err)
	}
	var res hexutil.Bytes
	e.mustCall(&res, "eth_call", map[string]any{"to": e.fx.Contract}, map[string]any{"blockHash": e.fx.Blocks[1].Hash()})
	if new(big.Int).SetBytes(res).Uint64() != rpctest.InitialValue {
		t.Errorf("call at block 2 by hash = %x", res)
	}
	// "data" is accepted as well as "input"; the store does not persist.
	e.mustCall(&res, "eth_call", map[string]any{"to": e.fx.Contract, "data": hexutil.Bytes(rpctest.StoreCall(9))}, "latest")
	if len(res) != 0 {
		t.Errorf("store returned %x", res)
	}
	out, _ = e.ec.CallContract(ctx, ethereum.CallMsg{To: &e.fx.Contract}, nil)
	if new(big.Int).SetBytes(out).Uint64() != 42 {
		t.Errorf("eth_call changed state: %x", out)
	}

	// Reverts: code 3, decoded reason, data = revert bytes.
	for _, c := range []struct {
		sel      uint32
		msg      string
		dataPref string
	}{
		{rpctest.SelRevert, "execution reverted: nope", "0x08c379a0"},
		{rpctest.SelPanic, "execution reverted: assert(false)", "0x4e487b71"},
	} {
		_, err := e.call("eth_call", e.callArgs(e.fx.Contract, rpctest.Calldata(c.sel)), "latest")
		wantRPCError(t, err, 3, c.msg)
		de, ok := err.(gethrpc.DataError)
		if !ok {
			t.Fatalf("revert error has no data: %T", err)
		}
		data, _ := de.ErrorData().(string)
		if !strings.HasPrefix(data, c.dataPref) {
			t.Errorf("revert data = %v, want prefix %s", de.ErrorData(), c.dataPref)
		}
	}
	// ethclient sees the same revert data.
	_, err = e.ec.CallContract(ctx, ethereum.CallMsg{To: &e.fx.Contract, Data: rpctest.Calldata(rpctest.SelRevert)}, nil)
	if de, ok := err.(gethrpc.DataError); !ok || !strings.HasSuffix(de.ErrorData().(string), "6e6f706500000000000000000000000000000000000000000000000000000000") {
		t.Errorf("ethclient revert = %v", err)
	}

	// A non-revert EVM failure is a plain error with geth's text.
	_, err = e.call("eth_call", map[string]any{"to": e.fx.Contract, "gas": "0x5300"}, "latest")
	wantRPCError(t, err, -32000, "out of gas")
	// Paying for gas from an empty account fails before execution.
	empty := common.HexToAddress("0xdead")
	_, err = e.call("eth_call", map[string]any{"from": empty, "to": e.fx.Contract, "gas": "0x10000", "gasPrice": "0x1"}, "latest")
	wantRPCError(t, err, -32000, "err: insufficient funds for gas * price + value: address "+empty.Hex()+" have 0 want 65536 (supplied gas 65536)")
	_, err = e.call("eth_call", map[string]any{"to": e.fx.Contract, "gasPrice": "0x1", "maxFeePerGas": "0x1"}, "latest")
	wantRPCError(t, err, -32000, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	_, err = e.call("eth_call", map[string]any{"to": e.fx.Contract}, "0x99")
	wantRPCError(t, err, -32000, "header not found")
}

func TestCallOverrides(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	var res hexutil.Bytes

	// State override: storage diff on the contract.
	so := map[string]any{e.fx.Contract.Hex(): map[string]any{"stateDiff": map[string]string{
		"0x0000000000000000000000000000000000000000000000000000000000000000": "0x0000000000000000000000000000000000000000000000000000000000000005",
	}}}
	e.mustCall(&res, "eth_call", map[string]any{"to": e.fx.Contract}, "latest", so)
	if new(big.Int).SetBytes(res).Uint64() != 5 {
		t.Errorf("stateDiff override = %x, want 5", res)
	}
	// Code override plus block override of the number.
	target := common.HexToAddress("0x4444")
	so = map[string]any{target.Hex(): map[string]any{"code": codeReturnNumber}}
	e.mustCall(&res, "eth_call", map[string]any{"to": target}, "latest", so, map[string]any{"number": "0x1234"})
	if new(big.Int).SetBytes(res).Uint64() != 0x1234 {
		t.Errorf("block number override = %x, want 0x1234", res)
	}
	e.mustCall(&res, "eth_call", map[string]any{"to": target}, "0x2", so)
	if new(big.Int).SetBytes(res).Uint64() != 2 {
		t.Errorf("NUMBER at block 2 = %x", res)
	}
	// Balance override lets an empty account pay.
	poor := common.HexToAddress("0xdead")
	so = map[string]any{poor.Hex(): map[string]any{"balance": "0xffffffffffff"}}
	e.mustCall(&res, "eth_call", map[string]any{"from": poor, "to": e.fx.Contract, "gas": "0x10000", "gasPrice": "0x1"}, "latest", so)
	if new(big.Int).SetBytes(res).Uint64() != 42 {
		t.Errorf("call with balance override = %x", res)
	}
	// Conflicting overrides are refused with geth's text.
	so = map[string]any{target.Hex(): map[string]any{"state": map[string]string{}, "stateDiff": map[string]string{}}}
	_, err := e.call("eth_call", map[string]any{"to": target}, "latest", so)
	wantRPCError(t, err, -32000, "account "+target.Hex()+" has both 'state' and 'stateDiff'")
	_, err = e.call("eth_call", map[string]any{"to": target}, "latest", nil, map[string]any{"beaconRoot": common.Hash{1}})
	wantRPCError(t, err, -32000, `block override "beaconRoot" is not supported for this RPC method`)
	// Moving the ecrecover precompile away leaves its address empty (returns nothing).
	ecrecover := common.BytesToAddress([]byte{1})
	so = map[string]any{ecrecover.Hex(): map[string]any{"movePrecompileToAddress": common.HexToAddress("0x5555")}}
	input := make([]byte, 128)
	e.mustCall(&res, "eth_call", map[string]any{"to": ecrecover, "input": hexutil.Bytes(input)}, "latest", so)
	if len(res) != 0 {
		t.Errorf("moved precompile still answers: %x", res)
	}

	// Gas is capped by Config.GasCap.
	so = map[string]any{target.Hex(): map[string]any{"code": codeReturnGas}}
	e.mustCall(&res, "eth_call", map[string]any{"to": target, "gas": "0x3b9aca00"}, "latest", so)
	if g := new(big.Int).SetBytes(res).Uint64(); g >= e.cfg.GasCap || g < e.cfg.GasCap-100_000 {
		t.Errorf("GAS inside call = %d, want just under the cap %d", g, e.cfg.GasCap)
	}
}

func TestEstimateGas(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	ctx := t.Context()
	gas, err := e.ec.EstimateGas(ctx, ethereum.CallMsg{From: e.fx.Addr1, To: &e.fx.Addr3, Value: big.NewInt(1)})
	if err != nil || gas != 21000 {
		t.Errorf("transfer estimate = %d, %v", gas, err)
	}
	gas, err = e.ec.EstimateGas(ctx, ethereum.CallMsg{From: e.fx.Addr1, To: &e.fx.Contract, Data: rpctest.StoreCall(1000)})
	if err != nil || gas < 21000+2900 || gas > 100_000 {
		t.Fatalf("store estimate = %d, %v", gas, err)
	}
	// The estimate is enough to run the call.
	var res hexutil.Bytes
	e.mustCall(&res, "eth_call", map[string]any{"from": e.fx.Addr1, "to": e.fx.Contract, "input": hexutil.Bytes(rpctest.StoreCall(1000)), "gas": hexutil.Uint64(gas)}, "latest")

	_, err = e.call("eth_estimateGas", e.callArgs(e.fx.Contract, rpctest.Calldata(rpctest.SelRevert)))
	wantRPCError(t, err, 3, "execution reverted: nope")
	_, err = e.call("eth_estimateGas", e.callArgs(e.fx.Contract, rpctest.Calldata(rpctest.SelLoop)))
	// The estimator also honours Osaka's per-transaction gas cap (EIP-7825).
	wantRPCError(t, err, -32000, "gas required exceeds allowance (16777216)")
	// A state override is honoured: the overridden code returns the block number.
	target := common.HexToAddress("0x4444")
	var est hexutil.Uint64
	e.mustCall(&est, "eth_estimateGas", map[string]any{"to": target}, "latest", map[string]any{target.Hex(): map[string]any{"code": codeReturnNumber}})
	if est <= 21000 || est > 22000 {
		t.Errorf("estimate with code override = %d", est)
	}
}

func TestCreateAccessList(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	// Code at target reads the balance of Addr2 and slot 0 of itself:
	// PUSH20 addr2 BALANCE POP PUSH0 SLOAD POP STOP.
	target := common.HexToAddress("0x4444")
	code := append([]byte{0x73}, e.fx.Addr2.Bytes()...)
	code = append(code, 0x31, 0x50, 0x5f, 0x54, 0x50, 0x00)
	so := map[string]any{target.Hex(): map[string]any{"code": hexutil.Bytes(code)}}
	var res struct {
		AccessList types.AccessList `json:"accessList"`
		GasUsed    hexutil.Uint64   `json:"gasUsed"`
		Error      string           `json:"error"`
	}
	e.mustCall(&res, "eth_createAccessList", map[string]any{"from": e.fx.Addr1, "to": target}, "latest", so)
	// The sender is excluded; the recipient's address is too, but not its
	// storage slots (go-ethereum's tracer behaves the same).
	got := map[common.Address][]common.Hash{}
	for _, tuple := range res.AccessList {
		got[tuple.Address] = tuple.StorageKeys
	}
	if keys, ok := got[e.fx.Addr2]; len(got) != 2 || !ok || len(keys) != 0 || len(got[target]) != 1 || got[target][0] != (common.Hash{}) {
		t.Errorf("access list = %+v", res.AccessList)
	}
	if res.GasUsed <= 21000 || res.Error != "" {
		t.Errorf("gasUsed %d error %q", res.GasUsed, res.Error)
	}
	// A reverting call still answers, with the error text.
	e.mustCall(&res, "eth_createAccessList", e.callArgs(e.fx.Contract, rpctest.Calldata(rpctest.SelRevert)))
	if res.Error != "execution reverted" {
		t.Errorf("revert error = %q", res.Error)
	}
}

func TestGetProof(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	var res struct {
		Address      common.Address `json:"address"`
		AccountProof []string       `json:"accountProof"`
		Balance      *hexutil.Big   `json:"balance"`
		CodeHash     common.Hash    `json:"codeHash"`
		Nonce        hexutil.Uint64 `json:"nonce"`
		StorageHash  common.Hash    `json:"storageHash"`
		StorageProof []struct {
			Key   string       `json:"key"`
			Value *hexutil.Big `json:"value"`
			Proof []string     `json:"proof"`
		} `json:"storageProof"`
	}
	head := e.fx.Blocks[3].Header()
	e.mustCall(&res, "eth_getProof", e.fx.Contract, []string{"0x0", "0x0000000000000000000000000000000000000000000000000000000000000001"}, "latest")

	// Verify the account proof against the head's state root.
	val := verifyProof(t, head.Root, crypto.Keccak256(e.fx.Contract[:]), res.AccountProof)
	var acc types.StateAccount
	if err := rlp.DecodeBytes(val, &acc); err != nil {
		t.Fatal(err)
	}
	if acc.Root != res.StorageHash || common.BytesToHash(acc.CodeHash) != res.CodeHash ||
		res.CodeHash != crypto.Keccak256Hash(rpctest.RuntimeCode()) || acc.Nonce != uint64(res.Nonce) || res.Nonce != 1 {
		t.Errorf("account = %+v, result = %+v", acc, res)
	}
	if len(res.StorageProof) != 2 || res.StorageProof[0].Key != "0x0" ||
		res.StorageProof[1].Key != "0x0000000000000000000000000000000000000000000000000000000000000001" {
		t.Fatalf("storage proofs = %+v", res.StorageProof)
	}
	if res.StorageProof[0].Value.ToInt().Uint64() != 42 {
		t.Errorf("slot 0 = %v", res.StorageProof[0].Value)
	}
	slotVal := verifyProof(t, res.StorageHash, crypto.Keccak256(common.Hash{}.Bytes()), res.StorageProof[0].Proof)
	var stored []byte
	if err := rlp.DecodeBytes(slotVal, &stored); err != nil || new(big.Int).SetBytes(stored).Uint64() != 42 {
		t.Errorf("proven slot 0 = %x, %v", stored, err)
	}
	if res.StorageProof[1].Value.ToInt().Sign() != 0 {
		t.Errorf("slot 1 = %v", res.StorageProof[1].Value)
	}

	// An account with no storage: empty storage proofs, empty root.
	e.mustCall(&res, "eth_getProof", e.fx.Addr3, []string{"0x0"}, "0x1")
	if res.StorageHash != types.EmptyRootHash || len(res.StorageProof[0].Proof) != 0 || res.Balance.ToInt().Sign() == 0 {
		t.Errorf("EOA proof = %+v", res)
	}
	verifyProof(t, e.fx.Blocks[0].Root(), crypto.Keccak256(e.fx.Addr3[:]), res.AccountProof)

	_, err := e.call("eth_getProof", e.fx.Contract, []string{"0x" + strings.Repeat("00", 33)}, "latest")
	wantRPCError(t, err, -32602, `storage key too long (want at most 32 bytes): "0x`+strings.Repeat("00", 33)+`"`)
}

// verifyProof checks a Merkle proof of key under root and returns the value.
func verifyProof(t *testing.T, root common.Hash, key []byte, proof []string) []byte {
	t.Helper()
	db := memorydb.New()
	for _, node := range proof {
		b, err := hexutil.Decode(node)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Put(crypto.Keccak256(b), b); err != nil {
			t.Fatal(err)
		}
	}
	val, err := trie.VerifyProof(root, key, db)
	if err != nil || val == nil {
		t.Fatalf("proof of %x under %s: value %x, %v", key, root, val, err)
	}
	return val
}
