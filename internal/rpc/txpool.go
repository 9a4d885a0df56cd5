package rpc

import (
	"fmt"
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// TxpoolAPI serves the "txpool" namespace: the content of the local
// transaction pool, in go-ethereum's shapes.
type TxpoolAPI struct {
	b Backend
}

// NewTxpoolAPI returns the txpool namespace service over b.
func NewTxpoolAPI(b Backend) *TxpoolAPI { return &TxpoolAPI{b: b} }

// Status returns the numbers of pending (executable) and queued
// (nonce-gapped) transactions as hex quantities (txpool_status).
func (api *TxpoolAPI) Status() map[string]hexutil.Uint {
	pending, queued := api.b.PoolStatus()
	return map[string]hexutil.Uint{
		"pending": hexutil.Uint(pending),
		"queued":  hexutil.Uint(queued),
	}
}

// Content returns the pool as {"pending"|"queued": {sender: {nonce (decimal
// string): transaction}}} (txpool_content).
func (api *TxpoolAPI) Content() map[string]map[string]map[string]*rpcTransaction {
	pending, queued := api.b.PoolContent()
	head, cfg := api.b.CurrentHeader(), api.b.ChainConfig()
	flatten := func(in map[common.Address][]*types.Transaction) map[string]map[string]*rpcTransaction {
		out := make(map[string]map[string]*rpcTransaction, len(in))
		for addr, txs := range in {
			out[addr.Hex()] = txpoolByNonce(txs, head, cfg)
		}
		return out
	}
	return map[string]map[string]map[string]*rpcTransaction{
		"pending": flatten(pending),
		"queued":  flatten(queued),
	}
}

// ContentFrom returns one sender's pooled transactions as {"pending"|"queued":
// {nonce: transaction}} (txpool_contentFrom).
func (api *TxpoolAPI) ContentFrom(addr common.Address) map[string]map[string]*rpcTransaction {
	pending, queued := api.b.PoolContent()
	head, cfg := api.b.CurrentHeader(), api.b.ChainConfig()
	return map[string]map[string]*rpcTransaction{
		"pending": txpoolByNonce(pending[addr], head, cfg),
		"queued":  txpoolByNonce(queued[addr], head, cfg),
	}
}

// Inspect summarises the pool as {"pending"|"queued": {sender: {nonce:
// "to: value wei + gas gas × price wei"}}} (txpool_inspect).
func (api *TxpoolAPI) Inspect() map[string]map[string]map[string]string {
	pending, queued := api.b.PoolContent()
	flatten := func(in map[common.Address][]*types.Transaction) map[string]map[string]string {
		out := make(map[string]map[string]string, len(in))
		for addr, txs := range in {
			byNonce := make(map[string]string, len(txs))
			for _, tx := range txs {
				byNonce[strconv.FormatUint(tx.Nonce(), 10)] = txpoolSummary(tx)
			}
			out[addr.Hex()] = byNonce
		}
		return out
	}
	return map[string]map[string]map[string]string{
		"pending": flatten(pending),
		"queued":  flatten(queued),
	}
}

func txpoolByNonce(txs []*types.Transaction, head *types.Header, cfg *params.ChainConfig) map[string]*rpcTransaction {
	out := make(map[string]*rpcTransaction, len(txs))
	for _, tx := range txs {
		out[strconv.FormatUint(tx.Nonce(), 10)] = newRPCPoolTransaction(tx, head, cfg)
	}
	return out
}

func txpoolSummary(tx *types.Transaction) string {
	if to := tx.To(); to != nil {
		return fmt.Sprintf("%s: %v wei + %v gas × %v wei", to.Hex(), tx.Value(), tx.Gas(), tx.GasPrice())
	}
	return fmt.Sprintf("contract creation: %v wei + %v gas × %v wei", tx.Value(), tx.Gas(), tx.GasPrice())
}
