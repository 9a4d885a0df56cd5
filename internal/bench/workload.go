package bench

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rpc"
)

// op is one planned operation: a transaction (raw set after signing) or a
// read call (method set).
type op struct {
	sender int // index into env.senders; for reads, a virtual sender for max mode
	raw    []byte
	hash   common.Hash

	method string
	args   []any
}

// forcedRevert reports whether operation i is one of the share built to
// revert: spread evenly, the first at the earliest index.
func forcedRevert(i int, share float64) bool {
	if share <= 0 {
		return false
	}
	return int(float64(i+1)*share) > int(float64(i)*share)
}

// buildOps plans, builds and signs the n operations of one run. Nonces
// continue from each sender's locally tracked nonce and are advanced.
func buildOps(e *env, cfg *Config, n, round int) ([]op, error) {
	ops := make([]op, n)
	if isRead(cfg.Workload) {
		for i := range ops {
			ops[i] = readOp(e, cfg, i)
		}
		return ops, nil
	}
	accounts := cfg.Accounts
	addr := func(i int) common.Address { return e.senders[i%accounts].addr }
	unsigned := make([]*txPlan, n)
	one := big.NewInt(1)
	huge := new(big.Int).Mul(tokenGrant, big.NewInt(1000)) // more than any holder has
	for i := range ops {
		s := i % accounts
		p := &txPlan{sender: s}
		amount := one // contract workloads: forced reverts move more than the sender has
		if forcedRevert(i, cfg.RevertShare) {
			amount = huge
		}
		switch cfg.Workload {
		case WorkloadTransfer:
			to := addr(s + 1)
			p.to, p.value, p.gas = &to, one, e.gas[WorkloadTransfer]
		case WorkloadERC20:
			p.to, p.gas = &e.token, e.gas[WorkloadERC20]
			p.data = e.k.token.mustPack("transfer", addr(s+1), amount)
		case WorkloadHotAccount:
			hot := len(e.senders) - 1
			p.to, p.gas = &e.token, e.gas[WorkloadERC20]
			if i%2 == 0 { // many → one
				p.sender = (i / 2) % accounts
				p.data = e.k.token.mustPack("transfer", e.senders[hot].addr, amount)
			} else { // one → many
				p.sender = hot
				p.data = e.k.token.mustPack("transfer", addr(i/2), amount)
			}
		case WorkloadDeploy:
			data, err := e.k.token.deployData("Deployed", "DPL", big.NewInt(int64(i)))
			if err != nil {
				return nil, err
			}
			p.data, p.gas = data, e.gas[WorkloadDeploy]
		case WorkloadSimpleOpen:
			p.to, p.gas = &e.simple, e.gas[WorkloadSimpleOpen]
			p.data = e.k.simple.mustPack("open", fmt.Sprintf("open-%02d-%09d", round%100, i), big.NewInt(1000))
		case WorkloadSimpleTransfer:
			p.to, p.gas = &e.simple, e.gas[WorkloadSimpleTransfer]
			p.data = e.k.simple.mustPack("transfer", simpleID(s), simpleID((s+1)%accounts), amount)
		default:
			return nil, fmt.Errorf("bench: workload %q sends no transactions", cfg.Workload)
		}
		sender := e.senders[p.sender]
		p.tx = e.fees.tx(e.chainID, sender.nonce, p.to, p.value, p.gas, p.data)
		sender.nonce++
		unsigned[i] = p
		ops[i] = op{sender: p.sender}
	}
	all := make([]*types.Transaction, n)
	for i, p := range unsigned {
		all[i] = p.tx
	}
	if err := e.signAll(all, func(i int) *ecdsa.PrivateKey { return e.senders[unsigned[i].sender].key }); err != nil {
		return nil, err
	}
	for i, tx := range all {
		raw, err := tx.MarshalBinary()
		if err != nil {
			return nil, err
		}
		ops[i].raw, ops[i].hash = raw, tx.Hash()
	}
	return ops, nil
}

// txPlan is a transaction before signing.
type txPlan struct {
	sender int
	to     *common.Address
	value  *big.Int
	gas    uint64
	data   []byte
	tx     *types.Transaction
}

// readOp is read call i: for read, a rotation of eth_call (balanceOf),
// eth_getBalance, eth_getLogs (the token's logs of the last 100 blocks) and
// eth_getBlockByNumber (a recent block); for simple-query, Simple.query.
func readOp(e *env, cfg *Config, i int) op {
	s := i % cfg.Accounts
	o := op{sender: s}
	who := e.senders[s].addr
	if cfg.Workload == WorkloadSimpleQuery {
		o.method = "eth_call"
		o.args = []any{callMsg(e.simple, e.k.simple.mustPack("query", simpleID(s))), "latest"}
		return o
	}
	switch i % 4 {
	case 0:
		o.method = "eth_call"
		o.args = []any{callMsg(e.token, e.k.token.mustPack("balanceOf", who)), "latest"}
	case 1:
		o.method, o.args = "eth_getBalance", []any{who, "latest"}
	case 2:
		from := uint64(0)
		if e.head > 100 {
			from = e.head - 100
		}
		o.method = "eth_getLogs"
		o.args = []any{map[string]any{"address": e.token, "fromBlock": hexutil.Uint64(from), "toBlock": hexutil.Uint64(e.head)}}
	default:
		back := uint64(i/4) % min(e.head+1, 100)
		o.method, o.args = "eth_getBlockByNumber", []any{hexutil.Uint64(e.head - back), false}
	}
	return o
}

func callMsg(to common.Address, data []byte) map[string]any {
	return map[string]any{"to": to, "data": hexutil.Bytes(data)}
}

// readElem turns a read op into a batch element.
func (o *op) readElem() rpc.BatchElem {
	return rpc.BatchElem{Method: o.method, Args: o.args, Result: new(json.RawMessage)}
}
