package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/hansa-chain/hansa/internal/consensus"
	"github.com/hansa-chain/hansa/internal/consensus/raft"
	"github.com/hansa-chain/hansa/internal/membership"
	"github.com/hansa-chain/hansa/internal/telemetry"
	"github.com/hansa-chain/hansa/internal/transport"
)

// Methods of membership. Open methods are served to any node with a key for
// this chain; the member method only to members.
const (
	openJoin      = "join/v1"      // a new node asks to join
	openGenesis   = "genesis/v1"   // a new node fetches genesis.json
	openBootstrap = "bootstrap/v1" // nodes forming a cluster find each other
	openWhoAmI    = "whoami/v1"    // a node checks whether it is still a member
	methodMember  = "membership/v1"
)

// Kinds of member-to-member membership calls.
const (
	kindJoin   = 1 // a join, forwarded to the leader
	kindChange = 2 // a change, forwarded to the leader
	kindProbe  = 3 // the leader asks a member how far it applied
	kindStatus = 4 // a member asks the leader for the status
)

// Errors of membership requests.
var (
	// ErrJoinRefused is a join the cluster will not accept as asked; retrying
	// does not help.
	ErrJoinRefused = errors.New("join refused")
	// ErrRemoved is reported by a node whose member id was removed.
	ErrRemoved = errors.New("this node was removed from the cluster")
)

// changeTimeout bounds waiting for a membership change to be applied.
const changeTimeout = 15 * time.Second

type joinRequest struct {
	Token string
	Name  string
	Addr  string
	RPC   string
}

type joinResponse struct {
	ID       uint64
	Registry registry
}

type memberRequest struct {
	Kind   uint8
	From   common.Address // kindJoin: the joining node's key
	Join   joinRequest
	Change memberChange
	Force  bool
	// Origin is the member that asked, as the first member that received
	// the request authenticated it (requests are forwarded once).
	Origin    uint64
	Forwarded bool
}

type probeResponse struct {
	Applied uint64
	Height  uint64
	Syncing bool
	Leaving bool
}

// memberView is what the leader tracks about one member between rounds.
type memberView struct {
	lastContact   time.Time // zero: never heard from
	caughtUpSince time.Time // zero: not caught up
	probe         probeResponse
	probed        time.Time
	dead          bool
}

// members is the node's membership state: the replicated registry and, on
// the leader, what it has seen of every member.
type members struct {
	n       *Node
	metrics *membershipMetrics

	mu      sync.Mutex
	reg     registry
	changed chan struct{} // closed and replaced when reg changes

	changeMu sync.Mutex // one change at a time from this node

	viewMu     sync.Mutex
	views      map[uint64]*memberView
	leaderFrom time.Time // when this node last became leader
	wasLeader  bool
	// noLeaderSince is when this node last lost sight of a leader (zero
	// while it sees one).
	noLeaderSince time.Time

	leaveMu  sync.Mutex
	isLeave  bool
	advertMu sync.Mutex
	advert   Member // what this node advertises about itself
	updated  bool   // the registry holds the advertisement
}

func newMembers(n *Node, reg registry) *members {
	return &members{n: n, reg: reg, changed: make(chan struct{}), views: map[uint64]*memberView{},
		metrics: newMembershipMetrics(n.reg)}
}

// registry returns the current membership (empty on a single-member chain).
func (n *Node) registry() registry {
	if n.members == nil {
		return registry{}
	}
	n.members.mu.Lock()
	defer n.members.mu.Unlock()
	return n.members.reg.clone()
}

// setRegistry installs reg as of applied index (durably, with the index)
// and updates the transport's peers.
func (n *Node) setRegistry(reg registry, index uint64) error {
	rec, err := encodeRecord(membershipRecord{Self: n.id, Registry: reg})
	if err != nil {
		return err
	}
	if err := n.db.SetMembership(rec, index); err != nil {
		return fmt.Errorf("record membership at %d: %w", index, err)
	}
	m := n.members
	m.mu.Lock()
	m.reg = reg
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
	n.updatePeers(reg)
	m.metrics.observe(reg)
	if _, ok := reg.member(n.id); !ok && len(reg.Voters) > 0 {
		n.removedSelf()
	}
	return nil
}

