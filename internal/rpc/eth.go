package rpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/consensus/misc/eip4844"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
)

// JSON-RPC error codes used by the eth namespace, as go-ethereum uses them.
const (
	ethCodeRevert        = 3
	ethCodeInvalidParams = -32602
)

// Limits taken from go-ethereum's defaults.
const (
	ethMaxGetProofKeys    = 1024
	ethMaxFeeHistory      = 1024
	ethMaxRewardQuery     = 100
	ethEstimateErrorRatio = 0.015
)

// ethParamsError is an invalid-parameters error (code -32602).
type ethParamsError struct{ msg string }

func (e *ethParamsError) Error() string  { return e.msg }
func (e *ethParamsError) ErrorCode() int { return ethCodeInvalidParams }

// Errors with go-ethereum's texts for unresolvable block selectors.
var (
	errEthHeaderNotFound     = errors.New("header not found")
	errEthHashNotFound       = errors.New("header for hash not found")
	errEthNotCanonical       = errors.New("hash is not currently canonical")
	errEthNoBlockSelector    = errors.New("invalid arguments; neither block nor hash specified")
	errEthInvalidPercentile  = errors.New("invalid reward percentile")
	errEthRequestBeyondHead  = errors.New("request beyond head block")
	errEthBlobTxNotSupported = fmt.Errorf("%w: tx type %d not supported by this pool", types.ErrTxTypeNotSupported, types.BlobTxType)
)

// EthAPI serves the "eth" namespace's chain, state, transaction and call
// methods. It is stateless apart from its Backend and Config and is safe for
// concurrent use.
type EthAPI struct {
	b   Backend
	cfg Config
}

// NewEthAPI returns the eth namespace service over b, bounded by cfg's GasCap
// and EVMTimeout.
func NewEthAPI(b Backend, cfg Config) *EthAPI {
	return &EthAPI{b: b, cfg: cfg}
}

// ---- block selection ----

// headerByNumber resolves a block number or tag; "pending", "safe" and
// "finalized" are the head (finality is immediate). Nil when unknown.
func (api *EthAPI) headerByNumber(n gethrpc.BlockNumber) *types.Header {
	switch n {
	case gethrpc.PendingBlockNumber, gethrpc.LatestBlockNumber, gethrpc.SafeBlockNumber, gethrpc.FinalizedBlockNumber:
		return api.b.CurrentHeader()
	case gethrpc.EarliestBlockNumber:
		return api.b.HeaderByNumber(0)
	}
	if n < 0 {
		return nil
	}
	return api.b.HeaderByNumber(uint64(n))
}

// blockByNumber resolves a block number or tag like headerByNumber.
func (api *EthAPI) blockByNumber(n gethrpc.BlockNumber) *types.Block {
	h := api.headerByNumber(n)
	if h == nil {
		return nil
	}
	return api.b.BlockByNumber(h.Number.Uint64())
}

// headerByNumberOrHash resolves a selector (nil means latest) to a header,
// with go-ethereum's errors for unknown blocks.
func (api *EthAPI) headerByNumberOrHash(sel *gethrpc.BlockNumberOrHash) (*types.Header, error) {
	if sel == nil {
		return api.b.CurrentHeader(), nil
	}
	if n, ok := sel.Number(); ok {
		h := api.headerByNumber(n)
		if h == nil {
			return nil, errEthHeaderNotFound
		}
		return h, nil
	}
	if hash, ok := sel.Hash(); ok {
		h := api.b.HeaderByHash(hash)
		if h == nil {
			return nil, errEthHashNotFound
		}
		if sel.RequireCanonical {
			if c := api.b.HeaderByNumber(h.Number.Uint64()); c == nil || c.Hash() != hash {
				return nil, errEthNotCanonical
			}
		}
		return h, nil
	}
	return nil, errEthNoBlockSelector
}

// stateAndHeader opens the state after the selected block ("pending" reads
// the latest state).
func (api *EthAPI) stateAndHeader(sel *gethrpc.BlockNumberOrHash) (*state.StateDB, *types.Header, error) {
	h, err := api.headerByNumberOrHash(sel)
	if err != nil {
		return nil, nil, err
	}
	st, err := api.b.StateAt(h)
	if err != nil {
		return nil, nil, err
	}
	return st, h, nil
}

