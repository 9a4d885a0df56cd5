package e2etest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// ClusterOptions shape a cluster started by StartCluster.
type ClusterOptions struct {
	// Nodes is the number of members, passed to `hansa devnet init
	// --nodes`; 0 means 3.
	Nodes int
	// Configure, when set, is called for every node after `hansa devnet
	// init` with the node's name ("node1") and its generated config file.
	// It returns the config file the node runs with: the same file, or an
	// edited copy next to it.
	Configure func(name, config string) (string, error)
	// ReadyTimeout bounds the wait for every node's /readyz (default one
	// minute).
	ReadyTimeout time.Duration
}

// Cluster is a devnet written by `hansa devnet init --port-base 0` whose
// members run as separate `hansa node --config` processes, bound to
// 127.0.0.1 only. A t.Cleanup stops every running member (SIGTERM, expecting
// exit status 0) and, if the test failed, logs each member's output.
//
// Its methods are called from the test's goroutine; ClusterNode.Logs and
// ClusterNode.Call are also safe from others.
type Cluster struct {
	// Dir is the devnet directory.
	Dir string
	// Info is devnet.json as `hansa devnet init` wrote it.
	Info Info
	// Nodes are the members' processes by member id: Nodes[0] is member 1.
	Nodes []*ClusterNode

	tb  testing.TB
	bin string
}

// ClusterNode is one member of a Cluster and its (current) process.
type ClusterNode struct {
	// NodeEndpoints are the member's endpoints from devnet.json.
	NodeEndpoints
	// ConfigFile is the config file the process runs with.
	ConfigFile string

	tb   testing.TB
	bin  string
	logs *SyncBuffer // the output of every run, each after a marker line
	runs int
	proc *process // the current or last run; nil before the first

	adminMu sync.Mutex
	admin   *rpc.Client // replaced on every start
}

// process is one run of a member.
type process struct {
	cmd    *exec.Cmd
	start  int           // offset of this run's output in the node's logs
	done   chan struct{} // closed when the process has exited
	result error         // cmd.Wait's result, set before done is closed
}

// StartCluster writes a devnet into dir (which must not hold one) with
// `hansa devnet init --dir dir --nodes N --port-base 0`, lets
// opts.Configure edit each node's config, starts every member as its own
// process and waits until every member's /readyz answers 200. When a port
// picked as free was taken before a member bound it, the devnet is written
// afresh with new ports and started again.
func StartCluster(tb testing.TB, bin, dir string, opts ClusterOptions) *Cluster {
	tb.Helper()
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = time.Minute
	}
	c := &Cluster{Dir: dir, tb: tb, bin: bin}
	tb.Cleanup(c.cleanup)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			for _, n := range c.Nodes {
				n.Kill()
			}
			c.Nodes = nil
			if err := clearDir(dir); err != nil {
				tb.Fatalf("start cluster: %v (after %v)", err, lastErr)
			}
		}
		if lastErr = c.init(opts); lastErr != nil {
			tb.Fatalf("start cluster: %v", lastErr)
		}
		if lastErr = c.startAll(opts.ReadyTimeout); lastErr == nil {
			return c
		}
		if !strings.Contains(lastErr.Error(), "address already in use") {
			break // only a lost port race is worth another try
		}
	}
	tb.Fatalf("start cluster: %v", lastErr)
	return nil
}

// init writes the devnet and prepares its members.
func (c *Cluster) init(opts ClusterOptions) error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(c.bin, "devnet", "init", "--dir", c.Dir, "--nodes", strconv.Itoa(opts.Nodes), "--port-base", "0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("hansa devnet init: %w\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(c.Dir, "devnet.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, &c.Info); err != nil {
		return fmt.Errorf("devnet.json: %w", err)
	}
	if len(c.Info.Nodes) != opts.Nodes {
		return fmt.Errorf("devnet.json lists %d nodes, want %d", len(c.Info.Nodes), opts.Nodes)
	}
	for i, ep := range c.Info.Nodes {
		if ep.ID != uint64(i+1) {
			return fmt.Errorf("devnet.json: node %d has member id %d", i+1, ep.ID)
		}
		for _, u := range []string{ep.RPC, ep.Admin, ep.Metrics, "tcp://" + ep.Cluster} {
			if u != "tcp://" && !strings.Contains(u, "://127.0.0.1:") { // a one-node devnet has no cluster listener
				return fmt.Errorf("%s: endpoint %q is not on 127.0.0.1", ep.Name, u)
			}
		}
		config := ep.Config
		if opts.Configure != nil {
			if config, err = opts.Configure(ep.Name, ep.Config); err != nil {
				return fmt.Errorf("configure %s: %w", ep.Name, err)
			}
		}
		c.Nodes = append(c.Nodes, &ClusterNode{NodeEndpoints: ep, ConfigFile: config, tb: c.tb, bin: c.bin, logs: new(SyncBuffer)})
	}
	return nil
}

