package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// The body of a Raft batch request is a sequence of frames. A frame is a
// 4-byte big-endian length n followed by n bytes: one protobuf-encoded
// raftpb.Message. The body ends after the last frame; an empty body is an
// empty batch.

// frameHeaderLen is the size of a frame's length prefix.
const frameHeaderLen = 4

// frameReadChunk bounds how much decodeFrames allocates ahead of the bytes
// that actually arrived, so a header announcing a large frame that never
// comes costs little memory.
const frameReadChunk = 64 << 10

// errFrameTooLarge reports a frame longer than the limit.
var errFrameTooLarge = errors.New("frame exceeds the size limit")

// appendFrame appends m's frame to dst. On error dst is returned unchanged.
func appendFrame(dst []byte, m *pb.Message) ([]byte, error) {
	start := len(dst)
	out, err := proto.MarshalOptions{}.MarshalAppend(append(dst, 0, 0, 0, 0), m)
	if err != nil {
		return dst[:start], fmt.Errorf("encode raft message: %w", err)
	}
	n := len(out) - start - frameHeaderLen
	if n > math.MaxUint32 {
		return dst[:start], errFrameTooLarge
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// decodeFrames reads frames from r until r reports io.EOF at a frame
// boundary, calling fn with each decoded message in order. It stops at the
// first error: a frame longer than maxFrame (detected from its header,
// before anything is allocated for it), a frame or header cut short
// (io.ErrUnexpectedEOF), a message that does not decode, or an error from
// fn or r. Messages decoded before the error have been passed to fn.
//
// Memory use is bounded by maxFrame plus the read chunk: one buffer is
// reused across frames, and it grows only as frame bytes arrive.
func decodeFrames(r io.Reader, maxFrame int, fn func(*pb.Message) error) error {
	var hdr [frameHeaderLen]byte
	var buf []byte
	for i := 0; ; i++ {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("frame %d header: %w", i, err)
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if maxFrame < 0 || uint64(n) > uint64(maxFrame) {
			return fmt.Errorf("frame %d announces %d bytes, limit %d: %w", i, n, maxFrame, errFrameTooLarge)
		}
		var err error
		if buf, err = readFrame(r, buf[:0], int(n)); err != nil {
			return fmt.Errorf("frame %d (%d of %d bytes): %w", i, len(buf), n, err)
		}
		m := new(pb.Message)
		// proto.Unmarshal copies what it keeps, so buf can be reused.
		if err := proto.Unmarshal(buf, m); err != nil {
			return fmt.Errorf("frame %d: decode raft message: %w", i, err)
		}
		if err := fn(m); err != nil {
			return fmt.Errorf("frame %d: %w", i, err)
		}
	}
}

// readFrame appends exactly n bytes from r to buf, growing buf at most one
// chunk ahead of the data read. A short read is io.ErrUnexpectedEOF.
func readFrame(r io.Reader, buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		want := min(n-len(buf), frameReadChunk)
		if cap(buf)-len(buf) < want {
			grown := make([]byte, len(buf), len(buf)+max(want, min(n, 2*cap(buf))-len(buf)))
			copy(grown, buf)
			buf = grown
		}
		got, err := io.ReadFull(r, buf[len(buf):len(buf)+want])
		buf = buf[:len(buf)+got]
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
	return buf, nil
}
