package rpc

import (
	"strconv"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
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
			byNonce := make(map[string]*rpcTransaction, len(txs))
			for _, tx := range txs {
				byNonce[strconv.FormatUint(tx.Nonce(), 10)] = newRPCPoolTransaction(tx, head, cfg)
			}
			out[addr.Hex()] = byNonce
		}
		return out
	}
	return map[string]map[string]map[string]*rpcTransaction{
		"pending": flatten(pending),
		"queued":  flatten(queued),
	}
}
