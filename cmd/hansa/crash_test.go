package main

// Crash test: SIGKILL a real devnet in the middle of a stream of transfers,
// restart it on the same directory, and check that nothing a client was told
// is lost and that the chain is whole.

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// crashReceipt is what a client was told about a mined transaction.
type crashReceipt struct {
	from   int // sender index
	nonce  uint64
	number uint64
	block  common.Hash
}

const (
	crashRounds  = 3
	crashSenders = 5
	crashWindow  = 8 // transactions in flight per sender
)

func TestE2ECrashRestart(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	dir := filepath.Join(t.TempDir(), "devnet")
	n := startE2E(t, dir)
	senders := n.keys[:crashSenders]
	sinks := make([]common.Address, crashSenders) // one fresh recipient per sender
	for i := range sinks {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		sinks[i] = crypto.PubkeyToAddress(key.PublicKey)
	}
	recorded := make(map[common.Hash]crashReceipt)
	total := 0

	for round := 1; round <= crashRounds; round++ {
		killAfter := 40 + rng.IntN(80) // receipts this round before the kill
		got := streamUntilKill(t, n, senders, sinks, killAfter, time.Duration(rng.IntN(30))*time.Millisecond)
		for h, r := range got {
			recorded[h] = r
		}
		total += len(got)
		t.Logf("round %d: killed after %d receipts (%d in all)", round, len(got), len(recorded))

		n = startE2E(t, dir) // restart on the same directory
		// Recent state lives in memory, so a kill always leaves the head's
		// state to be rebuilt by re-executing blocks: the recovery path ran.
		if !strings.Contains(n.Logs(), "re-executing blocks") || !strings.Contains(n.Logs(), "head state rebuilt") {
			t.Fatalf("round %d: the restarted node did not rebuild its head state; logs:\n%s", round, n.Logs())
		}
		checkCrashInvariants(t, n, recorded)

		// The node takes new transfers and nonces continue.
		for i, key := range senders {
			tx := n.send(t, key, transferTx(n.nonce(t, key), sinks[i], 1))
			r := n.waitReceipt(t, tx.Hash())
			recorded[tx.Hash()] = crashReceipt{from: i, nonce: tx.Nonce(), number: r.BlockNumber.Uint64(), block: r.BlockHash}
		}
	}
	if total < 100 {
		t.Fatalf("only %d receipts recorded in %d rounds; the stream did not run", total, crashRounds)
	}

	// State agrees with the nonces: every transfer moved 1 wei to its
	// sender's sink, and the senders sent nothing else.
	ctx := t.Context()
	for i, key := range senders {
		addr := crypto.PubkeyToAddress(key.PublicKey)
		nonce, err := n.http.NonceAt(ctx, addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		bal, err := n.http.BalanceAt(ctx, sinks[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		if bal.Uint64() != nonce {
			t.Fatalf("sender %d: nonce %d but its sink holds %v wei", i, nonce, bal)
		}
	}
}

// streamUntilKill sends 1-wei transfers from every sender to its sink,
// crashWindow at a time, records each receipt the node returns, and SIGKILLs
// the node once killAfter receipts were recorded (after a further delay).
// It returns the receipts recorded before the kill.
func streamUntilKill(t *testing.T, n *e2eNode, senders []*ecdsa.PrivateKey, sinks []common.Address, killAfter int, delay time.Duration) map[common.Hash]crashReceipt {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), e2eWait)
	defer cancel()
	var (
		mu     sync.Mutex
		got    = make(map[common.Hash]crashReceipt)
		killed atomic.Bool
		count  atomic.Int64
		kill   = make(chan struct{})
		once   sync.Once
		wg     sync.WaitGroup
		errs   = make(chan error, len(senders))
	)
	for i, key := range senders {
		nonce := n.nonce(t, key)
		wg.Go(func() {
			err := streamSender(ctx, n.http, key, sinks[i], nonce, func(tx *types.Transaction, r *types.Receipt) {
				mu.Lock()
				defer mu.Unlock()
				if killed.Load() {
					return // answered after the kill began: not counted
				}
				got[tx.Hash()] = crashReceipt{from: i, nonce: tx.Nonce(), number: r.BlockNumber.Uint64(), block: r.BlockHash}
				if count.Add(1) >= int64(killAfter) {
					once.Do(func() { close(kill) })
				}
			})
			if err != nil && !killed.Load() {
				errs <- err
				once.Do(func() { close(kill) })
			}
		})
	}
	select {
	case <-kill:
	case <-ctx.Done():
	}
	time.Sleep(delay)
	mu.Lock()
	killed.Store(true) // receipts from here on are not recorded
	mu.Unlock()
	n.Kill()
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("transfer stream failed before the kill: %v", err)
	}
	if len(got) < killAfter {
		t.Fatalf("only %d of %d receipts before the deadline", len(got), killAfter)
	}
	return got
}

