package bench

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// client wraps a go-ethereum rpc.Client with the few calls the bench makes.
// It is safe for concurrent use.
type client struct {
	c *rpc.Client
}

func dial(ctx context.Context, url string) (*client, error) {
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	return &client{c: c}, nil
}

func (c *client) Close() { c.c.Close() }

func (c *client) chainID(ctx context.Context) (*big.Int, error) {
	var id hexutil.Big
	if err := c.c.CallContext(ctx, &id, "eth_chainId"); err != nil {
		return nil, fmt.Errorf("eth_chainId: %w", err)
	}
	return id.ToInt(), nil
}

func (c *client) bigCall(ctx context.Context, method string, args ...any) (*big.Int, error) {
	var v hexutil.Big
	if err := c.c.CallContext(ctx, &v, method, args...); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return v.ToInt(), nil
}

func (c *client) blockNumber(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	if err := c.c.CallContext(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, fmt.Errorf("eth_blockNumber: %w", err)
	}
	return uint64(n), nil
}

// baseFee returns the latest block's base fee, nil on a chain without one.
func (c *client) baseFee(ctx context.Context) (*big.Int, error) {
	var head struct {
		BaseFee *hexutil.Big `json:"baseFeePerGas"`
	}
	if err := c.c.CallContext(ctx, &head, "eth_getBlockByNumber", "latest", false); err != nil {
		return nil, fmt.Errorf("eth_getBlockByNumber: %w", err)
	}
	if head.BaseFee == nil {
		return nil, nil
	}
	return head.BaseFee.ToInt(), nil
}

func (c *client) nonce(ctx context.Context, addr common.Address) (uint64, error) {
	var n hexutil.Uint64
	if err := c.c.CallContext(ctx, &n, "eth_getTransactionCount", addr, "pending"); err != nil {
		return 0, fmt.Errorf("eth_getTransactionCount: %w", err)
	}
	return uint64(n), nil
}

// receipt is the part of a receipt the bench reads.
type receipt struct {
	TxHash          common.Hash     `json:"transactionHash"`
	Status          hexutil.Uint64  `json:"status"`
	ContractAddress *common.Address `json:"contractAddress"`
	BlockNumber     hexutil.Uint64  `json:"blockNumber"`
}

// blockReceipts returns the receipts of block n with eth_getBlockReceipts,
// falling back to eth_getTransactionReceipt for the wanted hashes when the
// node lacks the method.
func (c *client) blockReceipts(ctx context.Context, n uint64, want []common.Hash) ([]receipt, error) {
	var rs []receipt
	err := c.c.CallContext(ctx, &rs, "eth_getBlockReceipts", hexutil.Uint64(n))
	if err == nil {
		return rs, nil
	}
	var rpcErr rpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.ErrorCode() != -32601 {
		return nil, fmt.Errorf("eth_getBlockReceipts: %w", err)
	}
	return c.receipts(ctx, want)
}

// receipts fetches receipts by hash in one batch; a missing receipt is left
// out.
func (c *client) receipts(ctx context.Context, hashes []common.Hash) ([]receipt, error) {
	out := make([]*receipt, len(hashes))
	batch := make([]rpc.BatchElem, len(hashes))
	for i, h := range hashes {
		batch[i] = rpc.BatchElem{Method: "eth_getTransactionReceipt", Args: []any{h}, Result: &out[i]}
	}
	if err := c.c.BatchCallContext(ctx, batch); err != nil {
		return nil, fmt.Errorf("eth_getTransactionReceipt: %w", err)
	}
	var rs []receipt
	for i, b := range batch {
		if b.Error == nil && out[i] != nil {
			rs = append(rs, *out[i])
		}
	}
	return rs, nil
}

// sendRaw sends signed transactions in one JSON-RPC batch (a plain call for
// one) and returns an error per transaction.
func (c *client) sendRaw(ctx context.Context, raws [][]byte) ([]error, error) {
	errs := make([]error, len(raws))
	if len(raws) == 1 {
		var h common.Hash
		errs[0] = c.c.CallContext(ctx, &h, "eth_sendRawTransaction", hexutil.Bytes(raws[0]))
		if isTransport(errs[0]) {
			return nil, errs[0]
		}
		return errs, nil
	}
	batch := make([]rpc.BatchElem, len(raws))
	hashes := make([]common.Hash, len(raws))
	for i, raw := range raws {
		batch[i] = rpc.BatchElem{Method: "eth_sendRawTransaction", Args: []any{hexutil.Bytes(raw)}, Result: &hashes[i]}
	}
	if err := c.c.BatchCallContext(ctx, batch); err != nil {
		return nil, err
	}
	for i := range batch {
		errs[i] = batch[i].Error
	}
	return errs, nil
}

// isTransport reports whether err is not an answer from the node but a
// failure to get one.
func isTransport(err error) bool {
	if err == nil {
		return false
	}
	var rpcErr rpc.Error
	return !errors.As(err, &rpcErr)
}

// sendAndWait sends signed transactions in batches and waits until every one
// has a receipt; a reverted one is an error.
func (c *client) sendAndWait(ctx context.Context, txs []*types.Transaction, what string) ([]receipt, error) {
	for start := 0; start < len(txs); start += 100 {
		end := min(start+100, len(txs))
		raws := make([][]byte, 0, end-start)
		for _, tx := range txs[start:end] {
			raw, err := tx.MarshalBinary()
			if err != nil {
				return nil, err
			}
			raws = append(raws, raw)
		}
		errs, err := c.sendRaw(ctx, raws)
		if err != nil {
			return nil, fmt.Errorf("%s: send: %w", what, err)
		}
		for _, e := range errs {
			if e != nil {
				return nil, fmt.Errorf("%s: send: %w", what, e)
			}
		}
	}
	hashes := make([]common.Hash, len(txs))
	for i, tx := range txs {
		hashes[i] = tx.Hash()
	}
	got := make(map[common.Hash]receipt, len(txs))
	deadline := time.Now().Add(2 * time.Minute)
	for len(got) < len(txs) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: %d of %d transactions not included after 2m", what, len(txs)-len(got), len(txs))
		}
		var missing []common.Hash
		for _, h := range hashes {
			if _, ok := got[h]; !ok {
				missing = append(missing, h)
			}
		}
		for start := 0; start < len(missing); start += 200 {
			rs, err := c.receipts(ctx, missing[start:min(start+200, len(missing))])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", what, err)
			}
			for _, r := range rs {
				if r.Status != 1 {
					return nil, fmt.Errorf("%s: transaction %s reverted", what, r.TxHash)
				}
				got[r.TxHash] = r
			}
		}
		if len(got) < len(txs) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	out := make([]receipt, len(txs))
	for i, h := range hashes {
		out[i] = got[h]
	}
	return out, nil
}

// errorKind turns an error into a short, low-cardinality label for the
// "errors by kind" table: the message without hashes, numbers or addresses.
func errorKind(prefix string, err error) string {
	msg := err.Error()
	if i := strings.IndexAny(msg, ":"); i > 0 && strings.HasPrefix(msg, "nonce too") {
		msg = msg[:i]
	}
	fields := strings.Fields(msg)
	out := fields[:0]
	for _, f := range fields {
		if strings.ContainsAny(f, "0123456789") {
			continue
		}
		out = append(out, f)
	}
	s := strings.Join(out, " ")
	if len(s) > 80 {
		s = s[:80]
	}
	return prefix + ": " + s
}
