package transport

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// A node that is no member reaches a member's open methods, learns which
// node key answered, and still cannot reach anything else.
func TestOpenCallsFromStrangers(t *testing.T) {
	nodes := cluster(t, 2, nil)
	n1 := nodes[0]
	var gotFrom common.Address
	n1.tr.HandleOpen("hello", func(_ context.Context, from common.Address, req []byte) ([]byte, error) {
		gotFrom = from
		if string(req) == "bad" {
			return nil, errors.New("refused: bad request")
		}
		return append([]byte("hi "), req...), nil
	})
	stranger := newKey(t)
	client, err := NewOpenClient(stranger, testGenesis(), patience)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	resp, signer, err := client.Call(t.Context(), n1.tr.Addr(), "hello", []byte("there"))
	if err != nil {
		t.Fatal(err)
	}
	if string(resp) != "hi there" {
		t.Fatalf("answer %q", resp)
	}
	if want := crypto.PubkeyToAddress(n1.key.PublicKey); signer != want {
		t.Fatalf("server proved key %s, want %s", signer, want)
	}
	if want := crypto.PubkeyToAddress(stranger.PublicKey); gotFrom != want {
		t.Fatalf("handler saw caller %s, want %s", gotFrom, want)
	}

	var re *RemoteError
	if _, _, err := client.Call(t.Context(), n1.tr.Addr(), "hello", []byte("bad")); !errors.As(err, &re) || !strings.Contains(re.Msg, "refused") {
		t.Fatalf("handler error: %v, want a RemoteError with its text", err)
	}
	if _, _, err := client.Call(t.Context(), n1.tr.Addr(), "nope", nil); !errors.As(err, &re) || re.Msg != ErrUnknownMethod.Error() {
		t.Fatalf("unknown open method: %v", err)
	}
	if _, _, err := client.Call(t.Context(), n1.tr.Addr(), "hello", bytes.Repeat([]byte{1}, MaxOpenBytes+1)); err == nil {
		t.Fatal("oversized open request accepted")
	}
	// The member-only paths stay closed to the stranger.
	hc := memberClient(t, stranger, testGenesis())
	r, err := post(hc, n1.tr.Addr(), callPrefix+"echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("stranger's member call answered %s, want 403", r.Status)
	}
	// Bindings for another chain recover to unrelated keys, both ways: the
	// handler does not see the caller's key, nor the caller the member's,
	// so neither can pass for the other (callers check the key they got).
	other, err := NewOpenClient(stranger, crypto.Keccak256Hash([]byte("other chain")), patience)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, signer, err := other.Call(t.Context(), n1.tr.Addr(), "hello", nil); err == nil {
		if signer == crypto.PubkeyToAddress(n1.key.PublicKey) || gotFrom == crypto.PubkeyToAddress(stranger.PublicKey) {
			t.Fatalf("a binding for another chain recovered a real key (server %s, caller %s)", signer, gotFrom)
		}
	}
}

// The stand-alone open server serves until shut down and hands the
// listener back, still bound, for the transport.
func TestOpenServerHandsListenerBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	srv, err := NewOpenServer(ln.(*net.TCPListener), key, testGenesis(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.Handle("ping", func(context.Context, common.Address, []byte) ([]byte, error) { return []byte("pong"), nil })
	client, err := NewOpenClient(newKey(t), testGenesis(), patience)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if resp, _, err := client.Call(t.Context(), ln.Addr().String(), "ping", nil); err != nil || string(resp) != "pong" {
		t.Fatalf("ping: %q, %v", resp, err)
	}
	back, err := srv.Shutdown(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(1, key)
	cfg.Listener = back
	n := startNode(t, cfg)
	n.tr.HandleOpen("ping", func(context.Context, common.Address, []byte) ([]byte, error) {
		return []byte("pong from the transport"), nil
	})
	client.Close()
	if resp, _, err := client.Call(t.Context(), ln.Addr().String(), "ping", nil); err != nil || string(resp) != "pong from the transport" {
		t.Fatalf("ping after hand-over: %q, %v", resp, err)
	}
	if n.tr.Addr() != ln.Addr().String() {
		t.Fatalf("transport bound to %s, want the handed-back %s", n.tr.Addr(), ln.Addr())
	}
}
