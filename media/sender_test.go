package media

import (
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A long stream keeps flowing past 32768 packets of one source: the rebase floor must not wrap.
func TestSenderLongStreamIsNotCutByTheFloor(t *testing.T) {
	sent := 0
	source, _ := fanout(t, 1, func(*rtp.Header, []byte) error { sent++; return nil })
	pkt := vp8Packet()
	pkt.Payload[1] = 0x01 // delta frames after the first keyframe
	first := vp8Packet()
	writeSettled(t, source, first)
	const n = 70000
	for i := 1; i < n; i++ {
		pkt.SequenceNumber = uint16(1 + i)
		pkt.Timestamp = uint32(3000 + 3000*i)
		writeSettled(t, source, pkt)
	}
	if sent != n {
		t.Fatalf("sent %d of %d packets", sent, n)
	}
}

// A padding-only probe keeps its place in the sequence and its padding; a packet recovered late from
// before it gets its own number, not one already used.
func TestSenderForwardsPaddingWithoutRenumbering(t *testing.T) {
	type out struct {
		seq     uint16
		padding byte
	}
	var got []out
	source, _ := fanout(t, 1, func(h *rtp.Header, payload []byte) error {
		pad := byte(0)
		if h.Padding {
			pad = h.PaddingSize
		}
		got = append(got, out{h.SequenceNumber, pad})
		return nil
	})
	send := func(seq uint16, padding bool) {
		p := vp8Packet()
		p.SequenceNumber = seq
		if padding {
			p.Payload, p.Padding, p.Header.PaddingSize = nil, true, 200
		}
		writeSettled(t, source, p)
	}
	send(1, false)
	send(2, false)
	send(4, true) // 3 is late
	send(5, false)
	send(3, false)
	want := []out{{1, 0}, {2, 0}, {4, 200}, {5, 0}, {3, 0}}
	if len(got) != len(want) {
		t.Fatalf("sent %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sent %v, want %v", got, want)
		}
	}
}

// settle waits until the senders' writers have written everything accepted.
func settle(tb testing.TB, senders ...*Sender) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, s := range senders {
		for i := 0; !s.Settled(); i++ {
			if i%1024 == 1023 && time.Now().After(deadline) {
				tb.Fatal("the writer did not send the queued packets")
			}
			runtime.Gosched()
		}
	}
}

// writeSettled writes p to src and waits until its senders have sent what they accepted.
func writeSettled(tb testing.TB, src *Source, p *rtp.Packet) {
	tb.Helper()
	src.WriteRTP(p)
	for _, in := range *src.sinks.Load() {
		if s, ok := in.(*Sender); ok {
			settle(tb, s)
		}
	}
}
