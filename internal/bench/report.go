package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WriteText writes the human summary of res.
func WriteText(w io.Writer, res *Result) error {
	s := res.Summary
	var b strings.Builder
	fmt.Fprintf(&b, "hansa bench: %s on %s (chain %d)\n", res.Workload, res.Label, res.ChainID)
	mode := fmt.Sprintf("open loop at %s/s", fmtNum(res.TargetRate))
	if res.Mode == "max" {
		mode = fmt.Sprintf("closed loop (max), %d in flight per sender", res.InFlight)
	}
	fmt.Fprintf(&b, "  mode          %s, %d accounts, %gs measured after %gs warm-up (%d ops excluded)\n",
		mode, res.Accounts, res.DurationSeconds, res.WarmupSeconds, s.WarmupOps)
	fmt.Fprintf(&b, "  fees          %s\n", res.Fees)
	fmt.Fprintf(&b, "  offered       %d (%.1f/s)\n", s.Offered, s.OfferedRate)
	fmt.Fprintf(&b, "  sent          %d (%.1f/s achieved)\n", s.Sent, s.SendRate)
	fmt.Fprintf(&b, "  confirmed     %d (%.1f/s confirmed)\n", s.Confirmed, s.ConfirmedTPS)
	fmt.Fprintf(&b, "  failed        %d\n", s.Failed)
	l := s.Latency
	until := "inclusion"
	if isRead(res.Workload) {
		until = "answer"
	}
	fmt.Fprintf(&b, "  latency (ms)  p50 %s  p90 %s  p99 %s  max %s  (mean %s, n=%d; from intended send to %s)\n",
		fmtNum(l.P50), fmtNum(l.P90), fmtNum(l.P99), fmtNum(l.Max), fmtNum(l.Mean), l.Count, until)
	if !isRead(res.Workload) {
		fmt.Fprintf(&b, "  tracker lag   %s ms at most (head seen → receipts checked)\n", fmtNum(res.TrackerLagMs))
	}
	if len(s.Errors) > 0 {
		b.WriteString("  errors by kind\n")
		for _, k := range sortedKeys(s.Errors) {
			fmt.Fprintf(&b, "    %7d  %s\n", s.Errors[k], k)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sortedKeys(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) }

// WriteJSON writes v as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeFile creates path and fills it with write.
func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// WriteDir writes DIR/result.json and DIR/report.html, creating dir.
func WriteDir(dir string, res *Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "result.json"), func(w io.Writer) error { return WriteJSON(w, res) }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "report.html"), func(w io.Writer) error { return WriteHTML(w, res) })
}

