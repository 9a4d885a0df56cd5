package raft

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/hansa-chain/hansa/internal/consensus"
)

// Config configures one member's Raft engine.
type Config struct {
	// ID is this member's id (never 0, never reused).
	ID uint64
	// Peers are the initial voters, this member included, used only when
	// the log store is empty: every founding member must be given the same
	// set. Empty for a member that joins a running cluster: it starts with
	// no configuration and waits for the leader's snapshot.
	Peers []uint64
	// TickInterval is Raft's logical clock; elections take ElectionTicks
	// ticks without a leader, heartbeats go every HeartbeatTicks ticks.
	TickInterval   time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// MaxSizePerMsg bounds the entries in one append message, in bytes.
	MaxSizePerMsg uint64
	// MaxInflightMsgs bounds the append messages in flight to one follower.
	MaxInflightMsgs int
	// CommittedBuffer is how many committed entries may wait for the node.
	CommittedBuffer int
	// SnapshotEntries applied entries pass between snapshots; KeepEntries
	// entries stay in the log behind a snapshot for lagging followers.
	SnapshotEntries uint64
	KeepEntries     uint64
}

// DefaultConfig returns defaults: a 50 ms tick (heartbeats), elections
// after 0.5–1 s without a leader.
func DefaultConfig(id uint64, peers []uint64) Config {
	return Config{ID: id, Peers: peers, TickInterval: 50 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
		MaxSizePerMsg: 4 << 20, MaxInflightMsgs: 256, CommittedBuffer: 1024,
		SnapshotEntries: 1_000, KeepEntries: 500}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.ID == 0:
		return errors.New("raft: member id must not be 0")
	case len(c.Peers) > 0 && !slices.Contains(c.Peers, c.ID):
		return fmt.Errorf("raft: member %d is not among the peers %v", c.ID, c.Peers)
	case c.TickInterval <= 0:
		return errors.New("raft: tick interval must be positive")
	case c.HeartbeatTicks < 1 || c.ElectionTicks <= c.HeartbeatTicks:
		return errors.New("raft: election ticks must exceed heartbeat ticks, which must be at least 1")
	case c.MaxSizePerMsg == 0 || c.MaxInflightMsgs < 1 || c.CommittedBuffer < 1 || c.SnapshotEntries == 0:
		return errors.New("raft: message size, in-flight and committed buffer limits must be positive")
	}
	return nil
}

// Transport carries Raft messages between members.
//
// Send must not block: a message that cannot be delivered soon is dropped
// (Raft retransmits). Receive delivers messages addressed to this member;
// the channel is read only by the engine's Run.
type Transport interface {
	Send(msgs []*pb.Message)
	Receive() <-chan *pb.Message
}

type proposal struct {
	data []byte
	conf *pb.ConfChange // a membership change instead of data
	done chan error
}

// ErrConfChangePending is returned by ProposeConfChange while an earlier
// membership change is not yet applied: one change at a time.
var ErrConfChangePending = errors.New("another membership change is still being applied; retry")

// confAt is the membership in force from a log index on.
type confAt struct {
	index uint64
	cs    *pb.ConfState
}

type checkpoint struct {
	index uint64
	data  []byte
}

type report struct {
	to       uint64
	snapshot bool
	failed   bool
}

