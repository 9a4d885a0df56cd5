package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/gasestimator"
	"github.com/ethereum/go-ethereum/eth/tracers/logger"
	"github.com/ethereum/go-ethereum/params"
	gethrpc "github.com/ethereum/go-ethereum/rpc"
	"github.com/holiman/uint256"
)

// ethRevertError is an EVM revert: code 3, message "execution reverted" plus
// the decoded Error(string)/Panic(uint256) reason, data the hex revert bytes.
type ethRevertError struct {
	error
	data string
}

func (e *ethRevertError) ErrorCode() int { return ethCodeRevert }
func (e *ethRevertError) ErrorData() any { return e.data }

// newEthRevertError builds the revert error for revert data ret.
func newEthRevertError(ret []byte) *ethRevertError {
	err := vm.ErrExecutionReverted
	if reason, uerr := abi.UnpackRevert(ret); uerr == nil {
		err = fmt.Errorf("%w: %v", vm.ErrExecutionReverted, reason)
	}
	return &ethRevertError{error: err, data: hexutil.Encode(ret)}
}

// CallArgs are the arguments of eth_call, eth_estimateGas and
// eth_createAccessList: a transaction that need not be signed. "input" is
// preferred over the older "data" when both are given.
type CallArgs struct {
	From                 *common.Address              `json:"from"`
	To                   *common.Address              `json:"to"`
	Gas                  *hexutil.Uint64              `json:"gas"`
	GasPrice             *hexutil.Big                 `json:"gasPrice"`
	MaxFeePerGas         *hexutil.Big                 `json:"maxFeePerGas"`
	MaxPriorityFeePerGas *hexutil.Big                 `json:"maxPriorityFeePerGas"`
	Value                *hexutil.Big                 `json:"value"`
	Nonce                *hexutil.Uint64              `json:"nonce"`
	Data                 *hexutil.Bytes               `json:"data"`
	Input                *hexutil.Bytes               `json:"input"`
	AccessList           *types.AccessList            `json:"accessList,omitempty"`
	ChainID              *hexutil.Big                 `json:"chainId,omitempty"`
	BlobFeeCap           *hexutil.Big                 `json:"maxFeePerBlobGas"`
	BlobHashes           []common.Hash                `json:"blobVersionedHashes,omitempty"`
	AuthorizationList    []types.SetCodeAuthorization `json:"authorizationList"`
}

func (a *CallArgs) from() common.Address {
	if a.From == nil {
		return common.Address{}
	}
	return *a.From
}

func (a *CallArgs) data() []byte {
	if a.Input != nil {
		return *a.Input
	}
	if a.Data != nil {
		return *a.Data
	}
	return nil
}

// checkBlobFeeCap rejects a blob fee cap without blob hashes.
func (a *CallArgs) checkBlobFeeCap() error {
	if a.BlobFeeCap != nil && len(a.BlobHashes) == 0 {
		return errors.New("maxFeePerBlobGas specified without blobVersionedHashes")
	}
	return nil
}

// callDefaults validates the fee fields and fills the missing ones for a
// call: gas defaults to (and is capped by) gasCap, fees to zero.
func (a *CallArgs) callDefaults(gasCap uint64, baseFee, chainID *big.Int) error {
	if a.GasPrice != nil && (a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil) {
		return errors.New("both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified")
	}
	if a.To == nil {
		if a.BlobHashes != nil {
			return core.ErrBlobTxCreate
		}
		if a.AuthorizationList != nil {
			return core.ErrSetCodeTxCreate
		}
	}
	if a.ChainID == nil {
		a.ChainID = (*hexutil.Big)(chainID)
	} else if have := a.ChainID.ToInt(); have.Cmp(chainID) != 0 {
		return fmt.Errorf("chainId does not match node's (have=%v, want=%v)", have, chainID)
	}
	if a.Gas == nil || uint64(*a.Gas) > gasCap {
		gas := hexutil.Uint64(gasCap)
		a.Gas = &gas
	}
	if a.Nonce == nil {
		a.Nonce = new(hexutil.Uint64)
	}
	if a.Value == nil {
		a.Value = new(hexutil.Big)
	}
	if baseFee == nil {
		if a.MaxFeePerGas != nil || a.MaxPriorityFeePerGas != nil {
			return errors.New("maxFeePerGas and maxPriorityFeePerGas are not valid before London is active")
		}
		if a.GasPrice == nil {
			a.GasPrice = new(hexutil.Big)
		}
	} else {
		if a.MaxFeePerGas == nil {
			a.MaxFeePerGas = new(hexutil.Big)
		}
		if a.MaxPriorityFeePerGas == nil {
			a.MaxPriorityFeePerGas = new(hexutil.Big)
		}
	}
	if a.BlobFeeCap == nil && a.BlobHashes != nil {
		a.BlobFeeCap = new(hexutil.Big)
	}
	return nil
}

