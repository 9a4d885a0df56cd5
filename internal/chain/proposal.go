package chain

import (
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// Proposal is what consensus orders: the header fields the proposer chose for
// block Number and the transactions it wants included, in order. Every node
// executes a committed proposal deterministically; transactions that turn out
// invalid against the state are skipped, never half-applied, so the block
// built from a proposal may hold fewer transactions than the proposal.
//
// ParentHash is the proposer's hash of block Number-1. A node whose own block
// Number-1 has a different hash has diverged and must stop applying.
//
// Senders, when present, are the transactions' senders as the proposer
// recovered them, so that other members need not recover them again. Raft
// tolerates crashes, not lies: members trust the proposer's senders as they
// trust its choice of transactions.
type Proposal struct {
	Number     uint64
	ParentHash common.Hash
	Time       uint64
	Proposer   common.Address
	Txs        types.Transactions
	Senders    []common.Address `rlp:"optional"`
}

// MaxProposalBytes bounds a decoded proposal; anything larger is refused
// before decoding.
const MaxProposalBytes = 64 << 20

// ErrProposalTooLarge is returned when an encoded proposal exceeds MaxProposalBytes.
var ErrProposalTooLarge = errors.New("proposal too large")

// EncodeProposal returns the canonical RLP encoding of p.
func EncodeProposal(p *Proposal) ([]byte, error) {
	return rlp.EncodeToBytes(p)
}

// DecodeProposal parses an encoded proposal. It refuses oversized input,
// trailing bytes, and blob transactions (which Hansa never includes).
func DecodeProposal(data []byte) (*Proposal, error) {
	if len(data) > MaxProposalBytes {
		return nil, ErrProposalTooLarge
	}
	var p Proposal
	if err := rlp.DecodeBytes(data, &p); err != nil {
		return nil, fmt.Errorf("decode proposal: %w", err)
	}
	if len(p.Senders) != 0 && len(p.Senders) != len(p.Txs) {
		return nil, fmt.Errorf("decode proposal: %d senders for %d transactions", len(p.Senders), len(p.Txs))
	}
	for i, tx := range p.Txs {
		if tx.Type() == types.BlobTxType {
			return nil, fmt.Errorf("decode proposal: tx %d is a blob transaction", i)
		}
	}
	return &p, nil
}
