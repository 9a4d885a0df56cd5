package gateway

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

func TestPick(t *testing.T) {
	p := func(inflight int64, head uint64) Candidate {
		return Candidate{Role: RolePrimary, Healthy: true, Head: head, InFlight: inflight}
	}
	down := Candidate{Role: RolePrimary, Healthy: false, Head: 100}
	fb := Candidate{Role: RoleFallback, Healthy: true, Head: 100}
	fbDown := Candidate{Role: RoleFallback, Healthy: false, Head: 100}
	tests := []struct {
		name     string
		cands    []Candidate
		minHead  uint64
		tried    []bool
		want     int
		fallback bool
		err      error
	}{
		{"fewest in flight", []Candidate{p(3, 100), p(1, 100), p(2, 100)}, 0, nil, 1, false, nil},
		{"skips unhealthy", []Candidate{down, p(5, 100)}, 0, nil, 1, false, nil},
		{"needs the block", []Candidate{p(0, 90), p(9, 100)}, 95, nil, 1, false, nil},
		{"skips tried", []Candidate{p(0, 100), p(9, 100)}, 0, []bool{true, false}, 1, false, nil},
		{"primary before fallback", []Candidate{fb, p(9, 100)}, 0, nil, 1, false, nil},
		{"healthy fallback when no primary", []Candidate{down, fbDown, fb}, 0, nil, 2, true, nil},
		{"any fallback as last resort", []Candidate{down, fbDown}, 0, nil, 1, true, nil},
		{"nothing", []Candidate{down}, 0, nil, -1, false, ErrNoUpstream},
		{"all tried", []Candidate{p(0, 100)}, 0, []bool{true}, -1, false, ErrNoUpstream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, fb, err := Pick(tt.cands, tt.minHead, tt.tried, 0)
			if got != tt.want || fb != tt.fallback || !errors.Is(err, tt.err) {
				t.Errorf("Pick = %d, %v, %v; want %d, %v, %v", got, fb, err, tt.want, tt.fallback, tt.err)
			}
		})
	}
	t.Run("equal upstreams share", func(t *testing.T) {
		cands := []Candidate{p(0, 1), p(0, 1), p(0, 1)}
		count := map[int]int{}
		for seq := range uint64(300) {
			i, _, _ := Pick(cands, 0, nil, seq)
			count[i]++
		}
		for i := range 3 {
			if count[i] < 50 {
				t.Errorf("equal upstreams picked %v over 300 rounds; want each about 100", count)
			}
		}
	})
	t.Run("latency weighted", func(t *testing.T) {
		fast, slow := p(0, 1), p(0, 1)
		fast.Latency, slow.Latency = 1_000_000, 19_000_000 // 1ms and 19ms: weights 1/2ms and 1/20ms
		count := map[int]int{}
		for seq := range uint64(1100) {
			i, _, _ := Pick([]Candidate{fast, slow}, 0, nil, seq)
			count[i]++
		}
		if count[0] < 800 || count[1] < 30 {
			t.Errorf("picks %v; want about 1000 for the 10x faster and about 100 for the slower", count)
		}
	})
}

