package rtpengine

import (
	"encoding/binary"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// chromiumTWCC is the transport-wide-cc extension id of Chromium's offers (a=extmap:3).
const chromiumTWCC = 3

// FuzzIncomingFeedback runs fuzzed RTP packets from a peer (raw bytes: the transport-wide sequence
// numbers in their extension jumping, going back or wrapping, sequence numbers and arrival gaps
// fuzzed) through what an endpoint's reader does with them, TWCC recording and loss tracking, and builds the
// TWCC feedback and the NACKs we would send back. Nothing panics, every feedback packet marshals
// and parses back as what it is, and a NACK names exactly the packets found lost.
func FuzzIncomingFeedback(f *testing.F) {
	seed := func(seqs, wide []uint16, gapsMs []byte) []byte {
		var b []byte
		for i, seq := range seqs {
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 1},
				Payload: []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}}
			p.SetExtension(chromiumTWCC, []byte{byte(wide[i] >> 8), byte(wide[i])})
			raw, _ := p.Marshal()
			b = append(b, gapsMs[i%len(gapsMs)], byte(len(raw)>>8), byte(len(raw)))
			b = append(b, raw...)
		}
		return b
	}
	f.Add(seed([]uint16{1, 2, 3, 5, 4, 9, 10}, []uint16{100, 101, 102, 104, 103, 108, 109}, []byte{20, 0, 35}))
	f.Add(seed([]uint16{65534, 65535, 0, 1, 40000}, []uint16{65534, 65535, 0, 1, 30000}, []byte{5, 250}))
	f.Add(seed([]uint16{7, 8, 8, 6, 200}, []uint16{9, 3, 3, 60000, 12}, []byte{1}))
	f.Fuzz(func(t *testing.T, data []byte) {
		now := int64(time.Second)
		tw := NewTWCC(now)
		rx := NewReceiver(90000)
		var p rtp.Packet
		for i := 0; len(data) >= 3; i++ {
			now += int64(data[0]) * int64(time.Millisecond)
			raw := data[3:min(3+int(binary.BigEndian.Uint16(data[1:])), len(data))]
			data = data[3+len(raw):]
			if p.Unmarshal(raw) != nil {
				continue
			}
			if ext := p.GetExtension(chromiumTWCC); len(ext) >= 2 {
				tw.Record(p.SSRC, uint16(ext[0])<<8|uint16(ext[1]), now)
			}
			rx.Push(p.SequenceNumber, p.Timestamp, len(p.Payload), now)
			seqs, _ := rx.Due(now)
			if len(seqs) > nackWindow {
				t.Fatalf("%d losses due at once, window %d", len(seqs), nackWindow)
			}
			if len(seqs) > 0 {
				checkNACK(t, seqs)
			}
			if i%4 == 3 || len(data) < 3 { // the feedback loop's tick
				if fbs := tw.Feedback(); len(fbs) > 0 {
					roundTrip(t, fbs)
				}
			}
		}
	})
}

// roundTrip marshals feedback as the peer connection would send it and parses it back.
func roundTrip(t *testing.T, pkts []rtcp.Packet) []rtcp.Packet {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatalf("feedback %v does not marshal: %v", pkts, err)
	}
	back, err := rtcp.Unmarshal(b)
	if err != nil || len(back) != len(pkts) {
		t.Fatalf("feedback does not parse back: %d packets of %d, %v", len(back), len(pkts), err)
	}
	for i := range pkts {
		if reflect.TypeOf(back[i]) != reflect.TypeOf(pkts[i]) {
			t.Fatalf("feedback packet %d parses back as %T, sent as %T", i, back[i], pkts[i])
		}
	}
	return back
}

// checkNACK builds the NACK for the lost packets and checks that it names exactly them.
func checkNACK(t *testing.T, lost []uint16) {
	t.Helper()
	back := roundTrip(t, []rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers(lost)}})
	named := map[uint16]bool{}
	for _, pair := range back[0].(*rtcp.TransportLayerNack).Nacks {
		for _, seq := range pair.PacketList() {
			named[seq] = true
		}
	}
	want := map[uint16]bool{}
	for _, seq := range lost {
		want[seq] = true
	}
	if !reflect.DeepEqual(named, want) {
		t.Fatalf("lost %v, the NACK names %v", lost, slices.Sorted(maps.Keys(named)))
	}
}
