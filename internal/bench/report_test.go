package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sampleResult(label string, seed uint64) *Result {
	out := synthOutcomes(600, 100, seed)
	sum, series, hist := summarize(out, time.Second, 5*time.Second)
	return &Result{
		Label: label, Endpoint: "http://127.0.0.1:8545", Workload: WorkloadERC20, Mode: "open",
		TargetRate: 100, Accounts: 10, ChainID: 1337, Fees: "legacy gas price 0 wei",
		Started: time.Unix(1700000000, 0), WarmupSeconds: 1, DurationSeconds: 5,
		Summary: sum, Series: series, Histogram: hist,
		Notes: []string{`a note with <markup> & "quotes"`},
	}
}

// checkHTML parses doc as XML (the reports are written to be well-formed
// XHTML) and returns how many elements of each name it holds. It fails on
// unbalanced tags, bad escapes, scripts and anything loaded from elsewhere.
func checkHTML(t *testing.T, doc []byte) map[string]int {
	t.Helper()
	if !bytes.HasPrefix(doc, []byte("<!DOCTYPE html>")) {
		t.Fatalf("no doctype: %.40q", doc)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	counts := map[string]int{}
	depth := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report is not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			counts[el.Name.Local]++
			if el.Name.Local == "script" || el.Name.Local == "link" || el.Name.Local == "img" || el.Name.Local == "iframe" {
				t.Fatalf("report has a <%s> element", el.Name.Local)
			}
			for _, a := range el.Attr {
				if a.Name.Local == "src" || a.Name.Local == "href" {
					t.Fatalf("report loads %s=%q", a.Name.Local, a.Value)
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced elements: depth %d at the end", depth)
	}
	if counts["html"] != 1 || counts["body"] != 1 {
		t.Fatalf("want one html and one body, got %v", counts)
	}
	return counts
}

func TestWriteHTML(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteHTML(&buf, sampleResult("hansa <1>", 1)); err != nil {
		t.Fatal(err)
	}
	counts := checkHTML(t, buf.Bytes())
	if counts["svg"] != 3 {
		t.Fatalf("want 3 plots (throughput, latency over time, distribution), got %d", counts["svg"])
	}
	if counts["polyline"] != 6 {
		t.Fatalf("want 6 plotted lines, got %d", counts["polyline"])
	}
	if !strings.Contains(buf.String(), "hansa &lt;1&gt;") {
		t.Fatal("label not escaped in the report")
	}
}

func TestWriteJSONRoundTrip(t *testing.T) {
	res := sampleResult("hansa", 2)
	var buf bytes.Buffer
	if err := WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("result.json does not parse: %v", err)
	}
	if back.Summary.Offered != res.Summary.Offered || back.Summary.Latency != res.Summary.Latency ||
		len(back.Series) != len(res.Series) || len(back.Histogram) != len(res.Histogram) {
		t.Fatalf("round trip lost data:\n got %+v\nwant %+v", back.Summary, res.Summary)
	}
	if back.Summary.Errors["reverted"] != res.Summary.Errors["reverted"] {
		t.Fatal("errors by kind lost in the round trip")
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteDir(dir, sampleResult("hansa", 3)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(data) {
		t.Fatal("result.json is not valid JSON")
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	checkHTML(t, html)
}

func TestWriteText(t *testing.T) {
	res := sampleResult("hansa", 4)
	var buf bytes.Buffer
	if err := WriteText(&buf, res); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"offered", "confirmed", "p50", "p99", "errors by kind", "reverted", "note:"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestCompareReports(t *testing.T) {
	c := &Comparison{Workload: WorkloadERC20, Labels: []string{"hansa", "anvil"}}
	for round := range 3 {
		c.Rounds = append(c.Rounds, []*Result{sampleResult("hansa", uint64(10+round)), sampleResult("anvil", uint64(20+round))})
	}
	c.summarize()
	if c.Ratios["confirmed TPS"][0] != 1 {
		t.Fatalf("the first endpoint's ratio to itself is %v", c.Ratios["confirmed TPS"][0])
	}
	want := c.Median[1].ConfirmedTPS / c.Median[0].ConfirmedTPS
	if got := c.Ratios["confirmed TPS"][1]; got != want {
		t.Fatalf("ratio %v, want %v", got, want)
	}
	var sum int
	for _, round := range c.Rounds {
		sum += round[1].Summary.Confirmed
	}
	if c.Median[1].Confirmed != sum {
		t.Fatalf("confirmed over rounds %d, want the sum %d", c.Median[1].Confirmed, sum)
	}
	var text bytes.Buffer
	if err := WriteCompareText(&text, c); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "[2]/[1]") || !strings.Contains(text.String(), "confirmed TPS") {
		t.Fatalf("compare text lacks the ratio column:\n%s", text.String())
	}
	dir := t.TempDir()
	if err := WriteCompareDir(dir, c); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "compare.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Comparison
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("compare.json does not parse: %v", err)
	}
	if len(back.Rounds) != 3 || len(back.Median) != 2 {
		t.Fatalf("compare.json: %d rounds, %d medians", len(back.Rounds), len(back.Median))
	}
	html, err := os.ReadFile(filepath.Join(dir, "compare.html"))
	if err != nil {
		t.Fatal(err)
	}
	if counts := checkHTML(t, html); counts["svg"] != 2+3*2 {
		t.Fatalf("compare.html has %d plots, want 8", counts["svg"])
	}
}

func TestCompareNeedsTwoEndpoints(t *testing.T) {
	if _, err := Compare(t.Context(), []Config{DefaultConfig()}, 1, nil, nil); err == nil {
		t.Fatal("Compare with one endpoint did not fail")
	}
}
