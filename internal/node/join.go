package node

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/transport"
)

// A node that is not yet a member becomes one in one of two ways:
//
//   - join: it asks any member (cluster.join) to admit it; the leader adds it
//     as a learner with the next never-used id, and the answer carries the
//     id and the membership. A retried join of the same node key returns the
//     same membership.
//   - bootstrap: cluster.bootstrap_expect fresh nodes find each other through
//     cluster.bootstrap_peers, wait until they all see the same set of that
//     size, and number themselves 1..N in order of node address — the same
//     result on every one of them, whatever the order they started in.

// dialTimeout bounds connecting to another node for membership.
const dialTimeout = 2 * time.Second

// candidate is a node taking part in forming a cluster.
type candidate struct {
	Address common.Address
	Name    string
	Addr    string
	RPC     string
}

type bootstrapHello struct {
	Token string
	Self  candidate
}

// bootstrapState is what a node answers during formation: the candidates
// it has seen, or the membership once it formed (Formed true).
type bootstrapState struct {
	Expect   uint64
	Seen     []candidate
	Formed   bool
	Registry registry
}

// loadGenesis reads the genesis file, first fetching it from a member when
// the node joins with cluster.genesis_hash and has none.
func loadGenesis(ctx context.Context, cfg Config, key *ecdsa.PrivateKey, logger *slog.Logger) (*chain.Genesis, []byte, error) {
	raw, err := os.ReadFile(cfg.Genesis)
	if errors.Is(err, os.ErrNotExist) && cfg.Cluster.GenesisHash != "" && len(cfg.Cluster.Join) > 0 {
		raw, err = fetchGenesis(ctx, cfg, key, logger)
		if err != nil {
			return nil, nil, err
		}
		if err := os.MkdirAll(filepath.Dir(cfg.Genesis), 0o755); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(cfg.Genesis, raw, 0o644); err != nil {
			return nil, nil, fmt.Errorf("save fetched genesis: %w", err)
		}
		logger.Info("genesis fetched from the cluster and checked against cluster.genesis_hash", "path", cfg.Genesis, "hash", cfg.Cluster.GenesisHash)
	} else if err != nil {
		return nil, nil, fmt.Errorf("read genesis: %w", err)
	}
	gen, err := chain.ParseGenesis(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("genesis %s: %w", cfg.Genesis, err)
	}
	if want := cfg.Cluster.GenesisHash; want != "" {
		if got := gen.CoreGenesis().ToBlock().Hash(); got != common.HexToHash(want) {
			return nil, nil, fmt.Errorf("genesis %s hashes to %s, not cluster.genesis_hash %s", cfg.Genesis, got, want)
		}
	}
	return gen, raw, nil
}

// fetchGenesis asks the join addresses for genesis.json and checks it
// against cluster.genesis_hash (the TLS binding already proves the member
// is on that chain).
func fetchGenesis(ctx context.Context, cfg Config, key *ecdsa.PrivateKey, logger *slog.Logger) ([]byte, error) {
	want := common.HexToHash(cfg.Cluster.GenesisHash)
	client, err := transport.NewOpenClient(key, want, dialTimeout)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	for attempt := 0; ; attempt++ {
		for _, addr := range cfg.Cluster.Join {
			raw, _, err := client.Call(ctx, addr, openGenesis, []byte(cfg.Cluster.JoinToken))
			var re *transport.RemoteError
			if errors.As(err, &re) && strings.Contains(re.Msg, ErrJoinRefused.Error()) {
				return nil, fmt.Errorf("%s refused the genesis to this node: %s", addr, re.Msg)
			}
			if err != nil {
				logger.Info("fetching genesis from a member", "addr", addr, "err", err)
				continue
			}
			gen, err := chain.ParseGenesis(raw)
			if err != nil {
				return nil, fmt.Errorf("genesis from %s: %w", addr, err)
			}
			if got := gen.CoreGenesis().ToBlock().Hash(); got != want {
				return nil, fmt.Errorf("genesis from %s hashes to %s, not cluster.genesis_hash %s", addr, got, want)
			}
			return raw, nil
		}
		if !sleepCtx(ctx, backoff(attempt)) {
			return nil, ctx.Err()
		}
	}
}