// toMessage converts defaulted args to an EVM message that skips the nonce,
// EOA and per-transaction gas cap checks, like go-ethereum's calls.
func (a *CallArgs) toMessage(baseFee *big.Int) *core.Message {
	var gasPrice, feeCap, tipCap *uint256.Int
	switch {
	case baseFee == nil || a.GasPrice != nil:
		gasPrice = ethU256(a.GasPrice)
		feeCap, tipCap = gasPrice, gasPrice
	default:
		feeCap, tipCap = ethU256(a.MaxFeePerGas), ethU256(a.MaxPriorityFeePerGas)
		gasPrice = new(uint256.Int)
		if !feeCap.IsZero() || !tipCap.IsZero() {
			gasPrice.Add(tipCap, uint256.MustFromBig(baseFee))
			if gasPrice.Cmp(feeCap) > 0 {
				gasPrice.Set(feeCap)
			}
		}
	}
	var al types.AccessList
	if a.AccessList != nil {
		al = *a.AccessList
	}
	msg := &core.Message{
		From:                  a.from(),
		To:                    a.To,
		Value:                 ethU256(a.Value),
		Nonce:                 uint64(*a.Nonce),
		GasLimit:              uint64(*a.Gas),
		GasPrice:              gasPrice,
		GasFeeCap:             feeCap,
		GasTipCap:             tipCap,
		Data:                  a.data(),
		AccessList:            al,
		BlobGasFeeCap:         ethU256(a.BlobFeeCap),
		BlobHashes:            a.BlobHashes,
		SetCodeAuthorizations: a.AuthorizationList,
	}
	return msg.SkipNonceCheck().SkipEOACheck().SkipGasLimitCapCheck()
}

// ethU256 converts an optional big to uint256 (nil is 0; overflow saturates
// to the maximum, which the EVM's balance checks then reject).
func ethU256(b *hexutil.Big) *uint256.Int {
	if b == nil {
		return new(uint256.Int)
	}
	v, overflow := uint256.FromBig(b.ToInt())
	if overflow {
		return new(uint256.Int).SetAllOne()
	}
	return v
}

// OverrideAccount replaces parts of one account for the duration of a call.
// State (the whole storage) and StateDiff (some slots) are exclusive.
type OverrideAccount struct {
	Nonce            *hexutil.Uint64             `json:"nonce"`
	Code             *hexutil.Bytes              `json:"code"`
	Balance          *hexutil.Big                `json:"balance"`
	State            map[common.Hash]common.Hash `json:"state"`
	StateDiff        map[common.Hash]common.Hash `json:"stateDiff"`
	MovePrecompileTo *common.Address             `json:"movePrecompileToAddress"`
}

// StateOverride maps accounts to their overrides (eth_call's third parameter).
type StateOverride map[common.Address]OverrideAccount

// apply writes the overrides into st and moves precompiles in precompiles
// (which may be nil when moving is not supported).
func (o StateOverride) apply(st *state.StateDB, precompiles vm.PrecompiledContracts) error {
	if o == nil {
		return nil
	}
	moved := make(map[common.Address]struct{})
	for _, addr := range slices.SortedFunc(maps.Keys(o), common.Address.Cmp) {
		acc := o[addr]
		if _, ok := moved[addr]; ok {
			return fmt.Errorf("account %s has already been overridden by a precompile", addr.Hex())
		}
		p, isPrecompile := precompiles[addr]
		if acc.MovePrecompileTo != nil {
			if !isPrecompile {
				return fmt.Errorf("account %s is not a precompile", addr.Hex())
			}
			if _, ok := o[*acc.MovePrecompileTo]; ok {
				return fmt.Errorf("account %s is already overridden", acc.MovePrecompileTo.Hex())
			}
			precompiles[*acc.MovePrecompileTo] = p
			moved[*acc.MovePrecompileTo] = struct{}{}
		}
		if isPrecompile {
			delete(precompiles, addr)
		}
		if acc.Nonce != nil {
			st.SetNonce(addr, uint64(*acc.Nonce), tracing.NonceChangeUnspecified)
		}
		if acc.Code != nil {
			st.SetCode(addr, *acc.Code, tracing.CodeChangeUnspecified)
		}
		if acc.Balance != nil {
			st.SetBalance(addr, ethU256(acc.Balance), tracing.BalanceChangeUnspecified)
		}
		if acc.State != nil && acc.StateDiff != nil {
			return fmt.Errorf("account %s has both 'state' and 'stateDiff'", addr.Hex())
		}
		if acc.State != nil {
			st.SetStorage(addr, acc.State)
		}
		for k, v := range acc.StateDiff {
			st.SetState(addr, k, v)
		}
	}
	st.Finalise(params.Rules{})
	return nil
}

