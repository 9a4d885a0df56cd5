package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/bench"
)

// runBench runs "hansa bench" and "hansa bench compare".
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	compare := len(args) > 0 && args[0] == "compare"
	if compare {
		args = args[1:]
	}
	name := "bench"
	if compare {
		name = "bench compare"
	}
	fs := newFlagSet(name, stderr)
	def := bench.DefaultConfig()
	var (
		rpcURL   = fs.String("rpc", "", "JSON-RPC URL (compare: comma-separated list)")
		wsURL    = fs.String("ws", "", "WebSocket URL for newHeads (compare: comma-separated list, one per --rpc); polls blocks without it")
		keyHex   = fs.String("key", "", "funder private key, hex (compare: one, or one per --rpc)")
		labels   = fs.String("label", "", "name of the endpoint in reports (compare: comma-separated list)")
		workload = fs.String("workload", def.Workload, "workload: "+strings.Join(bench.Workloads, ", "))
		rate     = fs.Float64("rate", def.Rate, "offered load, operations per second (open loop)")
		maxMode  = fs.Bool("max", false, "closed loop: keep --in-flight operations outstanding per sender")
		inFlight = fs.Int("in-flight", def.InFlight, "outstanding operations per sender with --max")
		maxTxs   = fs.Int("max-txs", def.MaxTxs, "pre-signed operations for --max (0: enough for 3,000/s)")
		duration = fs.Duration("duration", def.Duration, "measured duration")
		warmup   = fs.Duration("warmup", def.Warmup, "warm-up before the measurement (excluded)")
		accounts = fs.Int("accounts", def.Accounts, "sender accounts")
		workers  = fs.Int("workers", def.Workers, "sending goroutines")
		batch    = fs.Int("batch", def.BatchSize, "most transactions one JSON-RPC batch carries")
		chainID  = fs.Uint64("chain-id", 0, "chain id (default: ask eth_chainId)")
		gasPrice = fs.String("gas-price", "", "gas price (or EIP-1559 fee cap) in wei (default: ask the node)")
		timeout  = fs.Duration("receipt-timeout", def.ReceiptTimeout, "a transaction not included this long after sending counts as dropped")
		revert   = fs.Float64("revert-share", 0, "share (0..1) of erc20/hot-account/simple-transfer transactions built to revert (tests failure accounting)")
		out      = fs.String("out", "", "directory for result.json and report.html (compare: compare.json, compare.html)")
		rounds   = fs.Int("rounds", 3, "compare: rounds (each runs every endpoint once)")
		logLevel = fs.String("log-level", "info", "log level: debug, info, warn, error")
	)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: hansa %s --rpc URL [--ws URL] --key FUNDER_KEY --workload W [--rate R | --max] --duration D [flags]\n", name)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("bench: --log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("component", "bench")

	base := def
	base.Workload, base.Rate, base.Max, base.InFlight, base.MaxTxs = *workload, *rate, *maxMode, *inFlight, *maxTxs
	base.Duration, base.Warmup, base.Accounts, base.Workers, base.BatchSize = *duration, *warmup, *accounts, *workers, *batch
	base.ReceiptTimeout, base.RevertShare = *timeout, *revert
	if *chainID != 0 {
		base.ChainID = new(big.Int).SetUint64(*chainID)
	}
	if *gasPrice != "" {
		p, ok := new(big.Int).SetString(*gasPrice, 0)
		if !ok {
			return fmt.Errorf("bench: --gas-price %q is not a number", *gasPrice)
		}
		base.GasPrice = p
	}

	rpcs := splitList(*rpcURL)
	wss := splitList(*wsURL)
	keys := splitList(*keyHex)
	names := splitList(*labels)
	if len(rpcs) == 0 {
		return errors.New("bench: --rpc is required")
	}
	if !compare && len(rpcs) > 1 {
		return errors.New("bench: one --rpc URL (use \"hansa bench compare\" for several)")
	}
	if len(wss) > 0 && len(wss) != len(rpcs) {
		return errors.New("bench: give one --ws URL per --rpc URL")
	}
	if len(keys) != 1 && len(keys) != len(rpcs) {
		return errors.New("bench: give one --key, or one per --rpc URL")
	}
	if len(names) > 0 && len(names) != len(rpcs) {
		return errors.New("bench: give one --label per --rpc URL")
	}
	cfgs := make([]bench.Config, len(rpcs))
	for i, u := range rpcs {
		cfg := base
		cfg.RPC = u
		if len(wss) > 0 {
			cfg.WS = wss[i]
		}
		if len(names) > 0 {
			cfg.Label = names[i]
		}
		k := keys[0]
		if len(keys) > 1 {
			k = keys[i]
		}
		key, err := crypto.HexToECDSA(strings.TrimPrefix(k, "0x"))
		if err != nil {
			return fmt.Errorf("bench: --key: %w", err)
		}
		cfg.Key = key
		if err := cfg.Validate(); err != nil {
			return err
		}
		cfgs[i] = cfg
	}

	if compare {
		c, err := bench.Compare(ctx, cfgs, *rounds, log, stderr)
		if err != nil {
			return err
		}
		if err := bench.WriteCompareText(stdout, c); err != nil {
			return err
		}
		if *out != "" {
			return bench.WriteCompareDir(*out, c)
		}
		return nil
	}
	res, err := bench.Run(ctx, cfgs[0], log, stderr)
	if err != nil {
		return err
	}
	if err := bench.WriteText(stdout, res); err != nil {
		return err
	}
	if *out != "" {
		if err := bench.WriteDir(*out, res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s/result.json and %s/report.html\n", *out, *out)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
