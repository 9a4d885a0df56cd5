package bench

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"runtime"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
)

// account is a key with its locally tracked next nonce.
type account struct {
	key   *ecdsa.PrivateKey
	addr  common.Address
	nonce uint64
}

func newAccount(key *ecdsa.PrivateKey) *account {
	return &account{key: key, addr: crypto.PubkeyToAddress(key.PublicKey)}
}

// senderKey derives sender i's key from the funder's key, so repeated runs
// reuse (and only top up) the same accounts.
func senderKey(funder *ecdsa.PrivateKey, i int) (*ecdsa.PrivateKey, error) {
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], uint64(i))
	seed := crypto.FromECDSA(funder)
	for {
		h := crypto.Keccak256(seed, []byte("hansa-bench-sender"), idx[:])
		k, err := crypto.ToECDSA(h)
		if err == nil {
			return k, nil
		}
		seed = h // out of range (probability ~2^-128): hash again
	}
}

// fees is how every transaction of a run pays: a legacy gas price, or an
// EIP-1559 tip and fee cap on a chain with a base fee.
type fees struct {
	dynamic  bool
	price    *big.Int // legacy gas price
	tip, cap *big.Int // dynamic
}

// perGas returns the most a transaction may pay per unit of gas.
func (f fees) perGas() *big.Int {
	if f.dynamic {
		return f.cap
	}
	return f.price
}

func (f fees) String() string {
	if f.dynamic {
		return fmt.Sprintf("EIP-1559 tip %s wei, fee cap %s wei", f.tip, f.cap)
	}
	return fmt.Sprintf("legacy gas price %s wei", f.price)
}

func (f fees) tx(chainID *big.Int, nonce uint64, to *common.Address, value *big.Int, gas uint64, data []byte) *types.Transaction {
	if f.dynamic {
		return types.NewTx(&types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce, GasTipCap: f.tip, GasFeeCap: f.cap,
			Gas: gas, To: to, Value: value, Data: data,
		})
	}
	return types.NewTx(&types.LegacyTx{
		Nonce: nonce, GasPrice: f.price, Gas: gas, To: to, Value: value, Data: data,
	})
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

// chooseFees asks the node (unless the price is given): a chain whose head
// has a base fee gets EIP-1559 transactions with a fee cap of three times
// the base fee (at least the base fee plus 1 gwei) plus the tip, so a rising
// base fee under load does not strand pre-signed transactions.
func chooseFees(ctx context.Context, cl *client, override *big.Int) (fees, error) {
	base, err := cl.baseFee(ctx)
	if err != nil {
		return fees{}, err
	}
	if base == nil {
		if override != nil {
			return fees{price: override}, nil
		}
		price, err := cl.bigCall(ctx, "eth_gasPrice")
		if err != nil {
			return fees{}, err
		}
		return fees{price: price}, nil
	}
	tip, err := cl.bigCall(ctx, "eth_maxPriorityFeePerGas")
	if err != nil {
		tip = big.NewInt(1) // a node without the method: a token tip
	}
	// Free gas (no base fee, no tip) stays free; otherwise leave room for the
	// base fee to triple, and at least 1 gwei above it.
	fc := new(big.Int)
	if base.Sign() > 0 || tip.Sign() > 0 {
		fc.Mul(base, big.NewInt(3))
		fc = bigMax(fc, new(big.Int).Add(base, big.NewInt(1e9)))
		fc.Add(fc, tip)
	}
	if override != nil {
		fc = override
		if tip.Cmp(fc) > 0 {
			tip = new(big.Int).Set(fc)
		}
	}
	return fees{dynamic: true, tip: tip, cap: fc}, nil
}

// env is a prepared endpoint: funded senders, deployed contracts, fees.
type env struct {
	cl      *client
	chainID *big.Int
	signer  types.Signer
	fees    fees
	funder  *account
	senders []*account // Accounts senders; hot-account adds the hot one last
	k       *contracts
	token   common.Address
	simple  common.Address
	gas     map[string]uint64 // gas limit per transaction workload
	head    uint64            // head when preparation finished
}

