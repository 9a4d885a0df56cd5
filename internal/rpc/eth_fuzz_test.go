package rpc_test

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"

	"github.com/hansa-chain/hansa/internal/rpc"
	"github.com/hansa-chain/hansa/internal/rpc/rpctest"
)

// FuzzEthSendRawTransaction feeds arbitrary bytes to eth_sendRawTransaction:
// it must never panic, must fail exactly when go-ethereum's decoder fails
// (with its error text) or the transaction is a blob transaction, and an
// accepted transaction must be in the txpool under the returned hash.
// Seeds live in testdata/fuzz/FuzzEthSendRawTransaction.
func FuzzEthSendRawTransaction(f *testing.F) {
	b, fx := rpctest.New(f, rpctest.Options{})
	api := rpc.NewEthAPI(b, rpc.DefaultConfig())
	key, _ := crypto.ToECDSA(fx.Key1)
	signer := types.LatestSignerForChainID(big.NewInt(rpctest.ChainID))
	for _, inner := range []types.TxData{
		&types.LegacyTx{Nonce: 3, Gas: 21000, To: &fx.Addr3, GasPrice: new(big.Int)},
		&types.DynamicFeeTx{ChainID: big.NewInt(rpctest.ChainID), Nonce: 4, Gas: 21000, To: &fx.Addr3},
	} {
		tx := types.MustSignNewTx(key, signer, inner)
		enc, _ := tx.MarshalBinary()
		f.Add(enc)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		hash, err := api.SendRawTransaction(t.Context(), data)
		var tx types.Transaction
		decErr := tx.UnmarshalBinary(data)
		switch {
		case decErr != nil:
			if err == nil || err.Error() != decErr.Error() {
				t.Fatalf("decoder says %v, eth_sendRawTransaction says %v", decErr, err)
			}
		case tx.Type() == types.BlobTxType:
			if err == nil {
				t.Fatal("blob transaction accepted")
			}
		case err == nil:
			if hash != tx.Hash() || b.PoolTransaction(hash) == nil {
				t.Fatalf("accepted %s but pool lacks it (decoded %s)", hash, tx.Hash())
			}
		default:
			if hash != (common.Hash{}) {
				t.Fatalf("error %v with hash %s", err, hash)
			}
		}
	})
}

// ExampleNewEthAPI serves the standard namespaces on a go-ethereum rpc server.
func ExampleNewEthAPI() {
	var b rpc.Backend // the node's implementation
	srv := gethrpc.NewServer()
	defer srv.Stop()
	_ = srv.RegisterName("eth", rpc.NewEthAPI(b, rpc.DefaultConfig()))
	_ = srv.RegisterName("net", rpc.NewNetAPI(b))
	_ = srv.RegisterName("web3", rpc.NewWeb3API("v0.1.0"))
	_ = srv.RegisterName("txpool", rpc.NewTxpoolAPI(b))

	// srv is an http.Handler; it can also be dialled in-process.
	client := gethrpc.DialInProc(srv)
	defer client.Close()
	var hash string
	if err := client.Call(&hash, "web3_sha3", "0x"); err != nil {
		fmt.Println(err)
	}
	fmt.Println(hash)
	// Output: 0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470
}
