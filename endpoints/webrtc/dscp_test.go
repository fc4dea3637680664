//go:build !kmsfuzz

package webrtc_test

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

// TestQosDscpMarksPackets: a WebRtcEndpoint created with qosDscp=EF sends every datagram (STUN,
// DTLS, SRTP) with DSCP 46, TOS byte 0xB8, as a router on the path would classify it; without the
// setting the peer sees TOS 0.
func TestQosDscpMarksPackets(t *testing.T) {
	for _, tc := range []struct {
		qosDscp   string
		tos, none byte // the TOS every packet carries, and one no packet may carry
	}{
		{"EF", 0xB8, 0},
		{"NO_VALUE", 0, 0xB8},
	} {
		t.Run(tc.qosDscp, func(t *testing.T) {
			s := newSession(t, 40*time.Second)
			ep, err := s.c.Create(s.ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": s.pipeline, "qosDscp": tc.qosDscp})
			if err != nil {
				t.Fatalf("create WebRtcEndpoint with qosDscp %s: %v", tc.qosDscp, err)
			}
			s.connect(ep, ep, "")
			var seen testpeer.TOSCounts
			p := s.peer(testpeer.Options{Send: true, Receive: true, TOS: &seen})
			s.negotiate(p, ep)
			p.StartMedia()
			if err := p.WaitVideo(s.ctx); err != nil {
				t.Fatal(err)
			}
			got, other := seen.Count(tc.tos), seen.Count(tc.none)
			t.Logf("qosDscp %s: %d datagrams with TOS %#x, %d with %#x", tc.qosDscp, got, tc.tos, other, tc.none)
			if got < 5 || other != 0 {
				t.Fatalf("qosDscp %s: %d datagrams with TOS %#x (want all), %d with TOS %#x (want none)",
					tc.qosDscp, got, tc.tos, other, tc.none)
			}
		})
	}
}
