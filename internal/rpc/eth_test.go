package rpc_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/rpc"
	"github.com/hansa-chain/hansa/internal/rpc/rpctest"
)

// ethEnv is one test chain served through a real go-ethereum rpc.Server.
type ethEnv struct {
	t   *testing.T
	b   *rpctest.Backend
	fx  *rpctest.Fixture
	rc  *gethrpc.Client
	ec  *ethclient.Client
	cfg rpc.Config
}

func newEthEnv(t *testing.T, opts rpctest.Options, mutate ...func(*rpc.Config)) *ethEnv {
	t.Helper()
	b, fx := rpctest.New(t, opts)
	cfg := rpc.DefaultConfig()
	for _, m := range mutate {
		m(&cfg)
	}
	srv := gethrpc.NewServer()
	for ns, svc := range map[string]any{
		"eth":    rpc.NewEthAPI(b, cfg),
		"net":    rpc.NewNetAPI(b),
		"web3":   rpc.NewWeb3API("Hansa/v0.1.0/linux-amd64/go1.26.8"),
		"txpool": rpc.NewTxpoolAPI(b),
	} {
		if err := srv.RegisterName(ns, svc); err != nil {
			t.Fatalf("register %s: %v", ns, err)
		}
	}
	rc := gethrpc.DialInProc(srv)
	t.Cleanup(func() { rc.Close(); srv.Stop() })
	return &ethEnv{t: t, b: b, fx: fx, rc: rc, ec: ethclient.NewClient(rc), cfg: cfg}
}

// call performs a raw JSON-RPC call and returns the raw result.
func (e *ethEnv) call(method string, args ...any) (json.RawMessage, error) {
	var out json.RawMessage
	err := e.rc.CallContext(e.t.Context(), &out, method, args...)
	return out, err
}

// mustCall performs a call that must succeed and decodes its result into v.
func (e *ethEnv) mustCall(v any, method string, args ...any) {
	e.t.Helper()
	raw, err := e.call(method, args...)
	if err != nil {
		e.t.Fatalf("%s: %v", method, err)
	}
	reflect.ValueOf(v).Elem().SetZero() // decode into a fresh value, never merge
	if err := json.Unmarshal(raw, v); err != nil {
		e.t.Fatalf("%s: decode %s: %v", method, raw, err)
	}
}

// wantRPCError asserts err is a JSON-RPC error with the code and message.
func wantRPCError(t *testing.T, err error, code int, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want error %d %q, got success", code, msg)
	}
	var rerr gethrpc.Error
	if !errors.As(err, &rerr) {
		t.Fatalf("want a JSON-RPC error, got %T %v", err, err)
	}
	if rerr.ErrorCode() != code || rerr.Error() != msg {
		t.Fatalf("got error %d %q, want %d %q", rerr.ErrorCode(), rerr.Error(), code, msg)
	}
}

