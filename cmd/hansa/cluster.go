package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/node"
)

const clusterUsage = `usage:
  hansa cluster status  --admin URL [--json]          every member's role, health, lag and addresses
  hansa cluster remove  --admin URL --id N [--force]  remove a member (a dead node)
  hansa cluster promote --admin URL --id N [--force]  make a learner a voter
  hansa cluster demote  --admin URL --id N [--force]  make a voter a learner
  hansa leave           --admin URL [--force]         take the node at URL out of the cluster

URL is a node's admin listener (admin_addr), e.g. http://127.0.0.1:9645.
--force overrides the quorum check; it can leave the cluster unable to commit.`

// runCluster runs "hansa cluster SUBCOMMAND".
func runCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, clusterUsage)
		return errors.New("no cluster subcommand given")
	}
	switch args[0] {
	case "status":
		return runClusterStatus(ctx, args[1:], stdout, stderr)
	case "remove", "promote", "demote":
		return runClusterChange(ctx, args[0], args[1:], stdout, stderr)
	default:
		fmt.Fprintln(stderr, clusterUsage)
		return fmt.Errorf("unknown cluster subcommand %q", args[0])
	}
}

func dialAdmin(ctx context.Context, url string) (*gethrpc.Client, error) {
	if url == "" {
		return nil, errors.New("--admin URL is required (the node's admin listener, e.g. http://127.0.0.1:9645)")
	}
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	return gethrpc.DialContext(ctx, url)
}

// adminCall calls method on the admin API at url, within a minute.
func adminCall(ctx context.Context, url string, result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := dialAdmin(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, result, method, args...)
}

func runClusterStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster status", stderr)
	admin := fs.String("admin", "", "a node's admin API URL")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := dialAdmin(ctx, *admin)
	if err != nil {
		return err
	}
	defer c.Close()
	var st node.MembershipStatus
	if err := c.CallContext(ctx, &st, "membership_status"); err != nil {
		return fmt.Errorf("membership_status on %s: %w", *admin, err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(stdout, st)
	return nil
}

// printStatus writes the status as a table.
func printStatus(w io.Writer, st node.MembershipStatus) {
	fmt.Fprintf(w, "leader %d, term %d, commit %d, next id %d (view: %s, asked member %d)\n", st.Leader, st.Term, st.Commit, st.NextID, st.Source, st.Self)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tROLE\tHEALTH\tLAST CONTACT\tHEIGHT\tAPPLIED\tLAG\tCLUSTER ADDR\tRPC\tNODE ADDRESS")
	for _, m := range st.Members {
		contact := "-"
		if m.LastContact != nil {
			contact = time.Since(*m.LastContact).Round(100*time.Millisecond).String() + " ago"
		}
		health := m.Health
		if m.Leaving {
			health += " (leaving)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\n", m.ID, m.Name, m.Role, health, contact, m.Height, m.Applied, m.Lag,
			orDash(m.ClusterAddr), orDash(m.RPCURL), m.Address)
	}
	tw.Flush()
	if len(st.DeadVoters) > 0 {
		fmt.Fprintf(w, "DEAD VOTERS: %v — remove them (hansa cluster remove) or bring them back\n", st.DeadVoters)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func runClusterChange(ctx context.Context, op string, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("cluster "+op, stderr)
	admin := fs.String("admin", "", "a node's admin API URL")
	id := fs.Uint64("id", 0, "the member id")
	force := fs.Bool("force", false, "override the quorum check (dangerous)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *id == 0 {
		return errors.New("--id is required")
	}
	if *force {
		fmt.Fprintln(stderr, "WARNING: --force overrides the quorum check; the cluster may be unable to commit afterwards")
	}
	var ok bool
	if err := adminCall(ctx, *admin, &ok, "membership_"+op, *id, *force); err != nil {
		return fmt.Errorf("%s member %d: %w", op, *id, err)
	}
	fmt.Fprintf(stdout, "member %d: %s done\n", *id, op)
	return nil
}

// runLeave runs "hansa leave".
func runLeave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("leave", stderr)
	admin := fs.String("admin", "", "the leaving node's admin API URL")
	force := fs.Bool("force", false, "override the quorum check (dangerous)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var id uint64
	if err := adminCall(ctx, *admin, &id, "membership_leave", *force); err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	fmt.Fprintf(stdout, "member %d left the cluster; the node stops\n", id)
	return nil
}
