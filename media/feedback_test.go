package media

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// A NACK for a sequence number the sender wrote is served from the source's cache, rewritten as it
// was sent; with RTX bound, on the RTX stream with the original sequence number first.
func TestSenderServesNACK(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		t.Run(fmt.Sprint("rtx=", rtx), func(t *testing.T) {
			type sent struct {
				h       rtp.Header
				payload []byte
			}
			var out []sent
			source, senders := fanout(t, 1, func(h *rtp.Header, payload []byte) error {
				out = append(out, sent{*h, append([]byte(nil), payload...)})
				return nil
			})
			source.EnableCache()
			s := senders[0]
			if rtx {
				s.BindRTX(999, 97)
			}
			p := vp8Packet()
			for i := 0; i < 10; i++ {
				p.SequenceNumber = uint16(5000 + i)
				p.Payload[10] = byte(i)
				writeSettled(t, source, p)
			}
			first := out[0].h.SequenceNumber
			out = out[:0]
			if s.rtx.bufs != nil {
				t.Fatal("retransmission buffers made before any NACK")
			}
			s.HandleNACK(&rtcp.TransportLayerNack{Nacks: []rtcp.NackPair{{PacketID: first + 3, LostPackets: 1}}})
			if len(out) != 2 {
				t.Fatalf("%d packets resent, want 2", len(out))
			}
			for i, o := range out {
				want := first + 3 + uint16(i)
				payload := o.payload
				if rtx {
					if o.h.SSRC != 999 || o.h.PayloadType != 97 || uint16(payload[0])<<8|uint16(payload[1]) != want {
						t.Fatalf("RTX packet %+v osn %x", o.h, payload[:2])
					}
					payload = payload[2:]
				} else if o.h.SSRC != 1234 || o.h.SequenceNumber != want {
					t.Fatalf("resent %+v, want seq %d", o.h, want)
				}
				if payload[10] != byte(3+i) || o.h.Extension {
					t.Fatalf("resent the wrong packet: %d", payload[10])
				}
			}
			if got := s.Stats.Retransmitted.Load(); got != 2 {
				t.Fatalf("Retransmitted = %d", got)
			}
			if s.Resend(first + 200) {
				t.Fatal("resent a packet never sent")
			}
		})
	}
}

// A sender holds no send queue and no sequence map until it forwards a packet; its sequence map
// grows with the source's cache, keeping what it mapped, so that a NACK is answered for every
// packet the cache still holds.
func TestSenderSeqMapFollowsCache(t *testing.T) {
	var out []rtp.Header
	source, senders := fanout(t, 1, func(h *rtp.Header, payload []byte) error {
		out = append(out, *h)
		return nil
	})
	source.EnableCache()
	s := senders[0]
	if s.q.Load() != nil || s.seqmap != nil {
		t.Fatal("a sender that forwarded nothing holds a send queue or a sequence map")
	}
	p := vp8Packet()
	p.SequenceNumber = 100
	writeSettled(t, source, p)
	first, small := out[0].SequenceNumber, len(s.seqmap)
	if small == 0 || small > 4*minVideoSlots {
		t.Fatalf("sequence map of %d entries for a new cache", small)
	}
	// Packets as fast as the test writes them: once the rate is measured (over rateSpan, twice), the
	// cache grows towards its bound, and the map with it. Bounded by time, not by a packet count: a
	// quiet machine writes tens of thousands of packets before the second measure.
	total := 1
	for deadline := time.Now().Add(20 * time.Second); len(s.seqmap) <= small; total++ {
		if time.Now().After(deadline) {
			t.Fatalf("sequence map stayed at %d entries while the cache grew", len(s.seqmap))
		}
		p.SequenceNumber++
		p.Timestamp += 3000
		writeSettled(t, source, p)
	}
	// Every packet the cache still holds (how many depends on the rate measured) is answered, those
	// mapped before the map grew among them.
	buf, answered := make([]byte, maxSlotPayload), 0
	var cached rtp.Packet
	for k := range uint16(total) {
		if !source.Cache().Get(100+k, buf, &cached) {
			continue
		}
		out = out[:0]
		if want := first + k; !s.Resend(want) || len(out) != 1 || out[0].SequenceNumber != want {
			t.Fatalf("NACK of packet %d not answered: %v", k, out)
		}
		answered++
	}
	if answered <= small/2 {
		t.Fatalf("%d NACKs answered, the cache held no more than a new sequence map", answered)
	}
}