// updatePeers gives the transport the members' addresses.
func (n *Node) updatePeers(reg registry) {
	setter, ok := n.clusterTransport().(interface{ SetPeers([]transport.Peer) })
	if !ok {
		return
	}
	configured := map[uint64]string{}
	for _, p := range n.cfg.Cluster.Peers {
		configured[p.ID] = p.Addr
	}
	setter.SetPeers(reg.peers(n.id, configured))
}

// removedSelf stops the node: the cluster removed it.
func (n *Node) removedSelf() {
	if n.removed.Swap(true) {
		return
	}
	n.logger.Warn("this node was removed from the cluster; stopping. Its data directory is no longer a member's: delete it to join again as a new member", "member", n.id)
	// Remember it, so a restart refuses at once.
	reg := n.registry()
	reg.Members = slices.DeleteFunc(reg.Members, func(m Member) bool { return m.ID == n.id })
	reg.Voters = slices.DeleteFunc(reg.Voters, func(id uint64) bool { return id == n.id })
	reg.Learners = slices.DeleteFunc(reg.Learners, func(id uint64) bool { return id == n.id })
	reg.NextID = max(reg.NextID, n.id+1)
	if rec, err := encodeRecord(membershipRecord{Self: n.id, Registry: reg}); err == nil {
		if err := n.db.SetMembership(rec, 0); err != nil {
			n.logger.Warn("record the removal", "err", err)
		}
	}
	if n.stop != nil {
		go func() {
			time.Sleep(500 * time.Millisecond) // let a leave request be answered
			n.stop(ErrRemoved)
		}()
	}
}

// applyConfig applies a committed membership change.
func (n *Node) applyConfig(e consensus.Entry) error {
	var c memberChange
	if err := rlp.DecodeBytes(e.Data, &c); err != nil {
		// Raft applied the change; the registry keeps its records but
		// follows Raft's configuration.
		n.logger.Error("undecodable membership change context", "index", e.Index, "err", err)
	}
	before := n.registry()
	after := before.apply(c, e.Config)
	if err := n.setRegistry(after, e.Index); err != nil {
		return err
	}
	n.engine.Applied(e.Index)
	n.logger.Info("membership change applied", "index", e.Index, "op", opName(c.Op), "id", c.Member.ID,
		"rejected", e.Config.Rejected, "voters", after.Voters, "learners", after.Learners)
	if !e.Config.Rejected {
		n.members.notify(c, after)
	}
	return nil
}

// notify alerts the operator about a change.
func (m *members) notify(c memberChange, reg registry) {
	if !m.isLeader() {
		return
	}
	switch c.Op {
	case opAdd:
		m.alert(fmt.Sprintf("member %d (%s, %s) joined as a learner", c.Member.ID, c.Member.Name, c.Member.Address))
	case opPromote:
		m.alert(fmt.Sprintf("member %d was promoted to voter; voters now %v", c.Member.ID, reg.Voters))
	case opDemote:
		m.alert(fmt.Sprintf("member %d was demoted to learner; voters now %v", c.Member.ID, reg.Voters))
	case opRemove:
		m.alert(fmt.Sprintf("member %d was removed; voters now %v", c.Member.ID, reg.Voters))
	}
}

func (m *members) isLeader() bool { return m.n.engine.Status().IsLeader() }