func (e *env) sign(tx *types.Transaction, key *ecdsa.PrivateKey) (*types.Transaction, error) {
	return types.SignTx(tx, e.signer, key)
}

// funderTx builds and signs the funder's next transaction.
func (e *env) funderTx(to *common.Address, value *big.Int, gas uint64, data []byte) (*types.Transaction, error) {
	tx := e.fees.tx(e.chainID, e.funder.nonce, to, value, gas, data)
	e.funder.nonce++
	return e.sign(tx, e.funder.key)
}

func (e *env) estimate(ctx context.Context, from common.Address, to *common.Address, data []byte, value *big.Int) (uint64, error) {
	msg := map[string]any{"from": from, "data": hexutil.Bytes(data)}
	if to != nil {
		msg["to"] = to
	}
	if value != nil {
		msg["value"] = (*hexutil.Big)(value)
	}
	var gas hexutil.Uint64
	if err := e.cl.c.CallContext(ctx, &gas, "eth_estimateGas", msg); err != nil {
		return 0, fmt.Errorf("eth_estimateGas: %w", err)
	}
	return uint64(gas), nil
}

// margin pads a gas estimate by 30 %, for storage slots and string lengths
// that differ between the estimated call and the real ones.
func margin(gas uint64) uint64 { return gas + gas*3/10 }

// tokenSupply is minted to the funder; each holder gets tokenGrant.
var (
	tokenSupply = new(big.Int).Exp(big.NewInt(10), big.NewInt(30), nil)
	tokenGrant  = new(big.Int).Exp(big.NewInt(10), big.NewInt(24), nil)
	simpleGrant = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
)

