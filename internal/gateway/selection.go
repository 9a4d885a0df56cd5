package gateway

import (
	"errors"
	"time"
)

// ErrNoUpstream means no upstream may serve a call: none is healthy (and
// caught up to the block the call needs) and there is no fallback.
var ErrNoUpstream = errors.New("no healthy upstream available")

// Candidate is what selection knows about one upstream at one moment.
type Candidate struct {
	Role     Role
	Healthy  bool
	Head     uint64
	InFlight int64
	// Latency is a moving average of recent call latencies, in nanoseconds.
	Latency int64
	// Excluded candidates are never picked, not even as a last resort (a
	// cluster member that is catching up, down, leaving or gone).
	Excluded bool
}

// Pick chooses the upstream for one call. It is pure: cands is a snapshot,
// minHead is the block the call needs (0: none), tried marks upstreams
// already tried for this call, and seq (any counter) is the randomness that
// spreads load. It prefers healthy primaries whose head is at least
// minHead, by fewest in-flight calls and then weighted by inverse latency
// (see best); when
// there is none, healthy fallbacks by the same rule; then any fallback not
// yet tried (the last resort, like a trusted leader). Excluded candidates
// are never chosen. fallback reports that the choice is a fallback.
func Pick(cands []Candidate, minHead uint64, tried []bool, seq uint64) (idx int, fallback bool, err error) {
	ok := func(i int, role Role, needHealthy bool) bool {
		c := cands[i]
		if c.Excluded || c.Role != role || (tried != nil && tried[i]) {
			return false
		}
		return !needHealthy || (c.Healthy && c.Head >= minHead)
	}
	if i := best(cands, seq, func(i int) bool { return ok(i, RolePrimary, true) }); i >= 0 {
		return i, false, nil
	}
	if i := best(cands, seq, func(i int) bool { return ok(i, RoleFallback, true) }); i >= 0 {
		return i, true, nil
	}
	if i := best(cands, seq, func(i int) bool { return ok(i, RoleFallback, false) }); i >= 0 {
		return i, true, nil
	}
	return -1, false, ErrNoUpstream
}

// best returns an eligible candidate, or -1 if none is: among those with
// the fewest in-flight calls, one drawn with probability proportional to
// 1/(latency + 1ms) (an upstream without a latency figure counts as the
// fastest),
// using seq as the source of randomness. Weighting instead of always taking
// the fastest spreads load and keeps every upstream's latency figure fresh.
func best(cands []Candidate, seq uint64, eligible func(int) bool) int {
	minIn, fastest, n := int64(-1), int64(0), 0
	for i, c := range cands {
		if !eligible(i) {
			continue
		}
		if minIn < 0 || c.InFlight < minIn {
			minIn = c.InFlight
		}
		if c.Latency > 0 && (fastest == 0 || c.Latency < fastest) {
			fastest = c.Latency
		}
		n++
	}
	if n == 0 {
		return -1
	}
	weight := func(c Candidate) float64 {
		return 1 / float64(max(c.Latency, fastest)+latencyFloor)
	}
	var sum float64
	for i, c := range cands {
		if eligible(i) && c.InFlight == minIn {
			sum += weight(c)
		}
	}
	r := float64(splitmix64(seq)>>11) / (1 << 53) * sum
	last := -1
	for i, c := range cands {
		if !eligible(i) || c.InFlight != minIn {
			continue
		}
		last = i
		if r -= weight(c); r < 0 {
			return i
		}
	}
	return last // rounding
}

// latencyFloor is added to every latency before weighting, so differences
// well under a millisecond (noise on a LAN) hardly matter.
const latencyFloor = int64(time.Millisecond)

// splitmix64 scrambles a counter into a well-spread 64-bit value.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// AnyHealthyPrimary reports whether at least one primary that is not
// excluded is healthy: when none is, traffic goes to fallbacks.
func AnyHealthyPrimary(cands []Candidate) bool {
	for _, c := range cands {
		if c.Role == RolePrimary && c.Healthy && !c.Excluded {
			return true
		}
	}
	return false
}
