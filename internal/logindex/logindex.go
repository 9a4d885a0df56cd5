// Package logindex keeps an inverted index of a chain's logs (by emitting
// address, by topic at each position, and by "this block has logs") so that
// eth_getLogs over a long block range reads only the blocks that may match.
//
// Key schema. Every key starts with the two bytes "xL" followed by a kind byte:
//
//	"xL" 'a' address(20)  number(8, big endian)  -> empty   block has a log emitted by address
//	"xL" '0'..'3' topic(32) number(8)            -> empty   block has a log with topic at that position
//	"xL" 'b' number(8)                           -> empty   block has at least one log
//
// The first byte 'x' is used by no go-ethereum rawdb key, and the key lengths
// (31, 43 and 11 bytes) differ from the 32 bytes of hash-scheme trie node keys,
// which iteration additionally skips by length. Block numbers are big endian,
// so a prefix iteration visits one value's blocks in ascending order.
//
// Invariants: Write is called once per committed block, inside the batch that
// stores the block's receipts, so the index never names a block whose
// receipts are not stored. The index is exact about membership per block; the
// per-log check (Match) is applied to the candidate blocks' receipts, so a
// query's result is always exactly the logs go-ethereum's filter would return.
package logindex

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethdb"
)

// ErrTooManyLogs is returned by Filter once more logs match than its limit.
var ErrTooManyLogs = errors.New("too many logs")

// MaxTopics is the number of indexed topic positions (LOG0..LOG4 carry at most four topics).
const MaxTopics = 4

const (
	keyPrefix   = "xL"
	kindAddress = 'a'
	kindBlock   = 'b'
	kindTopic0  = '0' // positions 0..3 are '0'..'3'
)

// valueKey returns the key prefix of one indexed value (without the block number).
func valueKey(kind byte, value []byte) []byte {
	k := make([]byte, 0, len(keyPrefix)+1+len(value)+8)
	k = append(k, keyPrefix...)
	k = append(k, kind)
	return append(k, value...)
}

// withNumber appends the big-endian block number to a fresh value key prefix
// (it may reuse the prefix's spare capacity).
func withNumber(prefix []byte, number uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix, number)
}

// blockKeys returns the distinct index keys of one block.
func blockKeys(number uint64, receipts types.Receipts) [][]byte {
	seen := make(map[string]struct{})
	var keys [][]byte
	add := func(k []byte) {
		if _, ok := seen[string(k)]; ok {
			return
		}
		seen[string(k)] = struct{}{}
		keys = append(keys, k)
	}
	for _, r := range receipts {
		for _, l := range r.Logs {
			add(withNumber(valueKey(kindAddress, l.Address.Bytes()), number))
			for i, t := range l.Topics {
				if i >= MaxTopics {
					break
				}
				add(withNumber(valueKey(kindTopic0+byte(i), t.Bytes()), number))
			}
		}
	}
	if len(keys) > 0 {
		add(withNumber(valueKey(kindBlock, nil), number))
	}
	return keys
}

// Write adds the index entries of one block's receipts to w. It is called
// inside the block's atomic batch. A block without logs writes nothing.
func Write(w ethdb.KeyValueWriter, number uint64, receipts types.Receipts) error {
	for _, k := range blockKeys(number, receipts) {
		if err := w.Put(k, nil); err != nil {
			return fmt.Errorf("logindex: write block %d: %w", number, err)
		}
	}
	return nil
}

// Delete removes the index entries Write added for the same block and receipts.
func Delete(w ethdb.KeyValueWriter, number uint64, receipts types.Receipts) error {
	for _, k := range blockKeys(number, receipts) {
		if err := w.Delete(k); err != nil {
			return fmt.Errorf("logindex: delete block %d: %w", number, err)
		}
	}
	return nil
}

// scan returns, ascending, the block numbers in [from, to] indexed under prefix.
func scan(db ethdb.Iteratee, prefix []byte, from, to uint64) ([]uint64, error) {
	it := db.NewIterator(prefix, binary.BigEndian.AppendUint64(nil, from))
	defer it.Release()
	var out []uint64
	for it.Next() {
		key := it.Key()
		if len(key) != len(prefix)+8 {
			continue // not one of ours (e.g. a 32-byte trie node key sharing the prefix)
		}
		n := binary.BigEndian.Uint64(key[len(prefix):])
		if n > to {
			break
		}
		out = append(out, n)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("logindex: scan: %w", err)
	}
	return out, nil
}