// Engine is a Raft member implementing consensus.Engine. Its Run goroutine
// owns the RawNode: it ticks, steps received messages, persists each Ready
// (log store, synced), then sends its messages, then hands committed entries
// to the node, then advances — the order etcd raft requires.
type Engine struct {
	cfg       Config
	store     *LogStore
	transport Transport
	logger    *slog.Logger
	rn        *etcdraft.RawNode
	metrics   *metrics

	props       chan proposal
	committed   chan consensus.Entry
	checkpoints chan checkpoint
	reports     chan report
	transfers   chan uint64
	applied     atomic.Uint64
	status      atomic.Pointer[consensus.Status]
	detail      atomic.Pointer[Detail]
	stopped     atomic.Bool
	done        chan struct{} // closed when Run returns
	snapIndex   atomic.Uint64 // index of the latest snapshot (lastSnap, for other goroutines)
	// pendingConf is the index of the latest membership change this member
	// proposed as leader (or its last index when it became leader); no new
	// change is proposed until the node applied it.
	pendingConf atomic.Uint64
	// snapFor is the index of a change that added a member; a snapshot at
	// or after it is taken as soon as the node offers one, because the
	// newcomer can restore only a snapshot that includes it. 0 when none.
	snapFor atomic.Uint64
	// startApplied is what the node had applied when the engine opened:
	// Raft redelivers every entry after the snapshot, and those up to here
	// only replay membership changes.
	startApplied uint64

	// Owned by Run.
	confState   *pb.ConfState
	baseConf    *pb.ConfState        // the membership of the latest snapshot
	confs       []confAt             // membership changes after the latest snapshot, in order
	pendingSnap *consensus.Entry     // a snapshot the node has not applied yet
	proposedAt  map[uint64]time.Time // leader: when each entry of its term was appended
	lastSnap    uint64
}

var _ consensus.Engine = (*Engine)(nil)

// New opens the engine on store. applied is the index of the last entry the
// node applied durably; entries after it are delivered again by Committed.
// On a fresh store the initial membership is written as a snapshot at index
// 1 with cfg.Peers as voters — identical on every member. reg may be nil.
func New(cfg Config, store *LogStore, transport Transport, applied uint64, logger *slog.Logger, reg prometheus.Registerer) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hs, cs, err := store.InitialState()
	if err != nil {
		return nil, err
	}
	if etcdraft.IsEmptyHardState(hs) && len(cs.GetVoters()) == 0 && len(cs.GetLearners()) == 0 && len(cfg.Peers) > 0 {
		boot := &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: new(uint64(1)), Term: new(uint64(1)),
			ConfState: &pb.ConfState{Voters: slices.Sorted(slices.Values(cfg.Peers))}}}
		if err := store.Save(nil, nil, boot); err != nil {
			return nil, fmt.Errorf("raft: bootstrap membership: %w", err)
		}
	}
	snap, err := store.Snapshot()
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: store, transport: transport, logger: logger, metrics: newMetrics(reg),
		props: make(chan proposal), committed: make(chan consensus.Entry, cfg.CommittedBuffer),
		checkpoints: make(chan checkpoint, 4), reports: make(chan report, 1024), transfers: make(chan uint64, 1), done: make(chan struct{}),
		confState: snap.GetMetadata().GetConfState(), baseConf: snap.GetMetadata().GetConfState(), proposedAt: map[uint64]time.Time{},
		lastSnap: snap.GetMetadata().GetIndex()}
	if snapIndex := snap.GetMetadata().GetIndex(); applied < snapIndex && len(snap.GetData()) > 0 {
		// The node stopped before it caught up with a snapshot it had
		// received: hand it over again before anything that follows it.
		cs := snap.GetMetadata().GetConfState()
		e.pendingSnap = &consensus.Entry{Index: snapIndex, Term: snap.GetMetadata().GetTerm(), Data: snap.GetData(), Snapshot: true, Committed: time.Now(),
			Config: &consensus.Config{Voters: slices.Clone(cs.GetVoters()), Learners: slices.Clone(cs.GetLearners())}}
	}
	applied = max(applied, snap.GetMetadata().GetIndex())
	e.startApplied = applied
	// Raft restores the membership of the snapshot only; the changes after
	// it are replayed from the log, so Raft starts applying right after the
	// snapshot and the engine skips what the node already applied.
	rn, err := etcdraft.NewRawNode(&etcdraft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   store,
		Applied:                   snap.GetMetadata().GetIndex(),
		StepDownOnRemoval:         true,
		MaxSizePerMsg:             cfg.MaxSizePerMsg,
		MaxInflightMsgs:           cfg.MaxInflightMsgs,
		CheckQuorum:               true,
		PreVote:                   true,
		DisableProposalForwarding: true, // only the leader cuts blocks
		Logger:                    raftLogger{logger.With("component", "raft")},
	})
	if err != nil {
		return nil, err
	}
	e.rn = rn
	e.applied.Store(applied)
	e.snapIndex.Store(e.lastSnap)
	e.publishStatus(true)
	return e, nil
}