func backoff(attempt int) time.Duration {
	return min(500*time.Millisecond<<min(attempt, 4), 5*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// advertiseAddr is the cluster address other members dial: the configured
// one, else bound (the listener's address), unless that is a wildcard.
func (n *Node) advertiseAddr(bound string) (string, error) {
	if a := n.cfg.Cluster.AdvertiseAddr; a != "" {
		return a, nil
	}
	if bound == "" {
		return "", nil
	}
	host, _, err := net.SplitHostPort(bound)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		return "", fmt.Errorf("cluster.listen_addr %s is a wildcard: set cluster.advertise_addr to the address other members should dial", n.cfg.Cluster.ListenAddr)
	}
	return bound, nil
}

// advertiseRPC is this node's public JSON-RPC URL for gateways, or "".
func (n *Node) advertiseRPC(bound string) string {
	if u := n.cfg.Cluster.AdvertiseRPC; u != "" {
		return u
	}
	addr := bound
	if addr == "" {
		addr = n.cfg.HTTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return ""
	}
	return "http://" + addr
}

// joinCluster asks the members in cluster.join to admit this node and
// returns its membership. It retries until admitted, refused or ctx ends.
func (n *Node) joinCluster(ctx context.Context, ln net.Listener, genesis common.Hash) (membershipRecord, error) {
	cc := n.cfg.Cluster
	addr, err := n.advertiseAddr(ln.Addr().String())
	if err != nil {
		return membershipRecord{}, err
	}
	client, err := transport.NewOpenClient(n.key, genesis, dialTimeout)
	if err != nil {
		return membershipRecord{}, err
	}
	defer client.Close()
	req, err := rlp.EncodeToBytes(&joinRequest{Token: cc.JoinToken, Name: cc.Name, Addr: addr, RPC: n.advertiseRPC("")})
	if err != nil {
		return membershipRecord{}, err
	}
	n.logger.Info("joining the cluster", "via", cc.Join, "advertise", addr, "address", n.address)
	for attempt := 0; ; attempt++ {
		for _, via := range cc.Join {
			callCtx, cancel := context.WithTimeout(ctx, changeTimeout+10*time.Second)
			raw, signer, err := client.Call(callCtx, via, openJoin, req)
			cancel()
			var re *transport.RemoteError
			if errors.As(err, &re) && strings.Contains(re.Msg, ErrJoinRefused.Error()) {
				return membershipRecord{}, fmt.Errorf("%s refused this node: %s", via, re.Msg)
			}
			if err != nil {
				n.logger.Info("join attempt failed; retrying", "via", via, "err", err)
				continue
			}
			var resp joinResponse
			if err := rlp.DecodeBytes(raw, &resp); err != nil {
				n.logger.Warn("undecodable join answer", "via", via, "err", err)
				continue
			}
			// The key that answered must be a member's: a node of another
			// chain would prove an unrelated key.
			if _, ok := resp.Registry.byAddress(signer); !ok {
				n.logger.Warn("join answered by a node that is not a member of this chain", "via", via, "key", signer)
				continue
			}
			if me, ok := resp.Registry.member(resp.ID); !ok || me.Address != n.address {
				n.logger.Warn("join answer does not list this node", "via", via, "id", resp.ID)
				continue
			}
			n.logger.Info("admitted to the cluster as a learner", "member", resp.ID, "via", via, "voters", resp.Registry.Voters)
			return membershipRecord{Self: resp.ID, Registry: resp.Registry}, nil
		}
		if !sleepCtx(ctx, backoff(attempt)) {
			return membershipRecord{}, fmt.Errorf("joining the cluster: %w", ctx.Err())
		}
	}
}

// bootstrapCluster forms a new cluster with cluster.bootstrap_expect nodes
// (this one included) and returns this node's membership. ln serves the
// other candidates meanwhile and is handed back open.
func (n *Node) bootstrapCluster(ctx context.Context, ln *net.TCPListener, genesis common.Hash) (membershipRecord, error) {
	cc := n.cfg.Cluster
	if cc.JoinToken == "" {
		return membershipRecord{}, errors.New("cluster.bootstrap_expect needs cluster.join_token: the founding nodes admit only each other")
	}
	addr, err := n.advertiseAddr(ln.Addr().String())
	if err != nil {
		return membershipRecord{}, err
	}
	expect := cc.BootstrapExpect
	self := candidate{Address: n.address, Name: cc.Name, Addr: addr, RPC: n.advertiseRPC("")}
	f := &formation{expect: expect, self: self, seen: map[common.Address]candidate{self.Address: self}, views: map[common.Address][]common.Address{}}

	srv, err := transport.NewOpenServer(ln, n.key, genesis, n.logger.With("component", "bootstrap"))
	if err != nil {
		return membershipRecord{}, err
	}
	srv.Handle(openBootstrap, func(_ context.Context, from common.Address, req []byte) ([]byte, error) {
		var h bootstrapHello
		if err := rlp.DecodeBytes(req, &h); err != nil {
			return nil, fmt.Errorf("undecodable hello: %w", err)
		}
		if tokenMismatch(h.Token, cc.JoinToken) || h.Self.Address != from {
			return nil, fmt.Errorf("%w: wrong join token or node key", ErrJoinRefused)
		}
		return rlp.EncodeToBytes(f.hello(h.Self))
	})
	defer func() { _, _ = srv.Shutdown(context.Background()) }()

	client, err := transport.NewOpenClient(n.key, genesis, dialTimeout)
	if err != nil {
		return membershipRecord{}, err
	}
	defer client.Close()
	hello, err := rlp.EncodeToBytes(&bootstrapHello{Token: cc.JoinToken, Self: self})
	if err != nil {
		return membershipRecord{}, err
	}
	n.logger.Info("forming a new cluster", "expect", expect, "peers", cc.BootstrapPeers, "advertise", addr, "address", n.address)
	lastLog := time.Time{}
	for {
		for _, target := range f.targets(cc.BootstrapPeers) {
			callCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
			raw, signer, err := client.Call(callCtx, target, openBootstrap, hello)
			cancel()
			if err != nil {
				continue
			}
			var st bootstrapState
			if err := rlp.DecodeBytes(raw, &st); err != nil {
				continue
			}
			if _, ok := st.Registry.byAddress(signer); st.Formed && !ok {
				continue // not a founding member of this chain
			}
			if st.Formed {
				for _, m := range st.Registry.Members {
					if m.Address == n.address {
						n.logger.Info("the cluster formed; joining it as a founding member", "member", m.ID, "via", target)
						return membershipRecord{Self: m.ID, Registry: st.Registry}, nil
					}
				}
				return membershipRecord{}, fmt.Errorf("a cluster already formed at %s without this node: set cluster.join instead of cluster.bootstrap_expect", target)
			}
			if signer != n.address && slices.ContainsFunc(st.Seen, func(c candidate) bool { return c.Address == signer }) {
				f.report(signer, st.Seen)
			}
		}
		if err := f.tooMany(); err != nil {
			return membershipRecord{}, err
		}
		if reg, ok := f.agreed(); ok {
			me, _ := reg.byAddress(n.address)
			n.logger.Info("cluster formed", "member", me.ID, "voters", reg.Voters)
			// Candidates still polling learn the result from the
			// transport's bootstrap method, which answers Formed.
			return membershipRecord{Self: me.ID, Registry: reg}, nil
		}
		if time.Since(lastLog) > 5*time.Second {
			n.logger.Info("waiting for the founding nodes", "seen", f.count(), "expect", expect)
			lastLog = time.Now()
		}
		if !sleepCtx(ctx, 300*time.Millisecond) {
			return membershipRecord{}, fmt.Errorf("forming the cluster: %w", ctx.Err())
		}
	}
}

// tokenMismatch compares join tokens in constant time.
func tokenMismatch(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1
}

// formation is one node's view of the nodes forming a cluster.
type formation struct {
	expect int
	self   candidate
	mu     sync.Mutex
	seen   map[common.Address]candidate
	views  map[common.Address][]common.Address // what each other candidate reported seeing
}

func (f *formation) hello(c candidate) bootstrapState {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen[c.Address] = c
	return bootstrapState{Expect: uint64(f.expect), Seen: f.sortedLocked()}
}

func (f *formation) report(from common.Address, seen []candidate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var addrs []common.Address
	for _, c := range seen {
		if _, ok := f.seen[c.Address]; !ok {
			f.seen[c.Address] = c
		}
		addrs = append(addrs, c.Address)
	}
	slices.SortFunc(addrs, func(a, b common.Address) int { return bytes.Compare(a[:], b[:]) })
	f.views[from] = addrs
}

func (f *formation) sortedLocked() []candidate {
	out := make([]candidate, 0, len(f.seen))
	for _, c := range f.seen {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b candidate) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	return out
}

func (f *formation) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// targets are the configured peers and every candidate's address.
func (f *formation) targets(peers []string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(peers)
	for _, c := range f.seen {
		if c.Address != f.self.Address && !slices.Contains(out, c.Addr) {
			out = append(out, c.Addr)
		}
	}
	return out
}

func (f *formation) tooMany() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) <= f.expect {
		return nil
	}
	var names []string
	for _, c := range f.sortedLocked() {
		names = append(names, c.Address.Hex()+"@"+c.Addr)
	}
	return fmt.Errorf("found %d nodes, more than cluster.bootstrap_expect %d: %s; start exactly that many fresh nodes (others join later with cluster.join)",
		len(f.seen), f.expect, strings.Join(names, ", "))
}