// ---- chain ----

// ChainId returns the EIP-155 chain id (eth_chainId).
func (api *EthAPI) ChainId() *hexutil.Big {
	return (*hexutil.Big)(api.b.ChainConfig().ChainID)
}

// BlockNumber returns the head block number (eth_blockNumber).
func (api *EthAPI) BlockNumber() hexutil.Uint64 {
	return hexutil.Uint64(api.b.CurrentHeader().Number.Uint64())
}

// Syncing always reports false: a node serves RPC only for blocks it has
// committed (eth_syncing).
func (api *EthAPI) Syncing() (any, error) {
	return false, nil
}

// Accounts returns the node's managed accounts: none (eth_accounts).
func (api *EthAPI) Accounts() []common.Address {
	return []common.Address{}
}

// ---- fees ----

// GasPrice suggests a legacy gas price: the head's base fee plus the
// txpool's minimum tip; 0 on a free-gas chain with no minimum (eth_gasPrice).
func (api *EthAPI) GasPrice() *hexutil.Big {
	price := new(big.Int).Set(api.minTip())
	if bf := api.b.CurrentHeader().BaseFee; bf != nil {
		price.Add(price, bf)
	}
	return (*hexutil.Big)(price)
}

// MaxPriorityFeePerGas suggests a tip: the txpool's minimum
// (eth_maxPriorityFeePerGas).
func (api *EthAPI) MaxPriorityFeePerGas() *hexutil.Big {
	return (*hexutil.Big)(new(big.Int).Set(api.minTip()))
}

func (api *EthAPI) minTip() *big.Int {
	if p := api.b.MinGasPrice(); p != nil {
		return p
	}
	return new(big.Int)
}

// BlobBaseFee returns the blob base fee at the head, or null when the head
// has no excess blob gas (eth_blobBaseFee).
func (api *EthAPI) BlobBaseFee() *hexutil.Big {
	head := api.b.CurrentHeader()
	if head.ExcessBlobGas == nil {
		return nil
	}
	return (*hexutil.Big)(eip4844.CalcBlobFee(api.b.ChainConfig(), head))
}

// FeeHistoryResult is the eth_feeHistory answer. BaseFee and BlobBaseFee
// have one more entry than the block count: the fees of the next block.
type FeeHistoryResult struct {
	OldestBlock      *hexutil.Big     `json:"oldestBlock"`
	Reward           [][]*hexutil.Big `json:"reward,omitempty"`
	BaseFee          []*hexutil.Big   `json:"baseFeePerGas,omitempty"`
	GasUsedRatio     []float64        `json:"gasUsedRatio"`
	BlobBaseFee      []*hexutil.Big   `json:"baseFeePerBlobGas,omitempty"`
	BlobGasUsedRatio []float64        `json:"blobGasUsedRatio,omitempty"`
}