const htmlHead = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"/><title>%s</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 60em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.note { color: #a60; }
figure { margin: 1em 0; }
</style></head><body>
`

// WriteHTML writes a self-contained report of res: summary tables and
// inline SVG plots of throughput over time, latency over time and the
// latency distribution. It loads nothing from elsewhere.
func WriteHTML(w io.Writer, res *Result) error {
	var b strings.Builder
	title := fmt.Sprintf("hansa bench: %s on %s", res.Workload, res.Label)
	fmt.Fprintf(&b, htmlHead, esc(title))
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(title))
	fmt.Fprintf(&b, "<p>Chain %d, %s, started %s. Fees: %s. Tracker lag (head seen to receipts checked) at most %s ms.</p>\n",
		res.ChainID, esc(modeText(res)), esc(res.Started.UTC().Format(time.RFC3339)), esc(res.Fees), fmtNum(res.TrackerLagMs))
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "<p class=\"note\">Note: %s</p>\n", esc(n))
	}
	b.WriteString(summaryTable([]*Result{res}))
	b.WriteString(errorsTable(res.Summary.Errors))
	b.WriteString(plots(res))
	b.WriteString(definitions)
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

const definitions = `<h2>How to read this</h2>
<ul>
<li>Operations are counted by their intended send time; the warm-up is excluded. Offered = confirmed + failed.</li>
<li>Latency runs from the intended send time (not the actual one) to the moment a block holding the transaction was seen, so client-side queueing counts (no coordinated omission). Reads: to the answer.</li>
<li>Confirmed means included with receipt status 1. Send errors, reverts and transactions not included within the receipt timeout are failures.</li>
<li>Confirmed TPS is confirmed operations over the time from the first intended send to the last confirmation.</li>
</ul>
`

func modeText(res *Result) string {
	if res.Mode == "max" {
		return fmt.Sprintf("closed loop (max) with %d in flight per sender, %d accounts, %gs after %gs warm-up",
			res.InFlight, res.Accounts, res.DurationSeconds, res.WarmupSeconds)
	}
	return fmt.Sprintf("open loop at %s/s, %d accounts, %gs after %gs warm-up",
		fmtNum(res.TargetRate), res.Accounts, res.DurationSeconds, res.WarmupSeconds)
}

// summaryRows are the figures of the summary table and of compare.
var summaryRows = []struct {
	name   string
	value  func(s *Summary) float64
	higher bool // higher is better
}{
	{"offered/s", func(s *Summary) float64 { return s.OfferedRate }, true},
	{"sent/s (achieved)", func(s *Summary) float64 { return s.SendRate }, true},
	{"confirmed TPS", func(s *Summary) float64 { return s.ConfirmedTPS }, true},
	{"offered", func(s *Summary) float64 { return float64(s.Offered) }, true},
	{"confirmed", func(s *Summary) float64 { return float64(s.Confirmed) }, true},
	{"failed", func(s *Summary) float64 { return float64(s.Failed) }, false},
	{"latency p50 (ms)", func(s *Summary) float64 { return s.Latency.P50 }, false},
	{"latency p90 (ms)", func(s *Summary) float64 { return s.Latency.P90 }, false},
	{"latency p99 (ms)", func(s *Summary) float64 { return s.Latency.P99 }, false},
	{"latency max (ms)", func(s *Summary) float64 { return s.Latency.Max }, false},
}

func summaryTable(rs []*Result) string {
	var b strings.Builder
	b.WriteString("<table><tr><th>figure</th>")
	for _, r := range rs {
		fmt.Fprintf(&b, "<th>%s</th>", esc(r.Label))
	}
	b.WriteString("</tr>\n")
	for _, row := range summaryRows {
		fmt.Fprintf(&b, "<tr><td>%s</td>", esc(row.name))
		for _, r := range rs {
			fmt.Fprintf(&b, "<td>%s</td>", fmtNum(row.value(&r.Summary)))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	return b.String()
}

func errorsTable(errs map[string]int) string {
	if len(errs) == 0 {
		return "<p>No failures.</p>\n"
	}
	var b strings.Builder
	b.WriteString("<h2>Failures by kind</h2><table><tr><th>kind</th><th>count</th></tr>\n")
	for _, k := range sortedKeys(errs) {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td></tr>\n", esc(k), errs[k])
	}
	b.WriteString("</table>\n")
	return b.String()
}

func plots(res *Result) string {
	var t, off, conf, fail, p50, p99, mx []float64
	for _, s := range res.Series {
		x := float64(s.T) + 0.5
		t = append(t, x)
		off = append(off, float64(s.Offered))
		conf = append(conf, float64(s.Confirmed))
		fail = append(fail, float64(s.Failed))
		if s.P50 == 0 && s.Max == 0 { // nothing confirmed of this second: a gap
			p50, p99, mx = append(p50, math.NaN()), append(p99, math.NaN()), append(mx, math.NaN())
			continue
		}
		p50, p99, mx = append(p50, s.P50), append(p99, s.P99), append(mx, s.Max)
	}
	xmax := float64(len(res.Series))
	shade := [2]float64{0, res.WarmupSeconds}
	var b strings.Builder
	b.WriteString("<h2>Throughput over time</h2><figure>")
	b.WriteString(lineChart("operations per second", "seconds since start (offered by intended send time, confirmed and failed by inclusion)", "per second", xmax, []line{
		{"offered", "#888888", t, off}, {"confirmed", "#1f77b4", t, conf}, {"failed", "#d62728", t, fail},
	}, shade))
	b.WriteString("</figure>\n<h2>Latency over time</h2><figure>")
	b.WriteString(lineChart("latency", "intended send time (seconds since start)", "ms", xmax, []line{
		{"p50", "#1f77b4", t, p50}, {"p99", "#ff7f0e", t, p99}, {"max", "#d62728", t, mx},
	}, shade))
	b.WriteString("</figure>\n<h2>Latency distribution</h2><figure>")
	// Show the buckets from the first to the last non-empty one.
	lo, hi := len(res.Histogram), -1
	for i, h := range res.Histogram {
		if h.Count > 0 {
			lo, hi = min(lo, i), max(hi, i)
		}
	}
	var labels []string
	var counts []float64
	for i := lo; i <= hi; i++ {
		h := res.Histogram[i]
		if h.HiMs == 0 {
			labels = append(labels, "≥"+fmtMs(h.LoMs))
		} else {
			labels = append(labels, fmtMs(h.LoMs)+"–"+fmtMs(h.HiMs))
		}
		counts = append(counts, float64(h.Count))
	}
	b.WriteString(barChart("confirmed operations by latency", "latency (ms)", "count", labels, counts, "#1f77b4"))
	b.WriteString("</figure>\n")
	return b.String()
}

// fmtMs writes a bucket bound compactly: 500, 1k, 20k.
func fmtMs(v float64) string {
	if v >= 1000 {
		return fmtNum(v/1000) + "k"
	}
	return fmtNum(v)
}