func (e *ethEnv) key(raw []byte) *keyPair {
	k, err := crypto.ToECDSA(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	return &keyPair{k: k}
}

func TestWeb3AndNet(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	var s string
	e.mustCall(&s, "web3_clientVersion")
	if s != "Hansa/v0.1.0/linux-amd64/go1.26.8" {
		t.Errorf("web3_clientVersion = %q", s)
	}
	e.mustCall(&s, "web3_sha3", "0x68656c6c6f20776f726c64")
	if s != "0x47173285a8d7341e5e972fc677286384f802f8ef42a5ec5f03bbfa254cb01fad" {
		t.Errorf("web3_sha3 = %s", s)
	}
	e.mustCall(&s, "net_version")
	if s != "1337" {
		t.Errorf("net_version = %q", s)
	}
	e.mustCall(&s, "net_peerCount")
	if s != "0x0" {
		t.Errorf("net_peerCount = %q", s)
	}
	var listening bool
	e.mustCall(&listening, "net_listening")
	if !listening {
		t.Error("net_listening = false")
	}
}

func TestChainBasics(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	for _, c := range []struct{ method, want string }{
		{"eth_chainId", `"0x539"`},
		{"eth_blockNumber", `"0x4"`},
		{"eth_syncing", `false`},
		{"eth_accounts", `[]`},
		{"eth_gasPrice", `"0x0"`},
		{"eth_maxPriorityFeePerGas", `"0x0"`},
	} {
		raw, err := e.call(c.method)
		if err != nil {
			t.Fatalf("%s: %v", c.method, err)
		}
		if string(raw) != c.want {
			t.Errorf("%s = %s, want %s", c.method, raw, c.want)
		}
	}
	id, err := e.ec.ChainID(t.Context())
	if err != nil || id.Uint64() != 1337 {
		t.Errorf("ethclient ChainID = %v, %v", id, err)
	}
}

func TestGetBlock(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	head := e.fx.Blocks[3]
	for _, tag := range []string{"latest", "pending", "safe", "finalized", "0x4"} {
		var blk map[string]any
		e.mustCall(&blk, "eth_getBlockByNumber", tag, false)
		if blk["hash"] != head.Hash().Hex() || blk["number"] != "0x4" {
			t.Errorf("%s: got block %v %v, want %s", tag, blk["number"], blk["hash"], head.Hash())
		}
	}
	var genesis map[string]any
	e.mustCall(&genesis, "eth_getBlockByNumber", "earliest", false)
	if genesis["hash"] != e.fx.Genesis.Hash().Hex() {
		t.Errorf("earliest = %v, want genesis %s", genesis["hash"], e.fx.Genesis.Hash())
	}

	// Block 1 with hashes: field set and values.
	b1 := e.fx.Blocks[0]
	var blk map[string]any
	e.mustCall(&blk, "eth_getBlockByHash", b1.Hash(), false)
	txs, _ := blk["transactions"].([]any)
	if len(txs) != 2 || txs[0] != e.fx.TransferTx.Hex() || txs[1] != e.fx.DynamicTx.Hex() {
		t.Errorf("transactions = %v", blk["transactions"])
	}
	for _, f := range []string{"parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot",
		"logsBloom", "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData", "mixHash", "nonce",
		"baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas", "parentBeaconBlockRoot", "requestsHash",
		"size", "uncles", "withdrawals", "hash"} {
		if _, ok := blk[f]; !ok {
			t.Errorf("block lacks field %q", f)
		}
	}
	if blk["baseFeePerGas"] != "0x0" || blk["difficulty"] != "0x0" || blk["size"] != hexutil.EncodeUint64(b1.Size()) {
		t.Errorf("baseFee %v difficulty %v size %v", blk["baseFeePerGas"], blk["difficulty"], blk["size"])
	}

	// Full transactions.
	e.mustCall(&blk, "eth_getBlockByNumber", "0x1", true)
	full, _ := blk["transactions"].([]any)
	if len(full) != 2 {
		t.Fatalf("full transactions = %v", blk["transactions"])
	}
	tx1, _ := full[1].(map[string]any)
	if tx1["hash"] != e.fx.DynamicTx.Hex() || tx1["blockHash"] != b1.Hash().Hex() || tx1["transactionIndex"] != "0x1" ||
		!strings.EqualFold(tx1["from"].(string), e.fx.Addr2.Hex()) || tx1["type"] != "0x2" {
		t.Errorf("full tx = %v", tx1)
	}

	// ethclient rebuilds the block from JSON and so checks every header field
	// and the transaction encodings against the block hash.
	got, err := e.ec.BlockByNumber(t.Context(), big.NewInt(1))
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != b1.Hash() || got.Transactions().Len() != 2 || got.Transactions()[0].Hash() != e.fx.TransferTx {
		t.Errorf("ethclient block %s with %d txs, want %s", got.Hash(), got.Transactions().Len(), b1.Hash())
	}
	hdr, err := e.ec.HeaderByNumber(t.Context(), nil)
	if err != nil || hdr.Hash() != head.Hash() {
		t.Errorf("ethclient head = %v, %v; want %s", hdr, err, head.Hash())
	}

	var hdrMap map[string]any
	e.mustCall(&hdrMap, "eth_getHeaderByNumber", "0x1")
	if _, hasTxs := hdrMap["transactions"]; hdrMap["hash"] != b1.Hash().Hex() || hasTxs {
		t.Errorf("eth_getHeaderByNumber = %v", hdrMap)
	}

	// Unknown blocks are null, not errors.
	for _, c := range []struct {
		method string
		args   []any
	}{
		{"eth_getBlockByNumber", []any{"0x99", false}},
		{"eth_getBlockByHash", []any{common.HexToHash("0x01"), true}},
		{"eth_getBlockTransactionCountByNumber", []any{"0x99"}},
		{"eth_getBlockTransactionCountByHash", []any{common.HexToHash("0x01")}},
		{"eth_getBlockReceipts", []any{"0x99"}},
		{"eth_getTransactionByBlockNumberAndIndex", []any{"0x1", "0x2"}},
		{"eth_getTransactionByBlockHashAndIndex", []any{common.HexToHash("0x01"), "0x0"}},
		{"eth_getTransactionByHash", []any{common.HexToHash("0x01")}},
		{"eth_getTransactionReceipt", []any{common.HexToHash("0x01")}},
		{"eth_getUncleByBlockNumberAndIndex", []any{"0x1", "0x0"}},
		{"eth_getHeaderByNumber", []any{"0x99"}},
		{"eth_getHeaderByHash", []any{common.HexToHash("0x01")}},
	} {
		raw, err := e.call(c.method, c.args...)
		if err != nil || string(raw) != "null" {
			t.Errorf("%s%v = %s, %v; want null", c.method, c.args, raw, err)
		}
	}
}

func TestBlockTransactionCount(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	for _, c := range []struct {
		method string
		arg    any
		want   string
	}{
		{"eth_getBlockTransactionCountByNumber", "0x1", `"0x2"`},
		{"eth_getBlockTransactionCountByNumber", "latest", `"0x0"`},
		{"eth_getBlockTransactionCountByHash", e.fx.Blocks[1].Hash(), `"0x1"`},
		{"eth_getUncleCountByBlockNumber", "0x1", `"0x0"`},
	} {
		raw, err := e.call(c.method, c.arg)
		if err != nil || string(raw) != c.want {
			t.Errorf("%s(%v) = %s, %v; want %s", c.method, c.arg, raw, err, c.want)
		}
	}
}

func TestGetTransaction(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	b1 := e.fx.Blocks[0]
	var tx map[string]any
	e.mustCall(&tx, "eth_getTransactionByHash", e.fx.TransferTx)
	want := map[string]any{
		"hash": e.fx.TransferTx.Hex(), "blockHash": b1.Hash().Hex(), "blockNumber": "0x1",
		"transactionIndex": "0x0", "type": "0x0", "nonce": "0x0", "gas": "0x5208", "gasPrice": "0x0",
		"value": "0xde0b6b3a7640000", "input": "0x", "chainId": "0x539",
		"to": strings.ToLower(e.fx.Addr3.Hex()), "from": strings.ToLower(e.fx.Addr1.Hex()),
		"blockTimestamp": hexutil.EncodeUint64(b1.Time()),
	}
	for k, v := range want {
		if got, _ := tx[k].(string); strings.ToLower(got) != strings.ToLower(v.(string)) {
			t.Errorf("tx[%s] = %v, want %v", k, tx[k], v)
		}
	}
	for _, f := range []string{"v", "r", "s"} {
		if tx[f] == nil {
			t.Errorf("tx lacks %s", f)
		}
	}
	if _, ok := tx["yParity"]; ok {
		t.Error("legacy tx has yParity")
	}

	var byIdx map[string]any
	e.mustCall(&byIdx, "eth_getTransactionByBlockNumberAndIndex", "0x1", "0x1")
	if byIdx["hash"] != e.fx.DynamicTx.Hex() || byIdx["yParity"] == nil || byIdx["maxFeePerGas"] != "0x0" {
		t.Errorf("by number and index = %v", byIdx)
	}
	e.mustCall(&byIdx, "eth_getTransactionByBlockHashAndIndex", b1.Hash(), "0x0")
	if byIdx["hash"] != e.fx.TransferTx.Hex() {
		t.Errorf("by hash and index = %v", byIdx["hash"])
	}

	got, pending, err := e.ec.TransactionByHash(t.Context(), e.fx.DynamicTx)
	if err != nil || pending || got.Hash() != e.fx.DynamicTx {
		t.Errorf("ethclient TransactionByHash = %v, %v, %v", got, pending, err)
	}
	var raw hexutil.Bytes
	e.mustCall(&raw, "eth_getRawTransactionByHash", e.fx.DynamicTx)
	if enc, _ := got.MarshalBinary(); string(enc) != string(raw) {
		t.Errorf("raw transaction mismatch")
	}
}

func TestReceipts(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	r, err := e.ec.TransactionReceipt(t.Context(), e.fx.StoreTx)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != types.ReceiptStatusSuccessful || r.BlockNumber.Uint64() != 3 || len(r.Logs) != 1 ||
		r.Logs[0].Address != e.fx.Contract || r.Logs[0].Topics[0] != rpctest.StoreTopic ||
		new(big.Int).SetBytes(r.Logs[0].Data).Uint64() != 42 || r.TxHash != e.fx.StoreTx {
		t.Errorf("store receipt = %+v", r)
	}
	deploy, err := e.ec.TransactionReceipt(t.Context(), e.fx.DeployTx)
	if err != nil || deploy.ContractAddress != e.fx.Contract {
		t.Errorf("deploy receipt contract = %v, %v; want %s", deploy.ContractAddress, err, e.fx.Contract)
	}

	var m map[string]any
	e.mustCall(&m, "eth_getTransactionReceipt", e.fx.TransferTx)
	if m["contractAddress"] != nil || m["status"] != "0x1" || m["gasUsed"] != "0x5208" || m["type"] != "0x0" ||
		m["effectiveGasPrice"] != "0x0" || !strings.EqualFold(m["from"].(string), e.fx.Addr1.Hex()) {
		t.Errorf("transfer receipt = %v", m)
	}
	if logs, ok := m["logs"].([]any); !ok || len(logs) != 0 {
		t.Errorf("logs = %#v, want []", m["logs"])
	}

	var list []map[string]any
	e.mustCall(&list, "eth_getBlockReceipts", "0x1")
	if len(list) != 2 || list[1]["transactionHash"] != e.fx.DynamicTx.Hex() || list[1]["cumulativeGasUsed"] != "0xa410" {
		t.Errorf("block receipts = %v", list)
	}
	e.mustCall(&list, "eth_getBlockReceipts", e.fx.Blocks[2].Hash())
	if len(list) != 1 || list[0]["transactionHash"] != e.fx.StoreTx.Hex() {
		t.Errorf("block receipts by hash = %v", list)
	}
	rs, err := e.ec.BlockReceipts(t.Context(), gethrpc.BlockNumberOrHashWithNumber(2))
	if err != nil || len(rs) != 1 || rs[0].ContractAddress != e.fx.Contract {
		t.Errorf("ethclient BlockReceipts = %v, %v", rs, err)
	}
}

func TestStateReads(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	ctx := t.Context()
	oneEtherPlus2 := new(big.Int).Add(big.NewInt(params.Ether), big.NewInt(2))
	for _, c := range []struct {
		block any
		want  string
	}{
		{nil, hexutil.EncodeBig(oneEtherPlus2)},
		{"latest", hexutil.EncodeBig(oneEtherPlus2)},
		{"pending", hexutil.EncodeBig(oneEtherPlus2)},
		{"safe", hexutil.EncodeBig(oneEtherPlus2)},
		{"finalized", hexutil.EncodeBig(oneEtherPlus2)},
		{"earliest", "0x0"},
		{"0x0", "0x0"},
		{"0x1", hexutil.EncodeBig(oneEtherPlus2)},
		{map[string]any{"blockHash": e.fx.Genesis.Hash()}, "0x0"},
		{map[string]any{"blockHash": e.fx.Blocks[0].Hash(), "requireCanonical": true}, hexutil.EncodeBig(oneEtherPlus2)},
		{map[string]any{"blockNumber": "0x0"}, "0x0"},
	} {
		args := []any{e.fx.Addr3}
		if c.block != nil {
			args = append(args, c.block)
		}
		var got string
		e.mustCall(&got, "eth_getBalance", args...)
		if got != c.want {
			t.Errorf("eth_getBalance at %v = %s, want %s", c.block, got, c.want)
		}
	}
	_, err := e.call("eth_getBalance", e.fx.Addr3, "0x99")
	wantRPCError(t, err, -32000, "header not found")
	_, err = e.call("eth_getBalance", e.fx.Addr3, map[string]any{"blockHash": common.HexToHash("0x01")})
	wantRPCError(t, err, -32000, "header for hash not found")

	code, err := e.ec.CodeAt(ctx, e.fx.Contract, nil)
	if err != nil || string(code) != string(rpctest.RuntimeCode()) {
		t.Errorf("code at latest = %x, %v", code, err)
	}
	code, err = e.ec.CodeAt(ctx, e.fx.Contract, big.NewInt(1))
	if err != nil || len(code) != 0 {
		t.Errorf("code before deployment = %x, %v", code, err)
	}

	var slot string
	e.mustCall(&slot, "eth_getStorageAt", e.fx.Contract, "0x0", "0x2")
	if slot != "0x0000000000000000000000000000000000000000000000000000000000000007" {
		t.Errorf("slot 0 at block 2 = %s", slot)
	}
	e.mustCall(&slot, "eth_getStorageAt", e.fx.Contract, "0", "latest")
	if slot != "0x000000000000000000000000000000000000000000000000000000000000002a" {
		t.Errorf("slot 0 at latest = %s", slot)
	}
	_, err = e.call("eth_getStorageAt", e.fx.Contract, "0xzz", "latest")
	wantRPCError(t, err, -32602, `invalid hex in storage key: "0xzz"`)

	for _, c := range []struct {
		block any
		want  string
	}{{"latest", "0x3"}, {"earliest", "0x0"}, {"0x1", "0x1"}, {"pending", "0x3"},
		{map[string]any{"blockHash": e.fx.Blocks[1].Hash()}, "0x2"}} {
		var got string
		e.mustCall(&got, "eth_getTransactionCount", e.fx.Addr1, c.block)
		if got != c.want {
			t.Errorf("nonce at %v = %s, want %s", c.block, got, c.want)
		}
	}
}

func TestSendRawTransactionAndTxpool(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	ctx := t.Context()
	k1 := e.key(e.fx.Key1)
	signer := types.LatestSignerForChainID(big.NewInt(rpctest.ChainID))
	tx3 := k1.sign(t, signer, &types.DynamicFeeTx{ChainID: big.NewInt(rpctest.ChainID), Nonce: 3, Gas: 21000, To: &e.fx.Addr3, Value: big.NewInt(5)})
	if err := e.ec.SendTransaction(ctx, tx3); err != nil {
		t.Fatal(err)
	}
	tx5 := k1.sign(t, signer, &types.LegacyTx{Nonce: 5, Gas: 21000, To: &e.fx.Addr3, GasPrice: new(big.Int)})
	enc, _ := tx5.MarshalBinary()
	var hash common.Hash
	e.mustCall(&hash, "eth_sendRawTransaction", hexutil.Bytes(enc))
	if hash != tx5.Hash() {
		t.Errorf("hash = %s, want %s", hash, tx5.Hash())
	}

	// The pooled transaction is visible with null block fields.
	var ptx map[string]any
	e.mustCall(&ptx, "eth_getTransactionByHash", tx3.Hash())
	if ptx["hash"] != tx3.Hash().Hex() || ptx["blockHash"] != nil || ptx["blockNumber"] != nil || ptx["transactionIndex"] != nil {
		t.Errorf("pooled tx = %v", ptx)
	}
	if _, pending, err := e.ec.TransactionByHash(ctx, tx3.Hash()); err != nil || !pending {
		t.Errorf("ethclient pending = %v, %v", pending, err)
	}
	if r, err := e.call("eth_getTransactionReceipt", tx3.Hash()); err != nil || string(r) != "null" {
		t.Errorf("receipt of pooled tx = %s, %v", r, err)
	}
	if n, err := e.ec.PendingNonceAt(ctx, e.fx.Addr1); err != nil || n != 4 {
		t.Errorf("pending nonce = %d, %v; want 4", n, err)
	}
	if n, err := e.ec.NonceAt(ctx, e.fx.Addr1, nil); err != nil || n != 3 {
		t.Errorf("latest nonce = %d, %v; want 3", n, err)
	}

	var status map[string]string
	e.mustCall(&status, "txpool_status")
	if status["pending"] != "0x1" || status["queued"] != "0x1" {
		t.Errorf("txpool_status = %v", status)
	}
	var content map[string]map[string]map[string]map[string]any
	e.mustCall(&content, "txpool_content")
	if got := content["pending"][e.fx.Addr1.Hex()]["3"]; got == nil || got["hash"] != tx3.Hash().Hex() || got["blockHash"] != nil {
		t.Errorf("txpool_content pending = %v", content["pending"])
	}
	if got := content["queued"][e.fx.Addr1.Hex()]["5"]; got == nil || got["hash"] != tx5.Hash().Hex() {
		t.Errorf("txpool_content queued = %v", content["queued"])
	}

	var from map[string]map[string]map[string]any
	e.mustCall(&from, "txpool_contentFrom", e.fx.Addr1)
	if from["pending"]["3"]["hash"] != tx3.Hash().Hex() || from["queued"]["5"]["hash"] != tx5.Hash().Hex() {
		t.Errorf("txpool_contentFrom = %v", from)
	}
	var inspect map[string]map[string]map[string]string
	e.mustCall(&inspect, "txpool_inspect")
	if got, want := inspect["queued"][e.fx.Addr1.Hex()]["5"], e.fx.Addr3.Hex()+": 0 wei + 21000 gas × 0 wei"; got != want {
		t.Errorf("txpool_inspect queued = %q, want %q", got, want)
	}

	// Errors: geth's texts and the default code -32000.
	_, err := e.call("eth_sendRawTransaction", hexutil.Bytes(enc))
	wantRPCError(t, err, -32000, "already known")
	old := k1.sign(t, signer, &types.LegacyTx{Nonce: 0, Gas: 21000, To: &e.fx.Addr3, GasPrice: new(big.Int)})
	oldEnc, _ := old.MarshalBinary()
	_, err = e.call("eth_sendRawTransaction", hexutil.Bytes(oldEnc))
	wantRPCError(t, err, -32000, "nonce too low: next nonce 3, tx nonce 0")
	_, err = e.call("eth_sendRawTransaction", "0x01")
	wantRPCError(t, err, -32000, "typed transaction too short")
	_, err = e.call("eth_sendRawTransaction", "0xc0")
	wantRPCError(t, err, -32000, "rlp: too few elements for types.LegacyTx")
	blob := k1.sign(t, signer, &types.BlobTx{ChainID: uint256FromUint64(rpctest.ChainID), Nonce: 3, Gas: 21000, To: e.fx.Addr3,
		BlobHashes: []common.Hash{{0x01}}})
	blobEnc, _ := blob.MarshalBinary()
	_, err = e.call("eth_sendRawTransaction", hexutil.Bytes(blobEnc))
	wantRPCError(t, err, -32000, "transaction type not supported: tx type 3 not supported by this pool")
}

func TestFeesFreeGas(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{})
	var fh map[string]any
	e.mustCall(&fh, "eth_feeHistory", "0x2", "latest", []float64{25, 75})
	if fh["oldestBlock"] != "0x3" {
		t.Errorf("oldestBlock = %v", fh["oldestBlock"])
	}
	if got := jsonOf(t, fh["baseFeePerGas"]); got != `["0x0","0x0","0x0"]` {
		t.Errorf("baseFeePerGas = %s", got)
	}
	if got := jsonOf(t, fh["reward"]); got != `[["0x0","0x0"],["0x0","0x0"]]` {
		t.Errorf("reward = %s", got)
	}
	if got := jsonOf(t, fh["baseFeePerBlobGas"]); got != `["0x1","0x1","0x1"]` {
		t.Errorf("baseFeePerBlobGas = %s", got)
	}
	if got := jsonOf(t, fh["blobGasUsedRatio"]); got != `[0,0]` {
		t.Errorf("blobGasUsedRatio = %s", got)
	}
	ratios, _ := fh["gasUsedRatio"].([]any)
	if len(ratios) != 2 || ratios[0].(float64) <= 0 || ratios[1].(float64) != 0 {
		t.Errorf("gasUsedRatio = %v (block 3 used gas, block 4 is empty)", fh["gasUsedRatio"])
	}

	// Decimal block count, more blocks than exist: clipped to genesis.
	e.mustCall(&fh, "eth_feeHistory", 100, "0x1", []float64{})
	if fh["oldestBlock"] != "0x0" || len(fh["gasUsedRatio"].([]any)) != 2 || fh["reward"] != nil {
		t.Errorf("clipped history = %v", fh)
	}
	e.mustCall(&fh, "eth_feeHistory", "0x0", "latest", []float64{})
	if fh["oldestBlock"] != "0x0" || fh["baseFeePerGas"] != nil {
		t.Errorf("empty history = %v", fh)
	}
	_, err := e.call("eth_feeHistory", "0x2", "latest", []float64{50, 10})
	wantRPCError(t, err, -32000, "invalid reward percentile: #0:50.000000 >= #1:10.000000")
	_, err = e.call("eth_feeHistory", "0x2", "latest", []float64{101})
	wantRPCError(t, err, -32000, "invalid reward percentile: 101.000000")
	_, err = e.call("eth_feeHistory", "0x2", "0x64", []float64{})
	wantRPCError(t, err, -32000, "request beyond head block: requested 100, head 4")

	var blobFee string
	e.mustCall(&blobFee, "eth_blobBaseFee")
	if blobFee != "0x1" {
		t.Errorf("eth_blobBaseFee = %s", blobFee)
	}
}

