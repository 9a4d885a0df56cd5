// Command hansa is the one Hansa binary: node, devnet, keys and genesis.
// Flags live here and only here; main calls run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hansa-chain/hansa/internal/telemetry"
	"github.com/hansa-chain/hansa/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "hansa:", err)
		}
		os.Exit(1)
	}
}

const usage = `hansa — a permissioned Ethereum-compatible chain in one binary

Usage:
  hansa devnet [--dir ./devnet] [--nodes 3]       run a local development cluster (creates it if missing)
  hansa devnet init [--dir ./devnet] [--nodes 3]  only write the devnet's files
  hansa node --config FILE [flags]                run a node
  hansa keys new [--out FILE]                     create a secp256k1 key and print its address
  hansa genesis --out FILE [flags]                write a genesis file
  hansa node --join ADDR --join-token T ...       join a running cluster (as a learner; promoted when caught up)
  hansa node --bootstrap-expect N --peers A,B ...  form a new cluster of N fresh nodes
  hansa cluster status|remove|promote|demote      see and change the membership (--admin URL)
  hansa leave --admin URL                         take a node out of its cluster
  hansa gateway --config FILE                     run the health-aware JSON-RPC gateway
  hansa bench --rpc URL --key KEY ...             measure an Ethereum JSON-RPC endpoint
  hansa version                                   print the version

Run "hansa COMMAND --help" for a command's flags.
`

// run executes the command line args, writing to stdout and stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "node":
		return runNode(ctx, args[1:], stdout, stderr)
	case "devnet":
		if len(args) > 1 && args[1] == "init" {
			return runDevnetInit(args[2:], stdout, stderr)
		}
		return runDevnet(ctx, args[1:], stdout, stderr)
	case "keys":
		if len(args) > 1 && args[1] == "new" {
			return runKeysNew(args[2:], stdout, stderr)
		}
		return errors.New(`usage: hansa keys new [--out FILE]`)
	case "genesis":
		return runGenesis(args[1:], stdout, stderr)
	case "bench":
		return runBench(ctx, args[1:], stdout, stderr)
	case "gateway":
		return runGateway(ctx, args[1:], stdout, stderr)
	case "cluster":
		return runCluster(ctx, args[1:], stdout, stderr)
	case "leave":
		return runLeave(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, version.ClientVersion())
		return nil
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

// newLogger builds the process logger from a config's level and format.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	lvl, err := telemetry.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	f, err := telemetry.ParseFormat(format)
	if err != nil {
		return nil, err
	}
	return telemetry.NewLogger(w, lvl, f), nil
}

// override sets each destination whose flag was given (non-empty).
func override(flags map[*string]string) {
	for dst, src := range flags {
		if src != "" {
			*dst = src
		}
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args into fs; the commands take flags only, so any
// positional argument is an error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %v", fs.Name(), fs.Args())
	}
	return nil
}