// startAll starts every member, then waits for each to be ready.
func (c *Cluster) startAll(timeout time.Duration) error {
	for _, n := range c.Nodes {
		if err := n.launch(); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := n.waitReady(timeout); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) cleanup() {
	for _, n := range c.Nodes {
		if n.Running() {
			if err := n.Terminate(); err != nil {
				c.tb.Errorf("stop %s: %v", n.Name, err)
			}
		}
		n.adminMu.Lock()
		if n.admin != nil {
			n.admin.Close()
		}
		n.adminMu.Unlock()
	}
	if c.tb.Failed() {
		for _, n := range c.Nodes {
			c.tb.Logf("%s output (%s):\n%s", n.Name, n.ConfigFile, tailLines(n.Logs(), 400))
		}
	}
}

// tailLines returns the last n lines of s, saying how many it left out.
func tailLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) <= n {
		return s
	}
	return fmt.Sprintf("[... %d earlier lines]\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], ""))
}

// Running returns the members whose process runs, by member id.
func (c *Cluster) Running() []*ClusterNode {
	var out []*ClusterNode
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Node returns member id.
func (c *Cluster) Node(id uint64) *ClusterNode { return c.Nodes[id-1] }

// WaitLeader waits until every running member among ids (every running
// member when ids is empty) answers raft_leader with the same member, itself
// one of ids, and returns it. It fails the test after timeout.
func (c *Cluster) WaitLeader(timeout time.Duration, ids ...uint64) uint64 {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	last := "no member asked"
	for {
		lead, why := c.agreedLeader(ids)
		if lead != 0 {
			return lead
		}
		last = why
		if time.Now().After(deadline) {
			c.tb.Fatalf("no agreed leader among %v within %v: %s", ids, timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// agreedLeader returns the leader the running members among ids agree on,
// or 0 and why not.
func (c *Cluster) agreedLeader(ids []uint64) (uint64, string) {
	var lead uint64
	asked := 0
	for _, n := range c.Running() {
		if len(ids) > 0 && !slices.Contains(ids, n.ID) {
			continue
		}
		ctx, cancel := context.WithTimeout(c.tb.Context(), 5*time.Second)
		l, err := n.Leader(ctx)
		cancel()
		switch {
		case err != nil:
			return 0, fmt.Sprintf("%s: raft_leader: %v", n.Name, err)
		case l == 0:
			return 0, n.Name + " knows no leader"
		case lead != 0 && l != lead:
			return 0, fmt.Sprintf("%s follows member %d, another member %d", n.Name, l, lead)
		}
		lead = l
		asked++
	}
	switch {
	case asked == 0:
		return 0, "no running member"
	case len(ids) > 0 && !slices.Contains(ids, lead):
		return 0, fmt.Sprintf("the members follow member %d, not one of %v", lead, ids)
	}
	return lead, ""
}

// Logs returns everything the member's processes wrote so far, every run
// after a line "--- hansa node run N ---".
func (n *ClusterNode) Logs() string { return n.logs.String() }

// RunLogs returns what the current (or last) run wrote so far.
func (n *ClusterNode) RunLogs() string {
	if n.proc == nil {
		return ""
	}
	return n.logs.String()[n.proc.start:]
}

// Running reports whether the member's process runs.
func (n *ClusterNode) Running() bool {
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.done:
		return false
	default:
		return true
	}
}

// launch starts the process without waiting for it to serve, and dials a
// new admin client (one that held connections to a previous run could hand
// a request to a dead connection).
func (n *ClusterNode) launch() error {
	if n.Running() {
		return fmt.Errorf("%s is already running", n.Name)
	}
	n.runs++
	fmt.Fprintf(n.logs, "--- hansa node run %d ---\n", n.runs)
	p := &process{start: len(n.logs.String()), done: make(chan struct{})}
	p.cmd = exec.Command(n.bin, "node", "--config", n.ConfigFile)
	p.cmd.Stdout, p.cmd.Stderr = n.logs, n.logs
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	go func() {
		p.result = p.cmd.Wait()
		close(p.done)
	}()
	n.proc = p
	admin, err := rpc.DialOptions(n.tb.Context(), n.Admin, rpc.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		return fmt.Errorf("dial %s admin: %w", n.Name, err)
	}
	n.adminMu.Lock()
	old := n.admin
	n.admin = admin
	n.adminMu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

// waitReady waits until the member's /readyz answers 200, or its process
// exits, or timeout passes.
func (n *ClusterNode) waitReady(timeout time.Duration) error {
	err := waitOK(n.OpsURL()+"/readyz", time.Now().Add(timeout), n.proc.done, func() error {
		return fmt.Errorf("%s exited before it was ready (%v):\n%s", n.Name, n.proc.result, tailLines(n.RunLogs(), 50))
	})
	select {
	case <-n.proc.done:
		return err // the exit, already described
	default:
	}
	if err != nil {
		return fmt.Errorf("%s not ready after %v (%w)", n.Name, timeout, err)
	}
	return nil
}

// Start starts the member's process again (with the same config file) and
// waits until its /readyz answers 200, within timeout. A port the member
// lost to another socket since its last run makes it try again a few times.
// It fails the test if the member does not become ready.
func (n *ClusterNode) Start(timeout time.Duration) {
	n.tb.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = n.launch(); err != nil {
			break
		}
		if err = n.waitReady(time.Until(deadline)); err == nil {
			return
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			break
		}
		n.Kill()
		time.Sleep(500 * time.Millisecond)
	}
	n.tb.Fatalf("restart %s: %v", n.Name, err)
}

// Kill sends SIGKILL and waits for the process to exit.
func (n *ClusterNode) Kill() {
	if !n.Running() {
		return
	}
	if err := n.proc.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		n.tb.Errorf("kill %s: %v", n.Name, err)
	}
	<-n.proc.done
}

// Terminate sends SIGTERM and waits for the process to exit, sending
// SIGKILL if it has not exited after 30 seconds. It returns nil only if the
// process exited with status 0.
func (n *ClusterNode) Terminate() error {
	if !n.Running() {
		return errors.New(n.Name + " is not running")
	}
	if err := n.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-n.proc.done:
		return n.proc.result
	case <-time.After(30 * time.Second):
		n.Kill()
		return errors.New("no exit within 30s of SIGTERM; killed")
	}
}

// Call calls an admin API method (raft_status, fault_block, ...) on the
// member's admin listener.
func (n *ClusterNode) Call(ctx context.Context, result any, method string, args ...any) error {
	n.adminMu.Lock()
	admin := n.admin
	n.adminMu.Unlock()
	if admin == nil {
		return errors.New(n.Name + " was never started")
	}
	return admin.CallContext(ctx, result, method, args...)
}

// Leader returns the member this one follows (raft_leader; 0 when it
// knows none).
func (n *ClusterNode) Leader(ctx context.Context) (uint64, error) {
	var id uint64
	err := n.Call(ctx, &id, "raft_leader")
	return id, err
}

// NewCluster returns an empty cluster in dir for members the test writes
// and adds itself with AddNode (a cluster formed with bootstrap_expect).
func NewCluster(tb testing.TB, bin, dir string) *Cluster {
	c := &Cluster{Dir: dir, tb: tb, bin: bin}
	tb.Cleanup(c.cleanup)
	return c
}

// AddNode adds a member that runs `hansa node --config config` with the
// given endpoints (a node joining the cluster, or a founder of a new one).
// It is not started: call Start, or Launch and WaitReady.
func (c *Cluster) AddNode(ep NodeEndpoints, config string) *ClusterNode {
	n := &ClusterNode{NodeEndpoints: ep, ConfigFile: config, tb: c.tb, bin: c.bin, logs: new(SyncBuffer)}
	c.Nodes = append(c.Nodes, n)
	return n
}

// Launch starts the member's process without waiting for it to serve.
func (n *ClusterNode) Launch() {
	n.tb.Helper()
	if err := n.launch(); err != nil {
		n.tb.Fatal(err)
	}
}

// WaitReady waits until the member's /readyz answers 200 (or its process
// exits, or timeout passes).
func (n *ClusterNode) WaitReady(timeout time.Duration) error { return n.waitReady(timeout) }

// Exited reports whether the member's last run has ended and its result
// (nil for exit status 0).
func (n *ClusterNode) Exited() (bool, error) {
	if n.proc == nil {
		return false, nil
	}
	select {
	case <-n.proc.done:
		return true, n.proc.result
	default:
		return false, nil
	}
}