// Propose submits data on the leader. It returns once the leader appended
// it to its log (replication and commit follow), consensus.ErrNotLeader on a
// follower, consensus.ErrStopped after Run ended, or ctx's error.
func (e *Engine) Propose(ctx context.Context, data []byte) error {
	return e.submit(ctx, proposal{data: data, done: make(chan error, 1)})
}

// submit hands p to Run and waits for its outcome.
func (e *Engine) submit(ctx context.Context, p proposal) error {
	if e.stopped.Load() {
		return consensus.ErrStopped
	}
	select {
	case e.props <- p:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ProposeConfChange submits a membership change on the leader. It returns
// once the leader appended it (like Propose), ErrConfChangePending while an
// earlier change is not yet applied by the node, consensus.ErrNotLeader on
// a follower, or ctx's error. The change takes effect when its entry is
// committed; the node learns of it from the entry's Config.
func (e *Engine) ProposeConfChange(ctx context.Context, cc *pb.ConfChange) error {
	return e.submit(ctx, proposal{conf: cc, done: make(chan error, 1)})
}

// TransferLeadership asks Raft, on the leader, to hand leadership to the
// voter id; the outcome shows in Status. It does nothing elsewhere.
func (e *Engine) TransferLeadership(id uint64) {
	select {
	case e.transfers <- id:
	default:
	}
}

// Committed implements consensus.Engine.
func (e *Engine) Committed() <-chan consensus.Entry { return e.committed }

// Applied implements consensus.Engine.
func (e *Engine) Applied(index uint64) {
	for {
		cur := e.applied.Load()
		if index <= cur || e.applied.CompareAndSwap(cur, index) {
			return
		}
	}
}

// Checkpoint implements consensus.Engine: every Config.SnapshotEntries
// applied entries the log up to index becomes a snapshot carrying data, and
// entries older than Config.KeepEntries behind it are discarded.
func (e *Engine) Checkpoint(index uint64, data []byte) {
	select {
	case e.checkpoints <- checkpoint{index: index, data: data}:
	default: // one is being taken; the next checkpoint will do
	}
}

// SnapshotDue reports whether a checkpoint at index would be taken, so the
// node prepares checkpoint data only when it is.
func (e *Engine) SnapshotDue(index uint64) bool {
	if f := e.snapFor.Load(); f != 0 && index >= f {
		return true
	}
	last := e.snapIndex.Load()
	return index > last && index-last >= e.cfg.SnapshotEntries
}

// ReportUnreachable tells Raft that a message to member id was lost, so
// the leader probes it rather than stream entries into the void.
func (e *Engine) ReportUnreachable(id uint64) {
	select {
	case e.reports <- report{to: id, failed: true}:
	default:
	}
}

// ReportSnapshot tells Raft whether a snapshot sent to member id arrived;
// a leader waits for this before it replicates to that member again.
func (e *Engine) ReportSnapshot(id uint64, failed bool) {
	select {
	case e.reports <- report{to: id, snapshot: true, failed: failed}: // never dropped while running
	case <-e.done:
	}
}

// Status implements consensus.Engine.
func (e *Engine) Status() consensus.Status {
	st := *e.status.Load()
	st.Applied = e.applied.Load()
	return st
}

// Detail is the engine's full view, refreshed every tick.
type Detail struct {
	consensus.Status
	LastIndex     uint64       `json:"lastIndex"`
	FirstIndex    uint64       `json:"firstIndex"`
	SnapshotIndex uint64       `json:"snapshotIndex"`
	Voters        []uint64     `json:"voters"`
	Learners      []uint64     `json:"learners"`
	Peers         []PeerStatus `json:"peers,omitempty"` // on the leader only
}

// PeerStatus is the leader's view of one member's replication.
type PeerStatus struct {
	ID     uint64 `json:"id"`
	Match  uint64 `json:"match"`  // highest index known replicated on it
	Next   uint64 `json:"next"`   // next index to send
	Lag    uint64 `json:"lag"`    // leader's last index minus Match
	State  string `json:"state"`  // probe, replicate or snapshot
	Active bool   `json:"active"` // heard from within an election timeout
}

// Detail returns the engine's full view as of the last tick (one
// consistent snapshot: Applied never exceeds Commit there).
func (e *Engine) Detail() Detail { return *e.detail.Load() }

func roleName(s etcdraft.StateType) string {
	switch s {
	case etcdraft.StateLeader:
		return "leader"
	case etcdraft.StateCandidate:
		return "candidate"
	case etcdraft.StatePreCandidate:
		return "pre-candidate"
	default:
		return "follower"
	}
}

// publishStatus refreshes Status, and with full also Detail and the
// replication metrics.
func (e *Engine) publishStatus(full bool) {
	bs := e.rn.BasicStatus()
	st := &consensus.Status{ID: e.cfg.ID, LeaderID: bs.Lead, Term: bs.GetTerm(), Commit: bs.GetCommit(),
		Applied: e.applied.Load(), Role: roleName(bs.RaftState)}
	switch {
	case slices.Contains(e.confState.GetLearners(), e.cfg.ID):
		st.Role = "learner"
	case slices.Contains(e.confState.GetVoters(), e.cfg.ID):
	case len(e.confState.GetVoters()) == 0:
		st.Role = "joining" // waiting for the leader's snapshot
	default:
		st.Role = "removed"
	}
	e.status.Store(st)
	e.metrics.term.Set(float64(st.Term))
	e.metrics.commit.Set(float64(st.Commit))
	if !full {
		return
	}
	last, _ := e.store.LastIndex()
	first, _ := e.store.FirstIndex()
	d := &Detail{Status: *st, LastIndex: last, FirstIndex: first, SnapshotIndex: e.lastSnap,
		Voters: slices.Clone(e.confState.GetVoters()), Learners: slices.Clone(e.confState.GetLearners())}
	e.metrics.lag.Reset()
	if bs.RaftState == etcdraft.StateLeader {
		full := e.rn.Status()
		for id, pr := range full.Progress {
			if id == e.cfg.ID {
				continue
			}
			lag := uint64(0)
			if last > pr.Match {
				lag = last - pr.Match
			}
			d.Peers = append(d.Peers, PeerStatus{ID: id, Match: pr.Match, Next: pr.Next, Lag: lag, State: pr.State.String(), Active: pr.RecentActive})
			e.metrics.lag.WithLabelValues(strconv.FormatUint(id, 10)).Set(float64(lag))
		}
		slices.SortFunc(d.Peers, func(a, b PeerStatus) int { return cmp.Compare(a.ID, b.ID) })
	}
	e.detail.Store(d)
}

// Run drives the engine until ctx ends. On the way out a leader hands its
// leadership to the most up-to-date voter, so the cluster does not wait an
// election timeout for a new one.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.done)
	defer e.stopped.Store(true)
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	if e.pendingSnap != nil {
		select {
		case e.committed <- *e.pendingSnap:
		case <-ctx.Done():
			return nil
		}
		e.pendingSnap = nil
	}
	lead := e.Status().LeaderID
	for {
		full := false
		select {
		case <-ctx.Done():
			e.drainProposals()
			return e.handOver()
		case <-ticker.C:
			e.rn.Tick()
			full = true
		case m := <-e.transport.Receive():
			e.step(m)
		case r := <-e.reports:
			e.report(r)
		case c := <-e.checkpoints:
			if err := e.snapshot(c); err != nil {
				return err
			}
		case p := <-e.props:
			e.propose(p)
		case id := <-e.transfers:
			if e.rn.BasicStatus().RaftState == etcdraft.StateLeader && id != e.cfg.ID {
				e.logger.Info("transferring leadership", "to", id, "member", e.cfg.ID)
				e.rn.TransferLeader(id)
			}
		}
		if err := e.handleReady(ctx, true); err != nil {
			return err
		}
		e.publishStatus(full)
		if st := e.status.Load(); st.LeaderID != lead {
			lead = st.LeaderID
			e.metrics.leaderChanges.Inc()
			clear(e.proposedAt)
			if lead == e.cfg.ID {
				// Changes of earlier leaders may still be unapplied.
				last, _ := e.store.LastIndex()
				e.pendingConf.Store(last)
			}
			e.publishStatus(true)
			e.logger.Info("raft leader changed", "leader", lead, "term", st.Term, "member", e.cfg.ID, "role", st.Role)
		}
	}
}

func (e *Engine) step(m *pb.Message) {
	if m.GetType() == pb.MessageType_MsgSnap {
		e.metrics.snapshotsReceived.Inc()
	}
	if err := e.rn.Step(m); err != nil && !errors.Is(err, etcdraft.ErrStepPeerNotFound) {
		e.logger.Debug("raft step", "from", m.GetFrom(), "type", m.GetType(), "err", err)
	}
}

func (e *Engine) report(r report) {
	switch {
	case r.snapshot && r.failed:
		e.rn.ReportSnapshot(r.to, etcdraft.SnapshotFailure)
	case r.snapshot:
		e.rn.ReportSnapshot(r.to, etcdraft.SnapshotFinish)
	default:
		e.rn.ReportUnreachable(r.to)
	}
}

func (e *Engine) propose(p proposal) {
	if e.rn.BasicStatus().RaftState != etcdraft.StateLeader {
		p.done <- consensus.ErrNotLeader
		return
	}
	if p.conf != nil {
		e.proposeConf(p)
		return
	}
	err := e.rn.Propose(p.data)
	if errors.Is(err, etcdraft.ErrProposalDropped) {
		err = consensus.ErrNotLeader
	}
	if err == nil {
		e.metrics.proposals.Inc()
	}
	p.done <- err
}

// proposeConf appends a membership change unless one is still pending. The
// node's applied index, which trails Raft's, decides: so the leader's view
// of the membership always includes every earlier change.
func (e *Engine) proposeConf(p proposal) {
	if pending := e.pendingConf.Load(); e.applied.Load() < pending {
		p.done <- fmt.Errorf("%w (index %d, applied %d)", ErrConfChangePending, pending, e.applied.Load())
		return
	}
	last, err := e.store.LastIndex()
	if err != nil {
		p.done <- err
		return
	}
	err = e.rn.ProposeConfChange(p.conf)
	if errors.Is(err, etcdraft.ErrProposalDropped) {
		err = consensus.ErrNotLeader
	}
	if err == nil {
		// Every earlier Ready is persisted, so the change is the next entry.
		e.pendingConf.Store(last + 1)
		e.metrics.proposals.Inc()
	}
	p.done <- err
}

// confAt returns the membership in force at index.
func (e *Engine) confAtIndex(index uint64) *pb.ConfState {
	cs := e.baseConf
	for _, c := range e.confs {
		if c.index > index {
			break
		}
		cs = c.cs
	}
	return cs
}

// applyConf applies a committed membership change to Raft, unless it
// would remove the last voter (every member makes the same decision from
// the same log), and returns the membership after it.
func (e *Engine) applyConf(cc *pb.ConfChange, index uint64) *consensus.Config {
	voters := slices.Clone(e.confState.GetVoters())
	id := cc.GetNodeId()
	switch cc.GetType() {
	case pb.ConfChangeType_ConfChangeRemoveNode, pb.ConfChangeType_ConfChangeAddLearnerNode:
		voters = slices.DeleteFunc(voters, func(v uint64) bool { return v == id })
	}
	if len(voters) == 0 {
		e.logger.Error("membership change refused: it would remove the last voter", "index", index, "change", cc.GetType(), "id", id)
		return &consensus.Config{Voters: slices.Clone(e.confState.GetVoters()), Learners: slices.Clone(e.confState.GetLearners()), Rejected: true}
	}
	isNew := !slices.Contains(e.confState.GetVoters(), id) && !slices.Contains(e.confState.GetLearners(), id)
	e.confState = e.rn.ApplyConfChange(cc)
	e.confs = append(e.confs, confAt{index: index, cs: e.confState})
	if isNew && (cc.GetType() == pb.ConfChangeType_ConfChangeAddNode || cc.GetType() == pb.ConfChangeType_ConfChangeAddLearnerNode) {
		// The stored snapshot does not include the newcomer, which cannot
		// restore it: hold snapshots until one at or after this index.
		e.snapFor.Store(index)
		e.store.HoldSnapshots(true)
	}
	e.logger.Info("membership changed", "index", index, "change", cc.GetType(), "id", id,
		"voters", e.confState.GetVoters(), "learners", e.confState.GetLearners(), "member", e.cfg.ID)
	e.publishStatus(true)
	return &consensus.Config{Voters: slices.Clone(e.confState.GetVoters()), Learners: slices.Clone(e.confState.GetLearners())}
}

// snapshot records a snapshot at the checkpoint's index and compacts the
// log behind it, keeping Config.KeepEntries entries for lagging followers.
func (e *Engine) snapshot(c checkpoint) error {
	forced := e.snapFor.Load() != 0 && c.index >= e.snapFor.Load()
	if c.index <= e.lastSnap || (c.index-e.lastSnap < e.cfg.SnapshotEntries && !forced) {
		return nil
	}
	if c.index > e.rn.BasicStatus().Applied {
		return nil // Raft has not handed this index over yet; a later checkpoint will do
	}
	cs := e.confAtIndex(c.index)
	if _, err := e.store.CreateSnapshot(c.index, cs, c.data); err != nil {
		return fmt.Errorf("raft: snapshot at %d: %w", c.index, err)
	}
	e.baseConf = cs
	for len(e.confs) > 0 && e.confs[0].index <= c.index {
		e.confs = e.confs[1:]
	}
	if forced {
		e.snapFor.Store(0)
		e.store.HoldSnapshots(false)
	}
	e.lastSnap = c.index
	e.snapIndex.Store(c.index)
	e.metrics.snapshotsTaken.Inc()
	if c.index > e.cfg.KeepEntries {
		first, err := e.store.FirstIndex()
		if err != nil {
			return err
		}
		if compact := c.index - e.cfg.KeepEntries; compact > first {
			if err := e.store.Compact(compact); err != nil {
				return fmt.Errorf("raft: compact to %d: %w", compact, err)
			}
		}
	}
	e.logger.Info("raft snapshot taken", "index", c.index, "member", e.cfg.ID)
	return nil
}

// handleReady processes every pending Ready: persist, send, deliver,
// advance. With deliver false (shutting down) committed entries are not
// handed to the node; they are delivered again after a restart, because the
// node's applied index, not Raft's, decides where delivery resumes.
func (e *Engine) handleReady(ctx context.Context, deliver bool) error {
	for e.rn.HasReady() {
		rd := e.rn.Ready()
		if err := e.store.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			// Raft's safety depends on durable state; an engine that cannot
			// persist must stop rather than vote or acknowledge.
			return fmt.Errorf("raft: persist: %w", err)
		}
		if e.rn.BasicStatus().RaftState == etcdraft.StateLeader {
			now := time.Now()
			term := e.rn.BasicStatus().GetTerm()
			for _, ent := range rd.Entries {
				if ent.GetTerm() == term && len(ent.GetData()) > 0 {
					e.proposedAt[ent.GetIndex()] = now
				}
			}
		}
		if len(rd.Messages) > 0 {
			for _, m := range rd.Messages {
				if m.GetType() == pb.MessageType_MsgSnap {
					e.metrics.snapshotsSent.Inc()
				}
			}
			e.transport.Send(rd.Messages)
		}
		if rd.Snapshot != nil && !etcdraft.IsEmptySnap(rd.Snapshot) {
			md := rd.Snapshot.GetMetadata()
			e.confState, e.baseConf, e.confs = md.GetConfState(), md.GetConfState(), nil
			e.lastSnap = md.GetIndex()
			e.snapIndex.Store(md.GetIndex())
			e.startApplied = max(e.startApplied, md.GetIndex())
		}
		if deliver && rd.Snapshot != nil && !etcdraft.IsEmptySnap(rd.Snapshot) {
			md := rd.Snapshot.GetMetadata()
			e.logger.Info("raft snapshot received; catching up by block sync", "index", md.GetIndex(), "member", e.cfg.ID)
			cfg := &consensus.Config{Voters: slices.Clone(e.confState.GetVoters()), Learners: slices.Clone(e.confState.GetLearners())}
			select {
			case e.committed <- consensus.Entry{Index: md.GetIndex(), Term: md.GetTerm(), Data: rd.Snapshot.GetData(), Snapshot: true, Committed: time.Now(), Config: cfg}:
			case <-ctx.Done():
				deliver = false
			}
		}
		now := time.Now()
		for _, ent := range rd.CommittedEntries {
			if t, ok := e.proposedAt[ent.GetIndex()]; ok {
				e.metrics.commitSeconds.Observe(now.Sub(t).Seconds())
				delete(e.proposedAt, ent.GetIndex())
			}
			if ent.GetType() == pb.EntryType_EntryConfChange {
				// Raft must see every change, delivered or not: it
				// replays them after a restart from the log.
				cc := new(pb.ConfChange)
				if err := proto.Unmarshal(ent.GetData(), cc); err != nil {
					return fmt.Errorf("raft: undecodable membership change at %d: %w", ent.GetIndex(), err)
				}
				cfg := e.applyConf(cc, ent.GetIndex())
				if !deliver || ent.GetIndex() <= e.startApplied {
					continue
				}
				select {
				case e.committed <- consensus.Entry{Index: ent.GetIndex(), Term: ent.GetTerm(), Data: cc.GetContext(), Committed: now, Config: cfg}:
				case <-ctx.Done():
					deliver = false
				}
				continue
			}
			if !deliver || ent.GetIndex() <= e.startApplied {
				continue
			}
			switch ent.GetType() {
			case pb.EntryType_EntryNormal:
				if len(ent.GetData()) == 0 {
					e.Applied(ent.GetIndex()) // a new leader's empty entry
					continue
				}
				select {
				case e.committed <- consensus.Entry{Index: ent.GetIndex(), Term: ent.GetTerm(), Data: ent.GetData(), Committed: now}:
				case <-ctx.Done():
					deliver = false
				}
			default:
				// Hansa proposes simple changes only (ConfChange, never V2).
				e.logger.Warn("ignoring a joint membership change entry", "index", ent.GetIndex())
				e.Applied(ent.GetIndex())
			}
		}
		e.rn.Advance(rd)
	}
	return nil
}

