package rpctest

import (
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/vm"
)

// Selectors of the test contract. The contract dispatches on the first four
// bytes of calldata; anything else (including empty calldata) returns slot 0.
const (
	SelStore  uint32 = 1 // store(uint256): slot 0 = arg, LOG1(StoreTopic, arg)
	SelRevert uint32 = 2 // reverts with Error("nope")
	SelPanic  uint32 = 3 // reverts with Panic(0x01)
	SelLoop   uint32 = 4 // loops until out of gas (or cancelled)
)

// InitialValue is the value the constructor stores in slot 0.
const InitialValue = 7

// asm is a tiny assembler with forward jump labels (PUSH1 targets).
type asm struct {
	code   []byte
	labels map[string]int
	fixups map[int]string
}

func newAsm() *asm { return &asm{labels: map[string]int{}, fixups: map[int]string{}} }

func (a *asm) op(ops ...vm.OpCode) *asm {
	for _, o := range ops {
		a.code = append(a.code, byte(o))
	}
	return a
}

func (a *asm) push(data ...byte) *asm {
	a.code = append(a.code, byte(vm.PUSH1)+byte(len(data)-1))
	a.code = append(a.code, data...)
	return a
}

func (a *asm) pushLabel(name string) *asm {
	a.code = append(a.code, byte(vm.PUSH1), 0)
	a.fixups[len(a.code)-1] = name
	return a
}

func (a *asm) label(name string) *asm {
	a.labels[name] = len(a.code)
	return a.op(vm.JUMPDEST)
}

func (a *asm) bytes() []byte {
	for at, name := range a.fixups {
		pos, ok := a.labels[name]
		if !ok || pos > 0xff {
			panic(fmt.Sprintf("rpctest asm: bad label %q", name))
		}
		a.code[at] = byte(pos)
	}
	return a.code
}

// RuntimeCode is the deployed code of the test contract. It uses PUSH0, so
// it runs only when the EVM applies Shanghai rules (post-merge context).
func RuntimeCode() []byte {
	a := newAsm()
	// selector = calldataload(0) >> 224
	a.op(vm.PUSH0, vm.CALLDATALOAD).push(0xe0).op(vm.SHR)
	for _, c := range []struct {
		sel   uint32
		label string
	}{{SelStore, "store"}, {SelRevert, "revert"}, {SelPanic, "panic"}, {SelLoop, "loop"}} {
		a.op(vm.DUP1).push(byte(c.sel)).op(vm.EQ).pushLabel(c.label).op(vm.JUMPI)
	}
	// default: return sload(0)
	a.op(vm.PUSH0, vm.SLOAD, vm.PUSH0, vm.MSTORE).push(0x20).op(vm.PUSH0, vm.RETURN)

	// store: v = calldataload(4); sstore(0, v); mstore(0, v); log1(0, 32, topic)
	a.label("store").push(4).op(vm.CALLDATALOAD, vm.DUP1, vm.PUSH0, vm.SSTORE, vm.PUSH0, vm.MSTORE)
	a.push(StoreTopic[:]...).push(0x20).op(vm.PUSH0, vm.LOG1, vm.STOP)

	// revert: Error("nope") = 08c379a0 | 0x20 | 4 | "nope"
	a.label("revert").push(0x08, 0xc3, 0x79, 0xa0).push(0xe0).op(vm.SHL, vm.PUSH0, vm.MSTORE)
	a.push(0x20).push(0x04).op(vm.MSTORE)
	a.push(0x04).push(0x24).op(vm.MSTORE)
	a.push('n', 'o', 'p', 'e').push(0xe0).op(vm.SHL).push(0x44).op(vm.MSTORE)
	a.push(0x64).op(vm.PUSH0, vm.REVERT)

	// panic: Panic(1) = 4e487b71 | 1
	a.label("panic").push(0x4e, 0x48, 0x7b, 0x71).push(0xe0).op(vm.SHL, vm.PUSH0, vm.MSTORE)
	a.push(0x01).push(0x04).op(vm.MSTORE)
	a.push(0x24).op(vm.PUSH0, vm.REVERT)

	// loop: jump to itself forever
	a.label("loop").pushLabel("loop").op(vm.JUMP)
	return a.bytes()
}

// DeployCode is the creation code: store InitialValue in slot 0, then
// return RuntimeCode.
func DeployCode() []byte {
	runtime := RuntimeCode()
	const initLen = 13
	init := newAsm().
		push(InitialValue).op(vm.PUSH0, vm.SSTORE).
		push(byte(len(runtime))).op(vm.DUP1).push(initLen).op(vm.PUSH0, vm.CODECOPY, vm.PUSH0, vm.RETURN).
		bytes()
	if len(init) != initLen {
		panic(fmt.Sprintf("rpctest: init code is %d bytes, want %d", len(init), initLen))
	}
	return append(init, runtime...)
}

// Calldata returns the calldata for selector sel with an optional argument.
func Calldata(sel uint32, arg ...uint64) []byte {
	out := binary.BigEndian.AppendUint32(nil, sel)
	for _, v := range arg {
		out = append(out, common.BigToHash(new(big.Int).SetUint64(v)).Bytes()...)
	}
	return out
}

// StoreCall returns the calldata of store(v).
func StoreCall(v uint64) []byte { return Calldata(SelStore, v) }
