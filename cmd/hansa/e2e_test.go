package main

// End-to-end tests: a real `hansa devnet` process (built once per test
// binary) driven by go-ethereum's ethclient over HTTP and WebSocket.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/e2etest"
)

const (
	e2eChainID  = 1337
	e2eWait     = 30 * time.Second // generous: the machine is shared
	hansaImport = "github.com/hansa-chain/hansa/cmd/hansa"
)

// binDir holds the hansa binary the end-to-end tests build once; TestMain
// removes it.
var (
	binDir   string
	binOnce  sync.Once
	binPath  string
	binError error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hansa-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// hansaBinary builds cmd/hansa on first use and returns the binary's path.
func hansaBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		binPath, binError = e2etest.Build(ctx, binDir, hansaImport)
	})
	if binError != nil {
		t.Fatal(binError)
	}
	return binPath
}

// e2eNode is a running devnet with clients connected to it.
type e2eNode struct {
	*e2etest.Devnet
	http *ethclient.Client
	ws   *ethclient.Client
	keys []*ecdsa.PrivateKey
}

// startE2E starts a devnet in dir (a new one under t.TempDir when empty)
// and dials it over HTTP and WebSocket.
func startE2E(t *testing.T, dir string) *e2eNode {
	t.Helper()
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "devnet")
	}
	d := e2etest.Start(t, hansaBinary(t), dir)
	n := &e2eNode{Devnet: d}
	var err error
	if n.http, err = ethclient.DialContext(t.Context(), d.RPCURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.http.Close)
	if n.ws, err = ethclient.DialContext(t.Context(), d.WSURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.ws.Close)
	for _, a := range d.Info.Accounts {
		key, err := crypto.HexToECDSA(strings.TrimPrefix(a.PrivateKey, "0x"))
		if err != nil {
			t.Fatal(err)
		}
		if got := crypto.PubkeyToAddress(key.PublicKey); got != common.HexToAddress(a.Address) {
			t.Fatalf("devnet.json: key of %s belongs to %s", a.Address, got)
		}
		n.keys = append(n.keys, key)
	}
	if len(n.keys) != 10 {
		t.Fatalf("devnet.json lists %d accounts, want 10", len(n.keys))
	}
	return n
}

// e2eSigner returns the devnet's latest signer.
func e2eSigner() types.Signer { return types.LatestSignerForChainID(big.NewInt(e2eChainID)) }

// send signs txdata with key, submits it over HTTP and returns the signed tx.
func (n *e2eNode) send(t *testing.T, key *ecdsa.PrivateKey, txdata types.TxData) *types.Transaction {
	t.Helper()
	tx := types.MustSignNewTx(key, e2eSigner(), txdata)
	if err := n.http.SendTransaction(t.Context(), tx); err != nil {
		t.Fatalf("send tx (nonce %d): %v", tx.Nonce(), err)
	}
	return tx
}

