package bench

import (
	"math"
	"slices"
	"sort"
	"time"
)

// Result is one measured run: its settings, summary, time series and
// latency distribution. It is what result.json holds.
type Result struct {
	// Label names the run (the endpoint unless set).
	Label string `json:"label"`
	// Endpoint is the JSON-RPC URL.
	Endpoint string `json:"endpoint"`
	// Workload is the workload's name.
	Workload string `json:"workload"`
	// Mode is "open" (fixed offered rate) or "max" (closed loop).
	Mode string `json:"mode"`
	// TargetRate is the offered rate of the open-loop mode, per second.
	TargetRate float64 `json:"targetRate,omitempty"`
	// InFlight is the per-sender bound of the closed-loop mode.
	InFlight int `json:"inFlightPerSender,omitempty"`
	// Accounts is the number of sender accounts.
	Accounts int `json:"accounts"`
	// ChainID is the endpoint's chain id.
	ChainID uint64 `json:"chainId"`
	// Fees describes how transactions paid for gas.
	Fees string `json:"fees"`
	// Started is when the measured run began (warm-up included).
	Started time.Time `json:"started"`
	// WarmupSeconds and DurationSeconds are the run's two phases.
	WarmupSeconds   float64 `json:"warmupSeconds"`
	DurationSeconds float64 `json:"durationSeconds"`
	// Summary is the measurement, warm-up excluded.
	Summary Summary `json:"summary"`
	// Series has one entry per second of the run, warm-up included.
	Series []Second `json:"series"`
	// Histogram is the latency distribution of the confirmed operations.
	Histogram []Bucket `json:"histogram"`
	// TrackerLagMs is the longest delay between seeing a new head and
	// checking the receipts of its block. Latencies are measured to the
	// sighting, but in closed-loop mode a large lag means the bench itself
	// held senders back.
	TrackerLagMs float64 `json:"trackerLagMs"`
	// Notes are caveats about the run (e.g. pre-signed transactions used up).
	Notes []string `json:"notes,omitempty"`
}

// Summary is a run's measurement over the operations whose intended send
// time lies after the warm-up. Offered = Confirmed + Failed.
type Summary struct {
	// Offered counts the operations offered (dispatched) after the warm-up.
	Offered int `json:"offered"`
	// OfferedRate is Offered over the measured duration, per second.
	OfferedRate float64 `json:"offeredRate"`
	// Sent counts the offered operations the endpoint accepted.
	Sent int `json:"sent"`
	// SendRate is Sent over the time from the measured window's start to the
	// last accepted send (at least the duration), per second.
	SendRate float64 `json:"sendRate"`
	// Confirmed counts transactions included with status 1 (reads answered).
	Confirmed int `json:"confirmed"`
	// Failed counts send errors, reverts and drops (failed reads).
	Failed int `json:"failed"`
	// ConfirmedTPS is Confirmed over the time from the first intended send to
	// the last confirmation (Caliper's throughput definition), per second.
	ConfirmedTPS float64 `json:"confirmedTps"`
	// Latency is submit→inclusion (reads: submit→answer) of the confirmed
	// operations, measured from the intended send time.
	Latency Latency `json:"latencyMs"`
	// Errors counts failures by kind.
	Errors map[string]int `json:"errors"`
	// WarmupOps counts the operations offered during the warm-up (excluded).
	WarmupOps int `json:"warmupOps"`
}

// Latency summarises latencies in milliseconds (nearest-rank percentiles).
type Latency struct {
	// Count is the number of latencies summarised.
	Count int `json:"count"`
	// Min and Mean are the smallest and the average latency.
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	// P50, P90 and P99 are nearest-rank percentiles.
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	// Max is the largest latency.
	Max float64 `json:"max"`
}

// Second is one second of the run. Offered is by intended send time,
// Confirmed and Failed by resolution time; the latency figures are of the
// operations intended in this second that were confirmed.
type Second struct {
	// T is the second's offset from the run's start.
	T int `json:"t"`
	// Warmup is true for the seconds of the warm-up.
	Warmup bool `json:"warmup"`
	// Offered counts operations intended in this second.
	Offered int `json:"offered"`
	// Confirmed and Failed count operations resolved in this second.
	Confirmed int `json:"confirmed"`
	Failed    int `json:"failed"`
	// P50, P99 and Max are latencies (ms) of this second's confirmed
	// operations, by intended send time; 0 when none was confirmed.
	P50 float64 `json:"p50Ms"`
	P99 float64 `json:"p99Ms"`
	Max float64 `json:"maxMs"`
}

// Bucket counts latencies in [LoMs, HiMs); HiMs is 0 for the last,
// open-ended bucket.
type Bucket struct {
	// LoMs and HiMs bound the bucket, in milliseconds.
	LoMs float64 `json:"loMs"`
	HiMs float64 `json:"hiMs,omitempty"`
	// Count is the number of latencies in the bucket.
	Count int `json:"count"`
}

