package raft

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	term, commit      prometheus.Gauge
	leaderChanges     prometheus.Counter
	proposals         prometheus.Counter
	commitSeconds     prometheus.Histogram
	lag               *prometheus.GaugeVec
	snapshotsSent     prometheus.Counter
	snapshotsReceived prometheus.Counter
	snapshotsTaken    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		term:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_raft_term", Help: "Current Raft term."}),
		commit:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_raft_commit_index", Help: "Highest committed Raft index."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_raft_leader_changes_total", Help: "Leader changes seen by this member (including losing a leader)."}),
		proposals:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_raft_proposals_total", Help: "Proposals this member appended as leader."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hansa_raft_proposal_commit_seconds", Help: "Time from a leader appending an entry to its commit.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
		lag:               prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hansa_raft_peer_lag_entries", Help: "On the leader: entries each member is behind the leader's log."}, []string{"peer"}),
		snapshotsSent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_raft_snapshots_sent_total", Help: "Snapshots sent to lagging members."}),
		snapshotsReceived: prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_raft_snapshots_received_total", Help: "Snapshots received from the leader."}),
		snapshotsTaken:    prometheus.NewCounter(prometheus.CounterOpts{Name: "hansa_raft_snapshots_taken_total", Help: "Snapshots taken (the log compacted behind them)."}),
	}
	if reg != nil {
		reg.MustRegister(m.term, m.commit, m.leaderChanges, m.proposals, m.commitSeconds, m.lag, m.snapshotsSent, m.snapshotsReceived, m.snapshotsTaken)
	}
	return m
}