// BlockOverrides replaces block context fields for the duration of a call
// (eth_call's fourth parameter).
type BlockOverrides struct {
	Number        *hexutil.Big       `json:"number"`
	Difficulty    *hexutil.Big       `json:"difficulty"`
	Time          *hexutil.Uint64    `json:"time"`
	GasLimit      *hexutil.Uint64    `json:"gasLimit"`
	FeeRecipient  *common.Address    `json:"feeRecipient"`
	PrevRandao    *common.Hash       `json:"prevRandao"`
	BaseFeePerGas *hexutil.Big       `json:"baseFeePerGas"`
	BlobBaseFee   *hexutil.Big       `json:"blobBaseFee"`
	BeaconRoot    *common.Hash       `json:"beaconRoot"`
	Withdrawals   *types.Withdrawals `json:"withdrawals"`
}

// apply writes the overrides into the block context.
func (o *BlockOverrides) apply(bc *vm.BlockContext) error {
	if o == nil {
		return nil
	}
	if o.BeaconRoot != nil {
		return errors.New(`block override "beaconRoot" is not supported for this RPC method`)
	}
	if o.Withdrawals != nil {
		return errors.New(`block override "withdrawals" is not supported for this RPC method`)
	}
	if o.Number != nil {
		bc.BlockNumber = o.Number.ToInt()
	}
	if o.Difficulty != nil {
		bc.Difficulty = o.Difficulty.ToInt()
	}
	if o.Time != nil {
		bc.Time = uint64(*o.Time)
	}
	if o.GasLimit != nil {
		bc.GasLimit = uint64(*o.GasLimit)
	}
	if o.FeeRecipient != nil {
		bc.Coinbase = *o.FeeRecipient
	}
	if o.PrevRandao != nil {
		bc.Random = o.PrevRandao
	}
	if o.BaseFeePerGas != nil {
		bc.BaseFee = o.BaseFeePerGas.ToInt()
	}
	if o.BlobBaseFee != nil {
		bc.BlobBaseFee = o.BlobBaseFee.ToInt()
	}
	return nil
}

// header returns a copy of h with the overridden fields.
func (o *BlockOverrides) header(h *types.Header) *types.Header {
	if o == nil {
		return h
	}
	h = types.CopyHeader(h)
	if o.Number != nil {
		h.Number = o.Number.ToInt()
	}
	if o.Difficulty != nil && (h.Difficulty == nil || h.Difficulty.Sign() != 0) {
		h.Difficulty = o.Difficulty.ToInt()
	}
	if o.Time != nil {
		h.Time = uint64(*o.Time)
	}
	if o.GasLimit != nil {
		h.GasLimit = uint64(*o.GasLimit)
	}
	if o.FeeRecipient != nil {
		h.Coinbase = *o.FeeRecipient
	}
	if o.PrevRandao != nil {
		h.MixDigest = *o.PrevRandao
	}
	if o.BaseFeePerGas != nil {
		h.BaseFee = o.BaseFeePerGas.ToInt()
	}
	return h
}

// callEnv is a prepared execution environment: state with overrides
// applied, the (overridden) header and block context, and the precompiles.
type callEnv struct {
	state       *state.StateDB
	header      *types.Header
	blockCtx    vm.BlockContext
	precompiles vm.PrecompiledContracts
}

// prepareCall opens the state of the selected block and applies overrides.
func (api *EthAPI) prepareCall(sel *gethrpc.BlockNumberOrHash, so StateOverride, bo *BlockOverrides) (*callEnv, error) {
	st, header, err := api.stateAndHeader(sel)
	if err != nil {
		return nil, err
	}
	cfg := api.b.ChainConfig()
	blockCtx := core.NewEVMBlockContext(header, api.b.ChainContext(), nil)
	if bo != nil {
		if err := bo.apply(&blockCtx); err != nil {
			return nil, err
		}
		header = bo.header(header)
	}
	rules := cfg.Rules(blockCtx.BlockNumber, blockCtx.Random != nil, blockCtx.Time)
	precompiles := vm.ActivePrecompiledContracts(rules)
	if err := so.apply(st, precompiles); err != nil {
		return nil, err
	}
	return &callEnv{state: st, header: header, blockCtx: blockCtx, precompiles: precompiles}, nil
}

