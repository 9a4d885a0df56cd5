package rpc

import (
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/consensus/misc/eip1559"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// marshalHeader renders a header exactly as go-ethereum's newHeads
// subscription delivers it (types.Header's JSON): every field of
// ethMarshalHeader, with the optional fields the header lacks present as
// null. Filters and subscriptions use it.
func marshalHeader(h *types.Header) map[string]any {
	out := ethMarshalHeader(h)
	for _, k := range ethOptionalHeaderFields {
		if _, ok := out[k]; !ok {
			out[k] = nil
		}
	}
	return out
}

// ethOptionalHeaderFields are the header fields later forks added.
var ethOptionalHeaderFields = []string{
	"baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
	"parentBeaconBlockRoot", "requestsHash", "blockAccessListHash", "slotNumber",
}

// ethMarshalHeader renders a header as eth_getBlockByNumber and
// eth_getHeaderByNumber do: optional fields (baseFeePerGas, withdrawalsRoot,
// blob gas, beacon root, requests hash, ...) appear only when the header
// carries them.
func ethMarshalHeader(h *types.Header) map[string]any {
	out := map[string]any{
		"number":           (*hexutil.Big)(h.Number),
		"hash":             h.Hash(),
		"parentHash":       h.ParentHash,
		"nonce":            h.Nonce,
		"mixHash":          h.MixDigest,
		"sha3Uncles":       h.UncleHash,
		"logsBloom":        h.Bloom,
		"stateRoot":        h.Root,
		"miner":            h.Coinbase,
		"difficulty":       (*hexutil.Big)(h.Difficulty),
		"extraData":        hexutil.Bytes(h.Extra),
		"gasLimit":         hexutil.Uint64(h.GasLimit),
		"gasUsed":          hexutil.Uint64(h.GasUsed),
		"timestamp":        hexutil.Uint64(h.Time),
		"transactionsRoot": h.TxHash,
		"receiptsRoot":     h.ReceiptHash,
	}
	if h.BaseFee != nil {
		out["baseFeePerGas"] = (*hexutil.Big)(h.BaseFee)
	}
	if h.WithdrawalsHash != nil {
		out["withdrawalsRoot"] = h.WithdrawalsHash
	}
	if h.BlobGasUsed != nil {
		out["blobGasUsed"] = hexutil.Uint64(*h.BlobGasUsed)
	}
	if h.ExcessBlobGas != nil {
		out["excessBlobGas"] = hexutil.Uint64(*h.ExcessBlobGas)
	}
	if h.ParentBeaconRoot != nil {
		out["parentBeaconBlockRoot"] = h.ParentBeaconRoot
	}
	if h.RequestsHash != nil {
		out["requestsHash"] = h.RequestsHash
	}
	if h.BlockAccessListHash != nil {
		out["blockAccessListHash"] = h.BlockAccessListHash
	}
	if h.SlotNumber != nil {
		out["slotNumber"] = hexutil.Uint64(*h.SlotNumber)
	}
	return out
}

// marshalBlock renders a block the way eth_getBlockByNumber does: the header
// fields plus size, uncles, withdrawals (when the block has them) and the
// transactions as hashes, or as full RPC transactions when fullTx is set.
func marshalBlock(b *types.Block, fullTx bool, cfg *params.ChainConfig) map[string]any {
	out := ethMarshalHeader(b.Header())
	out["size"] = hexutil.Uint64(b.Size())
	txs := b.Transactions()
	list := make([]any, len(txs))
	for i, tx := range txs {
		if fullTx {
			list[i] = newRPCTransaction(tx, b.Hash(), b.NumberU64(), b.Time(), uint64(i), b.BaseFee(), cfg)
		} else {
			list[i] = tx.Hash()
		}
	}
	out["transactions"] = list
	uncles := make([]common.Hash, len(b.Uncles()))
	for i, u := range b.Uncles() {
		uncles[i] = u.Hash()
	}
	out["uncles"] = uncles
	if b.Withdrawals() != nil {
		out["withdrawals"] = b.Withdrawals()
	}
	return out
}

// rpcTransaction is go-ethereum's JSON-RPC transaction object. Block fields
// are null for a transaction still in the txpool.
type rpcTransaction struct {
	BlockHash           *common.Hash                 `json:"blockHash"`
	BlockNumber         *hexutil.Big                 `json:"blockNumber"`
	BlockTimestamp      *hexutil.Uint64              `json:"blockTimestamp"`
	From                common.Address               `json:"from"`
	Gas                 hexutil.Uint64               `json:"gas"`
	GasPrice            *hexutil.Big                 `json:"gasPrice"`
	GasFeeCap           *hexutil.Big                 `json:"maxFeePerGas,omitempty"`
	GasTipCap           *hexutil.Big                 `json:"maxPriorityFeePerGas,omitempty"`
	MaxFeePerBlobGas    *hexutil.Big                 `json:"maxFeePerBlobGas,omitempty"`
	Hash                common.Hash                  `json:"hash"`
	Input               hexutil.Bytes                `json:"input"`
	Nonce               hexutil.Uint64               `json:"nonce"`
	To                  *common.Address              `json:"to"`
	TransactionIndex    *hexutil.Uint64              `json:"transactionIndex"`
	Value               *hexutil.Big                 `json:"value"`
	Type                hexutil.Uint64               `json:"type"`
	Accesses            *types.AccessList            `json:"accessList,omitempty"`
	ChainID             *hexutil.Big                 `json:"chainId,omitempty"`
	BlobVersionedHashes []common.Hash                `json:"blobVersionedHashes,omitempty"`
	AuthorizationList   []types.SetCodeAuthorization `json:"authorizationList,omitempty"`
	V                   *hexutil.Big                 `json:"v"`
	R                   *hexutil.Big                 `json:"r"`
	S                   *hexutil.Big                 `json:"s"`
	YParity             *hexutil.Uint64              `json:"yParity,omitempty"`
}

// newRPCTransaction renders tx. A zero blockHash means the transaction is not
// in a block (txpool): its block fields stay null and a 1559-style gas price
// is its fee cap. In a block, the gas price is the effective price paid.
func newRPCTransaction(tx *types.Transaction, blockHash common.Hash, blockNumber, blockTime, index uint64, baseFee *big.Int, cfg *params.ChainConfig) *rpcTransaction {
	signer := types.MakeSigner(cfg, new(big.Int).SetUint64(blockNumber), blockTime)
	from, _ := types.Sender(signer, tx)
	v, r, s := tx.RawSignatureValues()
	out := &rpcTransaction{
		Type:     hexutil.Uint64(tx.Type()),
		From:     from,
		Gas:      hexutil.Uint64(tx.Gas()),
		GasPrice: (*hexutil.Big)(tx.GasPrice()),
		Hash:     tx.Hash(),
		Input:    tx.Data(),
		Nonce:    hexutil.Uint64(tx.Nonce()),
		To:       tx.To(),
		Value:    (*hexutil.Big)(tx.Value()),
		V:        (*hexutil.Big)(v),
		R:        (*hexutil.Big)(r),
		S:        (*hexutil.Big)(s),
	}
	inBlock := blockHash != (common.Hash{})
	if inBlock {
		bh, ts, idx := blockHash, hexutil.Uint64(blockTime), hexutil.Uint64(index)
		out.BlockHash = &bh
		out.BlockNumber = (*hexutil.Big)(new(big.Int).SetUint64(blockNumber))
		out.BlockTimestamp = &ts
		out.TransactionIndex = &idx
	}
	if tx.Type() == types.LegacyTxType {
		if id := tx.ChainId(); id.Sign() != 0 {
			out.ChainID = (*hexutil.Big)(id)
		}
		return out
	}
	// Every typed transaction carries an access list, chain id and y-parity.
	al := tx.AccessList()
	yParity := hexutil.Uint64(v.Sign())
	out.Accesses = &al
	out.ChainID = (*hexutil.Big)(tx.ChainId())
	out.YParity = &yParity
	if tx.Type() == types.AccessListTxType {
		return out
	}
	// Dynamic-fee, blob and set-code transactions.
	out.GasFeeCap = (*hexutil.Big)(tx.GasFeeCap())
	out.GasTipCap = (*hexutil.Big)(tx.GasTipCap())
	if baseFee != nil && inBlock {
		out.GasPrice = (*hexutil.Big)(ethEffectiveGasPrice(tx, baseFee))
	} else {
		out.GasPrice = (*hexutil.Big)(tx.GasFeeCap())
	}
	switch tx.Type() {
	case types.BlobTxType:
		out.MaxFeePerBlobGas = (*hexutil.Big)(tx.BlobGasFeeCap())
		out.BlobVersionedHashes = tx.BlobHashes()
	case types.SetCodeTxType:
		out.AuthorizationList = tx.SetCodeAuthorizations()
	}
	return out
}

// newRPCPoolTransaction renders a txpool transaction against the current
// head: null block fields, the sender recovered with the head's rules.
func newRPCPoolTransaction(tx *types.Transaction, head *types.Header, cfg *params.ChainConfig) *rpcTransaction {
	var (
		baseFee       *big.Int
		number, btime uint64
	)
	if head != nil {
		baseFee = ethNextBaseFee(cfg, head)
		number, btime = head.Number.Uint64(), head.Time
	}
	return newRPCTransaction(tx, common.Hash{}, number, btime, 0, baseFee, cfg)
}

// ethEffectiveGasPrice is min(tip + baseFee, feeCap).
func ethEffectiveGasPrice(tx *types.Transaction, baseFee *big.Int) *big.Int {
	price := new(big.Int).Add(tx.GasTipCap(), baseFee)
	if tx.GasFeeCapIntCmp(price) < 0 {
		return tx.GasFeeCap()
	}
	return price
}

// ethNextBaseFee is the base fee of the block after parent: always 0 on a
// free-gas chain (parent base fee nil or 0), otherwise the EIP-1559 formula.
func ethNextBaseFee(cfg *params.ChainConfig, parent *types.Header) *big.Int {
	if parent.BaseFee == nil || parent.BaseFee.Sign() == 0 {
		return new(big.Int)
	}
	return eip1559.CalcBaseFee(cfg, parent)
}

// marshalReceipt renders a receipt with go-ethereum's field set. The sender
// is recovered with signer; contractAddress is null unless the transaction
// created a contract; logs is never null.
func marshalReceipt(r *types.Receipt, blockHash common.Hash, blockNumber uint64, signer types.Signer, tx *types.Transaction, index int) map[string]any {
	from, _ := types.Sender(signer, tx)
	out := map[string]any{
		"blockHash":         blockHash,
		"blockNumber":       hexutil.Uint64(blockNumber),
		"transactionHash":   tx.Hash(),
		"transactionIndex":  hexutil.Uint64(index),
		"from":              from,
		"to":                tx.To(),
		"gasUsed":           hexutil.Uint64(r.GasUsed),
		"cumulativeGasUsed": hexutil.Uint64(r.CumulativeGasUsed),
		"contractAddress":   nil,
		"logs":              r.Logs,
		"logsBloom":         r.Bloom,
		"type":              hexutil.Uint(tx.Type()),
		"effectiveGasPrice": (*hexutil.Big)(r.EffectiveGasPrice),
	}
	if len(r.PostState) > 0 {
		out["root"] = hexutil.Bytes(r.PostState)
	} else {
		out["status"] = hexutil.Uint(r.Status)
	}
	if r.Logs == nil {
		out["logs"] = []*types.Log{}
	}
	if tx.Type() == types.BlobTxType {
		out["blobGasUsed"] = hexutil.Uint64(r.BlobGasUsed)
		out["blobGasPrice"] = (*hexutil.Big)(r.BlobGasPrice)
	}
	if r.ContractAddress != (common.Address{}) {
		out["contractAddress"] = r.ContractAddress
	}
	return out
}
