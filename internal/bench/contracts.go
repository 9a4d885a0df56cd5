package bench

import (
	_ "embed" // contract artifacts
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Token.json is a copy of tests/e2e/contracts/Token.json (a test keeps the
// two equal); Simple.json is built from contracts/Simple.sol by
// contracts/build.mjs.
var (
	//go:embed contracts/Token.json
	tokenJSON []byte
	//go:embed contracts/Simple.json
	simpleJSON []byte
)

// artifact is a compiled contract: its ABI and creation bytecode.
type artifact struct {
	ABI      abi.ABI
	Bytecode []byte
}

func loadArtifact(data []byte) (*artifact, error) {
	var raw struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	parsed, err := abi.JSON(strings.NewReader(string(raw.ABI)))
	if err != nil {
		return nil, err
	}
	code, err := hexutil.Decode(raw.Bytecode)
	if err != nil {
		return nil, fmt.Errorf("bytecode: %w", err)
	}
	return &artifact{ABI: parsed, Bytecode: code}, nil
}

// contracts holds the parsed artifacts the workloads use.
type contracts struct {
	token, simple *artifact
}

func loadContracts() (*contracts, error) {
	token, err := loadArtifact(tokenJSON)
	if err != nil {
		return nil, fmt.Errorf("token artifact: %w", err)
	}
	simple, err := loadArtifact(simpleJSON)
	if err != nil {
		return nil, fmt.Errorf("simple artifact: %w", err)
	}
	return &contracts{token: token, simple: simple}, nil
}

// deployData returns the creation code of a contract with its ABI-encoded
// constructor arguments.
func (a *artifact) deployData(args ...any) ([]byte, error) {
	enc, err := a.ABI.Pack("", args...)
	if err != nil {
		return nil, err
	}
	return append(append([]byte{}, a.Bytecode...), enc...), nil
}

// mustPack encodes a call whose arguments the caller built; an error is a
// programming mistake.
func (a *artifact) mustPack(method string, args ...any) []byte {
	data, err := a.ABI.Pack(method, args...)
	if err != nil {
		panic(fmt.Sprintf("bench: pack %s: %v", method, err))
	}
	return data
}
