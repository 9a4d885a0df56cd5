package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func decodeAll(data []byte, maxFrame int) ([]*pb.Message, error) {
	var out []*pb.Message
	err := decodeFrames(bytes.NewReader(data), maxFrame, func(m *pb.Message) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

func TestFramesRoundTrip(t *testing.T) {
	msgs := []*pb.Message{
		raftMsg(pb.MessageType_MsgApp, 1, 2, 3, []byte("payload")),
		{}, // empty message: a zero-length frame
		snapMsg(1, 2),
		raftMsg(pb.MessageType_MsgHeartbeat, 1, 2, 4, bytes.Repeat([]byte{7}, 200_000)),
	}
	var body []byte
	for _, m := range msgs {
		var err error
		if body, err = appendFrame(body, m); err != nil {
			t.Fatal(err)
		}
	}
	got, err := decodeAll(body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("decoded %d messages, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if !proto.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d: got %v, want %v", i, got[i], msgs[i])
		}
	}
	if got, err := decodeAll(nil, 10); err != nil || len(got) != 0 {
		t.Fatalf("empty body: %v, %v", got, err)
	}
}

func TestDecodeFramesErrors(t *testing.T) {
	valid, err := appendFrame(nil, raftMsg(pb.MessageType_MsgApp, 1, 2, 3, []byte("payload")))
	if err != nil {
		t.Fatal(err)
	}
	header := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	cases := []struct {
		name     string
		data     []byte
		maxFrame int
		want     error // nil: any error
		decoded  int
	}{
		{"too large", header(101), 100, errFrameTooLarge, 0},
		{"too large after a valid frame", append(append([]byte{}, valid...), header(1<<31)...), 1 << 20, errFrameTooLarge, 1},
		{"truncated header", valid[:3], 1 << 20, io.ErrUnexpectedEOF, 0},
		{"truncated body", valid[:len(valid)-1], 1 << 20, io.ErrUnexpectedEOF, 0},
		{"trailing partial header", append(append([]byte{}, valid...), 0, 0), 1 << 20, io.ErrUnexpectedEOF, 1},
		{"undecodable", append(header(3), 0xff, 0xff, 0xff), 1 << 20, nil, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := decodeAll(c.data, c.maxFrame)
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if len(got) != c.decoded {
				t.Fatalf("decoded %d messages before the error, want %d", len(got), c.decoded)
			}
		})
	}
	stop := errors.New("stop")
	err = decodeFrames(bytes.NewReader(valid), 1<<20, func(*pb.Message) error { return stop })
	if !errors.Is(err, stop) {
		t.Fatalf("callback error: got %v", err)
	}
}

// TestDecodeFramesAllocatesAsBytesArrive checks that a header announcing a
// large frame that never arrives costs memory in proportion to what did.
func TestDecodeFramesAllocatesAsBytesArrive(t *testing.T) {
	data := binary.BigEndian.AppendUint32(nil, 512<<20)
	data = append(data, make([]byte, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := decodeAll(data, 1<<30)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Fatalf("decoding 1 KB under a 512 MiB header allocated %d bytes", grew)
	}
}

// fuzzMaxFrame is the frame limit of the fuzz target, small enough that
// inputs exercise both sides of it.
const fuzzMaxFrame = 1 << 12

func FuzzDecodeFrames(f *testing.F) {
	seed := func(msgs ...*pb.Message) []byte {
		var b []byte
		for _, m := range msgs {
			var err error
			if b, err = appendFrame(b, m); err != nil {
				f.Fatal(err)
			}
		}
		return b
	}
	valid := seed(raftMsg(pb.MessageType_MsgApp, 1, 2, 3, []byte("payload")), snapMsg(1, 2))
	f.Add([]byte{})
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
	f.Add([]byte{0, 0, 0, 0})
	f.Add(append(seed(&pb.Message{}), 0, 0, 0, 3, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, data []byte) {
		var msgs []*pb.Message
		err := decodeFrames(bytes.NewReader(data), fuzzMaxFrame, func(m *pb.Message) error {
			msgs = append(msgs, m)
			return nil
		})
		if len(msgs)*frameHeaderLen > len(data) {
			t.Fatalf("%d messages from %d bytes", len(msgs), len(data))
		}
		if err != nil {
			return
		}
		// What decodes re-encodes to frames that decode to the same messages.
		var again []byte
		for _, m := range msgs {
			if again, err = appendFrame(again, m); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
		}
		got, err := decodeAll(again, 1<<30)
		if err != nil || len(got) != len(msgs) {
			t.Fatalf("re-decode: %d messages, %v; want %d", len(got), err, len(msgs))
		}
		for i := range msgs {
			if !proto.Equal(got[i], msgs[i]) {
				t.Fatalf("message %d changed in a round trip: %v, then %v", i, msgs[i], got[i])
			}
		}
	})
}
