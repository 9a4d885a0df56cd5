package node

import "github.com/prometheus/client_golang/prometheus"

// metrics are the chain's Prometheus metrics.
type metrics struct {
	head             prometheus.Gauge     // hansa_chain_head_block
	blocks           prometheus.Counter   // hansa_chain_blocks_total
	txs              prometheus.Counter   // hansa_chain_transactions_total
	skippedTxs       prometheus.Counter   // hansa_chain_skipped_transactions_total
	skippedProposals prometheus.Counter   // hansa_chain_skipped_proposals_total
	diverged         prometheus.Gauge     // hansa_chain_diverged
	blockTxs         prometheus.Histogram // hansa_chain_block_transactions
	buildSeconds     prometheus.Histogram // hansa_chain_block_build_seconds
	executeSeconds   prometheus.Histogram // hansa_chain_block_execute_seconds
	commitSeconds    prometheus.Histogram // hansa_chain_block_commit_seconds
}

func newMetrics(reg prometheus.Registerer) *metrics {
	durations := prometheus.ExponentialBuckets(0.0001, 2, 16)
	m := &metrics{
		head: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_chain_head_block",
			Help: "Number of the latest committed block."}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_chain_blocks_total",
			Help: "Blocks committed since start."}),
		txs: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_chain_transactions_total",
			Help: "Transactions included in committed blocks since start."}),
		skippedTxs: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_chain_skipped_transactions_total",
			Help: "Proposed transactions left out of their block because they were invalid against the state."}),
		skippedProposals: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_chain_skipped_proposals_total",
			Help: "Committed proposals that produced no block (stale, undecodable or out of order)."}),
		diverged: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_chain_diverged",
			Help: "1 when this node's chain diverged from the proposer's and it stopped applying."}),
		blockTxs: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_chain_block_transactions",
			Help: "Transactions per committed block.", Buckets: prometheus.ExponentialBuckets(1, 2, 15)}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_chain_block_build_seconds",
			Help: "Time to select transactions and encode a proposal.", Buckets: durations}),
		executeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_chain_block_execute_seconds",
			Help: "Time to execute a committed proposal.", Buckets: durations}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_chain_block_commit_seconds",
			Help: "Time to write and sync a block, its receipts, indexes and state.", Buckets: durations}),
	}
	if reg != nil {
		reg.MustRegister(m.head, m.blocks, m.txs, m.skippedTxs, m.skippedProposals, m.diverged,
			m.blockTxs, m.buildSeconds, m.executeSeconds, m.commitSeconds)
	}
	return m
}
