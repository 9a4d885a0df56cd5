package txpool

import (
	"errors"

	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/txpool"
	"github.com/ethereum/go-ethereum/core/txpool/legacypool"
	"github.com/prometheus/client_golang/prometheus"
)

// Rejection reasons, the only values of the reason label of
// hansa_txpool_rejected_total.
const (
	reasonKnown              = "known"
	reasonType               = "type"
	reasonOversized          = "oversized"
	reasonInvalidSender      = "invalid_sender"
	reasonGas                = "gas"
	reasonUnderpriced        = "underpriced"
	reasonNonceTooLow        = "nonce_too_low"
	reasonInsufficientFunds  = "insufficient_funds"
	reasonReplaceUnderpriced = "replace_underpriced"
	reasonFull               = "full"
	reasonInvalid            = "invalid"
)

// metrics are the pool's Prometheus instruments.
type metrics struct {
	// pending is the number of executable transactions (hansa_txpool_pending).
	pending prometheus.Gauge
	// queued is the number of nonce-gapped transactions (hansa_txpool_queued).
	queued prometheus.Gauge
	// admitted counts transactions Add accepted (hansa_txpool_admitted_total).
	admitted prometheus.Counter
	// rejected counts transactions Add refused, by reason
	// (hansa_txpool_rejected_total{reason}).
	rejected *prometheus.CounterVec
	// evicted counts transactions removed without being included in a block:
	// to make room, unaffordable or expired at Reset, over the queue limit
	// (hansa_txpool_evicted_total).
	evicted prometheus.Counter
}

// newMetrics builds the instruments and registers them with reg; a nil reg
// registers nothing (tests).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "hansa", Subsystem: "txpool", Name: "pending",
			Help: "Executable transactions in the pool.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "hansa", Subsystem: "txpool", Name: "queued",
			Help: "Non-executable (nonce-gapped) transactions in the pool.",
		}),
		admitted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hansa", Subsystem: "txpool", Name: "admitted_total",
			Help: "Transactions admitted to the pool.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "hansa", Subsystem: "txpool", Name: "rejected_total",
			Help: "Transactions refused by the pool, by reason.",
		}, []string{"reason"}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "hansa", Subsystem: "txpool", Name: "evicted_total",
			Help: "Transactions removed from the pool without being included in a block.",
		}),
	}
	for _, r := range []string{
		reasonKnown, reasonType, reasonOversized, reasonInvalidSender, reasonGas, reasonUnderpriced,
		reasonNonceTooLow, reasonInsufficientFunds, reasonReplaceUnderpriced, reasonFull, reasonInvalid,
	} {
		m.rejected.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.pending, m.queued, m.admitted, m.rejected, m.evicted)
	}
	return m
}

// rejectReason maps an admission error to its label value.
func rejectReason(err error) string {
	switch {
	case errors.Is(err, txpool.ErrAlreadyKnown):
		return reasonKnown
	case errors.Is(err, core.ErrTxTypeNotSupported):
		return reasonType
	case errors.Is(err, txpool.ErrOversizedData):
		return reasonOversized
	case errors.Is(err, txpool.ErrInvalidSender):
		return reasonInvalidSender
	case errors.Is(err, txpool.ErrGasLimit), errors.Is(err, core.ErrIntrinsicGas),
		errors.Is(err, core.ErrFloorDataGas), errors.Is(err, core.ErrGasLimitTooHigh):
		return reasonGas
	case errors.Is(err, txpool.ErrUnderpriced), errors.Is(err, core.ErrFeeCapTooLow):
		return reasonUnderpriced
	case errors.Is(err, core.ErrNonceTooLow):
		return reasonNonceTooLow
	case errors.Is(err, core.ErrInsufficientFunds):
		return reasonInsufficientFunds
	case errors.Is(err, txpool.ErrReplaceUnderpriced):
		return reasonReplaceUnderpriced
	case errors.Is(err, legacypool.ErrTxPoolOverflow), errors.Is(err, txpool.ErrAccountLimitExceeded):
		return reasonFull
	default:
		return reasonInvalid
	}
}