// FeeHistory returns the fee market of up to blockCount blocks ending at
// lastBlock, with the requested percentiles of effective tips, weighted by
// gas used (eth_feeHistory).
func (api *EthAPI) FeeHistory(ctx context.Context, blockCount math.HexOrDecimal64, lastBlock gethrpc.BlockNumber, rewardPercentiles []float64) (*FeeHistoryResult, error) {
	empty := &FeeHistoryResult{OldestBlock: (*hexutil.Big)(new(big.Int))}
	if blockCount < 1 {
		return empty, nil
	}
	if len(rewardPercentiles) > ethMaxRewardQuery {
		return nil, fmt.Errorf("%w: over the query limit %d", errEthInvalidPercentile, ethMaxRewardQuery)
	}
	for i, p := range rewardPercentiles {
		if p < 0 || p > 100 {
			return nil, fmt.Errorf("%w: %f", errEthInvalidPercentile, p)
		}
		if i > 0 && p <= rewardPercentiles[i-1] {
			return nil, fmt.Errorf("%w: #%d:%f >= #%d:%f", errEthInvalidPercentile, i-1, rewardPercentiles[i-1], i, p)
		}
	}
	blocks := min(uint64(blockCount), ethMaxFeeHistory)
	head := api.b.CurrentHeader()
	if lastBlock >= 0 && uint64(lastBlock) > head.Number.Uint64() {
		return nil, fmt.Errorf("%w: requested %d, head %d", errEthRequestBeyondHead, lastBlock, head.Number.Uint64())
	}
	last := api.headerByNumber(lastBlock)
	if last == nil {
		return empty, nil
	}
	end := last.Number.Uint64()
	blocks = min(blocks, end+1)
	oldest := end + 1 - blocks

	cfg := api.b.ChainConfig()
	res := &FeeHistoryResult{
		OldestBlock:      (*hexutil.Big)(new(big.Int).SetUint64(oldest)),
		BaseFee:          make([]*hexutil.Big, 0, blocks+1),
		GasUsedRatio:     make([]float64, 0, blocks),
		BlobBaseFee:      make([]*hexutil.Big, 0, blocks+1),
		BlobGasUsedRatio: make([]float64, 0, blocks),
	}
	if len(rewardPercentiles) > 0 {
		res.Reward = make([][]*hexutil.Big, 0, blocks)
	}
	for n := oldest; n <= end; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h := api.b.HeaderByNumber(n)
		if h == nil {
			break // never happens on a chain without forks; mirrors geth's truncation
		}
		baseFee := h.BaseFee
		if baseFee == nil {
			baseFee = new(big.Int)
		}
		res.BaseFee = append(res.BaseFee, (*hexutil.Big)(baseFee))
		res.GasUsedRatio = append(res.GasUsedRatio, float64(h.GasUsed)/float64(h.GasLimit))
		blobFee, blobRatio := new(big.Int), 0.0
		if h.ExcessBlobGas != nil {
			blobFee = eip4844.CalcBlobFee(cfg, h)
		}
		if h.BlobGasUsed != nil {
			if maxBlob := eip4844.MaxBlobGasPerBlock(cfg, h.Time); maxBlob != 0 {
				blobRatio = float64(*h.BlobGasUsed) / float64(maxBlob)
			}
		}
		res.BlobBaseFee = append(res.BlobBaseFee, (*hexutil.Big)(blobFee))
		res.BlobGasUsedRatio = append(res.BlobGasUsedRatio, blobRatio)
		if len(rewardPercentiles) > 0 {
			rewards, err := api.blockRewards(h, rewardPercentiles)
			if err != nil {
				return nil, err
			}
			res.Reward = append(res.Reward, rewards)
		}
		if n == end {
			// The fees of the block after the newest one.
			next := ethNextBaseFee(cfg, h)
			if n == head.Number.Uint64() {
				next = api.b.NextBaseFee()
			}
			res.BaseFee = append(res.BaseFee, (*hexutil.Big)(next))
			nextBlob := new(big.Int)
			if h.ExcessBlobGas != nil {
				excess := eip4844.CalcExcessBlobGas(cfg, h, h.Time)
				next := &types.Header{Number: h.Number, Time: h.Time, ExcessBlobGas: &excess}
				nextBlob = eip4844.CalcBlobFee(cfg, next)
			}
			res.BlobBaseFee = append(res.BlobBaseFee, (*hexutil.Big)(nextBlob))
		}
	}
	return res, nil
}

