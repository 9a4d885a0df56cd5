package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A deadlineCtx expires at its deadline whether or not anything waits on
// Done, starts a timer only for Done, and follows its parent.
func TestDeadlineCtx(t *testing.T) {
	d := withDeadline(context.Background(), time.Now().Add(30*time.Millisecond))
	if err := d.Err(); err != nil {
		t.Fatalf("before the deadline: %v", err)
	}
	time.Sleep(40 * time.Millisecond)
	if err := d.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past the deadline, nobody waiting: %v", err)
	}
	if d.timer != nil {
		t.Fatal("Err started a timer")
	}
	d.release()

	d = withDeadline(context.Background(), time.Now().Add(30*time.Millisecond))
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done never closed")
	}
	if err := d.Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after Done: %v", err)
	}
	d.release()

	// The parent's earlier deadline wins; its cancellation shows in Err
	// (no timer) and in Done.
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	pd, _ := parent.Deadline()
	d = withDeadline(parent, time.Now().Add(time.Hour))
	if got, ok := d.Deadline(); !ok || !got.Equal(pd) {
		t.Fatalf("deadline %v, want the parent's %v", got, pd)
	}
	cancel()
	if err := d.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("parent cancelled, no timer: %v", err)
	}
	select {
	case <-d.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done ignored the cancelled parent")
	}
	d.release()

	// release ends a started timer (what a CancelFunc does).
	d = withDeadline(context.Background(), time.Now().Add(time.Hour))
	done := d.Done()
	d.release()
	select {
	case <-done:
	default:
		t.Fatal("release left the timer running")
	}
}
