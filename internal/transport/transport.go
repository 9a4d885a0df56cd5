package transport

import (
	"context"
	"errors"

	pb "go.etcd.io/raft/v3/raftpb"
)

// Transport connects one member to the others: Raft messages one way
// (Send/Receive) and request/response calls between nodes (Call/Handle), used
// for forwarding transactions to the leader and fetching blocks.
//
// Send never blocks: a message that cannot be delivered soon is dropped (Raft
// retransmits) and the failure is reported on Reports.
type Transport interface {
	Send(msgs []*pb.Message)
	Receive() <-chan *pb.Message
	// Reports tells the consensus engine about peers that could not be
	// reached and about the outcome of every snapshot message.
	Reports() <-chan Report
	// Handle registers h for calls to method; register before Run.
	Handle(method string, h Handler)
	// Call sends req to member to's handler for method and returns its
	// response. An error the remote handler returned is a *RemoteError.
	Call(ctx context.Context, to uint64, method string, req []byte) ([]byte, error)
	// Run serves until ctx ends.
	Run(ctx context.Context) error
}

// Handler serves one call from member from.
type Handler func(ctx context.Context, from uint64, req []byte) ([]byte, error)

// Report is the delivery outcome the engine must hear about.
type Report struct {
	To       uint64
	Snapshot bool // the message was a snapshot (MsgSnap)
	Failed   bool // the message (or the connection) failed
}

// RemoteError is an error returned by the remote handler of a call.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// ErrUnknownPeer is returned by Call for a member the transport does not know.
var ErrUnknownPeer = errors.New("unknown peer")

// ErrUnknownMethod is returned (remotely) for a call to an unregistered method.
var ErrUnknownMethod = errors.New("unknown method")
