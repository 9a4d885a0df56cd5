package main

// Real-process membership tests: nodes join a running three-node cluster
// under a stream of transfers, learn, get promoted, are killed mid catch-up
// and restarted; voters die and are removed (a removal that would break
// quorum is refused); three fresh nodes form a cluster with
// --bootstrap-expect in random order. After each: every member holds the
// same chain and no acknowledged transaction is missing.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/e2etest"
	"github.com/hansa-chain/hansa/internal/keys"
	"github.com/hansa-chain/hansa/internal/node"
)

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// nodeFiles writes cfg (with fresh loopback listeners, and clusterAddr or
// a fresh one) to dir/config.toml and returns the endpoints of the node
// that will run it.
func nodeFiles(t *testing.T, dir, name string, id uint64, cfg node.Config, clusterAddr string) (e2etest.NodeEndpoints, string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	http, ops, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg.DataDir, cfg.NodeKey = filepath.Join(dir, "data"), filepath.Join(dir, "nodekey")
	cfg.HTTPAddr, cfg.OpsAddr, cfg.AdminAddr = http, ops, admin
	if clusterAddr == "" {
		clusterAddr = freeAddr(t)
	}
	cfg.Cluster.ListenAddr, cfg.Cluster.Name = clusterAddr, name
	path := filepath.Join(dir, "config.toml")
	if err := node.WriteConfig(path, cfg); err != nil {
		t.Fatal(err)
	}
	return e2etest.NodeEndpoints{ID: id, Name: name, RPC: "http://" + http, WS: "ws://" + http, Metrics: "http://" + ops + "/metrics",
		Admin: "http://" + admin, Cluster: cfg.Cluster.ListenAddr, Config: path, DataDir: cfg.DataDir}, path
}

