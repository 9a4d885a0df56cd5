package rpc_test

import (
	"encoding/json"
	"errors"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/rpc"
	"github.com/hansa-chain/hansa/internal/rpc/rpctest"
)

type debugFixture struct {
	b  *rpctest.Backend
	fx *rpctest.Fixture
	c  *gethrpc.Client
}

func newDebugFixture(t *testing.T) *debugFixture {
	t.Helper()
	b, fx := rpctest.New(t, rpctest.Options{})
	cfg := rpc.DefaultConfig()
	cfg.Namespaces = []string{"debug"}
	cfg.GasCap = 1_000_000
	s, err := rpc.NewServer(cfg, rpc.Services{Debug: rpc.NewDebugAPI(b, cfg)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	c, err := gethrpc.Dial(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Stop(); hs.Close() })
	return &debugFixture{b: b, fx: fx, c: c}
}

// debugStructLogs is the default tracer's result shape.
type debugStructLogs struct {
	Gas         uint64 `json:"gas"`
	Failed      bool   `json:"failed"`
	ReturnValue string `json:"returnValue"`
	StructLogs  []struct {
		Op string `json:"op"`
	} `json:"structLogs"`
}

// debugCallFrame is the debugCallTracer's result shape (the fields checked here).
type debugCallFrame struct {
	Type    string          `json:"type"`
	From    common.Address  `json:"from"`
	To      common.Address  `json:"to"`
	Value   *hexutil.Big    `json:"value"`
	Gas     hexutil.Uint64  `json:"gas"`
	GasUsed hexutil.Uint64  `json:"gasUsed"`
	Output  hexutil.Bytes   `json:"output"`
	Error   string          `json:"error"`
	Logs    json.RawMessage `json:"logs"`
}

var debugCallTracer = map[string]any{"tracer": "callTracer"}

func TestDebugTraceTransactionStructLogger(t *testing.T) {
	d := newDebugFixture(t)
	var res debugStructLogs
	if err := d.c.Call(&res, "debug_traceTransaction", d.fx.StoreTx); err != nil {
		t.Fatal(err)
	}
	blk := d.fx.Blocks[2]
	receipts := d.b.Receipts(blk.Hash(), blk.NumberU64())
	if len(receipts) != 1 || res.Gas != receipts[0].GasUsed {
		t.Errorf("trace gas %d, receipt gas used %v", res.Gas, receipts)
	}
	if res.Failed {
		t.Error("store(42) traced as failed")
	}
	ops := map[string]bool{}
	for _, l := range res.StructLogs {
		ops[l.Op] = true
	}
	for _, op := range []string{"SSTORE", "LOG1"} {
		if !ops[op] {
			t.Errorf("struct logs lack %s (ops %v)", op, ops)
		}
	}
}

// TestDebugTraceTransactionReplaysEarlierTxs traces the second transaction of
// block 1, which needs the first replayed on the parent state.
func TestDebugTraceTransactionReplaysEarlierTxs(t *testing.T) {
	d := newDebugFixture(t)
	var f debugCallFrame
	if err := d.c.Call(&f, "debug_traceTransaction", d.fx.DynamicTx, debugCallTracer); err != nil {
		t.Fatal(err)
	}
	if f.Type != "CALL" || f.From != d.fx.Addr2 || f.To != d.fx.Addr3 || f.Value.ToInt().Cmp(big.NewInt(2)) != 0 || f.GasUsed != 21000 {
		t.Errorf("call frame %+v", f)
	}
}

func TestDebugTraceBlockByNumber(t *testing.T) {
	d := newDebugFixture(t)
	var res []struct {
		TxHash common.Hash    `json:"txHash"`
		Result debugCallFrame `json:"result"`
	}
	if err := d.c.Call(&res, "debug_traceBlockByNumber", hexutil.Uint64(1), debugCallTracer); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[0].TxHash != d.fx.TransferTx || res[1].TxHash != d.fx.DynamicTx {
		t.Fatalf("block 1 traces %+v", res)
	}
	if res[0].Result.From != d.fx.Addr1 || res[0].Result.Value.ToInt().Cmp(big.NewInt(1e18)) != 0 {
		t.Errorf("first trace %+v", res[0].Result)
	}
	// Block 4 (the head) is empty. Finality is immediate: every head tag
	// resolves to it.
	var empty []json.RawMessage
	for _, tag := range []string{"latest", "pending", "safe", "finalized", "0x4"} {
		empty = nil
		if err := d.c.Call(&empty, "debug_traceBlockByNumber", tag); err != nil || empty == nil || len(empty) != 0 {
			t.Errorf("%s (empty block 4) traces = %v, %v", tag, empty, err)
		}
	}
	// Block 3 holds one transaction: a tag that resolved elsewhere would show.
	if err := d.c.Call(&empty, "debug_traceBlockByNumber", "0x3"); err != nil || len(empty) != 1 {
		t.Errorf("block 3 traces = %d, %v", len(empty), err)
	}
	err := d.c.Call(&empty, "debug_traceBlockByNumber", "earliest")
	if err == nil || !strings.Contains(err.Error(), "genesis is not traceable") {
		t.Errorf("earliest trace err = %v", err)
	}
	err = d.c.Call(&empty, "debug_traceBlockByNumber", hexutil.Uint64(0))
	if err == nil || !strings.Contains(err.Error(), "genesis is not traceable") {
		t.Errorf("genesis trace err = %v", err)
	}
	err = d.c.Call(&empty, "debug_traceBlockByNumber", hexutil.Uint64(99))
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown block trace err = %v", err)
	}
}