// blockRewards returns the percentiles of a block's effective tips, each
// transaction weighted by the gas it used.
func (api *EthAPI) blockRewards(h *types.Header, percentiles []float64) ([]*hexutil.Big, error) {
	out := make([]*hexutil.Big, len(percentiles))
	block := api.b.BlockByNumber(h.Number.Uint64())
	if block == nil || len(block.Transactions()) == 0 {
		for i := range out {
			out[i] = (*hexutil.Big)(new(big.Int))
		}
		return out, nil
	}
	receipts := api.b.Receipts(block.Hash(), block.NumberU64())
	txs := block.Transactions()
	if len(receipts) != len(txs) {
		return nil, fmt.Errorf("receipts length mismatch: %d vs %d", len(txs), len(receipts))
	}
	type gasAndTip struct {
		gas uint64
		tip *big.Int
	}
	sorted := make([]gasAndTip, len(txs))
	for i, tx := range txs {
		tip, _ := tx.EffectiveGasTip(block.BaseFee())
		sorted[i] = gasAndTip{gas: receipts[i].GasUsed, tip: tip}
	}
	slices.SortStableFunc(sorted, func(a, b gasAndTip) int { return a.tip.Cmp(b.tip) })
	idx, sum := 0, sorted[0].gas
	for i, p := range percentiles {
		threshold := uint64(float64(block.GasUsed()) * p / 100)
		for sum < threshold && idx < len(sorted)-1 {
			idx++
			sum += sorted[idx].gas
		}
		out[i] = (*hexutil.Big)(sorted[idx].tip)
	}
	return out, nil
}

// ---- state ----

// GetBalance returns an account's balance in wei at the selected block
// (eth_getBalance).
func (api *EthAPI) GetBalance(address common.Address, block *gethrpc.BlockNumberOrHash) (*hexutil.Big, error) {
	st, _, err := api.stateAndHeader(block)
	if err != nil {
		return nil, err
	}
	return (*hexutil.Big)(st.GetBalance(address).ToBig()), st.Error()
}

// GetCode returns an account's code at the selected block (eth_getCode).
func (api *EthAPI) GetCode(address common.Address, block *gethrpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	st, _, err := api.stateAndHeader(block)
	if err != nil {
		return nil, err
	}
	return st.GetCode(address), st.Error()
}

// GetStorageAt returns a 32-byte storage slot at the selected block. The key
// is hex, 0x optional, at most 32 bytes (eth_getStorageAt).
func (api *EthAPI) GetStorageAt(address common.Address, hexKey string, block *gethrpc.BlockNumberOrHash) (hexutil.Bytes, error) {
	st, _, err := api.stateAndHeader(block)
	if err != nil {
		return nil, err
	}
	key, _, err := ethDecodeStorageKey(hexKey)
	if err != nil {
		return nil, &ethParamsError{fmt.Sprintf("%v: %q", err, hexKey)}
	}
	v := st.GetState(address, key)
	return v[:], st.Error()
}

// GetTransactionCount returns an account's nonce at the selected block; for
// "pending" it counts the txpool's executable transactions too
// (eth_getTransactionCount).
func (api *EthAPI) GetTransactionCount(address common.Address, block *gethrpc.BlockNumberOrHash) (*hexutil.Uint64, error) {
	if block != nil {
		if n, ok := block.Number(); ok && n == gethrpc.PendingBlockNumber {
			nonce := hexutil.Uint64(api.b.PoolNonce(address))
			return &nonce, nil
		}
	}
	st, _, err := api.stateAndHeader(block)
	if err != nil {
		return nil, err
	}
	nonce := hexutil.Uint64(st.GetNonce(address))
	return &nonce, st.Error()
}

// ethDecodeStorageKey parses a storage key leniently: 0x optional, odd
// length allowed, at most 32 bytes. It also returns the input's byte length.
func ethDecodeStorageKey(s string) (common.Hash, int, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s = s[2:]
	}
	if len(s)%2 == 1 {
		s = "0" + s
	}
	if len(s) > 64 {
		return common.Hash{}, len(s) / 2, errors.New("storage key too long (want at most 32 bytes)")
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return common.Hash{}, 0, errors.New("invalid hex in storage key")
	}
	return common.BytesToHash(b), len(b), nil
}

// AccountResult is the eth_getProof answer.
type AccountResult struct {
	Address      common.Address  `json:"address"`
	AccountProof []string        `json:"accountProof"`
	Balance      *hexutil.Big    `json:"balance"`
	CodeHash     common.Hash     `json:"codeHash"`
	Nonce        hexutil.Uint64  `json:"nonce"`
	StorageHash  common.Hash     `json:"storageHash"`
	StorageProof []StorageResult `json:"storageProof"`
}