func TestFeesBaseFeeChain(t *testing.T) {
	gwei := big.NewInt(params.GWei)
	e := newEthEnv(t, rpctest.Options{BaseFee: gwei, MinGasPrice: gwei})
	ctx := t.Context()
	head := e.fx.Blocks[3].Header()
	price, err := e.ec.SuggestGasPrice(ctx)
	if want := new(big.Int).Add(head.BaseFee, gwei); err != nil || price.Cmp(want) != 0 {
		t.Errorf("gas price = %v, %v; want %v", price, err, want)
	}
	tip, err := e.ec.SuggestGasTipCap(ctx)
	if err != nil || tip.Cmp(gwei) != 0 {
		t.Errorf("tip = %v, %v", tip, err)
	}
	fh, err := e.ec.FeeHistory(ctx, 4, nil, []float64{50})
	if err != nil {
		t.Fatal(err)
	}
	if fh.OldestBlock.Uint64() != 1 || len(fh.BaseFee) != 5 || len(fh.Reward) != 4 {
		t.Fatalf("fee history = %+v", fh)
	}
	for i, blk := range e.fx.Blocks {
		if fh.BaseFee[i].Cmp(blk.BaseFee()) != 0 {
			t.Errorf("baseFee[%d] = %v, want %v", i, fh.BaseFee[i], blk.BaseFee())
		}
	}
	if want := e.b.NextBaseFee(); fh.BaseFee[4].Cmp(want) != 0 || want.Sign() == 0 {
		t.Errorf("next base fee = %v, want %v (non-zero)", fh.BaseFee[4], want)
	}
	// Block 1's two transactions both tip exactly 1 gwei; block 4 is empty.
	if fh.Reward[0][0].Cmp(gwei) != 0 || fh.Reward[3][0].Sign() != 0 {
		t.Errorf("rewards = %v", fh.Reward)
	}
	// A mined 1559 transaction reports its effective gas price.
	var tx map[string]any
	e.mustCall(&tx, "eth_getTransactionByHash", e.fx.DynamicTx)
	if want := hexutil.EncodeBig(new(big.Int).Add(e.fx.Blocks[0].BaseFee(), gwei)); tx["gasPrice"] != want {
		t.Errorf("effective gas price = %v, want %s", tx["gasPrice"], want)
	}
}

