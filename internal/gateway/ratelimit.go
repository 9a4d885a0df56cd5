package gateway

import (
	"math"
	"sync"
	"time"
)

// bucket is a token bucket: it refills at rate tokens per second up to
// burst. It is pure: callers pass the time.
type bucket struct {
	tokens float64
	last   time.Time
}

// take removes n tokens if the bucket holds them, after refilling it up to
// now. Otherwise it returns how long until n tokens will be there. A request
// for more than burst tokens is treated as burst.
func (b *bucket) take(now time.Time, n int, rate float64, burst int) (ok bool, wait time.Duration) {
	need := math.Min(float64(n), float64(burst))
	if b.last.IsZero() {
		b.tokens, b.last = float64(burst), now
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = math.Min(float64(burst), b.tokens+dt*rate)
		b.last = now
	}
	if b.tokens >= need {
		b.tokens -= need
		return true, 0
	}
	return false, time.Duration((need - b.tokens) / rate * float64(time.Second))
}

// limiter holds one bucket per key name or client IP. Its methods are safe
// for concurrent use.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// allow takes n tokens from the bucket of id (rate per second, burst; a
// zero rate means no limit).
func (l *limiter) allow(id string, now time.Time, n int, rate float64, burst int) (bool, time.Duration) {
	if rate <= 0 {
		return true, 0
	}
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rate)))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[id]
	if b == nil {
		b = &bucket{}
		l.buckets[id] = b
	}
	return b.take(now, n, rate, burst)
}

// prune drops buckets idle since before cutoff (they would be full again).
func (l *limiter) prune(cutoff time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, b := range l.buckets {
		if b.last.Before(cutoff) {
			delete(l.buckets, id)
		}
	}
}