// union merges ascending lists into one ascending list without duplicates.
func union(lists [][]uint64) []uint64 {
	if len(lists) == 1 {
		return lists[0]
	}
	var all []uint64
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

// intersect returns the numbers present in both ascending lists.
func intersect(a, b []uint64) []uint64 {
	out := make([]uint64, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// group is one criterion: the block matches if any of its value keys is present.
type group [][]byte

// groups turns filter criteria into index groups; ok is false when no log can
// match at all (a topic criterion beyond the fourth position).
func groups(addresses []common.Address, topics [][]common.Hash) (gs []group, ok bool) {
	if len(addresses) > 0 {
		var g group
		for _, a := range dedupe(addresses) {
			g = append(g, valueKey(kindAddress, a.Bytes()))
		}
		gs = append(gs, g)
	}
	if len(topics) > MaxTopics {
		return nil, false // a log has at most four topics: nothing can match
	}
	for i, sub := range topics {
		if len(sub) == 0 {
			continue // wildcard
		}
		var g group
		for _, t := range dedupe(sub) {
			g = append(g, valueKey(kindTopic0+byte(i), t.Bytes()))
		}
		gs = append(gs, g)
	}
	return gs, true
}

func dedupe[T interface {
	comparable
	Cmp(T) int
}](in []T) []T {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b T) int { return a.Cmp(b) })
	return slices.Compact(out)
}

// Candidates returns, in ascending order, the block numbers in [from, to]
// that may contain a log matching the criteria (addresses: any of; topics:
// position-wise AND of ORs, an empty position is a wildcard), by intersecting
// index ranges. Without criteria it returns the blocks that have any log.
func Candidates(db ethdb.Iteratee, from, to uint64, addresses []common.Address, topics [][]common.Hash) ([]uint64, error) {
	if from > to {
		return nil, nil
	}
	gs, ok := groups(addresses, topics)
	if !ok {
		return nil, nil
	}
	if len(gs) == 0 {
		return scan(db, valueKey(kindBlock, nil), from, to)
	}
	var result []uint64
	for i, g := range gs {
		lists := make([][]uint64, 0, len(g))
		for _, prefix := range g {
			l, err := scan(db, prefix, from, to)
			if err != nil {
				return nil, err
			}
			if len(l) > 0 {
				lists = append(lists, l)
			}
		}
		if len(lists) == 0 {
			return nil, nil
		}
		u := union(lists)
		if i == 0 {
			result = u
		} else {
			result = intersect(result, u)
		}
		if len(result) == 0 {
			return nil, nil
		}
		// Later groups only need to cover the surviving span.
		from, to = result[0], result[len(result)-1]
	}
	return result, nil
}

// Match reports whether a log matches the criteria, with go-ethereum's
// semantics: addresses any of (empty = all); topics position-wise, an empty
// position matches anything, and a log with fewer topics than there are
// positions in the criteria never matches.
func Match(l *types.Log, addresses []common.Address, topics [][]common.Hash) bool {
	if len(addresses) > 0 && !slices.Contains(addresses, l.Address) {
		return false
	}
	if len(topics) > len(l.Topics) {
		return false
	}
	for i, sub := range topics {
		if len(sub) > 0 && !slices.Contains(sub, l.Topics[i]) {
			return false
		}
	}
	return true
}

// Filter returns the logs of blocks [from, to] matching the criteria, in
// chain order: it finds the candidate blocks in db, reads their receipts with
// receiptsFn and keeps the logs that Match. It returns ErrTooManyLogs once
// more than limit logs match (limit 0 = no limit) and ctx's error once ctx is
// done. The returned logs are those of receiptsFn, not copies.
func Filter(ctx context.Context, db ethdb.Iteratee, from, to uint64, addresses []common.Address, topics [][]common.Hash, limit int, receiptsFn func(number uint64) (types.Receipts, error)) ([]*types.Log, error) {
	numbers, err := Candidates(db, from, to, addresses, topics)
	if err != nil {
		return nil, err
	}
	var out []*types.Log
	for _, n := range numbers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		receipts, err := receiptsFn(n)
		if err != nil {
			return nil, fmt.Errorf("logindex: receipts of block %d: %w", n, err)
		}
		for _, r := range receipts {
			for _, l := range r.Logs {
				if !Match(l, addresses, topics) {
					continue
				}
				out = append(out, l)
				if limit > 0 && len(out) > limit {
					return nil, ErrTooManyLogs
				}
			}
		}
	}
	return out, nil
}
