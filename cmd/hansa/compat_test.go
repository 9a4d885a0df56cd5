package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/e2etest"
)

// TestCompatibilityWithGeth sends the same requests to a Hansa devnet and to
// geth --dev (both chain id 1337) and checks that clients see the same
// surface: the same JSON fields in blocks, transactions, receipts, logs and
// fee history, and the same error codes and messages for bad input.
func TestCompatibilityWithGeth(t *testing.T) {
	hansa := startE2E(t, "")
	geth := e2etest.StartGeth(t, e2etest.GethBinary(t))
	nodes := []*rawNode{{name: "hansa", url: hansa.RPCURL()}, {name: "geth", url: geth.RPCURL()}}
	key := hansa.keys[3]
	from := crypto.PubkeyToAddress(key.PublicKey)

	// Fund the same account on geth from its unlocked developer account.
	var devs []common.Address
	nodes[1].mustCall(t, &devs, "eth_accounts")
	var fundHash common.Hash
	nodes[1].mustCall(t, &fundHash, "eth_sendTransaction", map[string]any{"from": devs[0], "to": from, "value": (*hexutil.Big)(new(big.Int).Mul(big.NewInt(1000), big.NewInt(1e18)))})
	nodes[1].waitReceipt(t, fundHash)

	// The same kinds of transactions on both: a transfer, a token deployment
	// and a token transfer (fees that both chains accept).
	tok := loadToken(t)
	ctorArgs, err := tok.ABI.Pack("", "Compat", "CMP", big.NewInt(1_000_000))
	if err != nil {
		t.Fatal(err)
	}
	transferInput, err := tok.ABI.Pack("transfer", common.HexToAddress("0xbeef"), big.NewInt(5))
	if err != nil {
		t.Fatal(err)
	}
	receipts := map[string][]map[string]any{}
	for _, n := range nodes {
		nonce := n.nonce(t, from)
		to := common.HexToAddress("0xbeef")
		sent := []*types.Transaction{
			n.sendTx(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(e2eChainID), Nonce: nonce, To: &to, Value: big.NewInt(1), Gas: 21_000, GasFeeCap: big.NewInt(100e9), GasTipCap: big.NewInt(1e9)}),
			n.sendTx(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(e2eChainID), Nonce: nonce + 1, Gas: 5_000_000, GasFeeCap: big.NewInt(100e9), GasTipCap: big.NewInt(1e9), Data: append(slices.Clone(tok.Bytecode), ctorArgs...)}),
		}
		token := crypto.CreateAddress(from, nonce+1)
		sent = append(sent, n.sendTx(t, key, &types.DynamicFeeTx{ChainID: big.NewInt(e2eChainID), Nonce: nonce + 2, To: &token, Gas: 400_000, GasFeeCap: big.NewInt(100e9), GasTipCap: big.NewInt(1e9), Data: transferInput}))
		for _, tx := range sent {
			receipts[n.name] = append(receipts[n.name], n.waitReceipt(t, tx.Hash()))
		}
		n.token, n.lastTx = token, sent[2]
	}

	// Field sets of the objects clients parse.
	same := func(what string, get func(n *rawNode) any) {
		t.Helper()
		var keys [2][]string
		for i, n := range nodes {
			keys[i] = keySet(get(n))
		}
		if !slices.Equal(keys[0], keys[1]) {
			t.Errorf("%s fields differ:\n hansa %v\n geth  %v", what, keys[0], keys[1])
		}
	}
	same("receipt (transfer)", func(n *rawNode) any { return receipts[n.name][0] })
	same("receipt (deployment)", func(n *rawNode) any { return receipts[n.name][1] })
	same("receipt (token transfer)", func(n *rawNode) any { return receipts[n.name][2] })
	same("log", func(n *rawNode) any { return receipts[n.name][2]["logs"].([]any)[0] })
	same("transaction", func(n *rawNode) any {
		var tx map[string]any
		n.mustCall(t, &tx, "eth_getTransactionByHash", n.lastTx.Hash())
		return tx
	})
	same("block (hashes)", func(n *rawNode) any {
		var b map[string]any
		n.mustCall(t, &b, "eth_getBlockByHash", receipts[n.name][2]["blockHash"], false)
		return b
	})
	same("block (full transactions)", func(n *rawNode) any {
		var b map[string]any
		n.mustCall(t, &b, "eth_getBlockByHash", receipts[n.name][2]["blockHash"], true)
		txs, _ := b["transactions"].([]any)
		if len(txs) == 0 {
			t.Fatalf("%s: block of the token transfer lists no transactions: %v", n.name, b)
		}
		return txs[0]
	})
	same("fee history", func(n *rawNode) any {
		var fh map[string]any
		n.mustCall(t, &fh, "eth_feeHistory", "0x2", "latest", []float64{25, 75})
		return fh
	})
	same("getLogs entry", func(n *rawNode) any {
		var logs []map[string]any
		n.mustCall(t, &logs, "eth_getLogs", map[string]any{"fromBlock": "0x0", "toBlock": "latest", "address": n.token})
		if len(logs) == 0 {
			t.Fatalf("%s: no logs", n.name)
		}
		return logs[0]
	})

	// Errors: the same code and message for the same mistake.
	mined := nodes[0].lastTxRaw(t)
	wrongChain := types.MustSignNewTx(key, types.LatestSignerForChainID(big.NewInt(1)), &types.DynamicFeeTx{ChainID: big.NewInt(1), Nonce: 0, Gas: 21_000, GasFeeCap: big.NewInt(100e9)})
	wrongChainRaw, _ := wrongChain.MarshalBinary()
	cases := []struct {
		name string
		body func(n *rawNode) string
	}{
		{"malformed JSON", func(*rawNode) string { return `{"jsonrpc":"2.0","id":1,"method":` }},
		{"unknown method", func(*rawNode) string { return call("eth_noSuchMethod") }},
		{"wrong parameter type", func(*rawNode) string { return call("eth_getBalance", 12, "latest") }},
		{"missing parameter", func(*rawNode) string { return call("eth_getBalance") }},
		{"invalid block tag", func(*rawNode) string { return call("eth_getBlockByNumber", "soon", false) }},
		{"undecodable transaction", func(*rawNode) string { return call("eth_sendRawTransaction", "0x02c0ffee") }},
		{"wrong chain id", func(*rawNode) string { return call("eth_sendRawTransaction", hexutil.Bytes(wrongChainRaw)) }},
		{"replayed transaction", func(n *rawNode) string {
			if n.name == "hansa" {
				return call("eth_sendRawTransaction", mined)
			}
			return call("eth_sendRawTransaction", n.lastTxRaw(t))
		}},
		{"revert in eth_call", func(n *rawNode) string {
			input, _ := tok.ABI.Pack("transfer", from, big.NewInt(1e18))
			return call("eth_call", map[string]any{"from": common.HexToAddress("0x1234"), "to": n.token, "data": hexutil.Bytes(input)}, "latest")
		}},
		{"revert in eth_estimateGas", func(n *rawNode) string {
			input, _ := tok.ABI.Pack("transfer", from, big.NewInt(1e18))
			return call("eth_estimateGas", map[string]any{"from": common.HexToAddress("0x1234"), "to": n.token, "data": hexutil.Bytes(input)})
		}},
		{"unknown receipt", func(*rawNode) string { return call("eth_getTransactionReceipt", common.Hash{1}) }},
		{"block beyond head", func(*rawNode) string { return call("eth_getBlockByNumber", "0xffffff", false) }},
	}
	for _, c := range cases {
		var got [2]string
		for i, n := range nodes {
			got[i] = n.errorShape(t, c.body(n))
		}
		if got[0] != got[1] {
			t.Errorf("%s:\n hansa %s\n geth  %s", c.name, got[0], got[1])
		} else {
			t.Logf("%s: both %s", c.name, got[0])
		}
	}
}

