package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Comparison is the result of running one workload against several
// endpoints in alternation. It is what compare.json holds.
type Comparison struct {
	// Workload is the workload's name.
	Workload string `json:"workload"`
	// Labels name the endpoints, in the order given.
	Labels []string `json:"labels"`
	// Rounds holds each round's results, one per endpoint in Labels order.
	Rounds [][]*Result `json:"rounds"`
	// Median is, per endpoint, the figure-by-figure median over the rounds.
	Median []Summary `json:"median"`
	// Ratios maps each summary figure to its value per endpoint divided by
	// the first endpoint's.
	Ratios map[string][]float64 `json:"ratios"`
}

// Compare prepares every endpoint of cfgs, then runs rounds rounds; each
// round runs the workload once against each endpoint, one after the other,
// so slow drifts of the machine hit every endpoint alike.
func Compare(ctx context.Context, cfgs []Config, rounds int, log *slog.Logger, stderr io.Writer) (*Comparison, error) {
	if len(cfgs) < 2 {
		return nil, fmt.Errorf("bench compare: need at least two endpoints, got %d", len(cfgs))
	}
	if rounds < 1 {
		return nil, fmt.Errorf("bench compare: need at least one round")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sessions := make([]*Session, len(cfgs))
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
	}()
	c := &Comparison{Workload: cfgs[0].Workload}
	for i, cfg := range cfgs {
		s, err := Open(ctx, cfg, log.With("endpoint", cfg.RPC), rounds)
		if err != nil {
			return nil, fmt.Errorf("prepare %s: %w", cfg.RPC, err)
		}
		sessions[i] = s
		c.Labels = append(c.Labels, s.cfg.Label)
	}
	for round := range rounds {
		var rs []*Result
		for i, s := range sessions {
			if stderr != nil {
				fmt.Fprintf(stderr, "round %d/%d: %s\n", round+1, rounds, c.Labels[i])
			}
			res, err := s.Run(ctx, round, stderr)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", round+1, c.Labels[i], err)
			}
			rs = append(rs, res)
		}
		c.Rounds = append(c.Rounds, rs)
	}
	c.summarize()
	return c, nil
}

// summarize fills Median and Ratios from Rounds.
func (c *Comparison) summarize() {
	c.Median = make([]Summary, len(c.Labels))
	for e := range c.Labels {
		var per []*Summary
		for _, round := range c.Rounds {
			per = append(per, &round[e].Summary)
		}
		c.Median[e] = medianSummary(per)
	}
	c.Ratios = map[string][]float64{}
	for _, row := range summaryRows {
		base := row.value(&c.Median[0])
		for e := range c.Labels {
			ratio := 0.0
			if base != 0 {
				ratio = row.value(&c.Median[e]) / base
			}
			c.Ratios[row.name] = append(c.Ratios[row.name], ratio)
		}
	}
}

