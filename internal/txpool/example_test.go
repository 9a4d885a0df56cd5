package txpool_test

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/params"
	"github.com/hansa-chain/hansa/internal/chain"
	"github.com/hansa-chain/hansa/internal/txpool"
	"github.com/holiman/uint256"
)

// Example admits a free transfer, queues a gapped one, and asks for the
// next block's transactions.
func Example() {
	chainCfg := chain.EthereumConfig(1337)
	key, _ := crypto.ToECDSA(common.LeftPadBytes([]byte{1}, 32))
	from := crypto.PubkeyToAddress(key.PublicKey)

	st, _ := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	st.SetBalance(from, uint256.NewInt(1e18), tracing.BalanceChangeUnspecified)
	head := &types.Header{Number: big.NewInt(1), GasLimit: 30_000_000, BaseFee: new(big.Int), Difficulty: new(big.Int)}
	pool := txpool.New(txpool.DefaultConfig(), chainCfg, head, st, nil, nil)

	to := common.HexToAddress("0xaa")
	for _, nonce := range []uint64{0, 2} {
		tx, _ := types.SignNewTx(key, types.LatestSigner(chainCfg), &types.LegacyTx{
			Nonce: nonce, GasPrice: new(big.Int), Gas: params.TxGas, To: &to, Value: big.NewInt(1),
		})
		if err := pool.Add(tx); err != nil {
			fmt.Println(err)
		}
	}
	pending, queued := pool.Stats()
	fmt.Println("pending", pending, "queued", queued, "next nonce", pool.Nonce(from))
	fmt.Println("block txs", len(pool.Pending(100, 30_000_000, 1<<20)))
	// Output:
	// pending 1 queued 1 next nonce 1
	// block txs 1
}