// waitReceipt polls for the receipt of hash and asserts the tx succeeded.
func (n *e2eNode) waitReceipt(t *testing.T, hash common.Hash) *types.Receipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eWait)
	defer cancel()
	for {
		r, err := n.http.TransactionReceipt(ctx, hash)
		switch {
		case err == nil:
			if r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("tx %s failed: %+v", hash, r)
			}
			return r
		case !errors.Is(err, ethereum.NotFound):
			t.Fatalf("receipt of %s: %v", hash, err)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no receipt for %s within %v", hash, e2eWait)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// nonce returns the pending nonce of key's account.
func (n *e2eNode) nonce(t *testing.T, key *ecdsa.PrivateKey) uint64 {
	t.Helper()
	nonce, err := n.http.PendingNonceAt(t.Context(), crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	return nonce
}

// transferTx is a free native transfer of value wei.
func transferTx(nonce uint64, to common.Address, value int64) *types.DynamicFeeTx {
	return &types.DynamicFeeTx{
		ChainID: big.NewInt(e2eChainID), Nonce: nonce, To: &to, Value: big.NewInt(value),
		Gas: 21_000, GasFeeCap: new(big.Int), GasTipCap: new(big.Int),
	}
}

// tokenArtifact is tests/e2e/contracts/Token.json, written by
// `npm run build-contract` in tests/e2e.
type tokenArtifact struct {
	ABI              abi.ABI
	Bytecode         []byte
	DeployedBytecode []byte
}

func loadToken(t *testing.T) tokenArtifact {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "tests", "e2e", "contracts", "Token.json"))
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		ABI              json.RawMessage `json:"abi"`
		Bytecode         hexutil.Bytes   `json:"bytecode"`
		DeployedBytecode hexutil.Bytes   `json:"deployedBytecode"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	parsed, err := abi.JSON(bytes.NewReader(raw.ABI))
	if err != nil {
		t.Fatal(err)
	}
	return tokenArtifact{ABI: parsed, Bytecode: raw.Bytecode, DeployedBytecode: raw.DeployedBytecode}
}

func (a tokenArtifact) pack(t *testing.T, method string, args ...any) []byte {
	t.Helper()
	data, err := a.ABI.Pack(method, args...)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// call runs a read-only token method at the latest block and returns its
// single result.
func (n *e2eNode) call(t *testing.T, a tokenArtifact, token common.Address, method string, args ...any) any {
	t.Helper()
	out, err := n.http.CallContract(t.Context(), ethereum.CallMsg{To: &token, Data: a.pack(t, method, args...)}, nil)
	if err != nil {
		t.Fatalf("call %s: %v", method, err)
	}
	res, err := a.ABI.Unpack(method, out)
	if err != nil || len(res) != 1 {
		t.Fatalf("unpack %s %x: %v %v", method, out, res, err)
	}
	return res[0]
}

func addrTopic(a common.Address) common.Hash { return common.BytesToHash(a.Bytes()) }

func TestE2EEthclient(t *testing.T) {
	n := startE2E(t, "")
	ctx := t.Context()
	tok := loadToken(t)
	deployer, alice, bob := n.keys[0], n.keys[1], n.keys[2]
	deployerAddr := crypto.PubkeyToAddress(deployer.PublicKey)
	aliceAddr := crypto.PubkeyToAddress(alice.PublicKey)
	bobAddr := crypto.PubkeyToAddress(bob.PublicKey)
	transferTopic := tok.ABI.Events["Transfer"].ID

	for name, c := range map[string]*ethclient.Client{"http": n.http, "ws": n.ws} {
		id, err := c.ChainID(ctx)
		if err != nil || id.Uint64() != e2eChainID {
			t.Fatalf("%s: chain id %v, %v; want %d", name, id, err, e2eChainID)
		}
	}
	if n.Info.ChainID != e2eChainID {
		t.Fatalf("devnet.json chainId %d", n.Info.ChainID)
	}
	wantBalance := new(big.Int).Mul(big.NewInt(10_000), big.NewInt(1e18))
	for _, key := range n.keys {
		addr := crypto.PubkeyToAddress(key.PublicKey)
		if bal, err := n.http.BalanceAt(ctx, addr, big.NewInt(0)); err != nil || bal.Cmp(wantBalance) != 0 {
			t.Fatalf("genesis balance of %s = %v, %v; want %v", addr, bal, err, wantBalance)
		}
	}

	// Subscribe before anything happens, so every head and log must arrive.
	heads := make(chan *types.Header, 256)
	headSub, err := n.ws.SubscribeNewHead(ctx, heads)
	if err != nil {
		t.Fatal(err)
	}
	defer headSub.Unsubscribe()
	logs := make(chan types.Log, 256)
	logSub, err := n.ws.SubscribeFilterLogs(ctx, ethereum.FilterQuery{Topics: [][]common.Hash{{transferTopic}}}, logs)
	if err != nil {
		t.Fatal(err)
	}
	defer logSub.Unsubscribe()

	// Deploy, with gas and fees as a wallet would pick them.
	supply := new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(1e18))
	ctor, err := tok.ABI.Pack("", "Hansa Test Token", "HTT", supply)
	if err != nil {
		t.Fatal(err)
	}
	deployData := append(bytes.Clone(tok.Bytecode), ctor...)
	gas, err := n.http.EstimateGas(ctx, ethereum.CallMsg{From: deployerAddr, Data: deployData})
	if err != nil {
		t.Fatal(err)
	}
	tip, err := n.http.SuggestGasTipCap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := n.http.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if head.BaseFee == nil || head.BaseFee.Sign() != 0 {
		t.Fatalf("devnet base fee %v, want 0", head.BaseFee)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	nonce := n.nonce(t, deployer)
	deployTx := n.send(t, deployer, &types.DynamicFeeTx{
		ChainID: big.NewInt(e2eChainID), Nonce: nonce, Gas: gas, GasTipCap: tip, GasFeeCap: feeCap, Data: deployData,
	})
	deployRcpt := n.waitReceipt(t, deployTx.Hash())
	token := crypto.CreateAddress(deployerAddr, nonce)
	if deployRcpt.ContractAddress != token {
		t.Fatalf("contractAddress %s, want %s", deployRcpt.ContractAddress, token)
	}
	if deployRcpt.GasUsed == 0 || deployRcpt.GasUsed > gas {
		t.Fatalf("deploy used %d gas, estimate was %d", deployRcpt.GasUsed, gas)
	}
	code, err := n.http.CodeAt(ctx, token, nil)
	if err != nil || !bytes.Equal(code, tok.DeployedBytecode) {
		t.Fatalf("code at %s: %d bytes, %v; want the deployed bytecode (%d bytes)", token, len(code), err, len(tok.DeployedBytecode))
	}
	if got := n.call(t, tok, token, "name"); got != "Hansa Test Token" {
		t.Fatalf("name() = %v", got)
	}
	if got := n.call(t, tok, token, "totalSupply").(*big.Int); got.Cmp(supply) != 0 {
		t.Fatalf("totalSupply() = %v", got)
	}

	// A token transfer and a native transfer.
	amount := big.NewInt(12345)
	tokTx := n.send(t, deployer, &types.DynamicFeeTx{
		ChainID: big.NewInt(e2eChainID), Nonce: n.nonce(t, deployer), To: &token, Gas: 100_000,
		GasFeeCap: new(big.Int), GasTipCap: new(big.Int), Data: tok.pack(t, "transfer", aliceAddr, amount),
	})
	tokRcpt := n.waitReceipt(t, tokTx.Hash())
	if len(tokRcpt.Logs) != 1 || tokRcpt.Logs[0].Address != token ||
		!slicesEqual(tokRcpt.Logs[0].Topics, []common.Hash{transferTopic, addrTopic(deployerAddr), addrTopic(aliceAddr)}) ||
		new(big.Int).SetBytes(tokRcpt.Logs[0].Data).Cmp(amount) != 0 {
		t.Fatalf("transfer receipt logs: %+v", tokRcpt.Logs)
	}
	if got := n.call(t, tok, token, "balanceOf", aliceAddr).(*big.Int); got.Cmp(amount) != 0 {
		t.Fatalf("balanceOf(alice) = %v, want %v", got, amount)
	}
	bobBefore, err := n.http.BalanceAt(ctx, bobAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ethTx := n.send(t, alice, transferTx(n.nonce(t, alice), bobAddr, 1e18))
	ethRcpt := n.waitReceipt(t, ethTx.Hash())
	if ethRcpt.GasUsed != 21_000 || ethRcpt.Type != types.DynamicFeeTxType {
		t.Fatalf("native transfer receipt: %+v", ethRcpt)
	}
	if bal, err := n.http.BalanceAt(ctx, bobAddr, nil); err != nil || new(big.Int).Sub(bal, bobBefore).Cmp(big.NewInt(1e18)) != 0 {
		t.Fatalf("bob's balance %v (before %v), %v", bal, bobBefore, err)
	}
	got, pending, err := n.http.TransactionByHash(ctx, ethTx.Hash())
	if err != nil || pending || got.Hash() != ethTx.Hash() {
		t.Fatalf("TransactionByHash: %v pending=%v %v", got, pending, err)
	}
	block, err := n.http.BlockByNumber(ctx, ethRcpt.BlockNumber)
	if err != nil || block.Hash() != ethRcpt.BlockHash || block.Transactions()[ethRcpt.TransactionIndex].Hash() != ethTx.Hash() {
		t.Fatalf("block %v of the native transfer: %v", ethRcpt.BlockNumber, err)
	}

	// eth_getLogs: all Transfer logs of the token, then only those to alice.
	all, err := n.http.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: deployRcpt.BlockNumber, Addresses: []common.Address{token}, Topics: [][]common.Hash{{transferTopic}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].TxHash != deployTx.Hash() || all[1].TxHash != tokTx.Hash() || all[1].BlockHash != tokRcpt.BlockHash {
		t.Fatalf("FilterLogs: %+v", all)
	}
	toAlice, err := n.http.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(0), Topics: [][]common.Hash{{transferTopic}, nil, {addrTopic(aliceAddr)}}})
	if err != nil || len(toAlice) != 1 || toAlice[0].TxHash != tokTx.Hash() {
		t.Fatalf("FilterLogs to alice: %+v, %v", toAlice, err)
	}

	// The same logs over the subscription, and the heads of their blocks.
	wantLogs := map[common.Hash]common.Hash{deployTx.Hash(): deployRcpt.BlockHash, tokTx.Hash(): tokRcpt.BlockHash}
	wantHeads := map[uint64]common.Hash{deployRcpt.BlockNumber.Uint64(): deployRcpt.BlockHash, tokRcpt.BlockNumber.Uint64(): tokRcpt.BlockHash, ethRcpt.BlockNumber.Uint64(): ethRcpt.BlockHash}
	timeout := time.After(e2eWait)
	for len(wantLogs) > 0 || len(wantHeads) > 0 {
		select {
		case l := <-logs:
			if want, ok := wantLogs[l.TxHash]; ok {
				if l.BlockHash != want || l.Address != token || l.Removed {
					t.Fatalf("subscribed log %+v, want block %s", l, want)
				}
				delete(wantLogs, l.TxHash)
			}
		case h := <-heads:
			if want, ok := wantHeads[h.Number.Uint64()]; ok {
				if h.Hash() != want {
					t.Fatalf("new head %d hashes to %s, want %s", h.Number, h.Hash(), want)
				}
				delete(wantHeads, h.Number.Uint64())
			}
		case err := <-logSub.Err():
			t.Fatalf("logs subscription: %v", err)
		case err := <-headSub.Err():
			t.Fatalf("newHeads subscription: %v", err)
		case <-timeout:
			t.Fatalf("subscriptions still miss logs %v and heads %v", wantLogs, wantHeads)
		}
	}

	// A reverting call: bob holds no tokens.
	_, err = n.http.CallContract(ctx, ethereum.CallMsg{From: bobAddr, To: &token, Data: tok.pack(t, "transfer", aliceAddr, big.NewInt(1))}, nil)
	if err == nil || err.Error() != "execution reverted: insufficient balance" {
		t.Fatalf("reverting call: %v, want execution reverted: insufficient balance", err)
	}
	var dataErr rpc.DataError
	var codeErr rpc.Error
	if !errors.As(err, &dataErr) || !errors.As(err, &codeErr) || codeErr.ErrorCode() != 3 {
		t.Fatalf("reverting call: %T %v is not a DataError with code 3", err, err)
	}
	wantData := hexutil.Encode(abiError(t, "insufficient balance"))
	if dataErr.ErrorData() != wantData {
		t.Fatalf("revert data %v, want %s", dataErr.ErrorData(), wantData)
	}
	if _, err := n.http.EstimateGas(ctx, ethereum.CallMsg{From: bobAddr, To: &token, Data: tok.pack(t, "transfer", aliceAddr, big.NewInt(1))}); err == nil || err.Error() != "execution reverted: insufficient balance" {
		t.Fatalf("reverting estimateGas: %v", err)
	}

	// Nonces: latest equals pending once everything is mined.
	for _, key := range []*ecdsa.PrivateKey{deployer, alice, bob} {
		addr := crypto.PubkeyToAddress(key.PublicKey)
		latest, err1 := n.http.NonceAt(ctx, addr, nil)
		pend, err2 := n.http.PendingNonceAt(ctx, addr)
		if err1 != nil || err2 != nil || latest != pend {
			t.Fatalf("nonce of %s: latest %d (%v) pending %d (%v)", addr, latest, err1, pend, err2)
		}
	}
	if got, _ := n.http.NonceAt(ctx, deployerAddr, nil); got != 2 {
		t.Fatalf("deployer nonce %d, want 2", got)
	}
}

// abiError returns the ABI encoding of Error(reason), as a revert carries it.
func abiError(t *testing.T, reason string) []byte {
	t.Helper()
	str, err := abi.NewType("string", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := abi.Arguments{{Type: str}}.Pack(reason)
	if err != nil {
		t.Fatal(err)
	}
	return append(crypto.Keccak256([]byte("Error(string)"))[:4], enc...)
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// rawCall posts body to the node's JSON-RPC endpoint and decodes the answer.
func (n *e2eNode) rawCall(t *testing.T, body string) (status int, resp rawResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, n.RPCURL(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	data, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		t.Fatalf("answer to %s is not JSON-RPC: %q", body, data)
	}
	resp.raw = string(data)
	return r.StatusCode, resp
}

type rawResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

func TestE2EBadInput(t *testing.T) {
	n := startE2E(t, "")
	ctx := t.Context()
	sender, other := n.keys[3], n.keys[4]
	otherAddr := crypto.PubkeyToAddress(other.PublicKey)

	// A mined transaction to replay later.
	mined := n.send(t, sender, transferTx(n.nonce(t, sender), otherAddr, 1))
	minedRcpt := n.waitReceipt(t, mined.Hash())
	head, err := n.http.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// alive asserts the node still answers and made no block since head.
	alive := func(t *testing.T) {
		t.Helper()
		got, err := n.http.BlockNumber(ctx)
		if err != nil || got != head {
			t.Fatalf("after bad input: head %d, %v; want %d", got, err, head)
		}
		if id, err := n.http.ChainID(ctx); err != nil || id.Uint64() != e2eChainID {
			t.Fatalf("after bad input: chain id %v, %v", id, err)
		}
		if n.Exited() {
			t.Fatal("node exited")
		}
	}
	// sendErr submits tx and returns the error text, asserting it is a
	// JSON-RPC error with geth's code for rejected transactions.
	sendErr := func(t *testing.T, tx *types.Transaction) string {
		t.Helper()
		err := n.http.SendTransaction(ctx, tx)
		if err == nil {
			t.Fatalf("tx %s was accepted", tx.Hash())
		}
		var rerr rpc.Error
		if !errors.As(err, &rerr) || rerr.ErrorCode() != -32000 {
			t.Fatalf("tx %s: %v (%T) is not a JSON-RPC error with code -32000", tx.Hash(), err, err)
		}
		return err.Error()
	}
	nonce := n.nonce(t, sender)

	t.Run("wrong chain id", func(t *testing.T) {
		tx := types.MustSignNewTx(sender, types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{
			ChainID: big.NewInt(1), Nonce: nonce, To: &otherAddr, Value: big.NewInt(1), Gas: 21_000, GasFeeCap: new(big.Int), GasTipCap: new(big.Int),
		})
		if got, want := sendErr(t, tx), "invalid sender: invalid chain id for signer: have 1 want 1337"; got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		legacy := types.MustSignNewTx(sender, types.NewEIP155Signer(big.NewInt(1)), &types.LegacyTx{
			Nonce: nonce, To: &otherAddr, Value: big.NewInt(1), Gas: 21_000, GasPrice: new(big.Int),
		})
		if got, want := sendErr(t, legacy), "invalid sender: invalid chain id for signer: have 1 want 1337"; got != want {
			t.Fatalf("legacy: got %q, want geth's %q", got, want)
		}
		alive(t)
	})

	t.Run("gas", func(t *testing.T) {
		low := types.MustSignNewTx(sender, e2eSigner(), &types.DynamicFeeTx{
			ChainID: big.NewInt(e2eChainID), Nonce: nonce, To: &otherAddr, Gas: 20_000, GasFeeCap: new(big.Int), GasTipCap: new(big.Int),
		})
		if got, want := sendErr(t, low), "intrinsic gas too low: gas 20000, minimum needed 21000"; got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		head, err := n.http.HeaderByNumber(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		high := types.MustSignNewTx(sender, e2eSigner(), &types.DynamicFeeTx{
			ChainID: big.NewInt(e2eChainID), Nonce: nonce, To: &otherAddr, Gas: head.GasLimit + 1, GasFeeCap: new(big.Int), GasTipCap: new(big.Int),
		})
		got := sendErr(t, high)
		want := "exceeds block gas limit"
		if head.GasLimit+1 > 1<<24 { // Osaka caps a transaction's gas (EIP-7825) before the block limit is checked
			want = fmt.Sprintf("transaction gas limit too high (cap: %d, tx: %d)", 1<<24, head.GasLimit+1)
		}
		if got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		alive(t)
	})

	t.Run("bad signature", func(t *testing.T) {
		tx := types.MustSignNewTx(sender, e2eSigner(), transferTx(nonce, otherAddr, 1))
		v, r, _ := tx.RawSignatureValues()
		sig := make([]byte, 65)
		r.FillBytes(sig[:32])
		// s above secp256k1n/2 is invalid since Homestead (EIP-2).
		new(big.Int).Sub(crypto.S256().Params().N, big.NewInt(1)).FillBytes(sig[32:64])
		sig[64] = byte(v.Uint64())
		bad, err := tx.WithSignature(e2eSigner(), sig)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := sendErr(t, bad), "invalid sender: invalid transaction v, r, s values"; got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		alive(t)
	})

	t.Run("nonce too low", func(t *testing.T) {
		got := sendErr(t, mined)
		// geth's txpool says "nonce too low: next nonce N, tx nonce M".
		want := fmt.Sprintf("nonce too low: next nonce %d, tx nonce %d", nonce, mined.Nonce())
		if got != want {
			t.Fatalf("replay of mined tx: got %q, want geth's %q", got, want)
		}
		// The replay did not disturb the mined transaction.
		if r, err := n.http.TransactionReceipt(ctx, mined.Hash()); err != nil || r.BlockHash != minedRcpt.BlockHash {
			t.Fatalf("receipt of the replayed tx: %v, %v", r, err)
		}
		alive(t)
	})

	// A queued transaction (nonce gap) stays in the pool without making a
	// block, so it can be resubmitted and replaced deterministically.
	queued := types.MustSignNewTx(sender, e2eSigner(), transferTx(nonce+1, otherAddr, 2))
	t.Run("already known", func(t *testing.T) {
		if err := n.http.SendTransaction(ctx, queued); err != nil {
			t.Fatal(err)
		}
		if got, want := sendErr(t, queued), "already known"; got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		if pend := n.nonce(t, sender); pend != nonce {
			t.Fatalf("pending nonce %d counts a queued tx; want %d", pend, nonce)
		}
		alive(t)
	})

	t.Run("underpriced replacement", func(t *testing.T) {
		same := types.MustSignNewTx(sender, e2eSigner(), transferTx(nonce+1, otherAddr, 3)) // same (zero) fees
		if got, want := sendErr(t, same), "replacement transaction underpriced"; got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		alive(t)
	})

	t.Run("oversized", func(t *testing.T) {
		tx := types.MustSignNewTx(sender, e2eSigner(), &types.DynamicFeeTx{
			ChainID: big.NewInt(e2eChainID), Nonce: nonce, To: &otherAddr, Gas: 5_000_000,
			GasFeeCap: new(big.Int), GasTipCap: new(big.Int), Data: make([]byte, 128*1024+1),
		})
		want := fmt.Sprintf("oversized data: transaction size %d, limit %d", tx.Size(), 128*1024)
		if got := sendErr(t, tx); got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		alive(t)
	})

	t.Run("insufficient funds", func(t *testing.T) {
		poor, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		tx := types.MustSignNewTx(poor, e2eSigner(), transferTx(0, otherAddr, 1))
		got := sendErr(t, tx)
		want := "insufficient funds for gas * price + value: balance 0, tx cost 1, overshot 1"
		if got != want {
			t.Fatalf("got %q, want geth's %q", got, want)
		}
		alive(t)
	})

	t.Run("undecodable tx", func(t *testing.T) {
		for _, raw := range []string{"0x", "0xc0", "0x02c0", "0x1234"} {
			status, resp := n.rawCall(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"eth_sendRawTransaction","params":[%q]}`, raw))
			wantErr := new(types.Transaction).UnmarshalBinary(hexutil.MustDecode(raw))
			if status != 200 || resp.Error == nil || resp.Error.Code != -32000 || resp.Error.Message != wantErr.Error() {
				t.Fatalf("eth_sendRawTransaction %s: %d %s; want -32000 %q", raw, status, resp.raw, wantErr)
			}
		}
		alive(t)
	})

	t.Run("malformed JSON", func(t *testing.T) {
		status, resp := n.rawCall(t, `{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"`)
		if status != 200 || resp.Error == nil || resp.Error.Code != -32700 || string(resp.ID) != "null" {
			t.Fatalf("malformed JSON: %d %s; want -32700 with id null", status, resp.raw)
		}
		alive(t)
	})

	t.Run("unknown method", func(t *testing.T) {
		status, resp := n.rawCall(t, `{"jsonrpc":"2.0","id":2,"method":"eth_noSuchMethod","params":[]}`)
		if status != 200 || resp.Error == nil || resp.Error.Code != -32601 || string(resp.ID) != "2" ||
			resp.Error.Message != "the method eth_noSuchMethod does not exist/is not available" {
			t.Fatalf("unknown method: %d %s", status, resp.raw)
		}
		alive(t)
	})

	t.Run("wrong param types", func(t *testing.T) {
		for _, body := range []string{
			`{"jsonrpc":"2.0","id":3,"method":"eth_getBalance","params":[123,"latest"]}`,
			`{"jsonrpc":"2.0","id":3,"method":"eth_getBlockByNumber","params":["latest","yes"]}`,
			`{"jsonrpc":"2.0","id":3,"method":"eth_getBlockByNumber","params":[]}`,
		} {
			status, resp := n.rawCall(t, body)
			if status != 200 || resp.Error == nil || resp.Error.Code != -32602 || string(resp.ID) != "3" {
				t.Fatalf("%s: %d %s; want -32602", body, status, resp.raw)
			}
		}
		alive(t)
	})

	t.Run("unknown block", func(t *testing.T) {
		for _, body := range []string{
			`{"jsonrpc":"2.0","id":4,"method":"eth_getBlockByNumber","params":["0xffffff",false]}`,
			`{"jsonrpc":"2.0","id":4,"method":"eth_getBlockByHash","params":["0x1111111111111111111111111111111111111111111111111111111111111111",false]}`,
			`{"jsonrpc":"2.0","id":4,"method":"eth_getTransactionReceipt","params":["0x1111111111111111111111111111111111111111111111111111111111111111"]}`,
		} {
			status, resp := n.rawCall(t, body)
			if status != 200 || resp.Error != nil || string(resp.Result) != "null" {
				t.Fatalf("%s: %d %s; want result null", body, status, resp.raw)
			}
		}
		if _, err := n.http.HeaderByNumber(ctx, big.NewInt(1<<40)); !errors.Is(err, ethereum.NotFound) {
			t.Fatalf("HeaderByNumber(2^40): %v, want not found", err)
		}
		alive(t)
	})

	// Finally the pool still works: a fee-bumped replacement is accepted,
	// and filling the gap mines both.
	bumped := types.MustSignNewTx(sender, e2eSigner(), &types.DynamicFeeTx{
		ChainID: big.NewInt(e2eChainID), Nonce: nonce + 1, To: &otherAddr, Value: big.NewInt(4), Gas: 21_000,
		GasFeeCap: big.NewInt(1), GasTipCap: big.NewInt(1),
	})
	if err := n.http.SendTransaction(ctx, bumped); err != nil {
		t.Fatalf("fee-bumped replacement: %v", err)
	}
	gap := n.send(t, sender, transferTx(nonce, otherAddr, 5))
	n.waitReceipt(t, gap.Hash())
	r := n.waitReceipt(t, bumped.Hash())
	if _, _, err := n.http.TransactionByHash(ctx, queued.Hash()); !errors.Is(err, ethereum.NotFound) {
		t.Fatalf("replaced tx still known: %v", err)
	}
	if r.EffectiveGasPrice.Cmp(big.NewInt(1)) != 0 {
		t.Fatalf("replacement effective gas price %v, want 1", r.EffectiveGasPrice)
	}
	if got := n.nonce(t, sender); got != nonce+2 {
		t.Fatalf("pending nonce %d, want %d", got, nonce+2)
	}
}