// prepare connects to cfg.RPC and readies the chain for cfg.Workload with
// enough funds for runs rounds of up to planned operations each.
func prepare(ctx context.Context, cfg *Config, cl *client, log *slog.Logger, planned, rounds int) (*env, error) {
	k, err := loadContracts()
	if err != nil {
		return nil, err
	}
	e := &env{cl: cl, k: k, funder: newAccount(cfg.Key), gas: map[string]uint64{}}
	if cfg.ChainID != nil {
		e.chainID = cfg.ChainID
	} else if e.chainID, err = cl.chainID(ctx); err != nil {
		return nil, err
	}
	e.signer = types.LatestSignerForChainID(e.chainID)
	if e.fees, err = chooseFees(ctx, cl, cfg.GasPrice); err != nil {
		return nil, err
	}
	n := cfg.Accounts
	if cfg.Workload == WorkloadHotAccount {
		n++
	}
	for i := range n {
		key, err := senderKey(cfg.Key, i)
		if err != nil {
			return nil, err
		}
		e.senders = append(e.senders, newAccount(key))
	}
	if e.funder.nonce, err = cl.nonce(ctx, e.funder.addr); err != nil {
		return nil, err
	}
	log.Info("preparing", "workload", cfg.Workload, "chain_id", e.chainID, "fees", e.fees.String(), "senders", n)

	// Contracts.
	needToken := cfg.Workload == WorkloadERC20 || cfg.Workload == WorkloadHotAccount ||
		cfg.Workload == WorkloadRead || cfg.Workload == WorkloadDeploy
	needSimple := cfg.Workload == WorkloadSimpleOpen || cfg.Workload == WorkloadSimpleQuery ||
		cfg.Workload == WorkloadSimpleTransfer
	if needToken {
		data, err := k.token.deployData("Bench Token", "BENCH", tokenSupply)
		if err != nil {
			return nil, err
		}
		gas, err := e.estimate(ctx, e.funder.addr, nil, data, nil)
		if err != nil {
			return nil, fmt.Errorf("deploy token: %w", err)
		}
		e.gas[WorkloadDeploy] = margin(gas)
		if cfg.Workload != WorkloadDeploy {
			addr, err := e.deploy(ctx, data, margin(gas), "deploy token")
			if err != nil {
				return nil, err
			}
			e.token = addr
		}
	}
	if needSimple {
		addr, err := e.deploy(ctx, k.simple.Bytecode, 0, "deploy simple")
		if err != nil {
			return nil, err
		}
		e.simple = addr
	}

	// Gas limits of the measured transactions.
	e.gas[WorkloadTransfer] = 21000
	var dist []*types.Transaction
	switch {
	case cfg.Workload == WorkloadERC20 || cfg.Workload == WorkloadHotAccount || cfg.Workload == WorkloadRead:
		probe := common.HexToAddress("0x000000000000000000000000000000000000bE7c")
		gas, err := e.estimate(ctx, e.funder.addr, &e.token, k.token.mustPack("transfer", probe, big.NewInt(1)), nil)
		if err != nil {
			return nil, fmt.Errorf("estimate token transfer: %w", err)
		}
		e.gas[WorkloadERC20] = margin(gas)
		for _, s := range e.senders {
			tx, err := e.funderTx(&e.token, nil, margin(gas), k.token.mustPack("transfer", s.addr, tokenGrant))
			if err != nil {
				return nil, err
			}
			dist = append(dist, tx)
		}
	case cfg.Workload == WorkloadSimpleOpen:
		gas, err := e.estimate(ctx, e.funder.addr, &e.simple, k.simple.mustPack("open", "probe-000000000", simpleGrant), nil)
		if err != nil {
			return nil, fmt.Errorf("estimate simple open: %w", err)
		}
		e.gas[WorkloadSimpleOpen] = margin(gas)
	case needSimple:
		gas, err := e.estimate(ctx, e.funder.addr, &e.simple, k.simple.mustPack("open", simpleID(0), simpleGrant), nil)
		if err != nil {
			return nil, fmt.Errorf("estimate simple open: %w", err)
		}
		for i := range e.senders {
			tx, err := e.funderTx(&e.simple, nil, margin(gas), k.simple.mustPack("open", simpleID(i), simpleGrant))
			if err != nil {
				return nil, err
			}
			dist = append(dist, tx)
		}
	}
	if len(dist) > 0 {
		if _, err := cl.sendAndWait(ctx, dist, "distribute"); err != nil {
			return nil, err
		}
	}
	if cfg.Workload == WorkloadSimpleTransfer {
		gas, err := e.estimate(ctx, e.funder.addr, &e.simple, k.simple.mustPack("transfer", simpleID(0), simpleID(1), big.NewInt(1)), nil)
		if err != nil {
			return nil, fmt.Errorf("estimate simple transfer: %w", err)
		}
		e.gas[WorkloadSimpleTransfer] = margin(gas)
	}

	// Fund the senders for every planned transaction (reads need no funds).
	if !isRead(cfg.Workload) {
		if err := e.fund(ctx, cfg, planned*rounds); err != nil {
			return nil, err
		}
	}
	if e.head, err = cl.blockNumber(ctx); err != nil {
		return nil, err
	}
	return e, nil
}

func simpleID(i int) string { return fmt.Sprintf("bench-%09d", i) }

func (e *env) deploy(ctx context.Context, data []byte, gas uint64, what string) (common.Address, error) {
	if gas == 0 {
		g, err := e.estimate(ctx, e.funder.addr, nil, data, nil)
		if err != nil {
			return common.Address{}, fmt.Errorf("%s: %w", what, err)
		}
		gas = margin(g)
	}
	tx, err := e.funderTx(nil, nil, gas, data)
	if err != nil {
		return common.Address{}, err
	}
	rs, err := e.cl.sendAndWait(ctx, []*types.Transaction{tx}, what)
	if err != nil {
		return common.Address{}, err
	}
	if rs[0].ContractAddress == nil {
		return common.Address{}, fmt.Errorf("%s: receipt has no contract address", what)
	}
	return *rs[0].ContractAddress, nil
}