func TestEVMTimeout(t *testing.T) {
	e := newEthEnv(t, rpctest.Options{}, func(c *rpc.Config) {
		c.GasCap = 1 << 40 // ~10^11 loop iterations: minutes without the timeout
		c.EVMTimeout = 50 * time.Millisecond
	})
	_, err := e.call("eth_call", map[string]any{"to": e.fx.Contract, "input": hexutil.Bytes(rpctest.Calldata(rpctest.SelLoop))}, "latest")
	wantRPCError(t, err, -32000, "execution aborted (timeout = 50ms)")
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSendRawTransactionUnprotected(t *testing.T) {
	unprotected := func(e *ethEnv) hexutil.Bytes {
		k1 := e.key(e.fx.Key1)
		tx := k1.sign(t, types.HomesteadSigner{}, &types.LegacyTx{Nonce: 3, Gas: 21000, To: &e.fx.Addr3, GasPrice: new(big.Int)})
		enc, err := tx.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	e := newEthEnv(t, rpctest.Options{})
	_, err := e.call("eth_sendRawTransaction", unprotected(e))
	wantRPCError(t, err, -32000, "only replay-protected (EIP-155) transactions allowed over RPC")
	if pending, queued := e.b.PoolStatus(); pending+queued != 0 {
		t.Fatalf("refused transaction reached the pool: %d pending %d queued", pending, queued)
	}

	e = newEthEnv(t, rpctest.Options{}, func(c *rpc.Config) { c.AllowUnprotectedTxs = true })
	var hash common.Hash
	e.mustCall(&hash, "eth_sendRawTransaction", unprotected(e))
	if pending, _ := e.b.PoolStatus(); pending != 1 {
		t.Fatalf("allowed unprotected transaction not pooled: %d pending", pending)
	}
}
