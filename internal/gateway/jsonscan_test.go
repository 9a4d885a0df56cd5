package gateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// referenceDecodeCall is decodeCall as it was, all encoding/json.
func referenceDecodeCall(raw []byte) (rpcRequest, *rpcError) {
	var req rpcRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return req, &rpcError{Code: CodeInvalidRequest, Message: "invalid request: not a JSON-RPC object"}
	}
	return req, checkCall(&req)
}

var scanSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}`,
	` {"jsonrpc" : "2.0", "id" : "a\"b", "method":"eth_call","params":[{"to":"0x04","data":"0xdeadbeef"},"latest"]} `,
	`{"jsonrpc":"2.0","id":null,"method":"m","params":null}`,
	`{"jsonrpc":"2.0","method":"m"}`,
	`{"jsonrpc":"2.0","id":-1.5e+3,"method":"m\u0041","params":{"a":[true,false,null,{}]}}`,
	`{"jsonrpc":"2.0","ID":1,"Method":"m"}`,
	`{"jsonrpc":2,"id":1,"method":"m"}`,
	`{"jsonrpc":"2.0","id":1,"method":null}`,
	`{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}`,
	`{"jsonrpc":"2.0","id":01,"method":"m"}`,
	`{"jsonrpc":"2.0","id":1,"method":"m"} x`,
	`{"jsonrpc":"2.0","id":1,"method":"m",}`,
	`{"j\u0073onrpc":"2.0","id":1,"method":"m"}`,
	`{"jsonrpc":"2.0","id":"\x01","method":"m"}`,
	`{"jsonrpc":"2.0","id":[[[[[[[[[[[[[]]]]]]]]]]]]],"method":"m"}`,
	`{}`, `[]`, `null`, `"x"`, ``, `{`, `{"a"`, `{"id":tru}`, `{"id":1e}`, `{"id":"\u12"}`,
	`{"jsonrpc":"2.0","id":1,"result":"0x2a"}`,
	`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low","data":{"x":[1,2]}}}`,
	`{"jsonrpc":"2.0","id":1,"error":null,"result":null}`,
	`{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"a"},"error":{"code":2}}`,
	`{"jsonrpc":"2.0","id":1,"error":"boom"}`,
	`{"jsonrpc":"2.0","id":1,"Result":"0x1"}`,
	`{"jsonrpc":{"x":1},"id":1,"result":[]}`,
}

// The scanner decodes requests exactly as encoding/json did, or defers to
// it: same error, same fields, for any input.
func FuzzScanCall(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, gerr := decodeCall(raw)
		want, werr := referenceDecodeCall(raw)
		if !reflect.DeepEqual(gerr, werr) {
			t.Fatalf("%q: error %v, encoding/json says %v", raw, gerr, werr)
		}
		if gerr != nil {
			return
		}
		if got.Version != want.Version || got.Method != want.Method ||
			!bytes.Equal(got.ID, want.ID) || !bytes.Equal(got.Params, want.Params) {
			t.Fatalf("%q: decoded %+v, encoding/json decoded %+v", raw, got, want)
		}
	})
}

// The scanner decodes answers exactly as encoding/json does, or defers to
// it.
func FuzzScanResponse(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, ans []byte) {
		got, ok := decodeResponse(ans)
		var want rpcResponse
		werr := json.Unmarshal(ans, &want)
		if ok != (werr == nil) {
			t.Fatalf("%q: ok %v, encoding/json says %v", ans, ok, werr)
		}
		if !ok {
			return
		}
		if !bytes.Equal(got.ID, want.ID) || !bytes.Equal(got.Result, want.Result) || (got.Result == nil) != (want.Result == nil) ||
			!reflect.DeepEqual(got.Error, want.Error) {
			t.Fatalf("%q: decoded %+v / %+v, encoding/json decoded %+v / %+v", ans, got, got.Error, want, want.Error)
		}
	})
}

// The fields of a scanned request never alias the caller's buffer, which
// fasthttp reuses for the next request.
func TestScanCallCopies(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"eth_call","params":["x"]}`)
	req, err := decodeCall(body)
	if err != nil {
		t.Fatal(err)
	}
	for i := range body {
		body[i] = ' '
	}
	if string(req.ID) != "7" || string(req.Params) != `["x"]` || req.Method != "eth_call" {
		t.Fatalf("fields changed with the buffer: %+v", req)
	}
}

// Ordinary requests and answers take the scanner, not the fallback.
func TestScanFastPath(t *testing.T) {
	var req rpcRequest
	if !scanCall([]byte(scanSeeds[1]), &req) || req.Method != "eth_call" || string(req.ID) != `"a\"b"` {
		t.Fatalf("request fell back or decoded wrong: %+v", req)
	}
	var resp rpcResponse
	if !scanResponse([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32000,"message":"nonce too low"}}`), &resp) || resp.Error == nil || resp.Error.Message != "nonce too low" {
		t.Fatalf("answer fell back or decoded wrong: %+v", resp)
	}
}