// StorageResult is one storage slot's proof in an AccountResult.
type StorageResult struct {
	Key   string       `json:"key"`
	Value *hexutil.Big `json:"value"`
	Proof []string     `json:"proof"`
}

// ethProofList collects trie proof nodes as hex strings.
type ethProofList []string

func (l *ethProofList) Put(_ []byte, value []byte) error {
	*l = append(*l, hexutil.Encode(value))
	return nil
}

func (l *ethProofList) Delete([]byte) error { return errors.New("proof list: delete not supported") }

// GetProof returns the Merkle proofs of an account and some of its storage
// slots at the selected block (eth_getProof, EIP-1186).
func (api *EthAPI) GetProof(ctx context.Context, address common.Address, storageKeys []string, block *gethrpc.BlockNumberOrHash) (*AccountResult, error) {
	if len(storageKeys) > ethMaxGetProofKeys {
		return nil, &ethParamsError{fmt.Sprintf("too many storage keys requested (max %d, got %d)", ethMaxGetProofKeys, len(storageKeys))}
	}
	keys := make([]common.Hash, len(storageKeys))
	keyLens := make([]int, len(storageKeys))
	for i, k := range storageKeys {
		var err error
		if keys[i], keyLens[i], err = ethDecodeStorageKey(k); err != nil {
			return nil, &ethParamsError{fmt.Sprintf("%v: %q", err, k)}
		}
	}
	st, header, err := api.stateAndHeader(block)
	if err != nil {
		return nil, err
	}
	storageRoot := st.GetStorageRoot(address)
	storageProof := make([]StorageResult, len(keys))
	if len(keys) > 0 {
		var storageTrie state.Trie
		if storageRoot != types.EmptyRootHash && storageRoot != (common.Hash{}) {
			if storageTrie, err = st.Database().OpenStorageTrie(header.Root, address, storageRoot, nil); err != nil {
				return nil, err
			}
		}
		for i, key := range keys {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			// A 32-byte key is echoed as is; shorter keys as a quantity.
			outKey := hexutil.Encode(key[:])
			if keyLens[i] != 32 {
				outKey = hexutil.EncodeBig(key.Big())
			}
			if storageTrie == nil {
				storageProof[i] = StorageResult{Key: outKey, Value: &hexutil.Big{}, Proof: []string{}}
				continue
			}
			var proof ethProofList
			if err := storageTrie.Prove(crypto.Keccak256(key[:]), &proof); err != nil {
				return nil, err
			}
			storageProof[i] = StorageResult{Key: outKey, Value: (*hexutil.Big)(st.GetState(address, key).Big()), Proof: proof}
		}
	}
	accountTrie, err := st.Database().OpenTrie(header.Root)
	if err != nil {
		return nil, err
	}
	var accountProof ethProofList
	if err := accountTrie.Prove(crypto.Keccak256(address[:]), &accountProof); err != nil {
		return nil, err
	}
	return &AccountResult{
		Address:      address,
		AccountProof: accountProof,
		Balance:      (*hexutil.Big)(st.GetBalance(address).ToBig()),
		CodeHash:     st.GetCodeHash(address),
		Nonce:        hexutil.Uint64(st.GetNonce(address)),
		StorageHash:  storageRoot,
		StorageProof: storageProof,
	}, st.Error()
}

// ---- blocks ----

// GetBlockByNumber returns a block by number or tag, with full transactions
// or their hashes; null when unknown (eth_getBlockByNumber).
func (api *EthAPI) GetBlockByNumber(number gethrpc.BlockNumber, fullTx bool) (map[string]any, error) {
	if b := api.blockByNumber(number); b != nil {
		return marshalBlock(b, fullTx, api.b.ChainConfig()), nil
	}
	return nil, nil
}

// GetBlockByHash returns a block by hash; null when unknown
// (eth_getBlockByHash).
func (api *EthAPI) GetBlockByHash(hash common.Hash, fullTx bool) (map[string]any, error) {
	if b := api.b.BlockByHash(hash); b != nil {
		return marshalBlock(b, fullTx, api.b.ChainConfig()), nil
	}
	return nil, nil
}