// doCall executes args in env, bounded by the gas cap and the EVM timeout.
func (api *EthAPI) doCall(ctx context.Context, args CallArgs, env *callEnv) (*core.ExecutionResult, error) {
	cfg := api.b.ChainConfig()
	if err := args.callDefaults(api.cfg.GasCap, env.blockCtx.BaseFee, cfg.ChainID); err != nil {
		return nil, err
	}
	msg := args.toMessage(env.header.BaseFee)
	blockCtx := env.blockCtx
	// A call that pays nothing runs with a zero base fee so that the
	// fee cap >= base fee invariant holds.
	if msg.GasPrice.IsZero() {
		blockCtx.BaseFee = new(big.Int)
	}
	if msg.BlobGasFeeCap != nil && msg.BlobGasFeeCap.IsZero() {
		blockCtx.BlobBaseFee = new(big.Int)
	}
	evm := vm.NewEVM(blockCtx, env.state, cfg, vm.Config{NoBaseFee: true})
	defer evm.Release()
	evm.SetPrecompiles(env.precompiles)

	timeout := api.cfg.EVMTimeout
	var cancel context.CancelFunc
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, timeout)
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	stop := context.AfterFunc(ctx, evm.Cancel)
	defer stop()

	res, err := core.ApplyMessage(evm, msg, core.NewGasPool(api.cfg.GasCap))
	if serr := env.state.Error(); serr != nil {
		return nil, serr
	}
	if evm.Cancelled() {
		return nil, fmt.Errorf("execution aborted (timeout = %v)", timeout)
	}
	if err != nil {
		return res, fmt.Errorf("err: %w (supplied gas %d)", err, msg.GasLimit)
	}
	return res, nil
}

// Call executes a message call on the state of the selected block (latest
// when omitted), optionally with state and block overrides, and returns its
// output. A revert is a code-3 error carrying the revert data (eth_call).
func (api *EthAPI) Call(ctx context.Context, args CallArgs, block *gethrpc.BlockNumberOrHash, overrides *StateOverride, blockOverrides *BlockOverrides) (hexutil.Bytes, error) {
	if err := args.checkBlobFeeCap(); err != nil {
		return nil, err
	}
	env, err := api.prepareCall(block, ethDeref(overrides), blockOverrides)
	if err != nil {
		return nil, err
	}
	res, err := api.doCall(ctx, args, env)
	if err != nil {
		return nil, err
	}
	if errors.Is(res.Err, vm.ErrExecutionReverted) {
		return nil, newEthRevertError(res.Revert())
	}
	return res.Return(), res.Err
}

