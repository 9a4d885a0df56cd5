package txpool

import (
	"errors"
	"math/big"
	"time"
)

// Config holds the pool's limits and admission policy. Limits count
// transactions, not bytes; MaxTxBytes bounds a single transaction.
type Config struct {
	// MaxTxBytes bounds the encoded size of one transaction (geth: 128 KiB).
	MaxTxBytes uint64 `toml:"max_tx_bytes"`
	// MaxPending bounds the executable transactions of all senders together.
	// Promotions of queued transactions (a gap being filled, a new block) may
	// exceed it by at most the promoted queued transactions, so that
	// MaxPending+MaxQueued always bounds the whole pool.
	MaxPending int `toml:"max_pending"`
	// MaxQueued bounds the non-executable (nonce-gapped) transactions of all
	// senders together.
	MaxQueued int `toml:"max_queued"`
	// MaxQueuedPerAccount bounds the non-executable transactions of one sender.
	MaxQueuedPerAccount int `toml:"max_queued_per_account"`
	// PriceBump is the minimum increase, in percent, of both the fee cap and
	// the tip that a transaction needs to replace another with the same
	// sender and nonce.
	PriceBump uint64 `toml:"price_bump"`
	// QueuedLifetime is how long a non-executable transaction may wait in the
	// pool; Reset drops older ones.
	QueuedLifetime time.Duration `toml:"queued_lifetime"`
	// MinGasPrice is the lowest gas price (legacy) or tip (EIP-1559) admitted.
	// Nil or zero admits free (price 0) transactions.
	MinGasPrice *big.Int `toml:"min_gas_price"`
}

// DefaultConfig returns the defaults: geth's size limit and price bump,
// generous slot limits for a private chain, and free gas admitted.
func DefaultConfig() Config {
	return Config{
		MaxTxBytes:          128 * 1024,
		MaxPending:          50_000,
		MaxQueued:           10_000,
		MaxQueuedPerAccount: 64,
		PriceBump:           10,
		QueuedLifetime:      3 * time.Hour,
		MinGasPrice:         new(big.Int),
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.MaxTxBytes == 0:
		return errors.New("txpool: max_tx_bytes must be positive")
	case c.MaxPending <= 0:
		return errors.New("txpool: max_pending must be positive")
	case c.MaxQueued < 0:
		return errors.New("txpool: max_queued must not be negative")
	case c.MaxQueuedPerAccount < 0:
		return errors.New("txpool: max_queued_per_account must not be negative")
	case c.QueuedLifetime <= 0:
		return errors.New("txpool: queued_lifetime must be positive")
	case c.MinGasPrice != nil && c.MinGasPrice.Sign() < 0:
		return errors.New("txpool: min_gas_price must not be negative")
	}
	return nil
}
