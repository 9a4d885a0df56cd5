// Package solo is the single-voter orderer: the one member is always the
// leader and every proposal is committed at once, in the order proposed. It
// implements consensus.Engine so a single node runs the same apply path as a
// replicated cluster. Durability comes from the node: a proposal is
// acknowledged to clients only after its block is stored, so a crash before
// that loses nothing that was acknowledged.
package solo

import (
	"context"
	"sync"
	"time"

	"github.com/hansa-chain/hansa/internal/consensus"
)

// Engine is the single-voter orderer.
type Engine struct {
	id        uint64
	committed chan consensus.Entry

	mu      sync.Mutex
	next    uint64 // index of the next proposal
	applied uint64
	stopped bool
}

var _ consensus.Engine = (*Engine)(nil)

// New returns an orderer for member id whose log continues after applied.
func New(id, applied uint64) *Engine {
	return &Engine{id: id, committed: make(chan consensus.Entry, 64), next: applied + 1, applied: applied}
}

// Propose commits data at the next index.
func (e *Engine) Propose(ctx context.Context, data []byte) error {
	e.mu.Lock()
	if e.stopped {
		e.mu.Unlock()
		return consensus.ErrStopped
	}
	entry := consensus.Entry{Index: e.next, Term: 1, Data: data, Committed: time.Now()}
	// Hold the lock while sending so indexes reach the channel in order.
	defer e.mu.Unlock()
	select {
	case e.committed <- entry:
		e.next++
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Committed implements consensus.Engine.
func (e *Engine) Committed() <-chan consensus.Entry { return e.committed }

// Applied implements consensus.Engine.
func (e *Engine) Applied(index uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if index > e.applied {
		e.applied = index
	}
}

// Status implements consensus.Engine.
func (e *Engine) Status() consensus.Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return consensus.Status{ID: e.id, LeaderID: e.id, Term: 1, Commit: e.next - 1, Applied: e.applied, Role: "leader"}
}

// Checkpoint implements consensus.Engine: the orderer keeps no log, so
// there is nothing to compact.
func (e *Engine) Checkpoint(uint64, []byte) {}

// Run waits for ctx to end, then refuses further proposals.
func (e *Engine) Run(ctx context.Context) error {
	<-ctx.Done()
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	return nil
}