func call(method string, params ...any) string {
	if params == nil {
		params = []any{}
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	return string(b)
}

// rawNode talks plain JSON-RPC over HTTP, so responses are compared as sent.
type rawNode struct {
	name, url string
	token     common.Address
	lastTx    *types.Transaction
}

func (n *rawNode) post(t *testing.T, body string) map[string]json.RawMessage {
	t.Helper()
	resp, err := http.Post(n.url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]json.RawMessage
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: not a JSON-RPC response (%d): %s", n.name, resp.StatusCode, data)
	}
	return out
}

func (n *rawNode) mustCall(t *testing.T, v any, method string, params ...any) {
	t.Helper()
	out := n.post(t, call(method, params...))
	if e, ok := out["error"]; ok {
		t.Fatalf("%s %s: %s", n.name, method, e)
	}
	if err := json.Unmarshal(out["result"], v); err != nil {
		t.Fatalf("%s %s: %v (%s)", n.name, method, err, out["result"])
	}
}

// errorShape reduces a response to what clients branch on: the error code,
// message and data, or the result's JSON type when there is no error.
func (n *rawNode) errorShape(t *testing.T, body string) string {
	out := n.post(t, body)
	if e, ok := out["error"]; ok {
		var je struct {
			Code    int             `json:"code"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(e, &je); err != nil {
			t.Fatalf("%s: malformed error %s", n.name, e)
		}
		return fmt.Sprintf("error %d %q data=%s id=%s", je.Code, je.Message, je.Data, out["id"])
	}
	return fmt.Sprintf("result %s", bytes.TrimSpace(out["result"]))
}

func (n *rawNode) nonce(t *testing.T, addr common.Address) uint64 {
	var v hexutil.Uint64
	n.mustCall(t, &v, "eth_getTransactionCount", addr, "pending")
	return uint64(v)
}

func (n *rawNode) sendTx(t *testing.T, key *ecdsa.PrivateKey, data types.TxData) *types.Transaction {
	t.Helper()
	tx := types.MustSignNewTx(key, e2eSigner(), data)
	raw, _ := tx.MarshalBinary()
	var h common.Hash
	n.mustCall(t, &h, "eth_sendRawTransaction", hexutil.Bytes(raw))
	return tx
}

func (n *rawNode) lastTxRaw(t *testing.T) hexutil.Bytes {
	raw, err := n.lastTx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (n *rawNode) waitReceipt(t *testing.T, h common.Hash) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		out := n.post(t, call("eth_getTransactionReceipt", h))
		if r := out["result"]; len(r) > 0 && string(r) != "null" {
			var m map[string]any
			if err := json.Unmarshal(r, &m); err != nil {
				t.Fatal(err)
			}
			if m["status"] != "0x1" {
				t.Fatalf("%s: tx %s failed: %v", n.name, h, m)
			}
			return m
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no receipt for %s", n.name, h)
	return nil
}

// keySet returns the sorted keys of a JSON object.
func keySet(v any) []string {
	m, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("<not an object: %T>", v)}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