// streamSender sends transfers from key with consecutive nonces, window at a
// time, and reports each receipt, until ctx ends or a call fails.
func streamSender(ctx context.Context, c *ethclient.Client, key *ecdsa.PrivateKey, to common.Address, nonce uint64, record func(*types.Transaction, *types.Receipt)) error {
	for ctx.Err() == nil {
		var batch []*types.Transaction
		for range crashWindow {
			tx := types.MustSignNewTx(key, e2eSigner(), transferTx(nonce, to, 1))
			if err := c.SendTransaction(ctx, tx); err != nil {
				return err
			}
			batch = append(batch, tx)
			nonce++
		}
		for _, tx := range batch {
			for {
				r, err := c.TransactionReceipt(ctx, tx.Hash())
				if err == nil {
					if r.Status != types.ReceiptStatusSuccessful {
						return errors.New("transfer failed: " + tx.Hash().Hex())
					}
					record(tx, r)
					break
				}
				if !errors.Is(err, ethereum.NotFound) {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(10 * time.Millisecond):
				}
			}
		}
	}
	return nil
}

// checkCrashInvariants asserts, on a restarted node, that every recorded
// receipt is still there in the same block, the head reaches the highest
// recorded block, and headers chain by parent hash from genesis to head.
func checkCrashInvariants(t *testing.T, n *e2eNode, recorded map[common.Hash]crashReceipt) {
	t.Helper()
	ctx := t.Context()
	head, err := n.http.BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var highest uint64
	for h, want := range recorded {
		highest = max(highest, want.number)
		r, err := n.http.TransactionReceipt(ctx, h)
		if err != nil {
			t.Fatalf("receipt of %s (block %d) after restart: %v", h, want.number, err)
		}
		if r.BlockNumber.Uint64() != want.number || r.BlockHash != want.block || r.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("receipt of %s after restart: block %v %s status %d; before: block %d %s",
				h, r.BlockNumber, r.BlockHash, r.Status, want.number, want.block)
		}
		tx, pending, err := n.http.TransactionByHash(ctx, h)
		if err != nil || pending || tx.Nonce() != want.nonce {
			t.Fatalf("tx %s after restart: %v pending=%v %v", h, tx, pending, err)
		}
	}
	if head < highest {
		t.Fatalf("head %d after restart is below the highest recorded block %d", head, highest)
	}

	// Fetch every header in JSON-RPC batches and check the links.
	type rpcHeader struct {
		Hash       common.Hash `json:"hash"`
		ParentHash common.Hash `json:"parentHash"`
	}
	headers := make([]*types.Header, head+1)
	reported := make([]rpcHeader, head+1)
	for start := uint64(0); start <= head; start += 100 {
		end := min(start+100, head+1)
		var batch []rpc.BatchElem
		for i := start; i < end; i++ {
			batch = append(batch,
				rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(i), false}, Result: &headers[i]},
				rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(i), false}, Result: &reported[i]})
		}
		if err := n.batch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	byHash := make(map[common.Hash]uint64, len(headers))
	for i, h := range headers {
		if h == nil || h.Number.Uint64() != uint64(i) {
			t.Fatalf("block %d after restart: %+v", i, h)
		}
		if h.Hash() != reported[i].Hash {
			t.Fatalf("block %d: the node reports hash %s, its header fields hash to %s", i, reported[i].Hash, h.Hash())
		}
		if i > 0 && h.ParentHash != headers[i-1].Hash() {
			t.Fatalf("block %d: parent hash %s, block %d hashes to %s", i, h.ParentHash, i-1, headers[i-1].Hash())
		}
		byHash[h.Hash()] = uint64(i)
	}
	for h, want := range recorded {
		if num, ok := byHash[want.block]; !ok || num != want.number {
			t.Fatalf("tx %s: its block %d %s is not on the chain", h, want.number, want.block)
		}
	}
	// The pool starts empty or consistent: pending equals latest for every sender
	// once nothing more is mined, and both are at least one past the highest
	// recorded nonce.
	next := make(map[int]uint64)
	for _, r := range recorded {
		next[r.from] = max(next[r.from], r.nonce+1)
	}
	for i, key := range n.keys[:crashSenders] {
		addr := crypto.PubkeyToAddress(key.PublicKey)
		latest, err := n.http.NonceAt(ctx, addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		if latest < next[i] {
			t.Fatalf("sender %d: nonce %d after restart, but nonce %d was mined", i, latest, next[i]-1)
		}
	}
}

// batch sends elems as one JSON-RPC batch and fails on any element's error.
func (n *e2eNode) batch(ctx context.Context, elems []rpc.BatchElem) error {
	if err := n.http.Client().BatchCallContext(ctx, elems); err != nil {
		return err
	}
	for _, e := range elems {
		if e.Error != nil {
			return e.Error
		}
	}
	return nil
}
