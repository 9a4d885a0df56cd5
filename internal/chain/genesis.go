package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"os"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// Defaults for a new genesis.
const (
	DefaultChainID      = 1337
	DefaultGasLimit     = 60_000_000
	DefaultMinInterval  = 50 * time.Millisecond
	DefaultMaxBlockTxs  = 10_000
	DefaultMaxBlockSize = 8 << 20 // below Osaka's 10 MiB RLP block cap (EIP-7934)
)

// Genesis is the content of genesis.json: everything every member must agree
// on before block 0. Numbers that can exceed 2^53 are decimal or 0x-hex strings.
type Genesis struct {
	ChainID   uint64 `json:"chainId"`
	Timestamp uint64 `json:"timestamp"`
	GasLimit  uint64 `json:"gasLimit"`
	// BaseFee, when set, enables EIP-1559 base-fee mode starting at this fee
	// (wei). When nil the chain runs with free gas: the base fee is 0 in every
	// block and transactions may pay a gas price of 0.
	BaseFee *BigInt `json:"baseFee,omitempty"`
	// MinGasPrice is the lowest gas price (legacy) or tip (1559) the txpool
	// admits. 0 by default.
	MinGasPrice *BigInt `json:"minGasPrice,omitempty"`
	// ExtraData is carried in block 0's header.
	ExtraData hexutil.Bytes              `json:"extraData,omitempty"`
	Blocks    BlockParams                `json:"blocks"`
	Members   []Member                   `json:"members"`
	Alloc     map[common.Address]Account `json:"alloc"`
}

// BlockParams are the block-cutting rules: a block is cut when transactions
// are pending and MinInterval has passed since the previous one, or at once
// when the pending transactions fill a block (MaxTxs, MaxGas or MaxBytes).
type BlockParams struct {
	MinInterval Duration `json:"minInterval"`
	MaxTxs      int      `json:"maxTxs"`
	MaxGas      uint64   `json:"maxGas"` // 0 means the block gas limit
	MaxBytes    int      `json:"maxBytes"`
}

// Member is one initial member of the cluster.
type Member struct {
	ID      uint64         `json:"id"`
	Name    string         `json:"name"`
	Address common.Address `json:"address"` // the node key's address
}

// Account is a pre-funded account, optionally with code and storage.
type Account struct {
	Balance *BigInt                     `json:"balance"`
	Nonce   uint64                      `json:"nonce,omitempty"`
	Code    hexutil.Bytes               `json:"code,omitempty"`
	Storage map[common.Hash]common.Hash `json:"storage,omitempty"`
}

// DefaultGenesis returns a genesis with default parameters, no members and no
// allocations.
func DefaultGenesis() *Genesis {
	return &Genesis{
		ChainID:  DefaultChainID,
		GasLimit: DefaultGasLimit,
		Blocks: BlockParams{
			MinInterval: Duration(DefaultMinInterval),
			MaxTxs:      DefaultMaxBlockTxs,
			MaxBytes:    DefaultMaxBlockSize,
		},
		Alloc: map[common.Address]Account{},
	}
}

// Validate reports the first problem that would make g unusable.
func (g *Genesis) Validate() error {
	switch {
	case g.ChainID == 0:
		return errors.New("genesis: chainId must be positive")
	case g.GasLimit < params.MinGasLimit:
		return fmt.Errorf("genesis: gasLimit %d below the minimum %d", g.GasLimit, params.MinGasLimit)
	case g.Blocks.MinInterval < 0:
		return errors.New("genesis: blocks.minInterval must not be negative")
	case g.Blocks.MaxTxs <= 0:
		return errors.New("genesis: blocks.maxTxs must be positive")
	case g.Blocks.MaxBytes < 128<<10:
		return errors.New("genesis: blocks.maxBytes must be at least 131072 (one maximum-size transaction)")
	case g.Blocks.MaxGas > g.GasLimit:
		return fmt.Errorf("genesis: blocks.maxGas %d above gasLimit %d", g.Blocks.MaxGas, g.GasLimit)
	case g.BaseFee != nil && g.BaseFee.Big().Sign() < 0:
		return errors.New("genesis: baseFee must not be negative")
	case g.MinGasPrice != nil && g.MinGasPrice.Big().Sign() < 0:
		return errors.New("genesis: minGasPrice must not be negative")
	case len(g.ExtraData) > 32:
		return errors.New("genesis: extraData longer than 32 bytes")
	}
	ids := map[uint64]bool{}
	addrs := map[common.Address]bool{}
	for _, m := range g.Members {
		if m.ID == 0 {
			return fmt.Errorf("genesis: member %q has id 0; ids start at 1", m.Name)
		}
		if ids[m.ID] {
			return fmt.Errorf("genesis: member id %d appears twice", m.ID)
		}
		if addrs[m.Address] {
			return fmt.Errorf("genesis: member address %s appears twice", m.Address)
		}
		ids[m.ID], addrs[m.Address] = true, true
	}
	for addr, acc := range g.Alloc {
		if acc.Balance == nil {
			return fmt.Errorf("genesis: alloc %s has no balance", addr)
		}
		if acc.Balance.Big().Sign() < 0 {
			return fmt.Errorf("genesis: alloc %s has a negative balance", addr)
		}
	}
	return nil
}

