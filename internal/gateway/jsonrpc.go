package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// JSON-RPC error codes the gateway answers with (EIP-1474 where it has one).
const (
	CodeParseError     = -32700 // malformed JSON
	CodeInvalidRequest = -32600 // not a JSON-RPC request; body or batch too large
	CodeMethodDenied   = -32601 // method outside the key's allowlist
	CodeInvalidParams  = -32602 // params the gateway must read are malformed
	CodeInternal       = -32603 // gateway fault
	CodeUnauthorized   = -32001 // missing or unknown API key (HTTP 401)
	CodeUnavailable    = -32002 // no upstream could answer
	CodeForbidden      = -32003 // contract or sender outside the key's allowlist
	CodeRateLimited    = -32005 // rate limit exceeded (HTTP 429)
)

// rpcRequest is one JSON-RPC call as a client sent it.
type rpcRequest struct {
	Version string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("%s (code %d)", e.Message, e.Code) }

// rpcResponse is one upstream answer; Result and Error stay raw.
type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

// parseBody splits a request body into calls. batch reports whether the
// body was an array. A body that is not JSON is a parse error; an empty
// array is an invalid request.
func parseBody(body []byte) (calls []json.RawMessage, batch bool, err *rpcError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, false, &rpcError{Code: CodeInvalidRequest, Message: "empty request body"}
	}
	if body[0] != '[' {
		if !json.Valid(body) {
			return nil, false, &rpcError{Code: CodeParseError, Message: "parse error: body is not valid JSON"}
		}
		return []json.RawMessage{body}, false, nil
	}
	if e := json.Unmarshal(body, &calls); e != nil {
		return nil, true, &rpcError{Code: CodeParseError, Message: "parse error: body is not valid JSON"}
	}
	if len(calls) == 0 {
		return nil, true, &rpcError{Code: CodeInvalidRequest, Message: "empty batch"}
	}
	return calls, true, nil
}

// decodeCall decodes one call of a body; the error explains what is wrong.
func decodeCall(raw json.RawMessage) (rpcRequest, *rpcError) {
	var req rpcRequest
	if !scanCall(raw, &req) {
		req = rpcRequest{}
		if err := json.Unmarshal(raw, &req); err != nil {
			return req, &rpcError{Code: CodeInvalidRequest, Message: "invalid request: not a JSON-RPC object"}
		}
	}
	return req, checkCall(&req)
}

// checkCall checks the fields every call needs.
func checkCall(req *rpcRequest) *rpcError {
	if req.Version != "2.0" {
		return &rpcError{Code: CodeInvalidRequest, Message: `invalid request: jsonrpc must be "2.0"`}
	}
	if req.Method == "" {
		return &rpcError{Code: CodeInvalidRequest, Message: "invalid request: method missing"}
	}
	return nil
}

// idOrNull returns the request id, or null when it has none.
func idOrNull(id json.RawMessage) json.RawMessage {
	if len(id) == 0 {
		return json.RawMessage("null")
	}
	return id
}

// encodeResult builds a response to a call with id.
func encodeResult(id, result json.RawMessage) []byte {
	b := make([]byte, 0, len(result)+len(id)+36)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, idOrNull(id)...)
	b = append(b, `,"result":`...)
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	b = append(b, result...)
	return append(b, '}')
}

// encodeError builds an error response to a call with id.
func encodeError(id json.RawMessage, e *rpcError) []byte {
	eb, err := json.Marshal(e)
	if err != nil {
		eb = []byte(`{"code":-32603,"message":"internal error"}`)
	}
	b := make([]byte, 0, len(eb)+len(id)+36)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, idOrNull(id)...)
	b = append(b, `,"error":`...)
	b = append(b, eb...)
	return append(b, '}')
}

// encodeCall builds the request sent upstream.
func encodeCall(id json.RawMessage, method string, params json.RawMessage) []byte {
	b := make([]byte, 0, len(params)+len(method)+64)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if len(id) == 0 {
		id = json.RawMessage("1")
	}
	b = append(b, id...)
	b = append(b, `,"method":`...)
	b = strconv.AppendQuote(b, method)
	if len(params) > 0 {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// blockParamIndex is the position of the block number parameter of the
// methods that name one.
var blockParamIndex = map[string]int{
	"eth_getBlockByNumber":                    0,
	"eth_getBlockTransactionCountByNumber":    0,
	"eth_getTransactionByBlockNumberAndIndex": 0,
	"eth_getUncleCountByBlockNumber":          0,
	"eth_getBlockReceipts":                    0,
	"debug_traceBlockByNumber":                0,
	"eth_getBalance":                          1,
	"eth_getCode":                             1,
	"eth_getTransactionCount":                 1,
	"eth_call":                                1,
	"eth_estimateGas":                         1,
	"eth_createAccessList":                    1,
	"eth_feeHistory":                          1,
	"debug_traceCall":                         1,
	"eth_getStorageAt":                        2,
	"eth_getProof":                            2,
}

// minHeadFor returns the block a call needs the upstream to have (0 when
// the call names no block number). A malformed block parameter is left for
// the upstream to reject.
func minHeadFor(method string, params json.RawMessage) uint64 {
	if method == "eth_getLogs" {
		var f []struct {
			From string `json:"fromBlock"`
			To   string `json:"toBlock"`
		}
		if json.Unmarshal(params, &f) != nil || len(f) == 0 {
			return 0
		}
		return max(blockNumber(f[0].From), blockNumber(f[0].To))
	}
	i, ok := blockParamIndex[method]
	if !ok || len(params) == 0 {
		return 0
	}
	var ps []json.RawMessage
	if json.Unmarshal(params, &ps) != nil || i >= len(ps) {
		return 0
	}
	var s string
	if json.Unmarshal(ps[i], &s) != nil {
		var obj struct {
			Number string `json:"blockNumber"`
		}
		if json.Unmarshal(ps[i], &obj) != nil {
			return 0
		}
		s = obj.Number
	}
	return blockNumber(s)
}

// blockNumber parses a hex block number; tags and hashes give 0.
func blockNumber(s string) uint64 {
	if !strings.HasPrefix(s, "0x") || len(s) > 18 {
		return 0
	}
	n, err := hexutil.DecodeUint64(s)
	if err != nil {
		return 0
	}
	return n
}

// firstParamString returns params[0] as a string (a filter id or a raw
// transaction).
func firstParamString(params json.RawMessage) (string, error) {
	var ps []json.RawMessage
	if err := json.Unmarshal(params, &ps); err != nil || len(ps) == 0 {
		return "", errors.New("params must be an array with at least one element")
	}
	var s string
	if err := json.Unmarshal(ps[0], &s); err != nil {
		return "", errors.New("first parameter must be a string")
	}
	return s, nil
}
