package bench

import (
	"context"
	"testing"
	"time"
)

func TestScheduleAtAndDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rate float64
		at   time.Duration // now - start
		due  int
	}{
		{"before start", 10, -time.Millisecond, 0},
		{"at start", 10, 0, 1},
		{"just before second", 10, 99 * time.Millisecond, 1},
		{"exactly second", 10, 100 * time.Millisecond, 2},
		{"one second", 10, time.Second, 11},
		{"fractional rate", 0.5, 3 * time.Second, 2},
		{"high rate", 10000, time.Second, 10001},
		{"odd rate", 3, time.Second, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Schedule{Start: start, Rate: tt.rate}
			now := start.Add(tt.at)
			if got := s.Due(now); got != tt.due {
				t.Fatalf("Due(start%+v) = %d, want %d", tt.at, got, tt.due)
			}
			// Due is consistent with At: the last due one is not after now,
			// the first not due one is.
			if tt.due > 0 && s.At(tt.due-1).After(now) {
				t.Errorf("At(%d) = %v after now", tt.due-1, s.At(tt.due-1))
			}
			if !s.At(tt.due).After(now) {
				t.Errorf("At(%d) = %v not after now", tt.due, s.At(tt.due))
			}
		})
	}
}

func TestScheduleMonotone(t *testing.T) {
	s := Schedule{Start: time.Unix(0, 0), Rate: 777}
	prev := 0
	for ms := 0; ms < 3000; ms += 7 {
		d := s.Due(s.Start.Add(time.Duration(ms) * time.Millisecond))
		if d < prev {
			t.Fatalf("Due went back from %d to %d at %d ms", prev, d, ms)
		}
		prev = d
	}
	for i := 1; i < 1000; i++ {
		if s.At(i).Before(s.At(i - 1)) {
			t.Fatalf("At(%d) before At(%d)", i, i-1)
		}
	}
}

// fakeClock is a clock that only moves when told.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, t time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	if t.After(c.now) {
		c.now = t
	}
	return true
}

func TestPaceOpenLoop(t *testing.T) {
	clock := &fakeClock{now: time.Unix(100, 0)}
	s := Schedule{Start: clock.now, Rate: 10}
	var got []int
	var intended []time.Time
	var emittedAt []time.Time
	n := pace(t.Context(), s, 30, clock.Now, clock.Sleep, func(i int, at time.Time) {
		got = append(got, i)
		intended = append(intended, at)
		emittedAt = append(emittedAt, clock.now)
		if i == 5 {
			clock.now = clock.now.Add(time.Second) // a stall: ten operations fall due meanwhile
		}
	})
	if n != 30 || len(got) != 30 {
		t.Fatalf("released %d (%d emitted), want 30", n, len(got))
	}
	for i := range got {
		if got[i] != i {
			t.Fatalf("emitted %d at position %d: order broken", got[i], i)
		}
		// The intended time is the schedule's, whatever the stall did: the
		// latency of the late ones includes the stall (no coordinated omission).
		if !intended[i].Equal(s.At(i)) {
			t.Fatalf("operation %d intended at %v, want %v", i, intended[i], s.At(i))
		}
		if emittedAt[i].Before(intended[i]) {
			t.Fatalf("operation %d emitted before it was due", i)
		}
	}
	// The ones due during the stall were released late, not skipped or
	// rescheduled.
	if !emittedAt[6].After(intended[6]) {
		t.Fatalf("operation 6 should be late after the stall: emitted %v, intended %v", emittedAt[6], intended[6])
	}
}

func TestPaceStopsOnCancel(t *testing.T) {
	clock := &fakeClock{now: time.Unix(100, 0)}
	ctx, cancel := context.WithCancel(t.Context())
	s := Schedule{Start: clock.now, Rate: 10}
	n := pace(ctx, s, 100, clock.Now, clock.Sleep, func(i int, _ time.Time) {
		if i == 9 {
			cancel()
		}
	})
	if n != 10 {
		t.Fatalf("released %d after cancel at 9, want 10", n)
	}
}

func TestWindow(t *testing.T) {
	w := NewWindow(2)
	ctx := t.Context()
	if !w.Acquire(ctx) || !w.Acquire(ctx) {
		t.Fatal("could not take two slots of a window of two")
	}
	if w.InFlight() != 2 {
		t.Fatalf("in flight %d, want 2", w.InFlight())
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if w.Acquire(short) {
		t.Fatal("took a third slot of a full window")
	}
	w.Release()
	if !w.Acquire(ctx) {
		t.Fatal("no slot after a release")
	}
	done := make(chan bool)
	go func() { done <- w.Acquire(ctx) }()
	w.Release()
	if !<-done {
		t.Fatal("a waiting Acquire was not woken by Release")
	}
}

func TestForcedRevertShare(t *testing.T) {
	for _, share := range []float64{0, 0.1, 0.25, 0.5, 1} {
		n := 0
		for i := range 1000 {
			if forcedRevert(i, share) {
				n++
			}
		}
		if want := int(share * 1000); n != want {
			t.Errorf("share %v: %d of 1000 forced, want %d", share, n, want)
		}
	}
}
