package gateway

import (
	"context"
	"sync"
	"time"
)

// deadlineCtx is a context with a deadline that starts a timer only once
// something waits on Done. Most proxied calls only read Deadline and Err
// (fasthttp's client takes the deadline itself), and a timer per call was
// about 6 % of the gateway's CPU at one client (docs/gateway-benchmark.md).
// release must be called when the call is done, as with a CancelFunc.
type deadlineCtx struct {
	context.Context // the parent
	deadline        time.Time

	mu     sync.Mutex
	timer  context.Context // set on the first Done, guarded by mu
	cancel context.CancelFunc
}

// withDeadline returns a context that is done at deadline (or the parent's,
// if earlier) or when the parent is.
func withDeadline(parent context.Context, deadline time.Time) *deadlineCtx {
	if pd, ok := parent.Deadline(); ok && pd.Before(deadline) {
		deadline = pd
	}
	return &deadlineCtx{Context: parent, deadline: deadline}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer == nil {
		c.timer, c.cancel = context.WithDeadline(c.Context, c.deadline)
	}
	return c.timer.Done()
}

func (c *deadlineCtx) Err() error {
	c.mu.Lock()
	t := c.timer
	c.mu.Unlock()
	if t != nil {
		return t.Err()
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// release stops the timer, if one was started.
func (c *deadlineCtx) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		c.cancel()
	}
}