// agreed returns the founding membership once this node and every other
// candidate see the same expect nodes.
func (f *formation) agreed() (registry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) != f.expect {
		return registry{}, false
	}
	all := f.sortedLocked()
	var want []common.Address
	for _, c := range all {
		want = append(want, c.Address)
	}
	for _, c := range all {
		if c.Address == f.self.Address {
			continue
		}
		if !slices.Equal(f.views[c.Address], want) {
			return registry{}, false
		}
	}
	var reg registry
	for i, c := range all {
		id := uint64(i + 1)
		name := c.Name
		if name == "" {
			name = fmt.Sprintf("node%d", id)
		}
		reg.Members = append(reg.Members, Member{ID: id, Name: name, Address: c.Address, Addr: c.Addr, RPC: c.RPC})
		reg.Voters = append(reg.Voters, id)
	}
	reg.NextID = uint64(len(all) + 1)
	slices.SortFunc(reg.Members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return reg, true
}

// registerOpen serves the open methods of a member.
func (n *Node) registerOpen(t *transport.TCP) {
	m := n.members
	t.HandleOpen(openJoin, m.serveJoin)
	t.HandleOpen(openGenesis, func(_ context.Context, from common.Address, token []byte) ([]byte, error) {
		if err := m.checkToken(from, string(token)); err != nil {
			return nil, err
		}
		return n.genesisRaw, nil
	})
	t.HandleOpen(openBootstrap, func(_ context.Context, from common.Address, req []byte) ([]byte, error) {
		var h bootstrapHello
		if err := rlp.DecodeBytes(req, &h); err != nil {
			return nil, fmt.Errorf("undecodable hello: %w", err)
		}
		if tokenMismatch(h.Token, n.cfg.Cluster.JoinToken) || n.cfg.Cluster.JoinToken == "" {
			return nil, fmt.Errorf("%w: wrong join token", ErrJoinRefused)
		}
		return rlp.EncodeToBytes(&bootstrapState{Formed: true, Registry: n.registry()})
	})
	t.HandleOpen(openWhoAmI, func(_ context.Context, from common.Address, _ []byte) ([]byte, error) {
		reg := n.registry()
		id := uint64(0)
		if mem, ok := reg.byAddress(from); ok {
			id = mem.ID
		}
		return rlp.EncodeToBytes([]uint64{id, reg.NextID})
	})
}
