package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestAbuse sends each kind of bad input or abuse and checks its precise
// error, while another client keeps being served throughout.
func TestAbuse(t *testing.T) {
	allowed := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	other := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	alice, _ := crypto.GenerateKey()
	mallory, _ := crypto.GenerateKey()
	nodes := threeNodes(t)
	h := newHarness(t, nodes, func(c *Config) {
		c.AllowAnonymous = false
		c.Limits.MaxBodyBytes = 4096
		c.Limits.MaxBatch = 5
		c.Keys = []KeyConfig{
			{Name: "alice", Key: "alice-secret", Methods: []string{"eth_*", "web3_clientVersion"},
				Contracts: []string{allowed.Hex()}, Senders: []string{crypto.PubkeyToAddress(alice.PublicKey).Hex()}},
			{Name: "slow", Key: "slow-secret", Methods: []string{"*"}, Rate: 0.001, Burst: 3},
			{Name: "bob", Key: "bob-secret-key", Methods: []string{"web3_clientVersion"}},
		}
	})
	h.poll(1)

	// Bob is served all along.
	var bobCalls, bobFailures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, resp := h.call("/v1/bob-secret-key", "web3_clientVersion", "", nil)
			bobCalls.Add(1)
			if resp.Error != nil {
				bobFailures.Add(1)
			}
		}
	})

	aliceHdr := map[string]string{"X-API-Key": "alice-secret"}
	rawTx := func(signer bool, to *common.Address) string {
		k := alice
		if !signer {
			k = mallory
		}
		raw, _ := signedTx(t, k, to, 0)
		return `["` + raw + `"]`
	}
	call := func(method, params string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":%q,"params":%s}`, method, params)
	}
	tests := []struct {
		name   string
		path   string
		hdr    map[string]string
		body   string
		status int
		code   int
		msg    string
	}{
		{"missing key", "/", nil, call("eth_blockNumber", "[]"), 401, CodeUnauthorized, "API key required"},
		{"wrong key", "/", map[string]string{"X-API-Key": "nope-nope-nope"}, call("eth_blockNumber", "[]"), 401, CodeUnauthorized, "unknown API key"},
		{"wrong key in path", "/v1/nope-nope-nope", nil, call("eth_blockNumber", "[]"), 401, CodeUnauthorized, "unknown API key"},
		{"unknown path", "/admin", aliceHdr, call("eth_blockNumber", "[]"), 404, CodeInvalidRequest, "not found"},
		{"method outside allowlist", "/", aliceHdr, call("net_version", "[]"), 200, CodeMethodDenied, "method net_version is not allowed for this key"},
		{"call to contract outside allowlist", "/", aliceHdr, call("eth_call", `[{"to":"`+other.Hex()+`"},"latest"]`), 200, CodeForbidden, "contract " + other.Hex() + " is not allowed"},
		{"tx to contract outside allowlist", "/", aliceHdr, call("eth_sendRawTransaction", rawTx(true, &other)), 200, CodeForbidden, "contract " + other.Hex() + " is not allowed"},
		{"tx from another sender", "/", aliceHdr, call("eth_sendRawTransaction", rawTx(false, &allowed)), 200, CodeForbidden, "sender " + crypto.PubkeyToAddress(mallory.PublicKey).Hex() + " is not allowed"},
		{"oversized body", "/", aliceHdr, call("eth_call", `["`+strings.Repeat("a", 5000)+`"]`), 413, CodeInvalidRequest, "request body too large: limit 4096 bytes"},
		{"oversized batch", "/", aliceHdr, "[" + strings.Repeat(call("eth_chainId", "[]")+",", 5) + call("eth_chainId", "[]") + "]", 400, CodeInvalidRequest, "batch too large: 6 calls, limit 5"},
		{"malformed JSON", "/", aliceHdr, `{"jsonrpc":"2.0",`, 400, CodeParseError, "parse error"},
		{"empty batch", "/", aliceHdr, `[]`, 400, CodeInvalidRequest, "empty batch"},
		{"not JSON-RPC", "/", aliceHdr, `{"id":1,"method":"eth_chainId"}`, 200, CodeInvalidRequest, `jsonrpc must be "2.0"`},
		{"allowed call", "/", aliceHdr, call("eth_sendRawTransaction", rawTx(true, &allowed)), 200, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, b := h.post(tt.path, tt.body, tt.hdr)
			var resp rpcResponse
			if err := json.Unmarshal(b, &resp); err != nil {
				t.Fatalf("answer %q: %v", b, err)
			}
			if status != tt.status {
				t.Errorf("HTTP %d, want %d (%s)", status, tt.status, b)
			}
			if tt.code == 0 {
				if resp.Error != nil {
					t.Errorf("refused: %v", resp.Error)
				}
				return
			}
			if resp.Error == nil || resp.Error.Code != tt.code || !strings.Contains(resp.Error.Message, tt.msg) {
				t.Errorf("got %v; want code %d with %q", resp.Error, tt.code, tt.msg)
			}
		})
	}

	t.Run("over the key's rate", func(t *testing.T) {
		hdr := map[string]string{"X-API-Key": "slow-secret"}
		for i := range 3 {
			if _, resp := h.call("/", "eth_chainId", "", hdr); resp.Error != nil {
				t.Fatalf("call %d within burst: %v", i, resp.Error)
			}
		}
		status, header, b := h.post("/", call("eth_chainId", "[]"), hdr)
		var resp struct {
			Error struct {
				Code    int
				Message string
				Data    struct {
					RetryAfterMs int64 `json:"retry_after_ms"`
				}
			}
		}
		json.Unmarshal(b, &resp)
		if status != 429 || resp.Error.Code != CodeRateLimited || !strings.Contains(resp.Error.Message, "rate limit exceeded for this API key") {
			t.Fatalf("HTTP %d %s; want 429 with code %d", status, b, CodeRateLimited)
		}
		if resp.Error.Data.RetryAfterMs <= 0 || header.Get("Retry-After") == "" {
			t.Errorf("no retry hint: data %+v, Retry-After %q", resp.Error.Data, header.Get("Retry-After"))
		}
	})

	close(stop)
	wg.Wait()
	if bobCalls.Load() == 0 || bobFailures.Load() != 0 {
		t.Errorf("bob: %d calls, %d failed; want all served", bobCalls.Load(), bobFailures.Load())
	}
}

