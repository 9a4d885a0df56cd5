package bench

import (
	"context"
	"time"
)

// Schedule is the open-loop send schedule: operation i is due at
// Start + i/Rate, whatever happened to earlier operations. It is a pure
// value; the dispatcher reads the clock.
type Schedule struct {
	// Start is when operation 0 is due.
	Start time.Time
	// Rate is operations per second; it must be positive.
	Rate float64
}

// At returns the intended send time of operation i.
func (s Schedule) At(i int) time.Time {
	return s.Start.Add(time.Duration(float64(i) / s.Rate * float64(time.Second)))
}

// Due returns how many operations are due at now: the number of i ≥ 0 with
// At(i) ≤ now.
func (s Schedule) Due(now time.Time) int {
	if now.Before(s.Start) {
		return 0
	}
	n := int(now.Sub(s.Start).Seconds()*s.Rate) + 1
	// Correct the float rounding at the boundaries.
	for n > 0 && s.At(n-1).After(now) {
		n--
	}
	for !s.At(n).After(now) {
		n++
	}
	return n
}

// pace releases operations 0..n-1 at their scheduled times by calling emit
// with each index and its intended time, in order. It never waits for emit's
// work to finish: a slow consumer makes later operations late, and their
// lateness counts in their latency. sleep waits until t or returns false when
// ctx is done. pace returns how many operations it released.
func pace(ctx context.Context, s Schedule, n int, now func() time.Time, sleep func(ctx context.Context, t time.Time) bool, emit func(i int, intended time.Time)) int {
	i := 0
	for i < n {
		due := min(s.Due(now()), n)
		for ; i < due; i++ {
			emit(i, s.At(i))
		}
		if i >= n {
			break
		}
		if !sleep(ctx, s.At(i)) {
			break
		}
	}
	return i
}

// sleepUntil waits until t or until ctx is done; it reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// Window bounds the operations one sender has in flight in closed-loop
// mode. Acquire blocks while the window is full; Release frees a slot. It is
// safe for concurrent use.
type Window struct {
	slots chan struct{}
}

// NewWindow returns a window of size n (at least 1).
func NewWindow(n int) *Window {
	return &Window{slots: make(chan struct{}, max(n, 1))}
}

// Acquire takes a slot, waiting until one is free; it returns false when ctx
// is done first.
func (w *Window) Acquire(ctx context.Context) bool {
	select {
	case w.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// Release frees a slot taken by Acquire.
func (w *Window) Release() {
	select {
	case <-w.slots:
	default:
		panic("bench: Window.Release without Acquire")
	}
}

// InFlight returns the slots taken.
func (w *Window) InFlight() int { return len(w.slots) }