// FreeGas reports whether the chain runs with a constant base fee of 0.
func (g *Genesis) FreeGas() bool { return g.BaseFee == nil }

// MaxBlockGas is the gas a block may use: Blocks.MaxGas or the gas limit.
func (g *Genesis) MaxBlockGas() uint64 {
	if g.Blocks.MaxGas == 0 {
		return g.GasLimit
	}
	return g.Blocks.MaxGas
}

// EthereumConfig returns the chain's go-ethereum configuration.
func (g *Genesis) EthereumConfig() *params.ChainConfig { return EthereumConfig(g.ChainID) }

// CoreGenesis converts g to go-ethereum's genesis, adding the system contracts
// the active forks call into (EIP-4788, 2935, 7002, 7251).
func (g *Genesis) CoreGenesis() *core.Genesis {
	alloc := types.GenesisAlloc{}
	maps.Copy(alloc, core.SystemContractAllocs())
	for addr, acc := range g.Alloc {
		alloc[addr] = types.Account{
			Balance: new(big.Int).Set(acc.Balance.Big()),
			Nonce:   acc.Nonce,
			Code:    acc.Code,
			Storage: acc.Storage,
		}
	}
	baseFee := big.NewInt(0)
	if g.BaseFee != nil {
		baseFee = new(big.Int).Set(g.BaseFee.Big())
	}
	return &core.Genesis{
		Config:     g.EthereumConfig(),
		Timestamp:  g.Timestamp,
		ExtraData:  g.ExtraData,
		GasLimit:   g.GasLimit,
		Difficulty: big.NewInt(0),
		BaseFee:    baseFee,
		Alloc:      alloc,
	}
}

// ReadGenesis loads and validates a genesis file.
func ReadGenesis(path string) (*Genesis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	g, err := ParseGenesis(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

// ParseGenesis decodes and validates genesis JSON.
func ParseGenesis(data []byte) (*Genesis, error) {
	g := new(Genesis)
	if err := json.Unmarshal(data, g); err != nil {
		return nil, fmt.Errorf("parse genesis: %w", err)
	}
	if g.Alloc == nil {
		g.Alloc = map[common.Address]Account{}
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// WriteGenesis writes g as indented JSON.
func WriteGenesis(path string, g *Genesis) error {
	data, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// BigInt is a big.Int that reads a decimal or 0x-hex JSON string (or a plain
// JSON number) and writes a decimal string.
type BigInt big.Int

// NewBigInt wraps a copy of v.
func NewBigInt(v *big.Int) *BigInt { return (*BigInt)(new(big.Int).Set(v)) }

// Big returns the value as a *big.Int.
func (b *BigInt) Big() *big.Int { return (*big.Int)(b) }

// MarshalJSON implements json.Marshaler.
func (b *BigInt) MarshalJSON() ([]byte, error) { return json.Marshal(b.Big().String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (b *BigInt) UnmarshalJSON(data []byte) error {
	var s string
	if len(data) > 0 && data[0] != '"' {
		s = string(data)
	} else if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	v, ok := new(big.Int).SetString(s, 0)
	if !ok {
		return fmt.Errorf("invalid integer %q", s)
	}
	*b = BigInt(*v)
	return nil
}

// Duration is a time.Duration written as a Go duration string ("50ms").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("duration must be a string like \"50ms\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalText implements encoding.TextMarshaler (used by TOML).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (used by TOML).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
