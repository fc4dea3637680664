package webrtc

import (
	"errors"
	"regexp"
	"testing"

	"github.com/kurento-go/kms/internal/fuzzseed"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
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
