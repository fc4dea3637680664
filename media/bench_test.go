package media

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
)

// inputsOf gives an element fixed sink pads.
type inputsOf map[Type]Input

func (i inputsOf) Input(t Type, pad string) Input { return i[t] }

// fanout builds a source feeding n senders bound to write.
func fanout(tb testing.TB, n int, write WriteFunc) (*Source, []*Sender) {
	p := NewPipeline()
	tb.Cleanup(p.Close)
	src := p.NewElement(nil, nil)
	source := src.Source(Video, DefaultPad)
	source.SetCodec(&Codec{MimeType: "video/VP8", ClockRate: 90000})
	var senders []*Sender
	for range n {
		sink := p.NewElement(nil, nil)
		s := sink.NewSender(Video, DefaultPad)
		sink.SetInputs(inputsOf{Video: s})
		if err := Connect(src, sink, Video, DefaultPad, DefaultPad); err != nil {
			tb.Fatal(err)
		}
		s.Bind(1234, 96, Codec{MimeType: "video/VP8", ClockRate: 90000}, write)
		senders = append(senders, s)
	}
	return source, senders
}

// vp8Packet is a keyframe start of 1100 bytes, with a header extension and a CSRC as a browser's
// packets may have.
func vp8Packet() *rtp.Packet {
	payload := make([]byte, 1100)
	payload[0], payload[1] = 0x10, 0x00
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 3000, SSRC: 42, Marker: true}, Payload: payload}
	p.SetExtension(1, []byte{0x30})
	return p
}

// pump writes b.N packets of p to source in frames of framePackets, each sent by every sink before
// the next (a stream's frames come as bursts), and reports ns per packet and sink: the accept step on
// this goroutine and the send step on the writers, both.
func pump(b *testing.B, source *Source, senders []*Sender, p *rtp.Packet) {
	const framePackets = 8
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.SequenceNumber++
		p.Timestamp += 3000
		source.WriteRTP(p)
		if i%framePackets == framePackets-1 || i == b.N-1 {
			settle(b, senders...)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(senders)), "ns/packet/sink")
}

// The hot path: one packet from a source's reader goroutine to every sink's network write, with the
// shared writers or a writer per sink (as for TCP peers). allocs/op must be 0.
func BenchmarkSourceToSenders(b *testing.B) {
	for _, own := range []bool{false, true} {
		for _, n := range []int{1, 20, 100} {
			name := fmt.Sprintf("writers=shared/sinks=%d", n)
			if own {
				name = fmt.Sprintf("writers=own/sinks=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				var written atomic.Int64
				source, senders := fanout(b, n, func(h *rtp.Header, payload []byte) error { written.Add(1); return nil })
				for _, s := range senders {
					s.SetBlockingWrites(own)
				}
				pump(b, source, senders, vp8Packet())
				if got := written.Load(); got != int64(b.N*n) {
					b.Fatalf("written %d, want %d", got, b.N*n)
				}
			})
		}
	}
}

// The hot path with the pipeline's latencyStats on: each packet is stamped at the source and
// measured at every sink pad and send. allocs/op must stay 0.
func BenchmarkSourceToSendersLatencyStats(b *testing.B) {
	var written atomic.Int64
	source, senders := fanout(b, 20, func(h *rtp.Header, payload []byte) error { written.Add(1); return nil })
	source.flow.element.pipeline.SetLatencyStats(true)
	pump(b, source, senders, vp8Packet())
	if got := written.Load(); got != int64(b.N*20) {
		b.Fatalf("written %d, want %d", got, b.N*20)
	}
}

// The same path with a measured peer bandwidth being paced (the slower case of a sink).
func BenchmarkSourceToSendersPacing(b *testing.B) {
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("sinks=%d", n), func(b *testing.B) {
			source, senders := fanout(b, n, func(h *rtp.Header, payload []byte) error { return nil })
			for _, s := range senders {
				s.OnREMB(1e9) // limited, but never short
			}
			pump(b, source, senders, vp8Packet())
		})
	}
}