// The devnet's entry point is the gateway in front of node1: devnet.json says
// so, and a client using it sends, waits for a receipt and reads it back.
func TestE2EDevnetGatewayEntryPoint(t *testing.T) {
	n := startE2E(t, "")
	if n.Info.RPC != n.GatewayURL() || n.Info.WS != "ws://"+n.GatewayAddr {
		t.Fatalf("devnet.json entry point %q %q, want the gateway %s", n.Info.RPC, n.Info.WS, n.GatewayURL())
	}
	ctx := t.Context()
	gw, err := ethclient.DialContext(ctx, n.GatewayURL())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	if id, err := gw.ChainID(ctx); err != nil || id.Uint64() != e2eChainID {
		t.Fatalf("chain id through the gateway: %v %v", id, err)
	}
	key := n.keys[5]
	nonce, err := gw.PendingNonceAt(ctx, crypto.PubkeyToAddress(key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	tx := types.MustSignNewTx(key, e2eSigner(), transferTx(nonce, common.HexToAddress("0xbeef"), 1))
	if err := gw.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send through the gateway: %v", err)
	}
	r := n.waitReceipt(t, tx.Hash()) // read from node1 directly
	got, err := gw.TransactionReceipt(ctx, tx.Hash())
	if err != nil || got.BlockHash != r.BlockHash {
		t.Fatalf("receipt through the gateway: %v %v", got, err)
	}
}