// GetHeaderByNumber returns a header by number or tag; null when unknown
// (eth_getHeaderByNumber).
func (api *EthAPI) GetHeaderByNumber(number gethrpc.BlockNumber) (map[string]any, error) {
	if h := api.headerByNumber(number); h != nil {
		return ethMarshalHeader(h), nil
	}
	return nil, nil
}

// GetHeaderByHash returns a header by hash; null when unknown
// (eth_getHeaderByHash).
func (api *EthAPI) GetHeaderByHash(hash common.Hash) map[string]any {
	if h := api.b.HeaderByHash(hash); h != nil {
		return ethMarshalHeader(h)
	}
	return nil
}

// GetBlockTransactionCountByNumber returns a block's transaction count; null
// when unknown (eth_getBlockTransactionCountByNumber).
func (api *EthAPI) GetBlockTransactionCountByNumber(number gethrpc.BlockNumber) *hexutil.Uint {
	if b := api.blockByNumber(number); b != nil {
		n := hexutil.Uint(len(b.Transactions()))
		return &n
	}
	return nil
}

// GetBlockTransactionCountByHash returns a block's transaction count; null
// when unknown (eth_getBlockTransactionCountByHash).
func (api *EthAPI) GetBlockTransactionCountByHash(hash common.Hash) *hexutil.Uint {
	if b := api.b.BlockByHash(hash); b != nil {
		n := hexutil.Uint(len(b.Transactions()))
		return &n
	}
	return nil
}

// GetUncleCountByBlockNumber returns 0 for a known block (there are no
// uncles), null otherwise (eth_getUncleCountByBlockNumber).
func (api *EthAPI) GetUncleCountByBlockNumber(number gethrpc.BlockNumber) *hexutil.Uint {
	if b := api.blockByNumber(number); b != nil {
		n := hexutil.Uint(len(b.Uncles()))
		return &n
	}
	return nil
}

// GetUncleCountByBlockHash returns 0 for a known block, null otherwise
// (eth_getUncleCountByBlockHash).
func (api *EthAPI) GetUncleCountByBlockHash(hash common.Hash) *hexutil.Uint {
	if b := api.b.BlockByHash(hash); b != nil {
		n := hexutil.Uint(len(b.Uncles()))
		return &n
	}
	return nil
}

// GetUncleByBlockNumberAndIndex returns null: Hansa blocks have no uncles
// (eth_getUncleByBlockNumberAndIndex).
func (api *EthAPI) GetUncleByBlockNumberAndIndex(gethrpc.BlockNumber, hexutil.Uint) map[string]any {
	return nil
}

// GetUncleByBlockHashAndIndex returns null: Hansa blocks have no uncles
// (eth_getUncleByBlockHashAndIndex).
func (api *EthAPI) GetUncleByBlockHashAndIndex(common.Hash, hexutil.Uint) map[string]any {
	return nil
}

// ---- transactions and receipts ----

// GetTransactionByHash returns a committed transaction, or one waiting in
// the txpool with null block fields; null when unknown
// (eth_getTransactionByHash).
func (api *EthAPI) GetTransactionByHash(hash common.Hash) (*rpcTransaction, error) {
	tx, blockHash, number, index, found := api.b.Transaction(hash)
	if found {
		h := api.b.HeaderByHash(blockHash)
		if h == nil {
			return nil, errEthHashNotFound
		}
		return newRPCTransaction(tx, blockHash, number, h.Time, index, h.BaseFee, api.b.ChainConfig()), nil
	}
	if tx := api.b.PoolTransaction(hash); tx != nil {
		return newRPCPoolTransaction(tx, api.b.CurrentHeader(), api.b.ChainConfig()), nil
	}
	return nil, nil
}

// GetRawTransactionByHash returns the binary encoding of a committed or
// pooled transaction; null when unknown (eth_getRawTransactionByHash).
func (api *EthAPI) GetRawTransactionByHash(hash common.Hash) (hexutil.Bytes, error) {
	tx, _, _, _, found := api.b.Transaction(hash)
	if !found {
		if tx = api.b.PoolTransaction(hash); tx == nil {
			return nil, nil
		}
	}
	return tx.MarshalBinary()
}

