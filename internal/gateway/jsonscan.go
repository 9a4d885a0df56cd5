package gateway

import (
	"bytes"
	"encoding/json"
)

// The proxy reads two small JSON objects per call: the client's request
// envelope and the upstream's answer envelope. encoding/json's reflection
// was about 5 % of the gateway's CPU at one client; scanObject walks such
// an object once, validating it, and hands out the raw member values. Any
// shape it does not handle exactly like encoding/json (a key that is not
// one of the expected ones, and so might match a field case-insensitively;
// escaped keys; very deep nesting; a value of an unexpected type) makes the
// callers fall back to encoding/json, which then decides. FuzzScanCall and
// FuzzScanResponse check that both paths agree.

// maxScanDepth bounds the nesting scanObject follows before deferring to
// encoding/json.
const maxScanDepth = 256

// scanObject checks that data is one JSON object (whitespace around it
// allowed) and calls fn for each member in order, with the raw key (without
// quotes) and the raw value. It returns false when data is not such an
// object, has an escaped key, nests deeper than maxScanDepth, or fn
// returned false.
func scanObject(data []byte, fn func(key, val []byte) bool) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return false
		}
		ks := i + 1
		j := ks
		for j < len(data) && data[j] != '"' {
			if data[j] == '\\' || data[j] < 0x20 {
				return false
			}
			j++
		}
		if j >= len(data) {
			return false
		}
		key := data[ks:j]
		i = skipSpace(data, j+1)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		vs := skipSpace(data, i+1)
		end, ok := skipValue(data, vs, 1)
		if !ok || !fn(key, data[vs:end]) {
			return false
		}
		i = skipSpace(data, end)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipValue returns the end of the valid JSON value starting at data[i].
func skipValue(data []byte, i, depth int) (int, bool) {
	if i >= len(data) {
		return i, false
	}
	switch c := data[i]; {
	case c == '"':
		return skipString(data, i)
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return i, false
		}
		return skipContainer(data, i, depth)
	case c == 't':
		return skipLiteral(data, i, "true")
	case c == 'f':
		return skipLiteral(data, i, "false")
	case c == 'n':
		return skipLiteral(data, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(data, i)
	}
	return i, false
}

func skipLiteral(data []byte, i int, lit string) (int, bool) {
	if len(data)-i < len(lit) || string(data[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// skipString skips a string starting at its opening quote. Like
// encoding/json it checks escapes and control characters, not UTF-8.
func skipString(data []byte, i int) (int, bool) {
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			i++
			if i >= len(data) {
				return i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(data)-i <= 4 {
					return i, false
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 4
			default:
				return i, false
			}
		}
	}
	return i, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && isDigit(data[i]):
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return i, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return i, false
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i, true
}

// skipContainer skips an object or array starting at its opening bracket.
func skipContainer(data []byte, i, depth int) (int, bool) {
	closing, object := byte(']'), data[i] == '{'
	if object {
		closing = '}'
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == closing {
		return i + 1, true
	}
	for {
		var ok bool
		if object {
			if i >= len(data) || data[i] != '"' {
				return i, false
			}
			if i, ok = skipString(data, i); !ok {
				return i, false
			}
			i = skipSpace(data, i)
			if i >= len(data) || data[i] != ':' {
				return i, false
			}
			i = skipSpace(data, i+1)
		}
		if i, ok = skipValue(data, i, depth+1); !ok {
			return i, false
		}
		i = skipSpace(data, i)
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ',':
			i = skipSpace(data, i+1)
		case closing:
			return i + 1, true
		default:
			return i, false
		}
	}
}

// scanString decodes a raw JSON value into a string field the way
// encoding/json does: null leaves it unchanged; anything but a string
// fails. Strings with escapes or non-ASCII bytes (which encoding/json
// unescapes or repairs to valid UTF-8) go through encoding/json.
func scanString(val []byte, dst *string) bool {
	switch {
	case val[0] == 'n':
		return true
	case val[0] != '"':
		return false
	case plainASCII(val):
		*dst = string(val[1 : len(val)-1])
		return true
	}
	return json.Unmarshal(val, dst) == nil
}

func plainASCII(b []byte) bool {
	for _, c := range b {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// scanCall decodes a request envelope; false means "use encoding/json".
// raw is copied once: the fields alias the copy, never the caller's
// buffer (fasthttp reuses request bodies).
func scanCall(raw []byte, req *rpcRequest) bool {
	raw = bytes.Clone(raw)
	return scanObject(raw, func(key, val []byte) bool {
		switch string(key) {
		case "jsonrpc":
			return scanString(val, &req.Version)
		case "method":
			return scanString(val, &req.Method)
		case "id":
			req.ID = val
		case "params":
			req.Params = val
		default:
			return false
		}
		return true
	})
}

// scanResponse decodes an answer envelope; false means "use
// encoding/json". The fields alias ans.
func scanResponse(ans []byte, resp *rpcResponse) bool {
	return scanObject(ans, func(key, val []byte) bool {
		switch string(key) {
		case "jsonrpc":
		case "id":
			resp.ID = val
		case "result":
			resp.Result = val
		case "error":
			if val[0] == 'n' {
				resp.Error = nil
				return true
			}
			if resp.Error == nil {
				resp.Error = &rpcError{}
			}
			// Into the one already there, as encoding/json does.
			return json.Unmarshal(val, resp.Error) == nil
		default:
			return false
		}
		return true
	})
}

// decodeResponse decodes one answer envelope; false: not a JSON object of
// that shape.
func decodeResponse(ans []byte) (rpcResponse, bool) {
	var out rpcResponse
	if scanResponse(ans, &out) {
		return out, true
	}
	out = rpcResponse{}
	if json.Unmarshal(ans, &out) != nil {
		return rpcResponse{}, false
	}
	return out, true
}
