package raft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	etcdraft "go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/hansa-chain/hansa/internal/consensus"
)

// Config configures one member's Raft engine.
type Config struct {
	// ID is this member's id (the genesis member id; never 0).
	ID uint64
	// Peers are the initial voters, this member included (the genesis
	// members). Every member must be given the same set.
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
}

// DefaultConfig returns defaults: a 100 ms tick, elections after about a
// second without a leader.
func DefaultConfig(id uint64, peers []uint64) Config {
	return Config{ID: id, Peers: peers, TickInterval: 100 * time.Millisecond, ElectionTicks: 10, HeartbeatTicks: 1,
		MaxSizePerMsg: 4 << 20, MaxInflightMsgs: 256, CommittedBuffer: 1024}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.ID == 0:
		return errors.New("raft: member id must not be 0")
	case !slices.Contains(c.Peers, c.ID):
		return fmt.Errorf("raft: member %d is not among the peers %v", c.ID, c.Peers)
	case c.TickInterval <= 0:
		return errors.New("raft: tick interval must be positive")
	case c.HeartbeatTicks < 1 || c.ElectionTicks <= c.HeartbeatTicks:
		return errors.New("raft: election ticks must exceed heartbeat ticks, which must be at least 1")
	case c.MaxSizePerMsg == 0 || c.MaxInflightMsgs < 1 || c.CommittedBuffer < 1:
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
	done chan error
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

	props     chan proposal
	committed chan consensus.Entry
	applied   atomic.Uint64
	status    atomic.Pointer[consensus.Status]
	stopped   atomic.Bool
}

var _ consensus.Engine = (*Engine)(nil)

// New opens the engine on store. applied is the index of the last entry the
// node applied durably; entries after it are delivered again by Committed.
// On a fresh store the initial membership is written as a snapshot at index
// 1 with cfg.Peers as voters — identical on every member.
func New(cfg Config, store *LogStore, transport Transport, applied uint64, logger *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hs, cs, err := store.InitialState()
	if err != nil {
		return nil, err
	}
	if etcdraft.IsEmptyHardState(hs) && len(cs.GetVoters()) == 0 && len(cs.GetLearners()) == 0 {
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
	applied = max(applied, snap.GetMetadata().GetIndex())
	rn, err := etcdraft.NewRawNode(&etcdraft.Config{
		ID:              cfg.ID,
		ElectionTick:    cfg.ElectionTicks,
		HeartbeatTick:   cfg.HeartbeatTicks,
		Storage:         store,
		Applied:         applied,
		MaxSizePerMsg:   cfg.MaxSizePerMsg,
		MaxInflightMsgs: cfg.MaxInflightMsgs,
		CheckQuorum:     true,
		PreVote:         true,
		Logger:          raftLogger{logger.With("component", "raft")},
	})
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, store: store, transport: transport, logger: logger, rn: rn,
		props: make(chan proposal), committed: make(chan consensus.Entry, cfg.CommittedBuffer)}
	e.applied.Store(applied)
	e.publishStatus()
	return e, nil
}

// Propose submits data on the leader. It returns once the leader appended
// it to its log (replication and commit follow), consensus.ErrNotLeader on a
// follower, consensus.ErrStopped after Run ended, or ctx's error.
func (e *Engine) Propose(ctx context.Context, data []byte) error {
	if e.stopped.Load() {
		return consensus.ErrStopped
	}
	p := proposal{data: data, done: make(chan error, 1)}
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

// Status implements consensus.Engine.
func (e *Engine) Status() consensus.Status { return *e.status.Load() }

func (e *Engine) publishStatus() {
	st := e.rn.BasicStatus()
	e.status.Store(&consensus.Status{ID: e.cfg.ID, LeaderID: st.Lead, Term: st.GetTerm(), Commit: st.GetCommit(), Applied: e.applied.Load()})
}

// Run drives the engine until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	defer e.stopped.Store(true)
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	lead := uint64(0)
	for {
		select {
		case <-ctx.Done():
			e.drainProposals()
			return nil
		case <-ticker.C:
			e.rn.Tick()
		case m := <-e.transport.Receive():
			if err := e.rn.Step(m); err != nil && !errors.Is(err, etcdraft.ErrStepPeerNotFound) {
				e.logger.Debug("raft step", "from", m.GetFrom(), "type", m.GetType(), "err", err)
			}
		case p := <-e.props:
			if e.rn.BasicStatus().RaftState != etcdraft.StateLeader {
				p.done <- consensus.ErrNotLeader
				continue
			}
			err := e.rn.Propose(p.data)
			if errors.Is(err, etcdraft.ErrProposalDropped) {
				err = consensus.ErrNotLeader
			}
			p.done <- err
		}
		if err := e.handleReady(ctx); err != nil {
			return err
		}
		e.publishStatus()
		if st := e.Status(); st.LeaderID != lead {
			lead = st.LeaderID
			e.logger.Info("raft leader changed", "leader", lead, "term", st.Term, "member", e.cfg.ID)
		}
	}
}

// handleReady processes every pending Ready: persist, send, deliver, advance.
func (e *Engine) handleReady(ctx context.Context) error {
	for e.rn.HasReady() {
		rd := e.rn.Ready()
		if err := e.store.Save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
			// Raft's safety depends on durable state; an engine that cannot
			// persist must stop rather than vote or acknowledge.
			return fmt.Errorf("raft: persist: %w", err)
		}
		if len(rd.Messages) > 0 {
			e.transport.Send(rd.Messages)
		}
		for _, ent := range rd.CommittedEntries {
			switch ent.GetType() {
			case pb.EntryType_EntryNormal:
				if len(ent.GetData()) == 0 {
					e.Applied(ent.GetIndex()) // a new leader's empty entry
					continue
				}
				select {
				case e.committed <- consensus.Entry{Index: ent.GetIndex(), Term: ent.GetTerm(), Data: ent.GetData()}:
				case <-ctx.Done():
					return nil
				}
			default:
				// Membership changes come with the membership issue; the
				// initial membership is in the bootstrap snapshot.
				e.logger.Warn("ignoring a configuration change entry", "index", ent.GetIndex())
				e.Applied(ent.GetIndex())
			}
		}
		e.rn.Advance(rd)
	}
	return nil
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