// GetTransactionByBlockNumberAndIndex returns a block's index-th
// transaction; null when either is unknown
// (eth_getTransactionByBlockNumberAndIndex).
func (api *EthAPI) GetTransactionByBlockNumberAndIndex(number gethrpc.BlockNumber, index hexutil.Uint) *rpcTransaction {
	return api.txFromBlock(api.blockByNumber(number), uint64(index))
}

// GetTransactionByBlockHashAndIndex returns a block's index-th transaction;
// null when either is unknown (eth_getTransactionByBlockHashAndIndex).
func (api *EthAPI) GetTransactionByBlockHashAndIndex(hash common.Hash, index hexutil.Uint) *rpcTransaction {
	return api.txFromBlock(api.b.BlockByHash(hash), uint64(index))
}

func (api *EthAPI) txFromBlock(b *types.Block, index uint64) *rpcTransaction {
	if b == nil || index >= uint64(len(b.Transactions())) {
		return nil
	}
	return newRPCTransaction(b.Transactions()[index], b.Hash(), b.NumberU64(), b.Time(), index, b.BaseFee(), api.b.ChainConfig())
}

// GetTransactionReceipt returns a committed transaction's receipt; null when
// unknown or still pending (eth_getTransactionReceipt).
func (api *EthAPI) GetTransactionReceipt(hash common.Hash) (map[string]any, error) {
	tx, blockHash, number, index, found := api.b.Transaction(hash)
	if !found {
		return nil, nil
	}
	receipts := api.b.Receipts(blockHash, number)
	if index >= uint64(len(receipts)) {
		return nil, fmt.Errorf("receipt of transaction %s not found in block %d", hash, number)
	}
	signer := types.LatestSigner(api.b.ChainConfig())
	return marshalReceipt(receipts[index], blockHash, number, signer, tx, int(index)), nil
}

// GetBlockReceipts returns all receipts of the selected block; null when the
// block is unknown (eth_getBlockReceipts).
func (api *EthAPI) GetBlockReceipts(block gethrpc.BlockNumberOrHash) ([]map[string]any, error) {
	var b *types.Block
	if n, ok := block.Number(); ok {
		b = api.blockByNumber(n)
	} else if hash, ok := block.Hash(); ok {
		b = api.b.BlockByHash(hash)
	} else {
		return nil, errEthNoBlockSelector
	}
	if b == nil {
		return nil, nil
	}
	receipts := api.b.Receipts(b.Hash(), b.NumberU64())
	txs := b.Transactions()
	if len(receipts) != len(txs) {
		return nil, fmt.Errorf("receipts length mismatch: %d vs %d", len(txs), len(receipts))
	}
	signer := types.MakeSigner(api.b.ChainConfig(), b.Number(), b.Time())
	out := make([]map[string]any, len(receipts))
	for i, r := range receipts {
		out[i] = marshalReceipt(r, b.Hash(), b.NumberU64(), signer, txs[i], i)
	}
	return out, nil
}

// SendRawTransaction decodes a signed transaction and hands it to the
// txpool, returning its hash (eth_sendRawTransaction). Blob transactions are
// refused: Hansa does not carry blobs.
// errEthUnprotectedTx is go-ethereum's text for a transaction without EIP-155
// replay protection when those are not allowed.
var errEthUnprotectedTx = errors.New("only replay-protected (EIP-155) transactions allowed over RPC")

func (api *EthAPI) SendRawTransaction(ctx context.Context, input hexutil.Bytes) (common.Hash, error) {
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(input); err != nil {
		return common.Hash{}, err
	}
	if tx.Type() == types.BlobTxType {
		return common.Hash{}, errEthBlobTxNotSupported
	}
	if !tx.Protected() && !api.cfg.AllowUnprotectedTxs {
		// go-ethereum's default: replayable pre-EIP-155 transactions only
		// when the operator opts in.
		return common.Hash{}, errEthUnprotectedTx
	}
	if err := api.b.SendTransaction(ctx, tx); err != nil {
		return common.Hash{}, err
	}
	return tx.Hash(), nil
}
