package gateway

import (
	"fmt"
	"slices"
	"time"
)

// Sample is one poll of one upstream, plus the outcome of the calls
// forwarded to it since the previous poll.
type Sample struct {
	// OK is false when the poll failed (transport error, HTTP error, bad
	// answer); Err then says why.
	OK  bool
	Err string
	// ChainID, Head and Syncing are the upstream's answers to eth_chainId,
	// eth_blockNumber and eth_syncing.
	ChainID uint64
	Head    uint64
	Syncing bool
	// Latency is how long the poll took.
	Latency time.Duration
	// Calls and Failures count forwarded calls since the previous poll and
	// how many of them failed at the transport level.
	Calls, Failures int
}

// Health is the judged state of one upstream, carried from one evaluation
// to the next.
type Health struct {
	// Known is false until the first sample was judged; the first judgement
	// sets Healthy without hysteresis.
	Known   bool
	Healthy bool
	// Reason says why the last sample was bad ("" when it was good).
	Reason string
	// Head is the last head reported; HeadSince is when it last changed.
	Head      uint64
	HeadSince time.Time
	// Lag is how far Head is below the corroborated head.
	Lag uint64
	// Good and Bad count consecutive good and bad samples.
	Good, Bad int
}

// Transition is a change of an upstream's state reported by Evaluate.
type Transition struct {
	Index   int
	Healthy bool
	Reason  string
}

// Policy judges upstream health. It is pure: Evaluate turns the previous
// states and one sample per upstream into new states, with no clock or I/O
// of its own.
type Policy struct {
	ChainID       uint64
	MaxLag        uint64
	MaxAhead      uint64
	Corroboration int
	StallTimeout  time.Duration
	MaxLatency    time.Duration
	MaxErrorRate  float64
	FallAfter     int
	RiseAfter     int
}

// PolicyFromConfig builds the policy of a validated config.
func PolicyFromConfig(c *Config) Policy {
	h := c.Health
	return Policy{
		ChainID: c.ChainID, MaxLag: h.MaxLag, MaxAhead: h.MaxAhead, Corroboration: h.Corroboration,
		StallTimeout: h.StallTimeout.Std(), MaxLatency: h.MaxLatency.Std(), MaxErrorRate: h.MaxErrorRate,
		FallAfter: h.FallAfter, RiseAfter: h.RiseAfter,
	}
}

// Corroborate returns the highest value reported by at least k of the
// given reports (the k-th highest), or the lowest report when there are
// fewer than k. With k = 2, one upstream claiming a far-ahead head (or
// another chain's id) cannot set the reference on its own. ok is false when
// there are no reports.
func Corroborate(reports []uint64, k int) (v uint64, ok bool) {
	if len(reports) == 0 {
		return 0, false
	}
	s := slices.Clone(reports)
	slices.Sort(s)
	slices.Reverse(s)
	if k > len(s) {
		k = len(s)
	}
	return s[k-1], true
}

// Evaluate judges one round of samples (samples[i] belongs to prev[i]) at
// time now. It returns the new states, the corroborated head and chain id
// it measured against, and the state changes.
func (p Policy) Evaluate(prev []Health, samples []Sample, now time.Time) (next []Health, head, chainID uint64, changes []Transition) {
	// The reference chain id: configured, or corroborated among answers.
	chainID = p.ChainID
	if chainID == 0 {
		var ids []uint64
		for _, s := range samples {
			if s.OK {
				ids = append(ids, s.ChainID)
			}
		}
		chainID = majority(ids)
	}
	// The corroborated head, among answers on the right chain.
	var heads []uint64
	for _, s := range samples {
		if s.OK && s.ChainID == chainID && !s.Syncing {
			heads = append(heads, s.Head)
		}
	}
	head, _ = Corroborate(heads, p.Corroboration)

	next = make([]Health, len(prev))
	for i, h := range prev {
		s := samples[i]
		if s.OK && (s.Head != h.Head || h.HeadSince.IsZero()) {
			h.Head, h.HeadSince = s.Head, now
		}
		h.Lag = 0
		if s.OK && head > s.Head {
			h.Lag = head - s.Head
		}
		reason := p.judge(h, s, head, chainID, now)
		if reason == "" {
			h.Good, h.Bad = h.Good+1, 0
		} else {
			h.Good, h.Bad = 0, h.Bad+1
		}
		h.Reason = reason
		was, wasKnown := h.Healthy, h.Known
		switch {
		case !h.Known:
			h.Known, h.Healthy = true, reason == ""
		case h.Healthy && h.Bad >= p.FallAfter:
			h.Healthy = false
		case !h.Healthy && h.Good >= p.RiseAfter:
			h.Healthy = true
		}
		if !wasKnown || was != h.Healthy {
			changes = append(changes, Transition{Index: i, Healthy: h.Healthy, Reason: reason})
		}
		next[i] = h
	}
	return next, head, chainID, changes
}

// judge returns why sample s of an upstream in state h is bad, or "".
func (p Policy) judge(h Health, s Sample, head, chainID uint64, now time.Time) string {
	switch {
	case !s.OK:
		return "poll failed: " + s.Err
	case s.ChainID != chainID:
		return fmt.Sprintf("wrong chain id %d (want %d)", s.ChainID, chainID)
	case s.Syncing:
		return "syncing"
	case h.Lag > p.MaxLag:
		return fmt.Sprintf("lagging %d blocks behind corroborated head %d", h.Lag, head)
	case s.Head > head+p.MaxAhead:
		return fmt.Sprintf("head %d is %d blocks above corroborated head %d", s.Head, s.Head-head, head)
	case h.Lag > 0 && now.Sub(h.HeadSince) >= p.StallTimeout:
		return fmt.Sprintf("head stalled at %d for %v", s.Head, now.Sub(h.HeadSince).Round(time.Millisecond))
	case s.Latency > p.MaxLatency:
		return fmt.Sprintf("slow: poll took %v", s.Latency.Round(time.Millisecond))
	case s.Calls >= 10 && float64(s.Failures)/float64(s.Calls) > p.MaxErrorRate:
		return fmt.Sprintf("%d of %d calls failed", s.Failures, s.Calls)
	}
	return ""
}

// majority returns the most frequent value (the highest among equals), or
// 0 for no values.
func majority(vs []uint64) uint64 {
	count := map[uint64]int{}
	var best uint64
	for _, v := range vs {
		count[v]++
		if c, b := count[v], count[best]; c > b || (c == b && v > best) {
			best = v
		}
	}
	return best
}
