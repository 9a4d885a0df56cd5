package gateway

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
)

// principal is a compiled key (or anonymous access): who is calling and
// what they may do. It is immutable once built.
type principal struct {
	name      string
	exact     map[string]bool
	prefixes  []string
	all       bool
	contracts map[common.Address]bool // nil: any
	senders   map[common.Address]bool // nil: any
	rate      float64
	burst     int
}

func compileKey(k KeyConfig) *principal {
	p := &principal{name: k.Name, exact: map[string]bool{}, rate: k.Rate, burst: k.Burst}
	for _, m := range k.Methods {
		switch {
		case m == "*":
			p.all = true
		case strings.HasSuffix(m, "*"):
			p.prefixes = append(p.prefixes, strings.TrimSuffix(m, "*"))
		default:
			p.exact[m] = true
		}
	}
	toSet := func(list []string) map[common.Address]bool {
		if len(list) == 0 {
			return nil
		}
		s := make(map[common.Address]bool, len(list))
		for _, a := range list {
			s[common.HexToAddress(a)] = true
		}
		return s
	}
	p.contracts, p.senders = toSet(k.Contracts), toSet(k.Senders)
	return p
}

// allows reports whether the method is on the allowlist.
func (p *principal) allows(method string) bool {
	if p.all || p.exact[method] {
		return true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(method, pre) {
			return true
		}
	}
	return false
}

// keyring maps secrets (by their SHA-256, so a lookup's timing says nothing
// about the secret) to principals. It is immutable once built.
type keyring struct {
	byHash    map[[32]byte]*principal
	anonymous *principal // nil: anonymous access refused
}

func newKeyring(c *Config) *keyring {
	kr := &keyring{byHash: make(map[[32]byte]*principal, len(c.Keys))}
	for _, k := range c.Keys {
		kr.byHash[sha256.Sum256([]byte(k.Key))] = compileKey(k)
	}
	if c.AllowAnonymous {
		kr.anonymous = compileKey(c.Anonymous)
	}
	return kr
}

// keyFromRequest returns the API key of a request to path whose X-API-Key
// header is header: the header, or else the path's KEY in /v1/KEY. ok is
// false when the path is neither / nor /v1/KEY.
func keyFromRequest(path, header string) (key string, ok bool) {
	key = header
	switch {
	case path == "/" || path == "":
	case strings.HasPrefix(path, "/v1/") && !strings.Contains(path[4:], "/"):
		if key == "" {
			key = path[4:]
		}
	default:
		return "", false
	}
	return key, true
}

// authenticate returns the principal of a key, or the error to answer.
func (kr *keyring) authenticate(key string) (*principal, *rpcError) {
	if key == "" {
		if kr.anonymous != nil {
			return kr.anonymous, nil
		}
		return nil, &rpcError{Code: CodeUnauthorized, Message: "unauthorized: API key required (X-API-Key header or /v1/KEY)"}
	}
	if p, ok := kr.byHash[sha256.Sum256([]byte(key))]; ok {
		return p, nil
	}
	return nil, &rpcError{Code: CodeUnauthorized, Message: "unauthorized: unknown API key"}
}

// txInfo is what the gateway reads from a raw transaction.
type txInfo struct {
	hash   common.Hash
	to     *common.Address
	sender common.Address
}

// decodeRawTx decodes an eth_sendRawTransaction parameter and recovers its
// sender.
func decodeRawTx(raw string) (*txInfo, *rpcError) {
	b, err := hexutil.Decode(raw)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid raw transaction: " + err.Error()}
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(b); err != nil {
		return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid raw transaction: " + err.Error()}
	}
	var signer types.Signer
	if tx.Protected() || tx.Type() != types.LegacyTxType {
		signer = types.LatestSignerForChainID(tx.ChainId())
	} else {
		signer = types.HomesteadSigner{}
	}
	from, err := types.Sender(signer, &tx)
	if err != nil {
		return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid raw transaction signature: " + err.Error()}
	}
	return &txInfo{hash: tx.Hash(), to: tx.To(), sender: from}, nil
}

// authorizeCall checks a call against the principal's allowlists: method,
// then contract and sender for eth_sendRawTransaction and eth_call. It
// returns the decoded transaction for eth_sendRawTransaction.
func (p *principal) authorizeCall(req *rpcRequest) (*txInfo, *rpcError) {
	if !p.allows(req.Method) {
		return nil, &rpcError{Code: CodeMethodDenied, Message: fmt.Sprintf("method %s is not allowed for this key", req.Method)}
	}
	switch req.Method {
	case "eth_sendRawTransaction":
		raw, err := firstParamString(req.Params)
		if err != nil {
			return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid params: " + err.Error()}
		}
		tx, rerr := decodeRawTx(raw)
		if rerr != nil {
			return nil, rerr
		}
		if p.senders != nil && !p.senders[tx.sender] {
			return nil, &rpcError{Code: CodeForbidden, Message: fmt.Sprintf("sender %s is not allowed for this key", tx.sender.Hex())}
		}
		if err := p.checkContract(tx.to); err != nil {
			return nil, err
		}
		return tx, nil
	case "eth_call":
		if p.contracts == nil {
			return nil, nil
		}
		var ps []json.RawMessage
		var call struct {
			To *common.Address `json:"to"`
		}
		if json.Unmarshal(req.Params, &ps) != nil || len(ps) == 0 || json.Unmarshal(ps[0], &call) != nil {
			return nil, &rpcError{Code: CodeInvalidParams, Message: "invalid params: eth_call needs a call object"}
		}
		return nil, p.checkContract(call.To)
	}
	return nil, nil
}

func (p *principal) checkContract(to *common.Address) *rpcError {
	if p.contracts == nil {
		return nil
	}
	if to == nil {
		return &rpcError{Code: CodeForbidden, Message: "contract creation is not allowed for this key"}
	}
	if !p.contracts[*to] {
		return &rpcError{Code: CodeForbidden, Message: fmt.Sprintf("contract %s is not allowed for this key", to.Hex())}
	}
	return nil
}
