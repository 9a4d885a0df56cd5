package transport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"io"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	pb "go.etcd.io/raft/v3/raftpb"
)

// memberClient is an HTTP client authenticated with key's binding for
// genesis, built as the transport builds its own, which accepts any server.
func memberClient(t *testing.T, key *ecdsa.PrivateKey, genesis common.Hash) *http.Client {
	t.Helper()
	cert, err := newIdentity(key, genesis, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tlsClient(tlsConfig(cert, false, func([]*x509.Certificate) error { return nil }))
}

func tlsClient(cfg *tls.Config) *http.Client {
	return &http.Client{Timeout: patience, Transport: &http.Transport{TLSClientConfig: cfg,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
}

// selfSigned returns a certificate for a fresh key without any binding.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func frames(t *testing.T, msgs ...*pb.Message) []byte {
	t.Helper()
	var body []byte
	for _, m := range msgs {
		var err error
		if body, err = appendFrame(body, m); err != nil {
			t.Fatal(err)
		}
	}
	return body
}

func post(client *http.Client, addr, path string, body []byte) (*http.Response, error) {
	resp, err := client.Post("https://"+addr+path, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

func TestTCPAuthentication(t *testing.T) {
	nodes := cluster(t, 3, nil)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	msgs := func(from uint64) []byte { return frames(t, raftMsg(pb.MessageType_MsgHeartbeat, from, 1, 1, nil)) }

	t.Run("stranger key", func(t *testing.T) {
		// A transport whose key is not a member's, which itself believes
		// member 1 is its peer.
		s := startNode(t, testConfig(4, newKey(t), n1.peer()))
		s.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, 4, 1, 1, nil)})
		waitReport(t, s, Report{To: 1, Failed: true})
		_, err := s.tr.Call(t.Context(), 1, "echo", nil)
		var re *RemoteError
		if err == nil || errors.As(err, &re) {
			t.Fatalf("stranger's call: err = %v, want a transport error", err)
		}
	})
	t.Run("other genesis", func(t *testing.T) {
		// Member 2's own key, bound for another chain.
		cfg := testConfig(2, n2.key, n1.peer())
		cfg.Genesis = crypto.Keccak256Hash([]byte("another chain"))
		w := startNode(t, cfg)
		w.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, 2, 1, 1, nil)})
		waitReport(t, w, Report{To: 1, Failed: true})
		if _, err := w.tr.Call(t.Context(), 1, "echo", nil); err == nil {
			t.Fatal("a call bound to another genesis succeeded")
		}
		// The binding recovers to some other key, a stranger's: it may reach
		// only the open methods.
		if resp, err := post(memberClient(t, n2.key, cfg.Genesis), n1.tr.Addr(), msgsPath, msgs(2)); err == nil && resp.StatusCode != http.StatusForbidden {
			t.Fatalf("request bound to another genesis answered %s", resp.Status)
		}
	})
	t.Run("member claiming another member's messages", func(t *testing.T) {
		before := metricValue(n1.tr.metrics.garbage)
		resp, err := post(memberClient(t, n2.key, testGenesis()), n1.tr.Addr(), msgsPath, msgs(3))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusBadRequest || !resp.Close {
			t.Fatalf("frames from 3 over member 2's connection: %s (close %v), want 400 and close", resp.Status, resp.Close)
		}
		if got := metricValue(n1.tr.metrics.garbage); got != before+1 {
			t.Fatalf("garbage_total = %v, want %v", got, before+1)
		}
	})
	t.Run("self-signed certificate", func(t *testing.T) {
		client := tlsClient(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{selfSigned(t)}})
		if resp, err := post(client, n1.tr.Addr(), msgsPath, msgs(2)); err == nil {
			t.Fatalf("self-signed client answered %s", resp.Status)
		}
		client = tlsClient(&tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true})
		if resp, err := post(client, n1.tr.Addr(), msgsPath, msgs(2)); err == nil {
			t.Fatalf("client without certificate answered %s", resp.Status)
		}
	})
	t.Run("plain http", func(t *testing.T) {
		client := &http.Client{Timeout: patience}
		resp, err := client.Post("http://"+n1.tr.Addr()+msgsPath, "application/octet-stream", bytes.NewReader(msgs(2)))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("plain HTTP answered %s", resp.Status)
			}
		}
	})
	t.Run("server with another member's address", func(t *testing.T) {
		// Member 1 is told member 2 listens where member 3 does: the client
		// must refuse member 3's certificate.
		p2 := n2.peer()
		p2.Addr = n3.tr.Addr()
		n1.tr.SetPeers([]Peer{p2, n3.peer()})
		defer n1.tr.SetPeers([]Peer{n2.peer(), n3.peer()})
		n1.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, 1, 2, 1, nil)})
		waitReport(t, n1, Report{To: 2, Failed: true})
		if _, err := n1.tr.Call(t.Context(), 2, "echo", nil); err == nil || !strings.Contains(err.Error(), "member 3") {
			t.Fatalf("call to member 2 at member 3's address: err = %v, want a refusal naming member 3", err)
		}
		// Member 3 must have received nothing: what it gets next is a
		// message sent after the refusal.
		n2.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, 2, 3, 77, nil)})
		if m := recv(t, n3, 1)[0]; m.GetFrom() != 2 || m.GetIndex() != 77 {
			t.Fatalf("member 3 received %v", m)
		}
	})

	// Nothing any of that sent reached member 1; legitimate traffic still does.
	n2.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgHeartbeat, 2, 1, 99, nil)})
	if m := recv(t, n1, 1)[0]; m.GetFrom() != 2 || m.GetIndex() != 99 {
		t.Fatalf("member 1 received %v, want only member 2's message 99", m)
	}
	if got := metricValue(n1.tr.metrics.authFailures); got == 0 {
		t.Error("auth_failures_total stayed 0")
	}
	if !n1.running() {
		t.Fatal("member 1 stopped")
	}
}

