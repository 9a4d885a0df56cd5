package main

import (
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"

	"github.com/hansa-chain/hansa/internal/chain"
)

func runGenesis(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("genesis", stderr)
	var (
		out      = fs.String("out", "", "write the genesis to this file (required)")
		chainID  = fs.Uint64("chain-id", chain.DefaultChainID, "chain id (EIP-155)")
		gasLimit = fs.Uint64("gas-limit", chain.DefaultGasLimit, "block gas limit")
		baseFee  = fs.String("base-fee", "", "enable EIP-1559 base-fee mode with this initial base fee in wei (default: free gas, price 0)")
		minPrice = fs.String("min-gas-price", "0", "lowest gas price / tip the txpool admits, in wei")
		interval = fs.Duration("block-interval", chain.DefaultMinInterval, "minimum time between blocks")
		maxTxs   = fs.Int("block-max-txs", chain.DefaultMaxBlockTxs, "most transactions in a block")
		maxGas   = fs.Uint64("block-max-gas", 0, "most gas a block may use (0 = the gas limit)")
		maxBytes = fs.Int("block-max-bytes", chain.DefaultMaxBlockSize, "most transaction bytes in a block")
		fund     multiFlag
		members  multiFlag
	)
	fs.Var(&fund, "fund", "ADDRESS=WEI: pre-fund an account (repeatable; WEI may end in 'ether')")
	fs.Var(&members, "member", "ID=ADDRESS[=NAME]: an initial member, by its node key address (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("genesis: --out is required")
	}
	g := chain.DefaultGenesis()
	g.ChainID, g.GasLimit = *chainID, *gasLimit
	g.Blocks = chain.BlockParams{MinInterval: chain.Duration(*interval), MaxTxs: *maxTxs, MaxGas: *maxGas, MaxBytes: *maxBytes}
	if *baseFee != "" {
		v, err := parseWei(*baseFee)
		if err != nil {
			return fmt.Errorf("--base-fee: %w", err)
		}
		g.BaseFee = chain.NewBigInt(v)
	}
	mp, err := parseWei(*minPrice)
	if err != nil {
		return fmt.Errorf("--min-gas-price: %w", err)
	}
	g.MinGasPrice = chain.NewBigInt(mp)
	for _, f := range fund {
		addr, amount, ok := strings.Cut(f, "=")
		if !ok || !common.IsHexAddress(addr) {
			return fmt.Errorf("--fund %q: want ADDRESS=WEI", f)
		}
		v, err := parseWei(amount)
		if err != nil {
			return fmt.Errorf("--fund %q: %w", f, err)
		}
		g.Alloc[common.HexToAddress(addr)] = chain.Account{Balance: chain.NewBigInt(v)}
	}
	for _, m := range members {
		parts := strings.SplitN(m, "=", 3)
		if len(parts) < 2 || !common.IsHexAddress(parts[1]) {
			return fmt.Errorf("--member %q: want ID=ADDRESS[=NAME]", m)
		}
		id, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil {
			return fmt.Errorf("--member %q: %w", m, err)
		}
		name := fmt.Sprintf("node%d", id)
		if len(parts) == 3 {
			name = parts[2]
		}
		g.Members = append(g.Members, chain.Member{ID: id, Name: name, Address: common.HexToAddress(parts[1])})
	}
	if len(g.Members) == 0 {
		return errors.New("genesis: at least one --member is required")
	}
	if err := g.Validate(); err != nil {
		return err
	}
	if err := chain.WriteGenesis(*out, g); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "genesis written to %s (chain id %d, %d members, %d funded accounts)\n", *out, g.ChainID, len(g.Members), len(g.Alloc))
	return nil
}

// parseWei parses a decimal or 0x amount of wei, or "N ether"/"Nether".
func parseWei(s string) (*big.Int, error) {
	s = strings.TrimSpace(s)
	mul := big.NewInt(1)
	if v, ok := strings.CutSuffix(s, "ether"); ok {
		s, mul = strings.TrimSpace(v), big.NewInt(1e18)
	}
	v, ok := new(big.Int).SetString(s, 0)
	if !ok || v.Sign() < 0 {
		return nil, fmt.Errorf("invalid amount %q", s)
	}
	return v.Mul(v, mul), nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }
