package solo

import (
	"context"
	"errors"
	"testing"

	"github.com/hansa-chain/hansa/internal/consensus"
)

func TestProposeCommitsInOrder(t *testing.T) {
	e := New(7, 41)
	if !e.Status().IsLeader() {
		t.Fatal("solo member must lead")
	}
	for i := 0; i < 3; i++ {
		if err := e.Propose(t.Context(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		got := <-e.Committed()
		if got.Index != uint64(42+i) || got.Data[0] != byte(i) {
			t.Fatalf("entry %d: got index %d data %v", i, got.Index, got.Data)
		}
	}
	e.Applied(44)
	if s := e.Status(); s.Commit != 44 || s.Applied != 44 {
		t.Fatalf("status %+v", s)
	}
}

func TestProposeAfterStop(t *testing.T) {
	e := New(1, 0)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.Propose(t.Context(), []byte("x")); !errors.Is(err, consensus.ErrStopped) {
		t.Fatalf("got %v, want ErrStopped", err)
	}
}

func TestProposeHonoursContextWhenFull(t *testing.T) {
	e := New(1, 0)
	for i := 0; i < cap(e.committed); i++ {
		if err := e.Propose(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := e.Propose(ctx, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if s := e.Status(); s.Commit != uint64(cap(e.committed)) {
		t.Fatalf("a refused proposal advanced the log: %+v", s)
	}
}