// Serving one NACKed packet: cache lookup, rewrite, RTX wrap, write.
func BenchmarkResend(b *testing.B) {
	source, senders := fanout(b, 1, func(h *rtp.Header, payload []byte) error { return nil })
	s := senders[0]
	s.BindRTX(99, 97)
	p := vp8Packet()
	for i := 0; i < 100; i++ {
		p.SequenceNumber++
		source.WriteRTP(p)
		settle(b, s)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// re-forward so that the per-packet resend cap does not stop the benchmark
		p.SequenceNumber++
		source.WriteRTP(p)
		settle(b, s)
		if !s.Resend(p.SequenceNumber) {
			b.Fatal("not resent")
		}
	}
}

// The forwarding path allocates nothing per packet, whatever the packet carries.
func TestForwardingAllocatesNothing(t *testing.T) {
	source, senders := fanout(t, 5, func(h *rtp.Header, payload []byte) error { return nil })
	senders[0].OnREMB(1e9)
	p := vp8Packet()
	p.CSRC = []uint32{7, 8}
	allocs := testing.AllocsPerRun(1000, func() {
		p.SequenceNumber++
		writeSettled(t, source, p)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	if sent, _, _ := senders[4].Counters(); sent < 1000 {
		t.Fatalf("sender sent %d packets", sent)
	}
}

// A sender rewrites SSRC, payload type and sequence numbers, strips extensions, and keeps the
// sequence continuous across a source switch.
func TestSenderRewritesAcrossSwitch(t *testing.T) {
	p := NewPipeline()
	defer p.Close()
	a, b := p.NewElement(nil, nil), p.NewElement(nil, nil)
	for _, e := range []*Element{a, b} {
		e.Source(Video, DefaultPad).SetCodec(&Codec{MimeType: "video/VP8", ClockRate: 90000})
	}
	sink := p.NewElement(nil, nil)
	s := sink.NewSender(Video, DefaultPad)
	sink.SetInputs(inputsOf{Video: s})
	var seqs []uint16
	s.Bind(777, 100, Codec{MimeType: "video/VP8", ClockRate: 90000}, func(h *rtp.Header, payload []byte) error {
		if h.SSRC != 777 || h.PayloadType != 100 || h.Extension || len(h.Extensions) != 0 {
			t.Errorf("header not rewritten: %+v", h)
		}
		seqs = append(seqs, h.SequenceNumber)
		return nil
	})
	send := func(e *Element, seq uint16, key bool) {
		pkt := vp8Packet()
		pkt.SequenceNumber = seq
		if !key {
			pkt.Payload[1] = 0x01
		}
		writeSettled(t, e.Source(Video, DefaultPad), pkt)
	}
	if err := Connect(a, sink, Video, DefaultPad, DefaultPad); err != nil {
		t.Fatal(err)
	}
	send(a, 100, false) // dropped: waiting for a keyframe
	send(a, 101, true)
	send(a, 102, false)
	if err := Connect(b, sink, Video, DefaultPad, DefaultPad); err != nil { // replaces a
		t.Fatal(err)
	}
	send(a, 103, false)  // from the old source: dropped
	send(b, 5000, false) // not a keyframe: dropped
	send(b, 5001, true)
	send(b, 5002, false)
	want := []uint16{101, 102, 103, 104}
	if fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Fatalf("sequence numbers sent %v, want %v", seqs, want)
	}
}

// A source whose codec is not known yet (nil) feeds any sender; one with another codec feeds none.
func TestSenderCodecCheck(t *testing.T) {
	for _, tc := range []struct {
		codec *Codec
		want  bool
	}{{nil, true}, {&Codec{MimeType: "video/vp8"}, true}, {&Codec{MimeType: "video/H264"}, false}} {
		p := NewPipeline()
		src, sink := p.NewElement(nil, nil), p.NewElement(nil, nil)
		src.Source(Video, DefaultPad).SetCodec(tc.codec)
		s := sink.NewSender(Video, DefaultPad)
		sink.SetInputs(inputsOf{Video: s})
		sent := 0
		s.Bind(1, 96, Codec{MimeType: "video/VP8", ClockRate: 90000}, func(*rtp.Header, []byte) error { sent++; return nil })
		if err := Connect(src, sink, Video, DefaultPad, DefaultPad); err != nil {
			t.Fatal(err)
		}
		writeSettled(t, src.Source(Video, DefaultPad), vp8Packet())
		if (sent == 1) != tc.want {
			t.Errorf("source codec %v: sent %d packets, want forwarding %v", tc.codec, sent, tc.want)
		}
		p.Close()
	}
}