// TestIPRateLimit limits calls per client IP across keys.
func TestIPRateLimit(t *testing.T) {
	h := newHarness(t, threeNodes(t), func(c *Config) { c.Limits.IPRate, c.Limits.IPBurst = 0.001, 4 })
	h.poll(1)
	// A batch of three and one call use the burst of four.
	status, _, b := h.post("/", `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId"},{"jsonrpc":"2.0","id":2,"method":"eth_chainId"},{"jsonrpc":"2.0","id":3,"method":"eth_chainId"}]`, nil)
	if status != 200 {
		t.Fatalf("batch within the IP burst: %d %s", status, b)
	}
	if _, err := h.clientVersion(); err != nil {
		t.Fatalf("call within the IP burst: %v", err)
	}
	status, _, b = h.post("/", `{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`, nil)
	if status != 429 || !strings.Contains(string(b), "rate limit exceeded for this client IP") {
		t.Fatalf("over the IP rate: %d %s", status, b)
	}
}

// TestAnonymousIsExplicit: without allow_anonymous, keyless calls fail
// even when anonymous rights are configured.
func TestAnonymousIsExplicit(t *testing.T) {
	h := newHarness(t, threeNodes(t), func(c *Config) { c.AllowAnonymous = false })
	h.poll(1)
	status, resp := h.call("/", "eth_chainId", "", nil)
	if status != 401 || resp.Error == nil || resp.Error.Code != CodeUnauthorized {
		t.Fatalf("keyless call: %d %v; want 401", status, resp.Error)
	}
	if DefaultConfig().AllowAnonymous {
		t.Fatal("DefaultConfig allows anonymous access")
	}
}