// handOver transfers leadership before the engine stops, waiting up to an
// election timeout (at most 2 s) for another member to take over. Messages keep flowing
// meanwhile; committed entries are not delivered (the node is stopping).
func (e *Engine) handOver() error {
	bs := e.rn.BasicStatus()
	if bs.RaftState != etcdraft.StateLeader || len(e.confState.GetVoters()) < 2 {
		return nil
	}
	var target, best uint64
	for id, pr := range e.rn.Status().Progress {
		if id != e.cfg.ID && !pr.IsLearner && pr.RecentActive && (target == 0 || pr.Match > best) {
			target, best = id, pr.Match
		}
	}
	if target == 0 {
		return nil
	}
	e.logger.Info("handing leadership over before stopping", "to", target, "member", e.cfg.ID)
	e.rn.TransferLeader(target)
	deadline := time.NewTimer(min(time.Duration(e.cfg.ElectionTicks)*e.cfg.TickInterval, 2*time.Second))
	defer deadline.Stop()
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	stopped, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if err := e.handleReady(stopped, false); err != nil {
			return err
		}
		if st := e.rn.BasicStatus(); st.Lead != e.cfg.ID && st.Lead != 0 {
			e.logger.Info("leadership handed over", "leader", st.Lead, "term", st.GetTerm(), "member", e.cfg.ID)
			return nil
		}
		select {
		case <-deadline.C:
			e.logger.Warn("leadership hand-over timed out; the cluster will elect a leader", "member", e.cfg.ID)
			return nil
		case <-ticker.C:
			e.rn.Tick()
		case m := <-e.transport.Receive():
			e.step(m)
		case r := <-e.reports:
			e.report(r)
		}
	}
}

func (e *Engine) drainProposals() {
	for {
		select {
		case p := <-e.props:
			p.done <- consensus.ErrStopped
		default:
			return
		}
	}
}

// raftLogger adapts slog to etcd raft's Logger.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Fatal(v ...any)                 { panic(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
func (r raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
