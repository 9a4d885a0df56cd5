package txpool

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
)

// The pool returns go-ethereum's own error values (core, core/txpool,
// core/txpool/legacypool), wrapped the way go-ethereum wraps them, so that
// errors.Is works for callers and the texts clients see match geth's.

// priceTooLowError is go-ethereum's "transaction gas price below minimum"
// error (txpool.ErrTxGasPriceTooLow, with geth's text) that also matches
// txpool.ErrUnderpriced, so callers may branch on either.
type priceTooLowError struct{ err error }

func (e priceTooLowError) Error() string { return e.err.Error() }

func (e priceTooLowError) Unwrap() []error { return []error{e.err, txpool.ErrUnderpriced} }

// classifyStateless adapts an error of txpool.ValidateTransaction.
func classifyStateless(err error) error {
	if errors.Is(err, txpool.ErrTxGasPriceTooLow) {
		return priceTooLowError{err}
	}
	return err
}

// errFeeCapTooLow mirrors the text geth's state transition returns for a fee
// cap below the base fee.
func errFeeCapTooLow(from common.Address, feeCap, baseFee *big.Int) error {
	return fmt.Errorf("%w: address %v, maxFeePerGas: %s, baseFee: %s", core.ErrFeeCapTooLow, from.Hex(), feeCap, baseFee)
}

// errNonceTooLow is geth's txpool text for a nonce the state has passed.
func errNonceTooLow(txNonce, stateNonce uint64) error {
	return fmt.Errorf("%w: next nonce %v, tx nonce %v", core.ErrNonceTooLow, stateNonce, txNonce)
}

// errInsufficientFunds returns geth's txpool text for a sender that cannot
// pay a transaction's worst-case cost (gas * fee cap + value) on top of its
// other pooled transactions (queued, the sum of their costs; prev, the cost
// of the transaction being replaced, or nil), or nil when it can.
func errInsufficientFunds(balance, cost, queued, prev *big.Int) error {
	if balance.Cmp(cost) < 0 {
		return fmt.Errorf("%w: balance %v, tx cost %v, overshot %v", core.ErrInsufficientFunds, balance, cost, new(big.Int).Sub(cost, balance))
	}
	if prev != nil {
		bump := new(big.Int).Sub(cost, prev)
		need := new(big.Int).Add(queued, bump)
		if balance.Cmp(need) < 0 {
			return fmt.Errorf("%w: balance %v, queued cost %v, tx bumped %v, overshot %v", core.ErrInsufficientFunds, balance, queued, bump, new(big.Int).Sub(need, balance))
		}
		return nil
	}
	need := new(big.Int).Add(queued, cost)
	if balance.Cmp(need) < 0 {
		return fmt.Errorf("%w: balance %v, queued cost %v, tx cost %v, overshot %v", core.ErrInsufficientFunds, balance, queued, cost, new(big.Int).Sub(need, balance))
	}
	return nil
}

// errAccountLimit is geth's text for a sender over its slot allowance.
func errAccountLimit(queued int) error {
	return fmt.Errorf("%w: pooled %d txs", txpool.ErrAccountLimitExceeded, queued)
}
