package rpc

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config holds the JSON-RPC limits and switches. Every limit, when hit, is
// answered with a precise JSON-RPC error; none of them stops the node.
type Config struct {
	// Namespaces served on the public listener. "debug" is off by default.
	Namespaces []string `toml:"namespaces"`
	// MaxRequestBytes bounds an HTTP request body or WebSocket message.
	MaxRequestBytes int `toml:"max_request_bytes"`
	// MaxBatchItems bounds the length of a JSON-RPC batch.
	MaxBatchItems int `toml:"max_batch_items"`
	// MaxResponseBytes bounds the size of one response (or a whole batch's).
	MaxResponseBytes int `toml:"max_response_bytes"`
	// CallTimeout bounds one request's handling time.
	CallTimeout time.Duration `toml:"call_timeout"`
	// GasCap bounds the gas of eth_call, eth_estimateGas, eth_createAccessList
	// and debug_traceCall.
	GasCap uint64 `toml:"gas_cap"`
	// EVMTimeout bounds the EVM time of one eth_call or eth_estimateGas.
	EVMTimeout time.Duration `toml:"evm_timeout"`
	// LogsMaxBlockRange bounds to-from+1 of eth_getLogs and log filters.
	LogsMaxBlockRange uint64 `toml:"logs_max_block_range"`
	// LogsMaxResults bounds the number of logs one eth_getLogs returns.
	LogsMaxResults int `toml:"logs_max_results"`
	// MaxFilters bounds the installed filters (eth_newFilter and friends).
	MaxFilters int `toml:"max_filters"`
	// FilterTimeout uninstalls a filter not polled for this long.
	FilterTimeout time.Duration `toml:"filter_timeout"`
	// MaxSubscriptions bounds the live eth_subscribe subscriptions.
	MaxSubscriptions int `toml:"max_subscriptions"`
	// AllowUnprotectedTxs admits legacy transactions without EIP-155 replay
	// protection (needed by some deterministic-deployment tools). Off by
	// default, as in go-ethereum.
	AllowUnprotectedTxs bool `toml:"allow_unprotected_txs"`
}

// KnownNamespaces are the namespaces this package can serve.
var KnownNamespaces = []string{"eth", "net", "web3", "txpool", "debug"}

// DefaultConfig returns the defaults: geth-like limits, debug off.
func DefaultConfig() Config {
	return Config{
		Namespaces:        []string{"eth", "net", "web3", "txpool"},
		MaxRequestBytes:   5 << 20,
		MaxBatchItems:     1000,
		MaxResponseBytes:  25 << 20,
		CallTimeout:       30 * time.Second,
		GasCap:            50_000_000,
		EVMTimeout:        5 * time.Second,
		LogsMaxBlockRange: 10_000,
		LogsMaxResults:    10_000,
		MaxFilters:        1000,
		FilterTimeout:     5 * time.Minute,
		MaxSubscriptions:  10_000,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	for _, ns := range c.Namespaces {
		if !slices.Contains(KnownNamespaces, ns) {
			return fmt.Errorf("rpc: unknown namespace %q (known: %v)", ns, KnownNamespaces)
		}
	}
	switch {
	case c.MaxRequestBytes <= 0:
		return errors.New("rpc: max_request_bytes must be positive")
	case c.MaxBatchItems <= 0:
		return errors.New("rpc: max_batch_items must be positive")
	case c.MaxResponseBytes <= 0:
		return errors.New("rpc: max_response_bytes must be positive")
	case c.CallTimeout <= 0:
		return errors.New("rpc: call_timeout must be positive")
	case c.GasCap == 0:
		return errors.New("rpc: gas_cap must be positive")
	case c.EVMTimeout <= 0:
		return errors.New("rpc: evm_timeout must be positive")
	case c.LogsMaxBlockRange == 0:
		return errors.New("rpc: logs_max_block_range must be positive")
	case c.LogsMaxResults <= 0:
		return errors.New("rpc: logs_max_results must be positive")
	case c.MaxFilters <= 0:
		return errors.New("rpc: max_filters must be positive")
	case c.FilterTimeout <= 0:
		return errors.New("rpc: filter_timeout must be positive")
	case c.MaxSubscriptions <= 0:
		return errors.New("rpc: max_subscriptions must be positive")
	}
	return nil
}

// Enabled reports whether namespace ns is served.
func (c Config) Enabled(ns string) bool { return slices.Contains(c.Namespaces, ns) }
