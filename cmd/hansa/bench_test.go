package main

// End-to-end tests of "hansa bench" against a real `hansa devnet` process at
// a low rate: every transaction is confirmed and counted exactly once,
// forced reverts count as failures, and the reports are well-formed. No
// assertion is about speed.

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/hansa-chain/hansa/internal/bench"
)

func TestBenchE2E(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts a devnet")
	}
	n := startE2E(t, "")
	const (
		accounts = 4
		rate     = 20 // per second, for 1 s of warm-up and 2 s measured
		planned  = 60
		warmOps  = 20
		measured = planned - warmOps
	)
	tests := []struct {
		name     string
		key      int // dev account funding the run; each test its own, so sender sets differ
		args     []string
		reverted int // forced reverts in the measured window
	}{
		// newHeads over WebSocket.
		{"transfer", 1, []string{"--workload", "transfer", "--ws", n.WSURL()}, 0},
		// Block polling; every fourth transfer is built to revert: indices
		// 3, 7, ..., of which 10 fall in the measured window (20..59).
		{"erc20 with reverts", 2, []string{"--workload", "erc20", "--revert-share", "0.25"}, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := n.keys[tt.key]
			out := filepath.Join(t.TempDir(), "out")
			args := append([]string{
				"--rpc", n.RPCURL(), "--key", hexutil.Encode(crypto.FromECDSA(key)),
				"--rate", fmt.Sprint(rate), "--warmup", "1s", "--duration", "2s",
				"--accounts", fmt.Sprint(accounts), "--out", out,
			}, tt.args...)
			var stdout, stderr bytes.Buffer
			if err := runBench(t.Context(), args, &stdout, &stderr); err != nil {
				t.Fatalf("hansa bench: %v\n%s", err, stderr.String())
			}
			t.Logf("%s", stdout.String())
			if !strings.Contains(stderr.String(), "offered") {
				t.Errorf("no progress line on stderr:\n%s", stderr.String())
			}

			data, err := os.ReadFile(filepath.Join(out, "result.json"))
			if err != nil {
				t.Fatal(err)
			}
			var res bench.Result
			if err := json.Unmarshal(data, &res); err != nil {
				t.Fatalf("result.json: %v", err)
			}
			s := res.Summary
			if s.Offered != measured || s.WarmupOps != warmOps {
				t.Fatalf("offered %d (+%d warm-up), want %d (+%d)", s.Offered, s.WarmupOps, measured, warmOps)
			}
			if s.Sent != measured {
				t.Errorf("sent %d of %d", s.Sent, measured)
			}
			if s.Failed != tt.reverted || s.Errors["reverted"] != tt.reverted || len(s.Errors) != min(tt.reverted, 1) {
				t.Errorf("failed %d, errors %v; want exactly %d reverted", s.Failed, s.Errors, tt.reverted)
			}
			if s.Confirmed != measured-tt.reverted || s.Confirmed+s.Failed != s.Offered {
				t.Errorf("confirmed %d + failed %d, offered %d; want %d confirmed", s.Confirmed, s.Failed, s.Offered, measured-tt.reverted)
			}
			l := s.Latency
			if l.Count != s.Confirmed || !(l.Min <= l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.Max) {
				t.Errorf("latency statistics inconsistent: %+v", l)
			}
			// Each transaction counted once in the series, warm-up included.
			var off, conf, fail int
			for _, sec := range res.Series {
				off, conf, fail = off+sec.Offered, conf+sec.Confirmed, fail+sec.Failed
			}
			if off != planned || conf+fail != planned {
				t.Errorf("series: offered %d, confirmed %d + failed %d; want %d each", off, conf, fail, planned)
			}

			// On chain: the senders' nonces advanced by exactly the planned
			// transactions, so none was sent twice or left out.
			senders, err := bench.SenderAddresses(key, accounts)
			if err != nil {
				t.Fatal(err)
			}
			var nonces uint64
			for _, a := range senders {
				nonce, err := n.http.NonceAt(t.Context(), a, nil)
				if err != nil {
					t.Fatal(err)
				}
				nonces += nonce
			}
			if nonces != planned {
				t.Errorf("senders' nonces sum to %d, want %d", nonces, planned)
			}

			html, err := os.ReadFile(filepath.Join(out, "report.html"))
			if err != nil {
				t.Fatal(err)
			}
			if svgs := wellFormedSVGs(t, html); svgs != 3 {
				t.Errorf("report.html has %d plots, want 3", svgs)
			}
		})
	}
}

// wellFormedSVGs parses an HTML report as XML (the reports are written as
// well-formed XHTML), fails on any parse error or external reference, and
// returns the number of <svg> elements.
func wellFormedSVGs(t *testing.T, doc []byte) int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	svgs, depth := 0, 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("report.html is not well-formed: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			if el.Name.Local == "svg" {
				svgs++
			}
			if el.Name.Local == "script" {
				t.Fatal("report.html has a script")
			}
			for _, a := range el.Attr {
				if a.Name.Local == "src" || a.Name.Local == "href" {
					t.Fatalf("report.html loads %q", a.Value)
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Fatalf("report.html: unbalanced elements (depth %d)", depth)
	}
	return svgs
}

func TestBenchFlags(t *testing.T) {
	const key = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d" // dev account 1
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no rpc", []string{"--key", "0x01"}, "--rpc is required"},
		{"two rpcs", []string{"--rpc", "http://a,http://b", "--key", "0x01"}, "compare"},
		{"bad key", []string{"--rpc", "http://127.0.0.1:1", "--key", "zz"}, "--key"},
		{"bad workload", []string{"--rpc", "http://127.0.0.1:1", "--key", key, "--workload", "x"}, "unknown workload"},
		{"bad gas price", []string{"--rpc", "http://127.0.0.1:1", "--key", key, "--gas-price", "cheap"}, "--gas-price"},
		{"compare ws count", []string{"compare", "--rpc", "http://a,http://b", "--ws", "ws://a", "--key", "0x01"}, "one --ws"},
		{"compare one endpoint", []string{"compare", "--rpc", "http://127.0.0.1:1", "--key", key}, "at least two"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runBench(t.Context(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("runBench(%q) = %v, want an error about %q", tt.args, err, tt.want)
			}
		})
	}
}