func TestTCPGarbage(t *testing.T) {
	nodes := cluster(t, 2, func(c *TCPConfig) {
		c.MaxFrameBytes = 64 << 10
		c.MaxBatchBytes = 16 << 10
	})
	n1, n2 := nodes[0], nodes[1]
	client := memberClient(t, n2.key, testGenesis())
	legit := raftMsg(pb.MessageType_MsgApp, 2, 1, 1, []byte("ok"))
	huge := make([]byte, frameHeaderLen)
	binary.BigEndian.PutUint32(huge, 0xFFFFFFFF)
	valid := frames(t, legit)
	random := make([]byte, 1000)
	_, _ = rand.Read(random)
	var oversized []byte // valid frames, more than MaxFrameBytes in all
	for len(oversized) <= 64<<10+frameHeaderLen {
		oversized = append(oversized, frames(t, raftMsg(pb.MessageType_MsgApp, 2, 1, 1, make([]byte, 1000)))...)
	}
	cases := []struct {
		name, path string
		body       []byte
	}{
		{"random bytes", msgsPath, random},
		{"length beyond the limit", msgsPath, append(huge, 1, 2, 3)},
		{"truncated frame", msgsPath, valid[:len(valid)-1]},
		{"truncated header", msgsPath, valid[:2]},
		{"undecodable message", msgsPath, []byte{0, 0, 0, 2, 0xff, 0xff}},
		{"wrong recipient", msgsPath, frames(t, raftMsg(pb.MessageType_MsgApp, 2, 5, 1, nil))},
		{"local message type", msgsPath, frames(t, raftMsg(pb.MessageType_MsgHup, 2, 1, 1, nil))},
		{"oversized body", msgsPath, oversized},
		{"oversized call", callPrefix + "echo", make([]byte, 64<<10+1)},
		{"unknown path", "/raft/v1/other", valid},
	}
	n1.tr.Handle("echo", func(_ context.Context, _ uint64, req []byte) ([]byte, error) { return req, nil })
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := post(client, n1.tr.Addr(), c.path, c.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest || !resp.Close {
				t.Fatalf("got %s (close %v), want 400 and close", resp.Status, resp.Close)
			}
			if got := metricValue(n1.tr.metrics.garbage); got != float64(i+1) {
				t.Fatalf("garbage_total = %v, want %d", got, i+1)
			}
		})
	}
	// The node still serves: the same client's valid batch, and the real
	// member 2's messages. Frames before the first bad one of a garbage
	// batch may have been delivered too; they are all legitimate.
	after := raftMsg(pb.MessageType_MsgApp, 2, 1, 1000, []byte("after"))
	if resp, err := post(client, n1.tr.Addr(), msgsPath, frames(t, after)); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("valid batch after garbage: %v, %v", resp, err)
	}
	n2.tr.Send([]*pb.Message{raftMsg(pb.MessageType_MsgApp, 2, 1, 1001, []byte("after"))})
	seen := map[uint64]bool{}
	for !seen[1000] || !seen[1001] {
		m := recv(t, n1, 1)[0]
		if m.GetFrom() != 2 || m.GetTo() != 1 || m.GetType() != pb.MessageType_MsgApp {
			t.Fatalf("member 1 delivered %v", m)
		}
		seen[m.GetIndex()] = true
	}
	if !n1.running() {
		t.Fatal("member 1 stopped after garbage")
	}
}

func TestCertificateBinding(t *testing.T) {
	key := newKey(t)
	now := time.Now()
	cert, err := newIdentity(key, testGenesis(), now)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := certSigner(cert.Leaf, testGenesis(), now)
	if err != nil || signer != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("certSigner = %s, %v", signer, err)
	}
	if s, err := certSigner(cert.Leaf, crypto.Keccak256Hash([]byte("other")), now); err == nil && s == signer {
		t.Fatal("binding verified under another genesis")
	}
	if _, err := certSigner(cert.Leaf, testGenesis(), now.Add(certLifetime+time.Hour)); err == nil {
		t.Fatal("expired certificate accepted")
	}
	if _, err := certSigner(cert.Leaf, testGenesis(), now.Add(-2*certBackdate)); err == nil {
		t.Fatal("not yet valid certificate accepted")
	}
	// The binding of one certificate does not carry over to another key.
	other, err := newIdentity(newKey(t), testGenesis(), now)
	if err != nil {
		t.Fatal(err)
	}
	forged := *other.Leaf
	forged.Extensions = cert.Leaf.Extensions
	if s, err := certSigner(&forged, testGenesis(), now); err == nil && s == signer {
		t.Fatal("a binding moved to another certificate still names the original key")
	}
	plain, err := x509.ParseCertificate(selfSigned(t).Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certSigner(plain, testGenesis(), now); err == nil {
		t.Fatal("certificate without a binding accepted")
	}
}