// newJoiner prepares (does not start) a node that joins the cluster through
// members 1 and 2; it should become member id.
func (fc *faultCluster) newJoiner(name string, id uint64) *e2etest.ClusterNode {
	t := fc.t
	t.Helper()
	cfg, err := node.LoadConfig(fc.Nodes[0].ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cluster.Peers = nil
	cfg.Cluster.Join = []string{fc.Nodes[0].Cluster, fc.Nodes[1].Cluster}
	ep, path := nodeFiles(t, filepath.Join(fc.Dir, name), name, id, cfg, "")
	n := fc.AddNode(ep, path)
	fc.mu.Lock()
	fc.clients = append(fc.clients, nil)
	fc.mu.Unlock()
	return n
}

// membership returns membership_status as member index i answers it.
func (fc *faultCluster) membership(i int) node.MembershipStatus {
	fc.t.Helper()
	ctx, cancel := context.WithTimeout(fc.t.Context(), 10*time.Second)
	defer cancel()
	var st node.MembershipStatus
	if err := fc.Nodes[i].Call(ctx, &st, "membership_status"); err != nil {
		fc.t.Fatalf("%s: membership_status: %v", fc.Nodes[i].Name, err)
	}
	return st
}

// waitMembership waits until member index i's membership_status satisfies
// ok, which returns why not.
func (fc *faultCluster) waitMembership(i int, what string, ok func(node.MembershipStatus) string) node.MembershipStatus {
	fc.t.Helper()
	deadline := time.Now().Add(faultWait)
	for {
		st := fc.membership(i)
		why := ok(st)
		if why == "" {
			return st
		}
		if time.Now().After(deadline) {
			fc.t.Fatalf("%s: not within %v: %s (status %+v)", what, faultWait, why, st)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// roles returns the member ids by role ("voter" includes the leader).
func roles(st node.MembershipStatus) (voters, learners []uint64) {
	for _, m := range st.Members {
		if m.Role == "learner" {
			learners = append(learners, m.ID)
		} else {
			voters = append(voters, m.ID)
		}
	}
	return voters, learners
}

func wantRoles(voters, learners []uint64) func(node.MembershipStatus) string {
	return func(st node.MembershipStatus) string {
		v, l := roles(st)
		if slices.Equal(v, voters) && slices.Equal(l, learners) {
			return ""
		}
		return fmt.Sprintf("voters %v learners %v, want %v %v", v, l, voters, learners)
	}
}

func TestClusterMembershipChanges(t *testing.T) {
	fc := startFaultCluster(t, func(cfg *node.Config) {
		cfg.Cluster.TargetVoters = 5
		cfg.Cluster.PromoteAfter = time.Second
		cfg.Cluster.DeadAfter = 3 * time.Second
	})
	s := fc.startStream()
	s.waitAcks(t, 0, 150)

	// Refused joins end the process with the reason: a wrong token, and a
	// founding voter's key on an empty data directory (it lost its data).
	refused := func(name string, edit func(*node.Config), key string, want string) {
		t.Helper()
		cfg, err := node.LoadConfig(fc.Nodes[0].ConfigFile)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Cluster.Peers, cfg.Cluster.Join = nil, []string{fc.Nodes[1].Cluster}
		edit(&cfg)
		dir := filepath.Join(fc.Dir, name)
		ep, path := nodeFiles(t, dir, name, 0, cfg, "")
		if key != "" {
			raw, err := os.ReadFile(key)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "nodekey"), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, err := exec.Command(hansaBinary(t), "node", "--config", path).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("%s (%s): exit %v, want a refusal containing %q:\n%s", name, ep.Cluster, err, want, out)
		}
	}
	refused("wrongtoken", func(c *node.Config) { c.Cluster.JoinToken = "not-the-token" }, "", "wrong join token")
	refused("lostvoter", func(*node.Config) {}, filepath.Join(filepath.Dir(fc.Nodes[0].DataDir), "nodekey"), "must first be removed")

	// A joiner killed during its catch-up restarts with the same id and is
	// never listed twice.
	n4 := fc.newJoiner("node4", 4)
	n4.Launch()
	fc.waitMembership(0, "node4 admitted", func(st node.MembershipStatus) string {
		for _, m := range st.Members {
			if m.ID == 4 {
				return ""
			}
		}
		return "member 4 not listed"
	})
	n4.Kill()
	n4.Start(faultWait)
	fc.redial(3)
	st := fc.waitMembership(0, "node4 a learner", wantRoles([]uint64{1, 2, 3}, []uint64{4}))
	if st.NextID != 5 || len(st.Members) != 4 {
		t.Fatalf("after a join retried across a crash: next id %d, %d members; want 5 and 4", st.NextID, len(st.Members))
	}
	// With target 5, one caught-up learner waits for a second (no even
	// voter count on the way unless it leads to the target).
	s.waitAcks(t, s.acks(), 100)
	if v, _ := roles(fc.membership(0)); len(v) != 3 {
		t.Fatalf("voters %v: a single learner was promoted to an even count", v)
	}

	n5 := fc.newJoiner("node5", 5)
	n5.Start(faultWait)
	fc.redial(4)
	fc.waitMembership(0, "both joiners promoted", wantRoles([]uint64{1, 2, 3, 4, 5}, nil))
	st = fc.waitMembership(3, "every member up", func(st node.MembershipStatus) string {
		for _, m := range st.Members {
			if m.Health != "up" {
				return fmt.Sprintf("member %d is %s", m.ID, m.Health)
			}
		}
		return ""
	})
	for _, m := range st.Members {
		if m.ID == 5 && (m.Address != common.HexToAddress(fc.keyAddress(n5)) || m.ClusterAddr != n5.Cluster || m.RPCURL != n5.RPC) {
			t.Fatalf("member 5 recorded as %+v; want its key, %s and %s", m, n5.Cluster, n5.RPC)
		}
	}
	s.waitAcks(t, s.acks(), 100)

	// A member restarted on other addresses updates its record.
	if err := n5.Terminate(); err != nil {
		t.Fatalf("stop node5: %v", err)
	}
	cfg, err := node.LoadConfig(n5.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cluster.ListenAddr, cfg.HTTPAddr = freeAddr(t), freeAddr(t)
	moved := n5.ConfigFile + ".moved"
	if err := node.WriteConfig(moved, cfg); err != nil {
		t.Fatal(err)
	}
	n5.ConfigFile, n5.Cluster, n5.RPC, n5.WS = moved, cfg.Cluster.ListenAddr, "http://"+cfg.HTTPAddr, "ws://"+cfg.HTTPAddr
	n5.Start(faultWait)
	fc.redial(4)
	fc.waitMembership(0, "node5's new addresses recorded and reachable", func(st node.MembershipStatus) string {
		for _, m := range st.Members {
			if m.ID == 5 && m.ClusterAddr == n5.Cluster && m.RPCURL == n5.RPC && m.Health == "up" {
				return ""
			}
		}
		return "member 5 still at its old addresses or not up"
	})

	// Two voters other than the leader die.
	lead := fc.WaitLeader(faultWait)
	var dead []uint64
	for _, id := range []uint64{1, 2, 3} {
		if id != lead && len(dead) < 2 {
			dead = append(dead, id)
		}
	}
	for _, id := range dead {
		s.stopMember(int(id - 1))
		fc.Node(id).Kill()
	}
	leadIdx := int(lead - 1)
	fc.waitMembership(leadIdx, "dead voters reported", func(st node.MembershipStatus) string {
		if slices.Equal(st.DeadVoters, dead) {
			return ""
		}
		return fmt.Sprintf("dead voters %v, want %v", st.DeadVoters, dead)
	})
	// Removing a live voter now would leave 2 live voters of 4: refused.
	var live uint64
	for _, id := range []uint64{4, 5} {
		if id != lead {
			live = id
			break
		}
	}
	var ok bool
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := fc.Node(lead).Call(ctx, &ok, "membership_remove", live, false); err == nil || !strings.Contains(err.Error(), "breaks quorum") {
		t.Fatalf("removing live voter %d with 2 of 5 voters dead: %v, want a refusal (breaks quorum)", live, err)
	}
	// Removing the dead voters keeps a quorum (3 live of 4, then of 3).
	for _, id := range dead {
		if err := fc.Node(live).Call(ctx, &ok, "membership_remove", id, false); err != nil {
			t.Fatalf("remove dead voter %d: %v", id, err)
		}
	}
	var voters []uint64
	for _, id := range []uint64{1, 2, 3, 4, 5} {
		if !slices.Contains(dead, id) {
			voters = append(voters, id)
		}
	}
	st = fc.waitMembership(leadIdx, "dead voters removed", wantRoles(voters, nil))
	if st.NextID != 6 {
		t.Fatalf("next id %d after removals, want 6 (ids are never reused)", st.NextID)
	}
	s.waitAcks(t, s.acks(), 100)

	// A removed node that comes back finds out and stops; it never rejoins.
	gone := fc.Node(dead[0])
	gone.Launch()
	deadline := time.Now().Add(faultWait)
	for {
		if exited, _ := gone.Exited(); exited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("removed %s still runs after %v", gone.Name, faultWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(gone.RunLogs(), "removed from the cluster") {
		t.Fatalf("removed %s stopped without saying why:\n%s", gone.Name, gone.RunLogs())
	}
	if v, l := roles(fc.membership(leadIdx)); !slices.Equal(v, voters) || len(l) != 0 {
		t.Fatalf("after the removed node's return: voters %v learners %v", v, l)
	}

	// The leader leaves gracefully (hansa leave): it hands leadership
	// over, is removed, and its process exits 0.
	lead = fc.WaitLeader(faultWait, voters...)
	if lead <= 3 {
		s.stopMember(int(lead - 1)) // its senders pause; its acknowledgements must survive
	}
	out, err := exec.Command(hansaBinary(t), "leave", "--admin", fc.Node(lead).Admin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("member %d left the cluster", lead)) {
		t.Fatalf("hansa leave on the leader %d: %v\n%s", lead, err, out)
	}
	leaver := fc.Node(lead)
	deadline = time.Now().Add(faultWait)
	for {
		exited, result := leaver.Exited()
		if exited {
			if result != nil {
				t.Fatalf("the member that left exited with %v", result)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member %d still runs %v after leaving", lead, faultWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rest := slices.DeleteFunc(slices.Clone(voters), func(id uint64) bool { return id == lead })
	fc.waitMembership(int(rest[0]-1), "the leader left", wantRoles(rest, nil))
	fc.WaitLeader(faultWait, rest...)

	s.stop(t)
	fc.waitConverged(streamHashes(s.acked))
}

// keyAddress returns the address of the node key in n's data directory.
func (fc *faultCluster) keyAddress(n *e2etest.ClusterNode) string {
	key, err := keys.Load(filepath.Join(filepath.Dir(n.DataDir), "nodekey"))
	if err != nil {
		fc.t.Fatal(err)
	}
	return crypto.PubkeyToAddress(key.PublicKey).Hex()
}

// TestClusterBootstrapExpect starts three fresh nodes with
// --bootstrap-expect 3 in random order with random delays: they form one
// cluster, numbered by node address, and replicate one chain.
func TestClusterBootstrapExpect(t *testing.T) {
	bin := hansaBinary(t)
	dir := t.TempDir()
	// A devnet's genesis (funded dev accounts), without members.
	if out, err := exec.Command(bin, "devnet", "init", "--dir", filepath.Join(dir, "dn"), "--nodes", "1", "--port-base", "0").CombinedOutput(); err != nil {
		t.Fatalf("devnet init: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "dn", "genesis.json"))
	if err != nil {
		t.Fatal(err)
	}
	var gen map[string]any
	if err := json.Unmarshal(raw, &gen); err != nil {
		t.Fatal(err)
	}
	gen["members"] = []any{}
	genesis := filepath.Join(dir, "genesis.json")
	raw, _ = json.Marshal(gen)
	if err := os.WriteFile(genesis, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	c := e2etest.NewCluster(t, bin, dir)
	cluster := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var addrs []common.Address
	for i := range 3 {
		name := fmt.Sprintf("founder%d", i+1)
		cfg := node.DefaultConfig()
		cfg.Genesis = genesis
		cfg.Cluster.BootstrapExpect, cfg.Cluster.BootstrapPeers, cfg.Cluster.JoinToken = 3, cluster, "test-token"
		ep, path := nodeFiles(t, filepath.Join(dir, name), name, 0, cfg, cluster[i])
		key, err := keys.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if err := keys.Save(filepath.Join(dir, name, "nodekey"), key); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, crypto.PubkeyToAddress(key.PublicKey))
		c.AddNode(ep, path)
	}
	order := rand.Perm(3)
	t.Logf("start order %v", order)
	for _, i := range order {
		time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
		c.Nodes[i].Launch()
	}
	for _, n := range c.Nodes {
		if err := n.WaitReady(faultWait); err != nil {
			t.Fatal(err)
		}
	}
	// Ids follow node-address order, the same on every node.
	sorted := slices.Clone(addrs)
	slices.SortFunc(sorted, func(a, b common.Address) int { return bytes.Compare(a[:], b[:]) })
	for i, n := range c.Nodes {
		var st node.RaftStatus
		if err := n.Call(t.Context(), &st, "raft_status"); err != nil {
			t.Fatal(err)
		}
		if want := uint64(slices.Index(sorted, addrs[i]) + 1); st.ID != want || !slices.Equal(st.Voters, []uint64{1, 2, 3}) {
			t.Fatalf("%s: member %d with voters %v; want member %d of [1 2 3]", n.Name, st.ID, st.Voters, want)
		}
	}
	lead := uint64(0)
	deadline := time.Now().Add(faultWait)
	for lead == 0 {
		var ids []uint64
		for _, n := range c.Nodes {
			l, err := n.Leader(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, l)
		}
		if ids[0] != 0 && ids[0] == ids[1] && ids[1] == ids[2] {
			lead = ids[0]
		} else if time.Now().After(deadline) {
			t.Fatalf("no agreed leader: %v", ids)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Transfers through every node land in the same blocks everywhere.
	devKey, err := keys.DeriveAccount(keys.DevMnemonic, 0)
	if err != nil {
		t.Fatal(err)
	}
	clients := make([]*ethclient.Client, 3)
	for i, n := range c.Nodes {
		if clients[i], err = ethclient.Dial(n.RPC); err != nil {
			t.Fatal(err)
		}
		defer clients[i].Close()
	}
	var hashes []common.Hash
	for nonce := range uint64(9) {
		tx := types.MustSignNewTx(devKey, e2eSigner(), transferTx(nonce, common.HexToAddress("0xbeef"), 1))
		if err := clients[nonce%3].SendTransaction(t.Context(), tx); err != nil {
			t.Fatalf("send nonce %d via %s: %v", nonce, c.Nodes[nonce%3].Name, err)
		}
		hashes = append(hashes, tx.Hash())
	}
	for _, h := range hashes {
		var block common.Hash
		for i, cl := range clients {
			r := waitForReceipt(t, cl, h)
			if i == 0 {
				block = r.BlockHash
			} else if r.BlockHash != block {
				t.Fatalf("tx %s in block %s on %s, %s on %s", h, block, c.Nodes[0].Name, r.BlockHash, c.Nodes[i].Name)
			}
		}
	}
	bal, err := clients[2].BalanceAt(t.Context(), common.HexToAddress("0xbeef"), nil)
	if err != nil || bal.Cmp(big.NewInt(9)) != 0 {
		t.Fatalf("recipient balance %v (%v), want 9", bal, err)
	}
}

// waitForReceipt polls for a transaction's receipt.
func waitForReceipt(t *testing.T, c *ethclient.Client, h common.Hash) *types.Receipt {
	t.Helper()
	deadline := time.Now().Add(faultWait)
	for {
		r, err := c.TransactionReceipt(t.Context(), h)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no receipt for %s within %v: %v", h, faultWait, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricSum scrapes url and sums the samples of metric whose labels
// contain every one of want (e.g. `upstream="member-4"`).
func metricTotal(t *testing.T, url, metric string, want ...string) float64 {
	t.Helper()
	resp, err := httpGet(t, url)
	if err != nil {
		return -1
	}
	var sum float64
	for _, line := range strings.Split(resp, "\n") {
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(line, w)
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v); err == nil {
			sum += v
		}
	}
	return sum
}

func httpGet(t *testing.T, url string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// TestDevnetGatewayFollowsMembership joins a node to a running 3-node
// devnet: the devnet's gateway, which takes its upstreams from the
// membership, routes to the newcomer only once it is up, and drains it
// when it leaves — while every call through the gateway succeeds.
func TestDevnetGatewayFollowsMembership(t *testing.T) {
	bin := hansaBinary(t)
	d := e2etest.StartWith(t, bin, filepath.Join(t.TempDir(), "devnet"), e2etest.Options{Nodes: 3})
	raw, err := os.ReadFile(filepath.Join(d.Dir, "devnet.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Genesis   string `json:"genesis"`
		JoinToken string `json:"joinToken"`
	}
	if err := json.Unmarshal(raw, &file); err != nil || file.JoinToken == "" {
		t.Fatalf("devnet.json: %v (join token %q)", err, file.JoinToken)
	}
	gwMetrics := "http://" + d.GatewayOpsAddr + "/metrics"
	waitMetric := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(faultWait)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, faultWait)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitMetric("three members up behind the gateway", func() bool {
		return metricTotal(t, gwMetrics, "hansa_gateway_membership_members", `health="up"`) == 3
	})

	// Calls through the gateway run all along; none may fail.
	gw, err := ethclient.Dial(d.GatewayURL())
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	ctx, stop := context.WithCancel(t.Context())
	calls := make(chan error, 1)
	go func() {
		n := 0
		for ctx.Err() == nil {
			if _, err := gw.BlockNumber(ctx); err != nil && ctx.Err() == nil {
				calls <- fmt.Errorf("call %d through the gateway: %w", n, err)
				return
			}
			n++
			time.Sleep(5 * time.Millisecond)
		}
		calls <- nil
	}()

	// The newcomer has no genesis file: it fetches it and checks its hash.
	var info node.NodeInfo
	if err := rpcCall(t, d.Nodes[0].Admin, &info, "admin_nodeInfo"); err != nil {
		t.Fatal(err)
	}
	c := e2etest.NewCluster(t, bin, t.TempDir())
	cfg := node.DefaultConfig()
	cfg.Genesis = filepath.Join(c.Dir, "node4", "genesis.json")
	cfg.Cluster.Join, cfg.Cluster.JoinToken = []string{d.Nodes[1].Cluster}, file.JoinToken
	cfg.Cluster.GenesisHash = "0x" + strings.Repeat("ab", 32) // wrong first
	_, wrong := nodeFiles(t, filepath.Join(c.Dir, "wronghash"), "wronghash", 0, cfg, "")
	if out, err := exec.Command(bin, "node", "--config", wrong).CombinedOutput(); err == nil || !strings.Contains(string(out), "not cluster.genesis_hash") {
		t.Fatalf("a genesis hash no member has: %v\n%s", err, out)
	}
	cfg.Cluster.GenesisHash = info.Genesis.Hex()
	ep, path := nodeFiles(t, filepath.Join(c.Dir, "node4"), "node4", 4, cfg, "")
	n4 := c.AddNode(ep, path)
	n4.Start(faultWait)
	waitMetric("member 4 up and receiving calls through the gateway", func() bool {
		return metricTotal(t, gwMetrics, "hansa_gateway_membership_members", `health="up"`) == 4 &&
			metricTotal(t, gwMetrics, "hansa_gateway_upstream_requests_total", `upstream="member-4"`) > 0
	})

	out, err := exec.Command(bin, "leave", "--admin", n4.Admin).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "member 4 left the cluster") {
		t.Fatalf("hansa leave: %v\n%s", err, out)
	}
	waitMetric("member 4 drained out of the gateway", func() bool {
		return metricTotal(t, gwMetrics, "hansa_gateway_membership_members") == 3 &&
			metricTotal(t, gwMetrics, "hansa_gateway_draining_upstreams") == 0 &&
			metricTotal(t, gwMetrics, "hansa_gateway_upstream_healthy", `upstream="member-4"`) == 0
	})
	before := metricTotal(t, gwMetrics, "hansa_gateway_upstream_requests_total", `upstream="member-4"`)
	time.Sleep(500 * time.Millisecond)
	if after := metricTotal(t, gwMetrics, "hansa_gateway_upstream_requests_total", `upstream="member-4"`); after != before {
		t.Fatalf("the gateway still sends calls to member 4 after it left (%v -> %v)", before, after)
	}
	stop()
	if err := <-calls; err != nil {
		t.Fatal(err)
	}
}

// rpcCall calls a JSON-RPC method at url.
func rpcCall(t *testing.T, url string, result any, method string, args ...any) error {
	t.Helper()
	c, err := rpc.DialContext(t.Context(), url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(t.Context(), result, method, args...)
}