// EstimateGas returns the lowest gas limit with which the transaction
// succeeds on the selected block's state, capped by the call's gas and the
// node's gas cap; the whole search is bounded by the EVM timeout. A revert
// is the same code-3 error as eth_call's (eth_estimateGas).
func (api *EthAPI) EstimateGas(ctx context.Context, args CallArgs, block *gethrpc.BlockNumberOrHash, overrides *StateOverride, blockOverrides *BlockOverrides) (hexutil.Uint64, error) {
	if err := args.checkBlobFeeCap(); err != nil {
		return 0, err
	}
	env, err := api.prepareCall(block, ethDeref(overrides), blockOverrides)
	if err != nil {
		return 0, err
	}
	var blobBaseFee *big.Int
	if blockOverrides != nil && blockOverrides.BlobBaseFee != nil {
		blobBaseFee = blockOverrides.BlobBaseFee.ToInt()
	}
	opts := &gasestimator.Options{
		Config:      api.b.ChainConfig(),
		Chain:       api.b.ChainContext(),
		Header:      env.header,
		State:       env.state,
		BlobBaseFee: blobBaseFee,
		ErrorRatio:  ethEstimateErrorRatio,
	}
	// Keep the caller's gas (0 = unset) so the estimator searches up to the cap.
	if args.Gas == nil {
		args.Gas = new(hexutil.Uint64)
	}
	if err := args.callDefaults(api.cfg.GasCap, env.header.BaseFee, api.b.ChainConfig().ChainID); err != nil {
		return 0, err
	}
	msg := args.toMessage(env.header.BaseFee)

	timeout := api.cfg.EVMTimeout
	ectx, cancel := context.WithCancel(ctx)
	if timeout > 0 {
		cancel()
		ectx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	estimate, revert, err := gasestimator.Estimate(ectx, msg, opts, api.cfg.GasCap)
	if ectx.Err() != nil {
		// A cancelled EVM stops early and its result means nothing.
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("execution aborted (timeout = %v)", timeout)
	}
	if err != nil {
		if errors.Is(err, vm.ErrExecutionReverted) {
			return 0, newEthRevertError(revert)
		}
		return 0, err
	}
	return hexutil.Uint64(estimate), nil
}

// AccessListResult is the eth_createAccessList answer; Error is the
// execution error of the transaction with the final access list, if any.
type AccessListResult struct {
	Accesslist *types.AccessList `json:"accessList"`
	Error      string            `json:"error,omitempty"`
	GasUsed    hexutil.Uint64    `json:"gasUsed"`
}

// CreateAccessList returns the EIP-2930 access list the transaction touches
// on the selected block's state, excluding sender, recipient and
// precompiles, and the gas it uses with that list (eth_createAccessList).
func (api *EthAPI) CreateAccessList(ctx context.Context, args CallArgs, block *gethrpc.BlockNumberOrHash, overrides *StateOverride) (*AccessListResult, error) {
	if err := args.checkBlobFeeCap(); err != nil {
		return nil, err
	}
	st, header, err := api.stateAndHeader(block)
	if err != nil {
		return nil, err
	}
	if err := ethDeref(overrides).apply(st, nil); err != nil {
		return nil, err
	}
	cfg := api.b.ChainConfig()
	if args.Nonce == nil {
		nonce := hexutil.Uint64(st.GetNonce(args.from()))
		args.Nonce = &nonce
	}
	blockCtx := core.NewEVMBlockContext(header, api.b.ChainContext(), nil)
	if err := args.callDefaults(api.cfg.GasCap, blockCtx.BaseFee, cfg.ChainID); err != nil {
		return nil, err
	}
	to := crypto.CreateAddress(args.from(), uint64(*args.Nonce))
	if args.To != nil {
		to = *args.To
	}
	rules := cfg.Rules(header.Number, blockCtx.Random != nil, header.Time)
	exclude := map[common.Address]struct{}{args.from(): {}, to: {}}
	for _, addr := range vm.ActivePrecompiles(rules) {
		exclude[addr] = struct{}{}
	}
	for _, auth := range args.AuthorizationList {
		if (!auth.ChainID.IsZero() && auth.ChainID.CmpBig(cfg.ChainID) != 0) || auth.Nonce+1 < auth.Nonce {
			continue
		}
		if authority, err := auth.Authority(); err == nil {
			exclude[authority] = struct{}{}
		}
	}
	var initial types.AccessList
	if args.AccessList != nil {
		initial = *args.AccessList
	}
	prev := logger.NewAccessListTracer(initial, exclude)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		acl := prev.AccessList()
		args.AccessList = &acl
		msg := args.toMessage(header.BaseFee)
		tracer := logger.NewAccessListTracer(acl, exclude)
		bctx := blockCtx
		if msg.GasPrice.IsZero() {
			bctx.BaseFee = new(big.Int)
		}
		if msg.BlobGasFeeCap != nil && msg.BlobGasFeeCap.IsZero() {
			bctx.BlobBaseFee = new(big.Int)
		}
		evm := vm.NewEVM(bctx, st.Copy(), cfg, vm.Config{Tracer: tracer.Hooks(), NoBaseFee: true})
		res, err := core.ApplyMessage(evm, msg, core.NewGasPool(api.cfg.GasCap))
		evm.Release()
		if err != nil {
			return nil, fmt.Errorf("failed to apply transaction: %v err: %v", ethArgsHash(&args), err)
		}
		if tracer.Equal(prev) {
			out := &AccessListResult{Accesslist: &acl, GasUsed: hexutil.Uint64(res.UsedGas)}
			if res.Err != nil {
				out.Error = res.Err.Error()
			}
			return out, nil
		}
		prev = tracer
	}
}

// ethArgsHash is the hash of the unsigned legacy transaction the args
// describe, used only to name it in an error.
func ethArgsHash(a *CallArgs) common.Hash {
	var gasPrice *big.Int
	if a.GasPrice != nil {
		gasPrice = a.GasPrice.ToInt()
	}
	return types.NewTx(&types.LegacyTx{
		Nonce:    uint64(*a.Nonce),
		GasPrice: gasPrice,
		Gas:      uint64(*a.Gas),
		To:       a.To,
		Value:    a.Value.ToInt(),
		Data:     a.data(),
	}).Hash()
}

func ethDeref(o *StateOverride) StateOverride {
	if o == nil {
		return nil
	}
	return *o
}