// medianSummary takes each figure's median over the rounds; counts and
// errors are summed instead, so nothing is lost.
func medianSummary(ss []*Summary) Summary {
	med := func(f func(s *Summary) float64) float64 {
		v := make([]float64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return Percentile(v, 0.5)
	}
	out := Summary{Errors: map[string]int{}}
	for _, s := range ss {
		out.Offered += s.Offered
		out.Sent += s.Sent
		out.Confirmed += s.Confirmed
		out.Failed += s.Failed
		out.WarmupOps += s.WarmupOps
		out.Latency.Count += s.Latency.Count
		for k, v := range s.Errors {
			out.Errors[k] += v
		}
	}
	out.OfferedRate = med(func(s *Summary) float64 { return s.OfferedRate })
	out.SendRate = med(func(s *Summary) float64 { return s.SendRate })
	out.ConfirmedTPS = med(func(s *Summary) float64 { return s.ConfirmedTPS })
	out.Latency.Min = med(func(s *Summary) float64 { return s.Latency.Min })
	out.Latency.Mean = med(func(s *Summary) float64 { return s.Latency.Mean })
	out.Latency.P50 = med(func(s *Summary) float64 { return s.Latency.P50 })
	out.Latency.P90 = med(func(s *Summary) float64 { return s.Latency.P90 })
	out.Latency.P99 = med(func(s *Summary) float64 { return s.Latency.P99 })
	out.Latency.Max = med(func(s *Summary) float64 { return s.Latency.Max })
	return out
}

// WriteCompareText writes the side-by-side table with ratios to the first
// endpoint.
func WriteCompareText(w io.Writer, c *Comparison) error {
	var b strings.Builder
	fmt.Fprintf(&b, "hansa bench compare: %s, %d round(s); rates and latencies are medians over rounds, counts are sums\n", c.Workload, len(c.Rounds))
	for i, l := range c.Labels {
		fmt.Fprintf(&b, "  [%d] %s\n", i+1, l)
	}
	fmt.Fprintf(&b, "  %-20s", "figure")
	for i := range c.Labels {
		fmt.Fprintf(&b, " %12s", fmt.Sprintf("[%d]", i+1))
	}
	for i := 1; i < len(c.Labels); i++ {
		fmt.Fprintf(&b, " %10s", fmt.Sprintf("[%d]/[1]", i+1))
	}
	b.WriteString("\n")
	for _, row := range summaryRows {
		fmt.Fprintf(&b, "  %-20s", row.name)
		for e := range c.Labels {
			fmt.Fprintf(&b, " %12s", fmtNum(row.value(&c.Median[e])))
		}
		for e := 1; e < len(c.Labels); e++ {
			fmt.Fprintf(&b, " %10s", ratioText(c.Ratios[row.name][e], row.value(&c.Median[0])))
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func ratioText(r, base float64) string {
	if base == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}

// WriteCompareHTML writes a self-contained side-by-side report.
func WriteCompareHTML(w io.Writer, c *Comparison) error {
	var b strings.Builder
	title := "hansa bench compare: " + c.Workload
	fmt.Fprintf(&b, htmlHead, esc(title))
	fmt.Fprintf(&b, "<h1>%s</h1>\n<p>%d round(s); each round runs every endpoint once, in turn. Rates and latencies are medians over the rounds; counts are sums.</p>\n", esc(title), len(c.Rounds))
	b.WriteString("<table><tr><th>figure</th>")
	for _, l := range c.Labels {
		fmt.Fprintf(&b, "<th>%s</th>", esc(l))
	}
	for i := 1; i < len(c.Labels); i++ {
		fmt.Fprintf(&b, "<th>%s / %s</th>", esc(c.Labels[i]), esc(c.Labels[0]))
	}
	b.WriteString("</tr>\n")
	for _, row := range summaryRows {
		fmt.Fprintf(&b, "<tr><td>%s</td>", esc(row.name))
		for e := range c.Labels {
			fmt.Fprintf(&b, "<td>%s</td>", fmtNum(row.value(&c.Median[e])))
		}
		for e := 1; e < len(c.Labels); e++ {
			fmt.Fprintf(&b, "<td>%s</td>", esc(ratioText(c.Ratios[row.name][e], row.value(&c.Median[0]))))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	var tps, p99 []float64
	for e := range c.Labels {
		tps = append(tps, c.Median[e].ConfirmedTPS)
		p99 = append(p99, c.Median[e].Latency.P99)
	}
	b.WriteString("<figure>" + barChart("confirmed TPS (median over rounds)", "endpoint", "per second", c.Labels, tps, "#1f77b4") + "</figure>\n")
	b.WriteString("<figure>" + barChart("latency p99 (median over rounds)", "endpoint", "ms", c.Labels, p99, "#ff7f0e") + "</figure>\n")
	for e, l := range c.Labels {
		if len(c.Rounds) > 0 {
			fmt.Fprintf(&b, "<h2>%s, last round</h2>\n", esc(l))
			b.WriteString(plots(c.Rounds[len(c.Rounds)-1][e]))
		}
	}
	b.WriteString(definitions)
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCompareDir writes DIR/compare.json and DIR/compare.html.
func WriteCompareDir(dir string, c *Comparison) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "compare.json"), func(w io.Writer) error { return WriteJSON(w, c) }); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "compare.html"), func(w io.Writer) error { return WriteCompareHTML(w, c) })
}