// fund tops every sender up to what ops transactions cost at most (the
// workload's gas limit at the run's fee), shared evenly — the hot account of
// hot-account pays half of them.
func (e *env) fund(ctx context.Context, cfg *Config, ops int) error {
	gas := e.gas[gasKey(cfg.Workload)]
	perTx := new(big.Int).Mul(new(big.Int).SetUint64(gas), e.fees.perGas())
	perTx.Add(perTx, big.NewInt(1)) // the 1 wei a transfer moves
	share := ops/cfg.Accounts + 1
	if cfg.Workload == WorkloadHotAccount {
		share = ops/2 + 1
	}
	need := new(big.Int).Mul(perTx, big.NewInt(int64(share)))
	need.Add(need, big.NewInt(1e15)) // and a little over
	var txs []*types.Transaction
	for _, s := range e.senders {
		bal, err := e.cl.bigCall(ctx, "eth_getBalance", s.addr, "latest")
		if err != nil {
			return err
		}
		if bal.Cmp(need) >= 0 {
			continue
		}
		tx, err := e.funderTx(&s.addr, new(big.Int).Sub(need, bal), 21000, nil)
		if err != nil {
			return err
		}
		txs = append(txs, tx)
	}
	if len(txs) == 0 {
		return nil
	}
	total := new(big.Int).Mul(need, big.NewInt(int64(len(txs))))
	bal, err := e.cl.bigCall(ctx, "eth_getBalance", e.funder.addr, "latest")
	if err != nil {
		return err
	}
	if bal.Cmp(total) < 0 {
		return fmt.Errorf("bench: the funder %s holds %s wei, the senders need %s wei: fund it or lower --accounts/--rate/--max-txs", e.funder.addr, bal, total)
	}
	_, err = e.cl.sendAndWait(ctx, txs, "fund senders")
	return err
}

// signAll signs txs in place on all cores; key(i) is the signer of txs[i].
func (e *env) signAll(txs []*types.Transaction, key func(i int) *ecdsa.PrivateKey) error {
	workers := max(runtime.GOMAXPROCS(0), 1)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	chunk := (len(txs) + workers - 1) / workers
	for w := range workers {
		lo, hi := w*chunk, min((w+1)*chunk, len(txs))
		if lo >= hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				signed, err := e.sign(txs[i], key(i))
				if err != nil {
					errs[w] = err
					return
				}
				txs[i] = signed
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// SenderAddresses returns the addresses of the first n sender accounts the
// bench derives from funder (the same on every run), e.g. to check or
// recover their balances.
func SenderAddresses(funder *ecdsa.PrivateKey, n int) ([]common.Address, error) {
	out := make([]common.Address, n)
	for i := range out {
		k, err := senderKey(funder, i)
		if err != nil {
			return nil, err
		}
		out[i] = crypto.PubkeyToAddress(k.PublicKey)
	}
	return out, nil
}

// gasKey names the env.gas entry of a transaction workload's operations.
func gasKey(workload string) string {
	if workload == WorkloadHotAccount {
		return WorkloadERC20
	}
	return workload
}

// refreshNonces reads every sender's pending nonce in one batch: a closed-loop
// run leaves pre-signed transactions unsent, whose nonces the next run must
// reuse.
func (e *env) refreshNonces(ctx context.Context) error {
	nonces := make([]hexutil.Uint64, len(e.senders))
	batch := make([]rpc.BatchElem, len(e.senders))
	for i, s := range e.senders {
		batch[i] = rpc.BatchElem{Method: "eth_getTransactionCount", Args: []any{s.addr, "pending"}, Result: &nonces[i]}
	}
	if err := e.cl.c.BatchCallContext(ctx, batch); err != nil {
		return fmt.Errorf("eth_getTransactionCount: %w", err)
	}
	for i, b := range batch {
		if b.Error != nil {
			return fmt.Errorf("eth_getTransactionCount: %w", b.Error)
		}
		e.senders[i].nonce = uint64(nonces[i])
	}
	return nil
}
