// Package bench measures the throughput and latency of any Ethereum JSON-RPC
// endpoint (Hansa, geth, anvil, Besu) with the workloads the field uses, and
// writes reports people can read: a text summary, JSON and a self-contained
// HTML page with SVG plots.
//
// Invariants the measurement keeps:
//   - Every transaction is signed before the measured run starts; nonces are
//     tracked locally per sender.
//   - Open-loop mode (a rate) sends on a fixed schedule that does not wait
//     for earlier sends or inclusions, and measures latency from the
//     intended send time, so a slow endpoint cannot hide its queueing
//     (no coordinated omission). Closed-loop mode (max) bounds the
//     transactions in flight per sender.
//   - A transaction counts as confirmed only when a block holding it was seen
//     (newHeads over WebSocket, or block polling) and its receipt has status
//     1. Send errors, reverts and transactions not included within the
//     receipt timeout are failures, never throughput.
//   - Every transaction resolves exactly once; transactions whose intended
//     send time falls in the warm-up are excluded from the statistics.
package bench

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"
)

// Workload names accepted by Config.Workload.
const (
	WorkloadTransfer       = "transfer"        // native value transfers between many accounts
	WorkloadERC20          = "erc20"           // ERC-20 transfers among many holders
	WorkloadHotAccount     = "hot-account"     // ERC-20: many senders pay one account, one account pays many
	WorkloadRead           = "read"            // eth_call, eth_getBalance, eth_getLogs, eth_getBlockByNumber
	WorkloadDeploy         = "deploy"          // contract creations
	WorkloadSimpleOpen     = "simple-open"     // Caliper simple: open
	WorkloadSimpleQuery    = "simple-query"    // Caliper simple: query (a read)
	WorkloadSimpleTransfer = "simple-transfer" // Caliper simple: transfer
)

// Workloads lists every workload name, in the order the help text shows them.
var Workloads = []string{
	WorkloadTransfer, WorkloadERC20, WorkloadHotAccount, WorkloadRead, WorkloadDeploy,
	WorkloadSimpleOpen, WorkloadSimpleQuery, WorkloadSimpleTransfer,
}

// Config is one benchmark run's settings.
type Config struct {
	// RPC is the JSON-RPC HTTP (or WebSocket) URL transactions are sent to.
	RPC string
	// WS is an optional WebSocket URL for the newHeads subscription; without
	// it blocks are polled over RPC.
	WS string
	// Key is the funder's private key: it pays for the sender accounts and
	// deploys the contracts.
	Key *ecdsa.PrivateKey
	// Workload is one of Workloads.
	Workload string
	// Rate is the offered load of the open-loop mode, in transactions (or
	// read calls) per second. Ignored when Max is set.
	Rate float64
	// Max selects the closed-loop mode: each sender keeps up to InFlight
	// transactions (or calls) outstanding.
	Max bool
	// InFlight bounds outstanding transactions per sender in Max mode.
	InFlight int
	// MaxTxs bounds the pre-signed transactions of a Max run; the run ends
	// early (and says so) when they are used up.
	MaxTxs int
	// Duration is the measured part of the run.
	Duration time.Duration
	// Warmup precedes Duration; what is sent in it is not measured.
	Warmup time.Duration
	// Accounts is the number of sender accounts.
	Accounts int
	// Workers is the number of goroutines sending requests.
	Workers int
	// BatchSize bounds how many due transactions one worker sends in one
	// JSON-RPC batch.
	BatchSize int
	// ChainID overrides eth_chainId when non-nil.
	ChainID *big.Int
	// GasPrice overrides the fee the node suggests when non-nil: a legacy gas
	// price, or the fee cap of EIP-1559 transactions on a base-fee chain.
	GasPrice *big.Int
	// ReceiptTimeout is how long a sent transaction may stay unincluded
	// before it counts as dropped.
	ReceiptTimeout time.Duration
	// PollInterval is the block polling period when WS is empty.
	PollInterval time.Duration
	// RevertShare is the share (0..1) of contract transactions built to
	// revert (an amount above the sender's balance), to check that failures
	// are counted. Only erc20, hot-account and simple-transfer honour it.
	RevertShare float64
	// Label names the run in reports; defaults to RPC.
	Label string
}

// DefaultConfig returns the defaults: 100 accounts, 10 s at 100 tx/s after
// 2 s of warm-up, 8 in flight per sender in Max mode.
func DefaultConfig() Config {
	return Config{
		Workload:       WorkloadTransfer,
		Rate:           100,
		InFlight:       8,
		MaxTxs:         0,
		Duration:       10 * time.Second,
		Warmup:         2 * time.Second,
		Accounts:       100,
		Workers:        8,
		BatchSize:      100,
		ReceiptTimeout: 30 * time.Second,
		PollInterval:   20 * time.Millisecond,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.RPC == "":
		return errors.New("bench: an RPC URL is required")
	case c.Key == nil:
		return errors.New("bench: a funder key is required")
	case !slices.Contains(Workloads, c.Workload):
		return fmt.Errorf("bench: unknown workload %q (want one of %s)", c.Workload, strings.Join(Workloads, ", "))
	case !c.Max && !(c.Rate > 0):
		return errors.New("bench: the rate must be positive (or use max mode)")
	case c.Max && c.InFlight < 1:
		return errors.New("bench: in-flight per sender must be at least 1")
	case c.MaxTxs < 0:
		return errors.New("bench: max-txs must not be negative")
	case c.Duration <= 0:
		return errors.New("bench: the duration must be positive")
	case c.Warmup < 0:
		return errors.New("bench: the warm-up must not be negative")
	case c.Accounts < 1:
		return errors.New("bench: at least one account is needed")
	case c.Workers < 1:
		return errors.New("bench: at least one worker is needed")
	case c.BatchSize < 1:
		return errors.New("bench: the batch size must be at least 1")
	case c.ReceiptTimeout <= 0:
		return errors.New("bench: the receipt timeout must be positive")
	case c.PollInterval <= 0:
		return errors.New("bench: the poll interval must be positive")
	case c.RevertShare < 0 || c.RevertShare > 1:
		return errors.New("bench: the revert share must be between 0 and 1")
	case c.ChainID != nil && c.ChainID.Sign() <= 0:
		return errors.New("bench: the chain id must be positive")
	case c.GasPrice != nil && c.GasPrice.Sign() < 0:
		return errors.New("bench: the gas price must not be negative")
	}
	return nil
}

// total returns the whole run's length, warm-up included.
func (c *Config) total() time.Duration { return c.Warmup + c.Duration }

// planned returns the number of operations to pre-build.
func (c *Config) planned() int {
	if c.Max {
		if c.MaxTxs > 0 {
			return c.MaxTxs
		}
		// Enough for 10,000 tx/s over the whole run, at least 100 per sender.
		return max(int(10000*c.total().Seconds()), 100*c.Accounts)
	}
	return int(c.Rate*c.total().Seconds() + 0.5)
}

// isRead reports whether the workload sends calls rather than transactions.
func isRead(w string) bool { return w == WorkloadRead || w == WorkloadSimpleQuery }
