// Package chain holds Hansa's chain-level data types and their rules: the
// genesis, the Ethereum chain configuration derived from it, and the block
// proposal that consensus orders. It does no I/O.
//
// Invariant: every node derives the same params.ChainConfig from the same
// Genesis, so every node executes the same fork rules from block 0.
package chain

import (
	"math/big"

	"github.com/ethereum/go-ethereum/params"
)

// EthereumConfig returns the go-ethereum chain configuration for a Hansa chain
// with the given chain id: every stable fork through Osaka active from genesis,
// post-merge (terminal total difficulty 0), and the blob schedules the Cancun
// and Prague rules need. Forks that are not final in the pinned go-ethereum
// (Amsterdam, Bogota, UBT) stay off.
func EthereumConfig(chainID uint64) *params.ChainConfig {
	zero := uint64(0)
	return &params.ChainConfig{
		ChainID:                 new(big.Int).SetUint64(chainID),
		HomesteadBlock:          big.NewInt(0),
		EIP150Block:             big.NewInt(0),
		EIP155Block:             big.NewInt(0),
		EIP158Block:             big.NewInt(0),
		ByzantiumBlock:          big.NewInt(0),
		ConstantinopleBlock:     big.NewInt(0),
		PetersburgBlock:         big.NewInt(0),
		IstanbulBlock:           big.NewInt(0),
		MuirGlacierBlock:        big.NewInt(0),
		BerlinBlock:             big.NewInt(0),
		LondonBlock:             big.NewInt(0),
		ArrowGlacierBlock:       big.NewInt(0),
		GrayGlacierBlock:        big.NewInt(0),
		MergeNetsplitBlock:      big.NewInt(0),
		TerminalTotalDifficulty: big.NewInt(0),
		ShanghaiTime:            &zero,
		CancunTime:              &zero,
		PragueTime:              &zero,
		OsakaTime:               &zero,
		BlobScheduleConfig: &params.BlobScheduleConfig{
			Cancun: params.DefaultCancunBlobConfig,
			Prague: params.DefaultPragueBlobConfig,
		},
	}
}
