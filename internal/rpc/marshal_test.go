package rpc

import (
	"encoding/json"
	"math/big"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
)

// TestMarshalHeaderMatchesHeaderJSON checks that marshalHeader emits exactly
// the fields and encodings of go-ethereum's header JSON, which is what a
// newHeads subscription delivers, with and without the optional fields.
func TestMarshalHeaderMatchesHeaderJSON(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	h := func(b byte) *common.Hash { x := common.Hash{b}; return &x }
	full := &types.Header{
		ParentHash: common.Hash{1}, UncleHash: types.EmptyUncleHash, Coinbase: common.Address{2},
		Root: common.Hash{3}, TxHash: types.EmptyTxsHash, ReceiptHash: types.EmptyReceiptsHash,
		Difficulty: new(big.Int), Number: big.NewInt(12345), GasLimit: 60_000_000, GasUsed: 21000,
		Time: 1700000000, Extra: []byte("hansa"), BaseFee: new(big.Int),
		WithdrawalsHash: &types.EmptyWithdrawalsHash, BlobGasUsed: u(0), ExcessBlobGas: u(0),
		ParentBeaconRoot: h(4), RequestsHash: h(5), BlockAccessListHash: h(6), SlotNumber: u(7),
	}
	legacy := &types.Header{Difficulty: big.NewInt(131072), Number: big.NewInt(1), GasLimit: 5000}
	for name, hdr := range map[string]*types.Header{"full": full, "legacy": legacy} {
		t.Run(name, func(t *testing.T) {
			var got, want map[string]any
			ethDecodeJSON(t, marshalHeader(hdr), &got)
			ethDecodeJSON(t, hdr, &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("marshalHeader:\n got %v\nwant %v", got, want)
			}
			// The block/header RPC shape omits absent optional fields instead.
			rpcShape := ethMarshalHeader(hdr)
			for k, v := range want {
				if _, ok := rpcShape[k]; ok == (v == nil) {
					t.Errorf("ethMarshalHeader field %q: present=%v, header JSON value %v", k, ok, v)
				}
			}
		})
	}
}

func ethDecodeJSON(t *testing.T, v any, out *map[string]any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
}
