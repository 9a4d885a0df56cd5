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

// errNonceTooLow mirrors geth's state transition text.
func errNonceTooLow(from common.Address, txNonce, stateNonce uint64) error {
	return fmt.Errorf("%w: address %v, tx: %d state: %d", core.ErrNonceTooLow, from.Hex(), txNonce, stateNonce)
}

// errInsufficientFunds mirrors geth's state transition text; want is the
// worst-case cost (gas * fee cap + value) of this transaction plus that of
// the sender's other pooled transactions.
func errInsufficientFunds(from common.Address, have, want *big.Int) error {
	return fmt.Errorf("%w: address %v have %v want %v", core.ErrInsufficientFunds, from.Hex(), have, want)
}

// errAccountLimit is geth's text for a sender over its slot allowance.
func errAccountLimit(queued int) error {
	return fmt.Errorf("%w: pooled %d txs", txpool.ErrAccountLimitExceeded, queued)
}