func TestDebugTraceCall(t *testing.T) {
	d := newDebugFixture(t)
	call := map[string]any{"from": d.fx.Addr3, "to": d.fx.Contract, "gas": hexutil.Uint64(50_000_000)}
	tests := []struct {
		block string
		want  uint64
	}{
		{"latest", 42},
		{"0x2", rpctest.InitialValue}, // after deployment, before store(42)
	}
	for _, tt := range tests {
		t.Run(tt.block, func(t *testing.T) {
			var f debugCallFrame
			if err := d.c.Call(&f, "debug_traceCall", call, tt.block, debugCallTracer); err != nil {
				t.Fatal(err)
			}
			if got := new(big.Int).SetBytes(f.Output); got.Uint64() != tt.want || f.Error != "" {
				t.Errorf("output %x error %q, want %d", []byte(f.Output), f.Error, tt.want)
			}
			// The requested 50M gas is capped at Config.GasCap.
			if f.Gas != 1_000_000 {
				t.Errorf("gas %d, want the cap 1000000", f.Gas)
			}
		})
	}
	var f debugCallFrame
	err := d.c.Call(&f, "debug_traceCall", "not an object", "latest")
	var rerr gethrpc.Error
	if !errors.As(err, &rerr) || rerr.ErrorCode() != -32602 {
		t.Errorf("bad args err = %v, want -32602", err)
	}
}

func TestDebugErrorsAndSurface(t *testing.T) {
	d := newDebugFixture(t)
	var res json.RawMessage
	err := d.c.Call(&res, "debug_traceTransaction", common.HexToHash("0x1234"))
	if err == nil || err.Error() != "transaction not found" {
		t.Errorf("unknown tx err = %v", err)
	}
	err = d.c.Call(&res, "debug_traceTransaction", d.fx.StoreTx, map[string]any{"tracer": "noSuchTracer"})
	if err == nil {
		t.Error("unknown tracer accepted")
	}
	// go-ethereum's file-reading and -writing trace methods are not exposed.
	for _, m := range []string{"debug_traceBlockFromFile", "debug_standardTraceBlockToFile", "debug_traceChain", "debug_traceBadBlock"} {
		err := d.c.Call(&res, m, "x")
		var rerr gethrpc.Error
		if !errors.As(err, &rerr) || rerr.ErrorCode() != -32601 {
			t.Errorf("%s: err = %v, want -32601", m, err)
		}
	}
}
