package transport_test

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/hansa-chain/hansa/internal/transport"
)

// Two members on loopback: member 1 calls member 2 and sends it a Raft
// message. Each knows the other by its node key's address.
func ExampleNewTCP() {
	genesis := crypto.Keccak256Hash([]byte("example chain"))
	keys := []*ecdsa.PrivateKey{mustKey(), mustKey()}
	var members []*transport.TCP
	var peers []transport.Peer
	for i, key := range keys {
		cfg := transport.DefaultTCPConfig()
		cfg.ID, cfg.Key, cfg.Genesis, cfg.ListenAddr = uint64(i+1), key, genesis, "127.0.0.1:0"
		t, err := transport.NewTCP(cfg, nil, nil) // no logs, private metrics
		if err != nil {
			panic(err)
		}
		members = append(members, t)
		peers = append(peers, transport.Peer{ID: cfg.ID, Address: address(key), Addr: t.Addr()})
	}
	for _, t := range members {
		t.SetPeers(peers) // each ignores itself
	}
	members[1].Handle("greet", func(_ context.Context, from uint64, req []byte) ([]byte, error) {
		return fmt.Appendf(nil, "hello %s, member %d", req, from), nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, t := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := t.Run(ctx); err != nil {
				panic(err)
			}
		}()
	}

	resp, err := members[0].Call(ctx, 2, "greet", []byte("world"))
	fmt.Println(string(resp), err)

	members[0].Send([]*pb.Message{{Type: pb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(1)}})
	m := <-members[1].Receive()
	fmt.Println(m.GetType(), m.GetFrom(), "->", m.GetTo())

	cancel()
	wg.Wait()
	// Output:
	// hello world, member 1 <nil>
	// MsgHeartbeat 1 -> 2
}

func mustKey() *ecdsa.PrivateKey {
	key, err := crypto.GenerateKey()
	if err != nil {
		panic(err)
	}
	return key
}

func address(key *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(key.PublicKey) }