func TestBucket(t *testing.T) {
	var b bucket
	now := time.Unix(0, 0)
	for i := range 3 {
		if ok, _ := b.take(now, 1, 2, 3); !ok {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	ok, wait := b.take(now, 1, 2, 3)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("over burst: ok=%v wait=%v; want refused, 500ms", ok, wait)
	}
	if ok, _ := b.take(now.Add(500*time.Millisecond), 1, 2, 3); !ok {
		t.Fatal("refilled token refused")
	}
	if ok, _ := b.take(now.Add(time.Hour), 10, 2, 3); !ok {
		t.Fatal("a batch larger than the burst must pass on a full bucket")
	}
}

func TestMethodAllowlist(t *testing.T) {
	p := compileKey(KeyConfig{Name: "k", Methods: []string{"eth_*", "net_version"}})
	for m, want := range map[string]bool{
		"eth_call": true, "eth_blockNumber": true, "net_version": true,
		"net_peerCount": false, "admin_peers": false, "debug_traceCall": false, "eth": false,
	} {
		if got := p.allows(m); got != want {
			t.Errorf("allows(%s) = %v, want %v", m, got, want)
		}
	}
	if all := compileKey(KeyConfig{Methods: []string{"*"}}); !all.allows("admin_addPeer") {
		t.Error(`"*" must allow every method`)
	}
	if none := compileKey(KeyConfig{}); none.allows("eth_call") {
		t.Error("an empty allowlist must allow nothing")
	}
}

func TestKeyFromRequest(t *testing.T) {
	tests := []struct {
		path, header, want string
		ok                 bool
	}{
		{"/", "", "", true},
		{"/", "abc", "abc", true},
		{"/v1/secret123", "", "secret123", true},
		{"/v1/secret123", "hdr", "hdr", true},
		{"/v1/a/b", "", "", false},
		{"/metrics", "", "", false},
	}
	for _, tt := range tests {
		got, ok := keyFromRequest(tt.path, tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s %q: got %q %v; want %q %v", tt.path, tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

// signedTx returns a signed dynamic-fee transaction's raw hex and hash.
func signedTx(t testing.TB, key *ecdsa.PrivateKey, to *common.Address, nonce uint64) (string, common.Hash) {
	t.Helper()
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{
		ChainID: big.NewInt(1337), Nonce: nonce, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(1),
		Gas: 21000, To: to, Value: big.NewInt(1),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return hexutil.Encode(b), tx.Hash()
}

func TestAuthorizeTransaction(t *testing.T) {
	alice, _ := crypto.GenerateKey()
	mallory, _ := crypto.GenerateKey()
	allowed := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	other := common.HexToAddress("0x00000000000000000000000000000000000000bb")
	p := compileKey(KeyConfig{Name: "k", Methods: []string{"eth_*"},
		Contracts: []string{allowed.Hex()}, Senders: []string{crypto.PubkeyToAddress(alice.PublicKey).Hex()}})
	raw := func(key *ecdsa.PrivateKey, to *common.Address) string {
		s, _ := signedTx(t, key, to, 0)
		return `["` + s + `"]`
	}
	tests := []struct {
		name, method, params string
		code                 int
		msg                  string
	}{
		{"allowed tx", "eth_sendRawTransaction", raw(alice, &allowed), 0, ""},
		{"contract outside allowlist", "eth_sendRawTransaction", raw(alice, &other), CodeForbidden, "contract " + other.Hex() + " is not allowed"},
		{"creation refused", "eth_sendRawTransaction", raw(alice, nil), CodeForbidden, "contract creation is not allowed"},
		{"foreign sender", "eth_sendRawTransaction", raw(mallory, &allowed), CodeForbidden, "sender " + crypto.PubkeyToAddress(mallory.PublicKey).Hex() + " is not allowed"},
		{"garbage tx", "eth_sendRawTransaction", `["0x1234"]`, CodeInvalidParams, "invalid raw transaction"},
		{"call allowed", "eth_call", `[{"to":"` + allowed.Hex() + `"},"latest"]`, 0, ""},
		{"call outside allowlist", "eth_call", `[{"to":"` + other.Hex() + `"},"latest"]`, CodeForbidden, "contract " + other.Hex()},
		{"method denied", "admin_peers", `[]`, CodeMethodDenied, "method admin_peers is not allowed for this key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := p.authorizeCall(&rpcRequest{Method: tt.method, Params: []byte(tt.params)})
			if tt.code == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Code != tt.code || !strings.Contains(err.Message, tt.msg) {
				t.Fatalf("got %v; want code %d with %q", err, tt.code, tt.msg)
			}
		})
	}
}

func TestMinHeadFor(t *testing.T) {
	tests := []struct {
		method, params string
		want           uint64
	}{
		{"eth_getBlockByNumber", `["0x10", false]`, 16},
		{"eth_getBlockByNumber", `["latest", false]`, 0},
		{"eth_getBalance", `["0x00000000000000000000000000000000000000aa", "0x20"]`, 32},
		{"eth_call", `[{"to":"0x00000000000000000000000000000000000000aa"}, {"blockNumber":"0x30"}]`, 48},
		{"eth_getStorageAt", `["0xaa", "0x0", "0x40"]`, 64},
		{"eth_getLogs", `[{"fromBlock":"0x5","toBlock":"0x50"}]`, 80},
		{"eth_getBlockByHash", `["0x10"]`, 0},
		{"eth_getBalance", `not json`, 0},
	}
	for _, tt := range tests {
		if got := minHeadFor(tt.method, []byte(tt.params)); got != tt.want {
			t.Errorf("minHeadFor(%s, %s) = %d, want %d", tt.method, tt.params, got, tt.want)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}`,
		`[{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":["0xaa","0x10"]},{"jsonrpc":"2.0","id":2,"method":"eth_call","params":[{"to":"0xaa"},"latest"]}]`,
		`{"jsonrpc":"2.0","id":"x","method":"eth_getLogs","params":[{"fromBlock":"0x1","toBlock":"0xffffffffffffffffff"}]}`,
		`{"jsonrpc":"2.0","id":3,"method":"eth_sendRawTransaction","params":["0x02f8"]}`,
		`[]`, `[1,2]`, `{`, `null`, `"str"`,
	} {
		f.Add([]byte(s))
	}
	p := compileKey(KeyConfig{Name: "f", Methods: []string{"*"}, Contracts: []string{"0x00000000000000000000000000000000000000aa"}})
	f.Fuzz(func(t *testing.T, body []byte) {
		calls, _, err := parseBody(body)
		if err != nil {
			return
		}
		for _, raw := range calls {
			req, derr := decodeCall(raw)
			if derr != nil {
				continue
			}
			minHeadFor(req.Method, req.Params)
			_, _ = p.authorizeCall(&req)
			out := encodeResult(req.ID, req.Params)
			if len(req.Params) > 0 && !json.Valid(out) {
				t.Fatalf("response %q is not valid JSON", out)
			}
		}
	})
}
