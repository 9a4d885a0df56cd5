package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	tests := []struct {
		p    float64
		want float64
	}{{0.01, 1}, {0.1, 1}, {0.11, 2}, {0.5, 5}, {0.9, 9}, {0.91, 10}, {0.99, 10}, {1, 10}}
	for _, tt := range tests {
		if got := Percentile(v, tt.p); got != tt.want {
			t.Errorf("Percentile(1..10, %v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := Percentile(nil, 0.5); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}

func TestSummarizeOrdered(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n := 1 + rng.IntN(2000)
		v := make([]float64, n)
		for i := range v {
			v[i] = rng.ExpFloat64() * 40
		}
		l := Summarize(v)
		if l.Count != n {
			t.Fatalf("trial %d: count %d, want %d", trial, l.Count, n)
		}
		if !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
			t.Fatalf("trial %d: not ordered: %+v", trial, l)
		}
		if l.Mean < l.Min || l.Mean > l.Max {
			t.Fatalf("trial %d: mean %v outside [%v, %v]", trial, l.Mean, l.Min, l.Max)
		}
	}
}

// synthOutcomes builds a run of n operations at rate r with some failures.
func synthOutcomes(n int, rate float64, seed uint64) []outcome {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]outcome, n)
	for i := range out {
		intended := time.Duration(float64(i) / rate * float64(time.Second))
		lat := time.Duration(rng.ExpFloat64()*30*float64(time.Millisecond)) + time.Millisecond
		o := outcome{intended: intended, sent: intended + time.Millisecond, done: intended + lat, state: stateOK}
		switch rng.IntN(20) {
		case 0:
			o.state, o.kind = stateFailed, "reverted"
		case 1:
			o.state, o.kind, o.sent = stateFailed, "send: nonce too low", 0
		case 2:
			o.state = stateIdle // never dispatched
		}
		out[i] = o
	}
	return out
}

func TestSummarizeCountsAddUp(t *testing.T) {
	const warmup, duration = 2 * time.Second, 8 * time.Second
	out := synthOutcomes(1000, 100, 3)
	s, series, hist := summarize(out, warmup, duration)

	var offered, warm, ok, failed, sent int
	errs := map[string]int{}
	for _, o := range out {
		if o.state == stateIdle {
			continue
		}
		if o.intended < warmup {
			warm++
			continue
		}
		offered++
		if o.sent > 0 {
			sent++
		}
		if o.state == stateOK {
			ok++
		} else {
			failed++
			errs[o.kind]++
		}
	}
	if s.Offered != offered || s.WarmupOps != warm || s.Confirmed != ok || s.Failed != failed || s.Sent != sent {
		t.Fatalf("summary %+v; want offered %d warmup %d confirmed %d failed %d sent %d", s, offered, warm, ok, failed, sent)
	}
	if s.Offered != s.Confirmed+s.Failed {
		t.Fatalf("offered %d != confirmed %d + failed %d", s.Offered, s.Confirmed, s.Failed)
	}
	var errSum int
	for k, v := range s.Errors {
		errSum += v
		if errs[k] != v {
			t.Errorf("errors[%q] = %d, want %d", k, v, errs[k])
		}
	}
	if errSum != s.Failed {
		t.Fatalf("errors by kind sum to %d, failed %d", errSum, s.Failed)
	}
	if s.Latency.Count != s.Confirmed {
		t.Fatalf("latency count %d, confirmed %d", s.Latency.Count, s.Confirmed)
	}
	l := s.Latency
	if !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
		t.Fatalf("latency not ordered: %+v", l)
	}
	var histSum int
	for _, b := range hist {
		histSum += b.Count
	}
	if histSum != s.Confirmed {
		t.Fatalf("histogram holds %d, confirmed %d", histSum, s.Confirmed)
	}
	// Every resolved operation appears once in the series, warm-up included.
	var sOff, sConf, sFail int
	for i, sec := range series {
		if sec.T != i {
			t.Fatalf("series[%d].T = %d", i, sec.T)
		}
		if sec.Warmup != (time.Duration(i)*time.Second < warmup) {
			t.Fatalf("series[%d].Warmup = %v", i, sec.Warmup)
		}
		if sec.P50 > sec.P99 || sec.P99 > sec.Max {
			t.Fatalf("series[%d] latency not ordered: %+v", i, sec)
		}
		sOff += sec.Offered
		sConf += sec.Confirmed
		sFail += sec.Failed
	}
	if sOff != offered+warm || sConf+sFail != offered+warm {
		t.Fatalf("series: offered %d, confirmed %d + failed %d; want %d", sOff, sConf, sFail, offered+warm)
	}
	if s.OfferedRate != float64(offered)/duration.Seconds() {
		t.Fatalf("offered rate %v, want %v", s.OfferedRate, float64(offered)/duration.Seconds())
	}
	if s.ConfirmedTPS <= 0 {
		t.Fatalf("confirmed TPS %v", s.ConfirmedTPS)
	}
}

func TestSummarizeEmpty(t *testing.T) {
	s, series, hist := summarize(nil, time.Second, 2*time.Second)
	if s.Offered != 0 || s.Confirmed != 0 || s.ConfirmedTPS != 0 || s.Latency.Count != 0 {
		t.Fatalf("empty run summarised as %+v", s)
	}
	if len(series) != 3 {
		t.Fatalf("series of an empty 3 s run has %d entries", len(series))
	}
	if len(hist) != len(histogramEdges) {
		t.Fatalf("histogram has %d buckets", len(hist))
	}
}

func TestErrorKind(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nonce too low: next nonce 5, tx nonce 3", "send: nonce too low"},
		{"insufficient funds for gas * price + value: have 1 want 2", "send: insufficient funds for gas * price + value: have want"},
		{"already known", "send: already known"},
	}
	for _, tt := range tests {
		if got := errorKind("send", errString(tt.in)); got != tt.want {
			t.Errorf("errorKind(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
