package node

import (
	"reflect"
	"slices"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/consensus"
)

func addr(b byte) common.Address { return common.Address{b} }

func TestRegistryApply(t *testing.T) {
	reg := genesisRegistry([]chain.Member{{ID: 2, Name: "b", Address: addr(2)}, {ID: 1, Name: "a", Address: addr(1)}})
	if !slices.Equal(reg.Voters, []uint64{1, 2}) || reg.NextID != 3 || reg.Members[0].ID != 1 || reg.Members[0].Addr != "" {
		t.Fatalf("genesis registry %+v", reg)
	}
	// Add a learner: the next id, never one below it.
	add := memberChange{Op: opAdd, Member: Member{ID: 3, Name: "c", Address: addr(3), Addr: "c:1", RPC: "http://c:2"}}
	reg = reg.apply(add, &consensus.Config{Voters: []uint64{1, 2}, Learners: []uint64{3}})
	if m, ok := reg.member(3); !ok || m.Addr != "c:1" || reg.role(3) != "learner" || reg.NextID != 4 {
		t.Fatalf("after add: %+v", reg)
	}
	// An address update keeps the identity.
	reg = reg.apply(memberChange{Op: opUpdate, Member: Member{ID: 1, Addr: "a:9", RPC: "http://a:8"}}, &consensus.Config{Voters: []uint64{1, 2}, Learners: []uint64{3}})
	if m, _ := reg.member(1); m.Addr != "a:9" || m.RPC != "http://a:8" || m.Name != "a" || m.Address != addr(1) {
		t.Fatalf("after update: %+v", m)
	}
	// Roles come from Raft's configuration.
	reg = reg.apply(memberChange{Op: opPromote, Member: Member{ID: 3}}, &consensus.Config{Voters: []uint64{1, 2, 3}})
	if reg.role(3) != "voter" || len(reg.Learners) != 0 {
		t.Fatalf("after promote: %+v", reg)
	}
	// Removal keeps NextID: id 2 is removed for good.
	reg = reg.apply(memberChange{Op: opRemove, Member: Member{ID: 2}}, &consensus.Config{Voters: []uint64{1, 3}})
	if _, ok := reg.member(2); ok || !reg.removed(2) || reg.removed(3) || reg.removed(4) || reg.NextID != 4 {
		t.Fatalf("after remove: %+v", reg)
	}
	// A rejected change changes nothing but still follows the config.
	before := reg.clone()
	reg = reg.apply(memberChange{Op: opRemove, Member: Member{ID: 1}}, &consensus.Config{Voters: []uint64{1, 3}, Rejected: true})
	if !slices.Equal(reg.Voters, before.Voters) || len(reg.Members) != len(before.Members) {
		t.Fatalf("rejected change altered the registry: %+v", reg)
	}
	// The record round-trips.
	data, err := encodeRecord(membershipRecord{Self: 3, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := decodeRecord(data)
	if err != nil || rec.Self != 3 || len(rec.Registry.Members) != 2 || rec.Registry.NextID != 4 {
		t.Fatalf("decoded %+v, %v", rec, err)
	}
	if _, err := decodeRecord([]byte{0xff, 0x00}); err == nil {
		t.Fatal("garbage decoded as a membership record")
	}
}

func TestRegistryPeers(t *testing.T) {
	reg := registry{Members: []Member{{ID: 1, Address: addr(1), Addr: "a:1"}, {ID: 2, Address: addr(2)}, {ID: 3, Address: addr(3)}}, Voters: []uint64{1, 2, 3}, NextID: 4}
	peers := reg.peers(1, map[uint64]string{2: "b:configured", 1: "ignored"})
	if len(peers) != 1 || peers[0].ID != 2 || peers[0].Addr != "b:configured" {
		t.Fatalf("peers %+v: want member 2 at its configured address, self and address-less 3 left out", peers)
	}
}

// Every founder computes the same membership from the same set of
// candidates, whatever order it saw them in, and only once every other
// candidate reports that same set.
func TestFormationAgreement(t *testing.T) {
	cands := []candidate{{Address: addr(9), Addr: "n9:1"}, {Address: addr(3), Addr: "n3:1", Name: "three"}, {Address: addr(5), Addr: "n5:1"}}
	all := []common.Address{addr(3), addr(5), addr(9)}
	var results []registry
	for i, self := range cands {
		f := &formation{expect: 3, self: self, seen: map[common.Address]candidate{self.Address: self}, views: map[common.Address][]common.Address{}}
		for j := range cands {
			k := (i + j) % 3
			if cands[k].Address != self.Address {
				f.hello(cands[k])
			}
		}
		if _, ok := f.agreed(); ok {
			t.Fatal("agreed before the others confirmed the set")
		}
		for _, c := range cands {
			if c.Address != self.Address {
				f.report(c.Address, []candidate{cands[0], cands[1]}) // an incomplete view
			}
		}
		if _, ok := f.agreed(); ok {
			t.Fatal("agreed while the others saw only part of the set")
		}
		for _, c := range cands {
			if c.Address != self.Address {
				f.report(c.Address, cands)
			}
		}
		reg, ok := f.agreed()
		if !ok {
			t.Fatal("no agreement on a complete, confirmed set")
		}
		results = append(results, reg)
	}
	for _, reg := range results {
		var got []common.Address
		for _, m := range reg.Members {
			got = append(got, m.Address)
		}
		if !slices.Equal(got, all) || !slices.Equal(reg.Voters, []uint64{1, 2, 3}) || reg.NextID != 4 || reg.Members[0].Name != "three" || reg.Members[1].Name != "node2" {
			t.Fatalf("formed %+v; want ids 1..3 in address order", reg)
		}
	}
	f := &formation{expect: 2, self: cands[0], seen: map[common.Address]candidate{cands[0].Address: cands[0]}, views: map[common.Address][]common.Address{}}
	f.hello(cands[1])
	f.hello(cands[2])
	if err := f.tooMany(); err == nil {
		t.Fatal("three candidates for bootstrap_expect 2 were not reported")
	}
}

// FuzzMembershipDecoders feeds arbitrary bytes to every decoder of
// membership messages a stranger or peer can send: none may panic, and
// what decodes re-encodes to a value that decodes the same.
func FuzzMembershipDecoders(f *testing.F) {
	seeds := []any{
		&joinRequest{Token: "t", Name: "n", Addr: "a:1", RPC: "http://a:2"},
		&memberRequest{Kind: kindChange, Change: memberChange{Op: opRemove, Member: Member{ID: 3}}, Force: true, Origin: 2, Forwarded: true},
		&bootstrapHello{Token: "t", Self: candidate{Address: addr(1), Addr: "a:1"}},
		&bootstrapState{Expect: 3, Seen: []candidate{{Address: addr(2)}}, Formed: true, Registry: registry{Members: []Member{{ID: 1}}, Voters: []uint64{1}, NextID: 2}},
		&membershipRecord{Self: 1, Registry: registry{NextID: 2}},
		&checkpointData{Height: 7, Members: []byte{0xc0}},
	}
	for _, s := range seeds {
		data, err := rlp.EncodeToBytes(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range []any{new(joinRequest), new(memberRequest), new(bootstrapHello), new(bootstrapState), new(membershipRecord), new(checkpointData), new(joinResponse), new(probeResponse)} {
			if rlp.DecodeBytes(data, v) != nil {
				continue
			}
			again, err := rlp.EncodeToBytes(v)
			if err != nil {
				t.Fatalf("%T decoded but does not encode: %v", v, err)
			}
			w := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := rlp.DecodeBytes(again, w); err != nil || !reflect.DeepEqual(v, w) {
				t.Fatalf("%T does not round-trip: %v", v, err)
			}
		}
	})
}
