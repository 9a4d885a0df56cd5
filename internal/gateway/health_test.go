package gateway

import (
	"strings"
	"testing"
	"time"
)

func TestCorroborate(t *testing.T) {
	tests := []struct {
		name    string
		reports []uint64
		k       int
		want    uint64
		ok      bool
	}{
		{"none", nil, 2, 0, false},
		{"one upstream stands alone", []uint64{7}, 2, 7, true},
		{"liar far ahead is ignored", []uint64{1_000_000, 100, 99}, 2, 100, true},
		{"two agree above a laggard", []uint64{90, 100, 100}, 2, 100, true},
		{"k=1 trusts the highest", []uint64{90, 120}, 1, 120, true},
		{"k larger than reports takes the lowest", []uint64{90, 120}, 3, 90, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Corroborate(tt.reports, tt.k)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Corroborate(%v, %d) = %d, %v; want %d, %v", tt.reports, tt.k, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func testPolicy() Policy {
	return Policy{MaxLag: 10, MaxAhead: 10, Corroboration: 2, StallTimeout: 5 * time.Second,
		MaxLatency: time.Second, MaxErrorRate: 0.5, FallAfter: 2, RiseAfter: 3}
}

func good(head uint64) Sample {
	return Sample{OK: true, ChainID: 1337, Head: head, Latency: time.Millisecond}
}

// TestEvaluateFaults judges one round in which the third upstream has a
// fault; the first two are honest and must stay healthy.
func TestEvaluateFaults(t *testing.T) {
	tests := []struct {
		name   string
		bad    Sample
		reason string // substring; "" means the third stays healthy
	}{
		{"healthy", good(100), ""},
		{"within lag", good(91), ""},
		{"poll failed", Sample{Err: "connection refused"}, "poll failed"},
		{"wrong chain", Sample{OK: true, ChainID: 5, Head: 100}, "wrong chain id 5"},
		{"syncing", Sample{OK: true, ChainID: 1337, Head: 100, Syncing: true}, "syncing"},
		{"lagging", good(80), "lagging 20 blocks"},
		{"far-ahead liar", good(1_000_000), "above corroborated head"},
		{"slow", Sample{OK: true, ChainID: 1337, Head: 100, Latency: 2 * time.Second}, "slow"},
		{"errors", Sample{OK: true, ChainID: 1337, Head: 100, Calls: 20, Failures: 15}, "15 of 20 calls failed"},
		{"few errors are noise", Sample{OK: true, ChainID: 1337, Head: 100, Calls: 4, Failures: 3}, ""},
	}
	p := testPolicy()
	now := time.Unix(1000, 0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := make([]Health, 3)
			next, head, chainID, _ := p.Evaluate(prev, []Sample{good(100), good(100), tt.bad}, now)
			if head != 100 || chainID != 1337 {
				t.Fatalf("corroborated head %d chain %d; want 100, 1337", head, chainID)
			}
			for i := range 2 {
				if !next[i].Healthy || next[i].Lag != 0 {
					t.Errorf("honest upstream %d: %+v; want healthy with lag 0", i, next[i])
				}
			}
			if tt.reason == "" {
				if !next[2].Healthy {
					t.Errorf("third upstream unhealthy: %s", next[2].Reason)
				}
				return
			}
			if next[2].Healthy || !strings.Contains(next[2].Reason, tt.reason) {
				t.Errorf("third upstream: healthy=%v reason %q; want unhealthy with %q", next[2].Healthy, next[2].Reason, tt.reason)
			}
		})
	}
}

// TestEvaluateChainIDMajority learns the chain id from the majority when
// none is configured, so one upstream on another chain cannot set it.
func TestEvaluateChainIDMajority(t *testing.T) {
	p := testPolicy()
	other := Sample{OK: true, ChainID: 1, Head: 20_000_000}
	next, head, chainID, _ := p.Evaluate(make([]Health, 3), []Sample{good(100), other, good(100)}, time.Unix(1, 0))
	if chainID != 1337 || head != 100 {
		t.Fatalf("chain %d head %d; want 1337, 100", chainID, head)
	}
	if next[1].Healthy || !next[0].Healthy || !next[2].Healthy {
		t.Errorf("states %+v; want only the other chain's upstream unhealthy", next)
	}
}

// TestEvaluateHysteresis checks that a state changes only after FallAfter
// bad or RiseAfter good rounds in a row.
func TestEvaluateHysteresis(t *testing.T) {
	p := testPolicy()
	bad := Sample{Err: "down"}
	rounds := []struct {
		s           Sample
		wantHealthy bool
		wantChange  bool
	}{
		{good(100), true, true}, // first judgement sets the state
		{bad, true, false},      // one bad round: no flap
		{good(101), true, false},
		{bad, true, false},
		{bad, false, true}, // FallAfter = 2
		{good(102), false, false},
		{good(103), false, false},
		{bad, false, false},
		{good(104), false, false},
		{good(105), false, false},
		{good(106), true, true}, // RiseAfter = 3
	}
	prev := make([]Health, 2)
	now := time.Unix(1000, 0)
	for i, r := range rounds {
		now = now.Add(time.Second)
		ref := good(r.s.Head)
		if !r.s.OK {
			ref = good(100 + uint64(i))
		}
		var changes []Transition
		prev, _, _, changes = p.Evaluate(prev, []Sample{ref, r.s}, now)
		if prev[1].Healthy != r.wantHealthy {
			t.Fatalf("round %d: healthy=%v, want %v (%+v)", i, prev[1].Healthy, r.wantHealthy, prev[1])
		}
		changed := false
		for _, c := range changes {
			if c.Index == 1 {
				changed = true
			}
		}
		if changed != r.wantChange {
			t.Fatalf("round %d: change reported=%v, want %v", i, changed, r.wantChange)
		}
	}
}

// TestEvaluateStall marks an upstream whose head stays behind the moving
// corroborated head for StallTimeout, even while its lag is small.
func TestEvaluateStall(t *testing.T) {
	p := testPolicy()
	prev := make([]Health, 3)
	now := time.Unix(1000, 0)
	for i := range 7 {
		head := 100 + uint64(i)
		prev, _, _, _ = p.Evaluate(prev, []Sample{good(head), good(head), good(100)}, now)
		now = now.Add(time.Second)
	}
	if prev[2].Healthy || !strings.Contains(prev[2].Reason, "stalled at 100") {
		t.Errorf("stalled upstream: %+v; want unhealthy, stalled", prev[2])
	}
	if !prev[0].Healthy || !prev[1].Healthy {
		t.Errorf("moving upstreams unhealthy: %+v %+v", prev[0], prev[1])
	}
	// A chain that stops for everyone stalls no one.
	prev = make([]Health, 2)
	for range 10 {
		prev, _, _, _ = p.Evaluate(prev, []Sample{good(50), good(50)}, now)
		now = now.Add(time.Second)
	}
	if !prev[0].Healthy || !prev[1].Healthy {
		t.Errorf("idle chain marked unhealthy: %+v", prev)
	}
}