// wait blocks until ok(registry) holds or ctx ends.
func (m *members) wait(ctx context.Context, ok func(registry) bool) error {
	for {
		m.mu.Lock()
		reg, ch := m.reg, m.changed
		m.mu.Unlock()
		if ok(reg) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// propose makes one membership change on the leader and waits until this
// node applied it. The caller holds changeMu.
func (m *members) propose(ctx context.Context, c memberChange) error {
	ctx, cancel := context.WithTimeout(ctx, changeTimeout)
	defer cancel()
	data, err := rlp.EncodeToBytes(&c)
	if err != nil {
		return err
	}
	cc := &pb.ConfChange{NodeId: new(c.Member.ID), Context: data}
	var done func(registry) bool
	switch c.Op {
	case opAdd:
		cc.Type = pb.ConfChangeType_ConfChangeAddLearnerNode.Enum()
		done = func(r registry) bool { got, ok := r.member(c.Member.ID); return ok && got.Address == c.Member.Address }
	case opUpdate:
		cc.Type = pb.ConfChangeType_ConfChangeUpdateNode.Enum()
		done = func(r registry) bool {
			got, ok := r.member(c.Member.ID)
			return !ok || (got.Addr == c.Member.Addr && got.RPC == c.Member.RPC)
		}
	case opPromote:
		cc.Type = pb.ConfChangeType_ConfChangeAddNode.Enum()
		done = func(r registry) bool { return slices.Contains(r.Voters, c.Member.ID) }
	case opDemote:
		cc.Type = pb.ConfChangeType_ConfChangeAddLearnerNode.Enum()
		done = func(r registry) bool { return slices.Contains(r.Learners, c.Member.ID) }
	case opRemove:
		cc.Type = pb.ConfChangeType_ConfChangeRemoveNode.Enum()
		done = func(r registry) bool { _, ok := r.member(c.Member.ID); return !ok }
	default:
		return fmt.Errorf("unknown membership operation %d", c.Op)
	}
	engine := m.n.cluster.engine
	for {
		err = engine.ProposeConfChange(ctx, cc)
		if !errors.Is(err, raft.ErrConfChangePending) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err != nil {
		m.metrics.changes.WithLabelValues(opName(c.Op), "failed").Inc()
		return err
	}
	if err := m.wait(ctx, done); err != nil {
		m.metrics.changes.WithLabelValues(opName(c.Op), "failed").Inc()
		return fmt.Errorf("membership change (%s member %d) not applied within %s (leadership may have changed); retry: %w", opName(c.Op), c.Member.ID, changeTimeout, err)
	}
	m.metrics.changes.WithLabelValues(opName(c.Op), "ok").Inc()
	return nil
}

// checkToken verifies a join token against this node's configuration.
func (m *members) checkToken(from common.Address, token string) error {
	cc := m.n.cfg.Cluster
	if cc.JoinToken == "" {
		return fmt.Errorf("%w: joining is disabled on this cluster (no cluster.join_token is set on member %d)", ErrJoinRefused, m.n.id)
	}
	if tokenMismatch(token, cc.JoinToken) {
		return fmt.Errorf("%w: wrong join token", ErrJoinRefused)
	}
	if len(cc.AllowedKeys) > 0 && !slices.Contains(cc.AllowedKeys, from) {
		return fmt.Errorf("%w: node key %s is not in cluster.allowed_keys", ErrJoinRefused, from)
	}
	return nil
}

// serveJoin is the open join method: check the token, then let the leader
// decide (forwarding when this node does not lead).
func (m *members) serveJoin(ctx context.Context, from common.Address, req []byte) ([]byte, error) {
	var jr joinRequest
	if err := rlp.DecodeBytes(req, &jr); err != nil {
		return nil, fmt.Errorf("%w: undecodable join request: %v", ErrJoinRefused, err)
	}
	if err := m.checkToken(from, jr.Token); err != nil {
		m.metrics.changes.WithLabelValues("join", "refused").Inc()
		m.n.logger.Warn("join refused", "from", from, "addr", jr.Addr, "err", err)
		return nil, err
	}
	resp, err := m.toLeader(ctx, memberRequest{Kind: kindJoin, From: from, Join: jr})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// toLeader runs req on the leader: here when this node leads, else by a
// call to the leader.
func (m *members) toLeader(ctx context.Context, req memberRequest) ([]byte, error) {
	st := m.n.engine.Status()
	if st.IsLeader() {
		return m.onLeader(ctx, req)
	}
	if st.LeaderID == 0 {
		return nil, ErrNoLeader
	}
	data, err := rlp.EncodeToBytes(&req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, changeTimeout+5*time.Second)
	defer cancel()
	resp, err := m.n.cluster.t.Call(ctx, st.LeaderID, methodMember, data)
	var re *transport.RemoteError
	if errors.As(err, &re) {
		return nil, errors.New(re.Msg)
	}
	return resp, err
}

// serveMember is the member-to-member membership method.
func (m *members) serveMember(ctx context.Context, from uint64, data []byte) ([]byte, error) {
	var req memberRequest
	if err := rlp.DecodeBytes(data, &req); err != nil {
		return nil, fmt.Errorf("undecodable membership request: %w", err)
	}
	if req.Kind == kindProbe {
		return rlp.EncodeToBytes(m.probeAnswer())
	}
	if !req.Forwarded {
		req.Origin = from
	}
	if req.Kind == kindChange && req.Change.Op == opUpdate && req.Change.Member.ID != req.Origin {
		return nil, fmt.Errorf("member %d may update only its own addresses", req.Origin)
	}
	if !m.isLeader() {
		// A member the leader cannot reach (it moved) asks whom it can.
		if req.Forwarded {
			return nil, fmt.Errorf("member %d is not the leader", m.n.id)
		}
		req.Forwarded = true
		return m.toLeader(ctx, req)
	}
	return m.onLeader(ctx, req)
}

func (m *members) probeAnswer() probeResponse {
	return probeResponse{Applied: m.n.engine.Status().Applied, Height: m.n.head.Load().Number.Uint64(),
		Syncing: m.n.syncing.Load(), Leaving: m.isLeaving()}
}

// onLeader executes a membership request on the leader.
func (m *members) onLeader(ctx context.Context, req memberRequest) ([]byte, error) {
	switch req.Kind {
	case kindJoin:
		resp, err := m.join(ctx, req.From, req.Join)
		if err != nil {
			return nil, err
		}
		return rlp.EncodeToBytes(resp)
	case kindChange:
		return nil, m.change(ctx, req.Change, req.Force)
	case kindStatus:
		return json.Marshal(m.status())
	}
	return nil, fmt.Errorf("unknown membership request kind %d", req.Kind)
}

// join admits the node with key from as a learner, or returns its
// existing membership when it already is one (a retried join).
func (m *members) join(ctx context.Context, from common.Address, jr joinRequest) (*joinResponse, error) {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	reg := m.n.registry()
	if cur, ok := reg.byAddress(from); ok {
		if reg.role(cur.ID) == "voter" {
			return nil, fmt.Errorf("%w: node key %s is voter %d of this cluster; a voter that lost its data must first be removed (membership_remove %d) and then join as a new member",
				ErrJoinRefused, from, cur.ID, cur.ID)
		}
		if cur.Addr != jr.Addr || cur.RPC != jr.RPC {
			if err := m.propose(ctx, memberChange{Op: opUpdate, Member: Member{ID: cur.ID, Addr: jr.Addr, RPC: jr.RPC}}); err != nil {
				return nil, err
			}
		}
		m.n.logger.Info("join retried; same membership", "member", cur.ID, "address", from)
		return &joinResponse{ID: cur.ID, Registry: m.n.registry()}, nil
	}
	if jr.Addr == "" {
		return nil, fmt.Errorf("%w: the joining node advertised no cluster address", ErrJoinRefused)
	}
	name := jr.Name
	if name == "" {
		name = "node" + strconv.FormatUint(reg.NextID, 10)
	}
	nm := Member{ID: reg.NextID, Name: name, Address: from, Addr: jr.Addr, RPC: jr.RPC}
	if err := m.propose(ctx, memberChange{Op: opAdd, Member: nm}); err != nil {
		return nil, err
	}
	m.n.logger.Info("member joined as a learner", "member", nm.ID, "name", nm.Name, "address", from, "addr", nm.Addr)
	return &joinResponse{ID: nm.ID, Registry: m.n.registry()}, nil
}

// change executes an operator's or the policy's change on the leader after
// the quorum check.
func (m *members) change(ctx context.Context, c memberChange, force bool) error {
	m.changeMu.Lock()
	defer m.changeMu.Unlock()
	reg := m.n.registry()
	cur, ok := reg.member(c.Member.ID)
	if !ok {
		if reg.removed(c.Member.ID) {
			return fmt.Errorf("member %d was already removed", c.Member.ID)
		}
		return fmt.Errorf("%w: %d", membership.ErrUnknownMember, c.Member.ID)
	}
	if c.Op == opUpdate {
		if cur.Addr == c.Member.Addr && cur.RPC == c.Member.RPC {
			return nil
		}
		return m.propose(ctx, c)
	}
	var kind membership.ActionKind
	switch c.Op {
	case opPromote:
		kind = membership.Promote
	case opDemote:
		kind = membership.Demote
	case opRemove:
		kind = membership.Remove
	default:
		return fmt.Errorf("unknown membership operation %d", c.Op)
	}
	if err := membership.Check(m.policyState(time.Now()), membership.Action{Kind: kind, ID: c.Member.ID}, force); err != nil {
		m.metrics.changes.WithLabelValues(opName(c.Op), "refused").Inc()
		return err
	}
	if force {
		m.n.logger.Warn("FORCED membership change: quorum safety check overridden by the operator", "op", opName(c.Op), "member", c.Member.ID)
	}
	c.Member = cur
	return m.propose(ctx, c)
}

// isLeaving reports whether this node is leaving the cluster.
func (m *members) isLeaving() bool {
	m.leaveMu.Lock()
	defer m.leaveMu.Unlock()
	return m.isLeave
}

// leave takes this node out of the cluster: it stops being routable, hands
// leadership over if it leads, and asks the leader to remove it.
func (m *members) leave(ctx context.Context, force bool) error {
	m.leaveMu.Lock()
	m.isLeave = true
	m.leaveMu.Unlock()
	n := m.n
	n.logger.Info("leaving the cluster", "member", n.id, "drain", n.cfg.Cluster.LeaveDrain)
	// Gateways see "leaving" in the status and drain the node.
	select {
	case <-time.After(n.cfg.Cluster.LeaveDrain):
	case <-ctx.Done():
		return ctx.Err()
	}
	reg := n.registry()
	if len(reg.Voters) == 1 && reg.Voters[0] == n.id {
		return fmt.Errorf("%w: member %d is the only voter", membership.ErrLastVoter, n.id)
	}
	deadline := time.Now().Add(changeTimeout)
	for n.engine.Status().IsLeader() {
		target := m.transferTarget()
		if target != 0 {
			n.cluster.engine.TransferLeadership(target)
		}
		if time.Now().After(deadline) {
			if target == 0 {
				return errors.New("no other live voter to hand leadership to")
			}
			return errors.New("leadership was not handed over in time; retry")
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		_, err := m.toLeader(ctx, memberRequest{Kind: kindChange, Change: memberChange{Op: opRemove, Member: Member{ID: n.id}}, Force: force})
		if err == nil {
			break
		}
		// The leader drops this node's connections when the removal
		// applies, which can cut the answer off: ask the members.
		if removed, _ := m.askRemoved(ctx); removed {
			break
		}
		if !errors.Is(err, ErrNoLeader) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The removal may never reach this node (the leader stops replicating
	// to it), but the leader applied it.
	n.removedSelf()
	return nil
}

// transferTarget is the live voter with the highest match index. Raft's
// activity flags are cleared every election timeout, so a voter the
// membership loop heard from within 2 s counts as live too.
func (m *members) transferTarget() uint64 {
	var target, best uint64
	reg := m.n.registry()
	now := time.Now()
	m.viewMu.Lock()
	defer m.viewMu.Unlock()
	for _, p := range m.n.cluster.engine.Detail().Peers {
		v := m.views[p.ID]
		live := p.Active || (v != nil && !v.lastContact.IsZero() && now.Sub(v.lastContact) < 2*time.Second)
		if live && slices.Contains(reg.Voters, p.ID) && (target == 0 || p.Match > best) {
			target, best = p.ID, p.Match
		}
	}
	return target
}

// advertise records what this node advertises; the membership loop makes
// the registry hold it.
func (m *members) advertise(addr, rpc string) {
	m.advertMu.Lock()
	defer m.advertMu.Unlock()
	m.advert = Member{ID: m.n.id, Addr: addr, RPC: rpc}
	m.updated = false
}

// run is the membership loop: it keeps this node's advertised addresses
// in the registry and, on the leader, watches every member and applies the
// promotion policy, one change per round.
func (m *members) run(ctx context.Context) error {
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		if m.n.removed.Load() {
			continue
		}
		m.checkStillMember(ctx)
		m.selfUpdate(ctx)
		if !m.isLeader() {
			m.viewMu.Lock()
			m.wasLeader = false
			m.viewMu.Unlock()
			m.metrics.deadVoters.Set(0)
			continue
		}
		m.watch(ctx)
		m.applyPolicy(ctx)
	}
}

// checkStillMember asks the other members, while this node hears no
// leader, whether it is still a member: one removed while it was down
// never learns it from the log (the leader stops replicating to it).
func (m *members) checkStillMember(ctx context.Context) {
	st := m.n.engine.Status()
	m.viewMu.Lock()
	if st.LeaderID != 0 {
		m.noLeaderSince = time.Time{}
	} else if m.noLeaderSince.IsZero() {
		m.noLeaderSince = time.Now()
	}
	since := m.noLeaderSince
	m.viewMu.Unlock()
	if since.IsZero() || time.Since(since) < 5*time.Second || st.Role == "joining" {
		return
	}
	if removed, asked := m.askRemoved(ctx); removed {
		m.n.logger.Error("member reports that this node was removed from the cluster", "member", m.n.id, "asked", asked)
		m.n.removedSelf()
	}
}

// askRemoved asks the other members (whoami) whether this node's id was
// removed, and returns the first that says so.
func (m *members) askRemoved(ctx context.Context) (bool, uint64) {
	client, err := transport.NewOpenClient(m.n.key, m.n.genesisHash, dialTimeout)
	if err != nil {
		return false, 0
	}
	defer client.Close()
	configured := map[uint64]string{}
	for _, p := range m.n.cfg.Cluster.Peers {
		configured[p.ID] = p.Addr
	}
	for _, p := range m.n.registry().peers(m.n.id, configured) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		raw, signer, err := client.Call(cctx, p.Addr, openWhoAmI, nil)
		cancel()
		var ans []uint64
		if err != nil || signer != p.Address || rlp.DecodeBytes(raw, &ans) != nil || len(ans) != 2 {
			continue
		}
		if ans[0] != m.n.id && ans[1] > m.n.id {
			return true, p.ID
		}
	}
	return false, 0
}

// viaAnyMember sends req to the other members in turn until one takes it
// (it forwards it to the leader).
func (m *members) viaAnyMember(ctx context.Context, req memberRequest) error {
	data, err := rlp.EncodeToBytes(&req)
	if err != nil {
		return err
	}
	var errs []error
	for _, mem := range m.n.registry().Members {
		if mem.ID == m.n.id {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, changeTimeout+5*time.Second)
		_, err := m.n.cluster.t.Call(cctx, mem.ID, methodMember, data)
		cancel()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("member %d: %w", mem.ID, err))
	}
	return errors.Join(errs...)
}

// selfUpdate proposes this node's advertised addresses when the registry
// differs.
func (m *members) selfUpdate(ctx context.Context) {
	m.advertMu.Lock()
	adv, done := m.advert, m.updated
	m.advertMu.Unlock()
	if done || adv.Addr == "" {
		return
	}
	cur, ok := m.n.registry().member(m.n.id)
	if !ok {
		return
	}
	if cur.Addr != adv.Addr || cur.RPC != adv.RPC {
		req := memberRequest{Kind: kindChange, Change: memberChange{Op: opUpdate, Member: adv}}
		_, err := m.toLeader(ctx, req)
		if errors.Is(err, ErrNoLeader) {
			// The leader cannot reach this node at its old address; any
			// member forwards the update to it.
			err = m.viaAnyMember(ctx, req)
		}
		if err != nil {
			m.n.logger.Debug("advertise addresses to the leader", "err", err)
			return
		}
		m.n.logger.Info("advertised addresses recorded in the membership", "addr", adv.Addr, "rpc", adv.RPC)
	}
	m.advertMu.Lock()
	if m.advert == adv {
		m.updated = true
	}
	m.advertMu.Unlock()
}

// watch probes every member and updates the leader's view of them.
func (m *members) watch(ctx context.Context) {
	now := time.Now()
	reg := m.n.registry()
	d := m.n.cluster.engine.Detail()
	active := map[uint64]raft.PeerStatus{}
	for _, p := range d.Peers {
		active[p.ID] = p
	}
	probes := make(map[uint64]*probeResponse, len(reg.Members))
	var mu sync.Mutex
	var wg sync.WaitGroup
	req, _ := rlp.EncodeToBytes(&memberRequest{Kind: kindProbe})
	for _, mem := range reg.Members {
		if mem.ID == m.n.id {
			continue
		}
		wg.Add(1)
		go func(id uint64) {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
			defer cancel()
			resp, err := m.n.cluster.t.Call(pctx, id, methodMember, req)
			if err != nil {
				return
			}
			var pr probeResponse
			if rlp.DecodeBytes(resp, &pr) == nil {
				mu.Lock()
				probes[id] = &pr
				mu.Unlock()
			}
		}(mem.ID)
	}
	wg.Wait()

	m.viewMu.Lock()
	defer m.viewMu.Unlock()
	if !m.wasLeader {
		m.wasLeader, m.leaderFrom = true, now
		clear(m.views)
	}
	maxLag := m.n.cfg.Cluster.PromoteMaxLag
	var dead []uint64
	for _, mem := range reg.Members {
		v := m.views[mem.ID]
		if v == nil {
			v = &memberView{}
			m.views[mem.ID] = v
		}
		if mem.ID == m.n.id {
			v.lastContact, v.probe, v.probed = now, m.probeAnswer(), now
			if v.caughtUpSince.IsZero() {
				v.caughtUpSince = now
			}
			continue
		}
		p, seen := active[mem.ID]
		if pr := probes[mem.ID]; pr != nil {
			v.probe, v.probed, v.lastContact = *pr, now, now
		} else if seen && p.Active {
			v.lastContact = now
		}
		live := now.Sub(v.lastContact) < 2*time.Second && !v.lastContact.IsZero()
		caughtUp := live && seen && p.Lag <= maxLag && !v.probe.Syncing && !v.probed.IsZero() &&
			now.Sub(v.probed) < 2*time.Second && d.Commit <= v.probe.Applied+maxLag
		switch {
		case !caughtUp:
			v.caughtUpSince = time.Time{}
		case v.caughtUpSince.IsZero():
			v.caughtUpSince = now
		}
		down := m.downFor(v, now)
		isDead := reg.role(mem.ID) == "voter" && !live && down >= m.n.cfg.Cluster.DeadAfter
		if isDead != v.dead {
			v.dead = isDead
			if isDead {
				m.alert(fmt.Sprintf("voter %d (%s, %s) is unreachable for %s", mem.ID, mem.Name, mem.Addr, down.Round(time.Second)))
			} else {
				m.alert(fmt.Sprintf("voter %d (%s) is reachable again", mem.ID, mem.Name))
			}
		}
		if isDead {
			dead = append(dead, mem.ID)
		}
		lag := uint64(0)
		if seen {
			lag = p.Lag
		}
		label := strconv.FormatUint(mem.ID, 10)
		m.metrics.up.WithLabelValues(label).Set(boolFloat(live))
		m.metrics.lag.WithLabelValues(label).Set(float64(lag))
	}
	for id := range m.views {
		if _, ok := reg.member(id); !ok {
			delete(m.views, id)
			m.metrics.up.DeleteLabelValues(strconv.FormatUint(id, 10))
			m.metrics.lag.DeleteLabelValues(strconv.FormatUint(id, 10))
		}
	}
	m.metrics.deadVoters.Set(float64(len(dead)))
}

// downFor is how long a member has not been heard from (since this node
// leads, when never).
func (m *members) downFor(v *memberView, now time.Time) time.Duration {
	if v.lastContact.IsZero() {
		return now.Sub(m.leaderFrom)
	}
	return now.Sub(v.lastContact)
}

// policyState is the leader's view in the policy's terms.
func (m *members) policyState(now time.Time) membership.State {
	reg := m.n.registry()
	m.viewMu.Lock()
	defer m.viewMu.Unlock()
	s := membership.State{Leader: m.n.id}
	for _, mem := range reg.Members {
		ms := membership.MemberState{ID: mem.ID, Role: membership.Role(reg.role(mem.ID))}
		v := m.views[mem.ID]
		switch {
		case mem.ID == m.n.id:
			ms.Live = true
			ms.Leaving = m.isLeaving()
		case v != nil:
			ms.DownFor = m.downFor(v, now)
			ms.Live = !v.lastContact.IsZero() && ms.DownFor < 2*time.Second
			if ms.Live {
				ms.DownFor = 0
			}
			if !v.caughtUpSince.IsZero() {
				ms.CaughtUpFor = now.Sub(v.caughtUpSince)
			}
			ms.Leaving = v.probe.Leaving
		default:
			// Not yet watched: count it live if Raft heard from it.
			for _, p := range m.n.cluster.engine.Detail().Peers {
				if p.ID == mem.ID {
					ms.Live = p.Active
				}
			}
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

// applyPolicy makes at most one automatic change.
func (m *members) applyPolicy(ctx context.Context) {
	cc := m.n.cfg.Cluster
	if cc.TargetVoters < 0 {
		return // automatic changes are off
	}
	plan := membership.Decide(membership.Policy{TargetVoters: cc.TargetVoters, PromoteAfter: cc.PromoteAfter,
		DeadAfter: cc.DeadAfter, ReplaceDead: cc.ReplaceDead}, m.policyState(time.Now()))
	if plan.Action == nil {
		return
	}
	a := plan.Action
	op := map[membership.ActionKind]uint8{membership.Promote: opPromote, membership.Demote: opDemote, membership.Remove: opRemove}[a.Kind]
	m.n.logger.Info("membership policy", "action", a.Kind, "member", a.ID, "reason", a.Reason)
	if err := m.change(ctx, memberChange{Op: op, Member: Member{ID: a.ID}}, false); err != nil {
		m.n.logger.Warn("automatic membership change failed", "action", a.Kind, "member", a.ID, "err", err)
	}
}

// alert posts text to the configured webhook (Slack-compatible JSON), in
// the background; failures are logged.
func (m *members) alert(text string) {
	m.n.logger.Warn("membership alert", "text", text)
	url := m.n.cfg.Cluster.AlertWebhook
	if url == "" {
		return
	}
	go func() {
		if err := telemetry.PostWebhook(context.Background(), nil, url, text); err != nil {
			m.n.logger.Warn("membership alert webhook failed", "err", err)
		}
	}()
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

type membershipMetrics struct {
	members    *prometheus.GaugeVec
	up         *prometheus.GaugeVec
	lag        *prometheus.GaugeVec
	deadVoters prometheus.Gauge
	changes    *prometheus.CounterVec
}

func newMembershipMetrics(reg prometheus.Registerer) *membershipMetrics {
	m := &membershipMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hansa_membership_members",
			Help: "Members of the cluster by role (voter, learner), as this node applied the membership."}, []string{"role"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hansa_membership_member_up",
			Help: "On the leader: 1 when the member answered within the last 2 s."}, []string{"member"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hansa_membership_member_lag_entries",
			Help: "On the leader: log entries the member is behind."}, []string{"member"}),
		deadVoters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hansa_membership_dead_voters",
			Help: "On the leader: voters unreachable for at least cluster.dead_after."}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hansa_membership_changes_total",
			Help: "Membership changes this node made or refused, by operation and result (ok, refused, failed)."}, []string{"op", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.members, m.up, m.lag, m.deadVoters, m.changes)
	}
	return m
}

func (m *membershipMetrics) observe(reg registry) {
	m.members.WithLabelValues("voter").Set(float64(len(reg.Voters)))
	m.members.WithLabelValues("learner").Set(float64(len(reg.Learners)))
}
