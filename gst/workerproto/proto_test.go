package workerproto

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/kurento-go/kms/gst/native"
)

// TestFragments: buffers of every size around the packet limit come back whole and in order, and a
// buffer whose tail was lost is discarded, not glued to the next one.
func TestFragments(t *testing.T) {
	buf := make([]byte, MaxPacket)
	asm := Assembler{Max: 4 << 20}
	for _, size := range []int{1, MaxPayload - 1, MaxPayload, MaxPayload + 1, 3*MaxPayload + 5, 4 << 20} {
		want := bytes.Repeat([]byte{byte(size)}, size)
		want[size-1] = 0xEE
		var got []byte
		frames := 0
		err := Fragments(buf, Header{Kind: KindSink, Handle: 7, PTS: 42}, want, func(f []byte) error {
			frames++
			if len(f) > MaxPacket {
				t.Fatalf("frame of %d bytes", len(f))
			}
			h, payload, ok := ParseHeader(f)
			if !ok || h.Kind != KindSink || h.Handle != 7 || h.PTS != 42 {
				t.Fatalf("header %+v", h)
			}
			if whole, done := asm.Add(h.Flags, payload); done {
				got = bytes.Clone(whole)
			}
			return nil
		})
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes in %d frames: got %d bytes back (err %v)", size, frames, len(got), err)
		}
	}
	// The sender dropped the rest of a buffer after its first fragment.
	stop := errors.New("full")
	sent := 0
	Fragments(buf, Header{Kind: KindPush}, make([]byte, 3*MaxPayload), func(f []byte) error {
		if sent++; sent > 1 {
			return stop
		}
		h, payload, _ := ParseHeader(f)
		asm.Add(h.Flags, payload)
		return nil
	})
	next := []byte("next")
	if whole, ok := asm.Add(First|Last, next); !ok || !bytes.Equal(whole, next) {
		t.Fatalf("after a partial buffer: %q %v", whole, ok)
	}
	if _, ok := asm.Add(Last, []byte("orphan tail")); ok {
		t.Fatal("a tail without its head was delivered")
	}
}

// TestWireErrors: errors keep their types across the wire.
func TestWireErrors(t *testing.T) {
	pe := &native.ParseError{Description: "x", Message: "no element"}
	if err := EncodeError(pe).Err(); !errors.As(err, &pe) || pe.Message != "no element" {
		t.Errorf("parse error: %v", err)
	}
	var prop *native.PropertyError
	if err := EncodeError(&native.PropertyError{Property: "p", Reason: native.BadValue}).Err(); !errors.As(err, &prop) {
		t.Errorf("property error: %v", err)
	}
	for _, s := range sentinels {
		err := EncodeError(fmt.Errorf("%w: detail", s)).Err()
		if !errors.Is(err, s) || err.Error() != s.Error()+": detail" {
			t.Errorf("%v: got %v", s, err)
		}
	}
	if EncodeError(nil).Err() != nil {
		t.Error("nil error")
	}
}

// TestWireLayoutOfC: the worker's C threads (native, wire.c) write and read the frames this package
// defines; a change on one side only would garble every packet.
func TestWireLayoutOfC(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"header", native.WireHeader, HeaderSize},
		{"max packet", native.WireMaxPacket, MaxPacket},
		{"push", native.WireKindPush, int(KindPush)},
		{"sink", native.WireKindSink, int(KindSink)},
		{"sink end", native.WireKindEnd, int(KindSinkEnd)},
		{"eos", native.WireKindEOS, int(KindEOS)},
		{"socket", native.WireKindSock, int(KindSocket)},
		{"first", native.WireFirst, int(First)},
		{"last", native.WireLast, int(Last)},
		{"next", native.WireNext, int(Next)},
	} {
		if c.got != c.want {
			t.Errorf("%s: C has %d, workerproto %d", c.name, c.got, c.want)
		}
	}
}

// TestBatchSplit: the buffers of a batch come back whole, in order, with their headers; a datagram
// whose Next length runs past its end yields what came before, never a slice out of bounds.
func TestBatchSplit(t *testing.T) {
	var b Batch
	want := [][]byte{[]byte("one"), bytes.Repeat([]byte{2}, 1200), {}, []byte("last")}
	for i, d := range want {
		if !b.Add(Header{Kind: KindSink, Handle: 9, PTS: int64(i)}, d) {
			t.Fatalf("no room for buffer %d", i)
		}
	}
	var got [][]byte
	Split(b.Bytes(), func(h Header, payload []byte) {
		if h.Kind != KindSink || h.Handle != 9 || h.PTS != int64(len(got)) || h.Flags&(First|Last) != First|Last {
			t.Fatalf("header %+v", h)
		}
		got = append(got, bytes.Clone(payload))
	})
	if len(got) != len(want) {
		t.Fatalf("%d buffers back, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("buffer %d: %d bytes, want %d", i, len(got[i]), len(want[i]))
		}
	}
	n := 0
	Split(b.Bytes()[:2*HeaderSize+3+100], func(Header, []byte) { n++ }) // cut in the second buffer
	if n != 1 {
		t.Errorf("a datagram cut in its second buffer gave %d buffers, want 1", n)
	}
}