// histogramEdges are the bucket bounds in ms, roughly 1-2-5 per decade; the
// last bucket is open-ended.
var histogramEdges = []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000}

// Percentile returns the nearest-rank p-quantile (0 < p ≤ 1) of sorted
// values; 0 for none.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// Summarize returns the latency statistics of values (ms), in any order.
func Summarize(values []float64) Latency {
	if len(values) == 0 {
		return Latency{}
	}
	s := slices.Clone(values)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Latency{
		Count: len(s), Min: s[0], Mean: sum / float64(len(s)),
		P50: Percentile(s, 0.50), P90: Percentile(s, 0.90), P99: Percentile(s, 0.99), Max: s[len(s)-1],
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// summarize builds the summary, series and histogram from outcomes; warmup
// and duration bound the measured window (offsets from the run's start).
func summarize(out []outcome, warmup, duration time.Duration) (Summary, []Second, []Bucket) {
	s := Summary{Errors: map[string]int{}}
	var lat []float64
	var lastSent, lastDone time.Duration
	first := time.Duration(math.MaxInt64)
	nsec := int(math.Ceil((warmup + duration).Seconds()))
	for _, o := range out {
		if o.state != stateIdle {
			nsec = max(nsec, int(o.done/time.Second)+1, int(o.intended/time.Second)+1)
		}
	}
	series := make([]Second, nsec)
	perSec := make([][]float64, nsec)
	for i := range series {
		series[i].T = i
		series[i].Warmup = time.Duration(i)*time.Second < warmup
	}
	for _, o := range out {
		if o.state == stateIdle || o.state == stateInFlight {
			continue // never offered; in flight cannot remain after a run
		}
		is := int(o.intended / time.Second)
		ds := int(o.done / time.Second)
		series[is].Offered++
		if o.state == stateOK {
			series[ds].Confirmed++
			perSec[is] = append(perSec[is], ms(o.done-o.intended))
		} else {
			series[ds].Failed++
		}
		if o.intended < warmup {
			s.WarmupOps++
			continue
		}
		s.Offered++
		first = min(first, o.intended)
		if o.sent > 0 {
			s.Sent++
			lastSent = max(lastSent, o.sent)
		}
		if o.state == stateOK {
			s.Confirmed++
			lat = append(lat, ms(o.done-o.intended))
			lastDone = max(lastDone, o.done)
		} else {
			s.Failed++
			s.Errors[o.kind]++
		}
	}
	secs := duration.Seconds()
	s.OfferedRate = float64(s.Offered) / secs
	s.SendRate = float64(s.Sent) / max(secs, (lastSent-warmup).Seconds())
	if s.Confirmed > 0 {
		s.ConfirmedTPS = float64(s.Confirmed) / max((lastDone-first).Seconds(), 1e-3)
	}
	s.Latency = Summarize(lat)
	for i, v := range perSec {
		l := Summarize(v)
		series[i].P50, series[i].P99, series[i].Max = l.P50, l.P99, l.Max
	}
	hist := make([]Bucket, len(histogramEdges))
	for i, lo := range histogramEdges {
		hi := 0.0 // open-ended
		if i+1 < len(histogramEdges) {
			hi = histogramEdges[i+1]
		}
		hist[i] = Bucket{LoMs: lo, HiMs: hi}
	}
	for _, v := range lat {
		k := sort.SearchFloat64s(histogramEdges, v)
		if k == len(histogramEdges) || histogramEdges[k] > v {
			k--
		}
		hist[max(k, 0)].Count++
	}
	return s, series, hist
}

// result turns the run's outcomes into a Result.
func (r *runner) result() *Result {
	r.mu.Lock()
	sum, series, hist := summarize(r.out, r.cfg.Warmup, r.cfg.Duration)
	r.mu.Unlock()
	res := &Result{
		Label: r.cfg.Label, Endpoint: r.cfg.RPC, Workload: r.cfg.Workload, Mode: "open",
		Accounts: r.cfg.Accounts, ChainID: r.e.chainID.Uint64(), Fees: r.e.fees.String(),
		Started: r.start, WarmupSeconds: r.cfg.Warmup.Seconds(), DurationSeconds: r.cfg.Duration.Seconds(),
		Summary: sum, Series: series, Histogram: hist,
		TrackerLagMs: ms(time.Duration(r.trackerLag.Load())),
	}
	if r.read {
		res.Fees = "none (reads)"
	}
	if r.cfg.Max {
		res.Mode, res.InFlight = "max", r.cfg.InFlight
		if r.exhausted.Load() {
			res.Notes = append(res.Notes, "the pre-signed operations ran out before the end: raise --max-txs")
		}
	} else {
		res.TargetRate = r.cfg.Rate
	}
	if r.cfg.RevertShare > 0 {
		res.Notes = append(res.Notes, "a share of the transactions was built to revert (--revert-share); they count as failures")
	}
	return res
}
