// Package internal_test checks the direction of imports between Hansa's
// packages (STYLE.md rule 1): cmd → node/gateway/bench → consensus,
// execution, rpc, txpool, transport → storage → chain. A package never
// imports, directly or through others, one that belongs above it or beside
// it where the design keeps them apart.
package internal_test

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/hansa-chain/hansa/"

// forbidden lists, per package prefix, the packages it must not reach.
var forbidden = map[string][]string{
	"internal/consensus": {"internal/execution", "internal/rpc", "internal/transport", "internal/txpool", "internal/node", "internal/storage", "internal/gateway", "internal/bench"},
	"internal/transport": {"internal/consensus", "internal/execution", "internal/rpc", "internal/txpool", "internal/node", "internal/storage", "internal/gateway", "internal/bench"},
	"internal/execution": {"internal/consensus", "internal/rpc", "internal/transport", "internal/txpool", "internal/node", "internal/gateway", "internal/bench"},
	"internal/txpool":    {"internal/consensus", "internal/execution", "internal/rpc", "internal/transport", "internal/node", "internal/gateway", "internal/bench"},
	"internal/rpc":       {"internal/consensus", "internal/transport", "internal/node", "internal/gateway", "internal/bench"},
	"internal/storage":   {"internal/consensus", "internal/execution", "internal/rpc", "internal/transport", "internal/txpool", "internal/node", "internal/gateway", "internal/bench"},
	"internal/chain":     {"internal/"},
	"internal/gateway":   {"internal/node", "internal/consensus", "internal/execution", "internal/storage", "internal/txpool", "internal/transport", "internal/bench"},
	"internal/node":      {"internal/gateway", "internal/bench"},
}

func TestImportDirection(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	deps := map[string][]string{} // package → its module-internal imports
	var load func(rel string)
	load = func(rel string) {
		if _, ok := deps[rel]; ok {
			return
		}
		deps[rel] = nil
		pkg, err := build.ImportDir(filepath.Join(root, rel), 0)
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		for _, imp := range pkg.Imports {
			if dep, ok := strings.CutPrefix(imp, module); ok {
				deps[rel] = append(deps[rel], dep)
				load(dep)
			}
		}
	}
	// Every package below each prefix (consensus/raft, consensus/solo, ...).
	packages := map[string][]string{}
	for prefix := range forbidden {
		err := filepath.WalkDir(filepath.Join(root, prefix), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if matches, _ := filepath.Glob(filepath.Join(path, "*.go")); len(matches) == 0 {
				return nil
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			load(rel)
			packages[prefix] = append(packages[prefix], rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	reach := func(from string) []string {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(p string) {
			for _, d := range deps[p] {
				if !seen[d] {
					seen[d] = true
					walk(d)
				}
			}
		}
		walk(from)
		var out []string
		for d := range seen {
			out = append(out, d)
		}
		slices.Sort(out)
		return out
	}
	for prefix, bad := range forbidden {
		for _, pkg := range packages[prefix] {
			for _, dep := range reach(pkg) {
				for _, b := range bad {
					if dep == b || strings.HasPrefix(dep, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(dep, b)) {
						t.Errorf("%s reaches %s (forbidden: %s)", pkg, dep, b)
					}
				}
			}
		}
	}
	if len(packages["internal/consensus"]) < 3 {
		t.Fatalf("found %v under internal/consensus; want consensus, raft and solo", packages["internal/consensus"])
	}
	if len(deps["internal/node"]) == 0 {
		t.Fatal("no imports found for internal/node: the walk is broken")
	}
}