// A peer whose REMB is below the stream's rate gets whole frames dropped up to a keyframe, with its
// sequence numbers continuous; the source is asked for the highest target among its sinks.
func TestSenderPacesToPeerBandwidth(t *testing.T) {
	var seqs []uint16
	var mu sync.Mutex // the two senders write on their own writers
	source, senders := fanout(t, 2, func(h *rtp.Header, payload []byte) error {
		mu.Lock()
		defer mu.Unlock()
		if h.SSRC == 1234 {
			seqs = append(seqs, h.SequenceNumber)
		}
		return nil
	})
	slow, fast := senders[0], senders[1]
	slow.SetSendBandwidth(100_000, 3_000_000)
	fast.SetSendBandwidth(100_000, 3_000_000)
	slow.OnREMB(100_000)
	fast.OnREMB(2_000_000)
	if got := source.SinkBitrate(); got != 2_000_000 {
		t.Fatalf("SinkBitrate = %d, want the fastest's 2000000", got)
	}
	p := vp8Packet()
	// 1 Mbit/s in 30 fps frames of 4 packets for 2 s: the slow peer cannot take it.
	for frame := 0; frame < 60; frame++ {
		for i := 0; i < 4; i++ {
			p.SequenceNumber++
			p.Payload[0], p.Payload[1] = 0x00, 0x01
			if i == 0 {
				p.Payload[0] = 0x10
				if frame%15 == 0 {
					p.Payload[1] = 0x00
				}
			}
			p.Marker = i == 3
			writeSettled(t, source, p)
		}
		p.Timestamp += 3000
		time.Sleep(time.Second / 30)
	}
	fastSent, _, _ := fast.Counters()
	slowSent, slowBytes, _ := slow.Counters()
	if fastSent != 240 {
		t.Errorf("fast peer got %d packets, want 240", fastSent)
	}
	if slowSent >= 200 || slow.Stats.FramesDropped.Load() == 0 {
		t.Errorf("slow peer got %d packets (%d bytes), %d frame runs dropped", slowSent, slowBytes, slow.Stats.FramesDropped.Load())
	}
	_ = seqs
}

// The loss a peer reports cuts its bandwidth as GCC's loss controller does, from the rate of the
// stream it receives, judged over 20 packets at least: a report late after a stall of the server
// (one second of media over four of wall time) does not read as a slow link, nor does a report over
// a handful of packets; sustained loss over enough packets still cuts.
func TestSenderLossEstimate(t *testing.T) {
	source, senders := fanout(t, 1, func(*rtp.Header, []byte) error { return nil })
	s := senders[0]
	p := vp8Packet() // a keyframe first, then delta frames of 4 packets of 1100 bytes
	frames := func(n int) {
		for range n {
			for i := 0; i < 4; i++ {
				p.SequenceNumber++
				p.Marker = i == 3
				writeSettled(t, source, p)
				p.Payload[0], p.Payload[1] = 0x00, 0x01
			}
			p.Payload[0] = 0x10
			p.Timestamp += 3000
		}
	}
	const streamBps uint64 = 30 * 4 * 1100 * 8
	start := time.Now()
	report := func(fractionLost uint8, at time.Duration) uint64 {
		s.OnReceiverReport(rtcp.ReceptionReport{SSRC: 1234, LastSequenceNumber: uint32(p.SequenceNumber), FractionLost: fractionLost}, start.Add(at))
		limit, _ := s.Bandwidth()
		return limit
	}
	frames(30)
	report(0, time.Second)
	frames(30)
	if limit := report(0, 2*time.Second); limit != 0 {
		t.Fatalf("no loss, and a limit of %d bps", limit)
	}
	frames(30)
	stalled := report(51, 6*time.Second) // 20 %
	t.Logf("20%% loss reported 4 s after the last report, over 1 s of a %d bps stream: limit %d bps", streamBps, stalled)
	if want := streamBps * 9 / 10; stalled < want*95/100 || stalled > want*105/100 {
		t.Errorf("limit %d bps after 20%% loss, want about %d (the stream's rate cut by half the loss)", stalled, want)
	}
	frames(2)
	if limit := report(64, 6200*time.Millisecond); limit != stalled { // 25 % of 8 packets: 2 lost
		t.Errorf("a report over 8 packets moved the limit %d -> %d bps", stalled, limit)
	}
	frames(30)
	if limit := report(77, 7200*time.Millisecond); limit >= stalled { // 30 %, judged with the 8 before
		t.Errorf("30%% loss over 128 packets left the limit at %d bps (was %d)", limit, stalled)
	}
}
