package webrtc

import (
	"encoding/binary"
	"errors"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/fuzzseed"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// candidateWord matches what would make pion try a fuzzed address: a fuzzed offer must never send
// connectivity checks to a host the fuzzer made up.
var candidateWord = regexp.MustCompile(`(?i)candidate`)

// fuzzSettings keep gathering on loopback.
var fuzzSettings = Settings{NetworkInterfaces: []string{"lo"}, IncludeLoopback: true}

// FuzzProcessOffer answers fuzzed offers (Chromium, Firefox and ffmpeg seeds): an answer or a
// Kurento error, never a panic, and an error for an offer that does not parse.
func FuzzProcessOffer(f *testing.F) {
	for _, s := range fuzzseed.SDPs() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, offer string) {
		offer = candidateWord.ReplaceAllString(offer, "xandidate")
		e, p := newTestEndpoint(t)
		defer p.Close()
		defer e.Close()
		answer, err := e.ProcessOffer(offer, fuzzSettings)
		var ke *kerr.Error
		if err != nil && !errors.As(err, &ke) {
			t.Fatalf("not a Kurento error: %v", err)
		}
		if err == nil && answer == "" {
			t.Fatal("no answer and no error")
		}
	})
}

// FuzzAddIceCandidate gives fuzzed candidates (as addIceCandidate receives them) to an endpoint that
// has no remote description yet, so they are parsed and queued, never tried.
func FuzzAddIceCandidate(f *testing.F) {
	for i, c := range fuzzseed.Candidates {
		f.Add(c, "0", i%3)
	}
	f.Fuzz(func(t *testing.T, candidate, mid string, index int) {
		e, p := newTestEndpoint(t)
		defer p.Close()
		defer e.Close()
		for range 2 {
			err := e.AddIceCandidate(candidate, mid, index)
			var ke *kerr.Error
			if err != nil && !errors.As(err, &ke) {
				t.Fatalf("not a Kurento error: %v", err)
			}
		}
	})
}

// FuzzSenderFeedback runs fuzzed RTCP, as a peer sends it, through the endpoint's sender feedback
// (NACK, PLI, FIR, REMB, SR/RR) after video was sent.
func FuzzSenderFeedback(f *testing.F) {
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: []rtcp.NackPair{{PacketID: 1, LostPackets: 0xffff}}}, &rtcp.PictureLossIndication{MediaSSRC: 1}},
		{&rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{{SSRC: 1, FractionLost: 80, LastSequenceNumber: 20}}},
			&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 2e5, SSRCs: []uint32{1}}},
		{&rtcp.SenderReport{SSRC: 9, Reports: []rtcp.ReceptionReport{{SSRC: 1}}}, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 1}}}},
	} {
		b, _ := rtcp.Marshal(pkts)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		pkts, err := rtcp.Unmarshal(data)
		if err != nil {
			return
		}
		e, p := newTestEndpoint(t)
		defer p.Close()
		defer e.Close()
		src := p.NewElement(nil, nil)
		source := src.Source(media.Video, media.DefaultPad)
		source.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
		source.EnableCache()
		if err := media.Connect(src, e.el, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
			t.Fatal(err)
		}
		s := e.senders[media.Video]
		s.Bind(1, 96, media.Codec{MimeType: "video/VP8", ClockRate: 90000}, func(*rtp.Header, []byte) error { return nil })
		for i := range 20 {
			source.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: 42},
				Payload: []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}})
		}
		e.senderFeedback(s, pkts)
	})
}

// chromiumTWCC is the transport-wide-cc extension id of Chromium's offers (a=extmap:3).
const chromiumTWCC = 3

// FuzzIncomingFeedback runs fuzzed RTP packets from a peer (raw bytes: the transport-wide sequence
// numbers in their extension jumping, going back or wrapping, sequence numbers and arrival gaps
// fuzzed) through what readTrack does with them, TWCC recording and loss tracking, and builds the
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
		fb := &feedbackLoop{twcc: twcc.NewRecorder(0)}
		rx := media.NewReceiver(90000)
		now := int64(time.Second)
		var p rtp.Packet
		for i := 0; len(data) >= 3; i++ {
			now += int64(data[0]) * int64(time.Millisecond)
			raw := data[3:min(3+int(binary.BigEndian.Uint16(data[1:])), len(data))]
			data = data[3+len(raw):]
			if p.Unmarshal(raw) != nil {
				continue
			}
			if ext := p.GetExtension(chromiumTWCC); len(ext) >= 2 {
				fb.record(p.SSRC, uint16(ext[0])<<8|uint16(ext[1]), now)
			}
			rx.Push(p.SequenceNumber, p.Timestamp, len(p.Payload), now)
			if seqs, _ := rx.Due(now); len(seqs) > 0 {
				checkNACK(t, seqs)
			}
			if i%4 == 3 || len(data) < 3 { // the feedback loop's tick
				if fbs := fb.twcc.BuildFeedbackPacket(); len(fbs) > 0 {
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
