//go:build !kmsfuzz

package webrtc_test

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/testpeer"
)

// directOneToMany runs a publisher and one viewer (opts) through a server started with env, until
// the viewer has decoded frames; it returns the viewer and the RTP packets sent by each path
// meanwhile.
func directOneToMany(t *testing.T, opts testpeer.Options, frames int64, env ...string) (*testpeer.Peer, webrtc.RTPPaths) {
	t.Helper()
	s := newSession(t, 90*time.Second, env...)
	before := webrtc.SentRTP()
	pubEP, subEP := s.endpoint(), s.endpoint()
	s.connect(pubEP, subEP, "")
	pub := s.peer(testpeer.Options{Send: true, PacketsPerFrame: 3})
	opts.Receive = true
	sub := s.peer(opts)
	s.negotiate(pub, pubEP)
	s.negotiate(sub, subEP)
	pub.StartMedia()
	if !poll(60*time.Second, func() bool { return sub.DecodedFrames.Load() >= frames }) {
		t.Fatalf("the viewer decoded %d frames, want %d", sub.DecodedFrames.Load(), frames)
	}
	after := webrtc.SentRTP()
	return sub, webrtc.RTPPaths{Direct: after.Direct - before.Direct, Pion: after.Pion - before.Pion}
}

// A viewer on the shared UDP port, the endpoint its DTLS server, gets its media through the direct
// SRTP path (our keys, our context, the shared socket), and decodes it: no packet takes pion's
// write path.
func TestDirectSRTPCarriesMedia(t *testing.T) {
	sub, sent := directOneToMany(t, testpeer.Options{}, 30)
	if sent.Pion != 0 || sent.Direct < uint64(sub.VideoPackets.Load()) {
		t.Errorf("RTP sent direct %d, through pion %d; want all of the viewer's %d video packets direct",
			sent.Direct, sent.Pion, sub.VideoPackets.Load())
	}
}

// A lossy viewer's NACKs are served through the direct path: the retransmissions (RTX, its own
// SSRC in the same SRTP context) decrypt and complete frames.
func TestDirectSRTPRetransmits(t *testing.T) {
	sub, sent := directOneToMany(t, testpeer.Options{Loss: 0.1}, 60)
	if !poll(30*time.Second, func() bool { return sub.RTXReceived.Load() > 0 }) {
		t.Errorf("no retransmission reached the lossy viewer")
	}
	if sent.Pion != 0 || sent.Direct == 0 {
		t.Errorf("RTP sent direct %d, through pion %d; want all direct", sent.Direct, sent.Pion)
	}
}

// Where the direct path does not apply, pion's path carries the media, which decodes: the endpoint
// as DTLS client (it cannot see the server random), a pair over ICE-TCP, the setting off.
func TestDirectSRTPFallsBack(t *testing.T) {
	for _, tc := range directFallbacks {
		t.Run(tc.name, func(t *testing.T) {
			_, sent := directOneToMany(t, tc.opts, 20, tc.env...)
			if sent.Direct != 0 || sent.Pion == 0 {
				t.Errorf("RTP sent direct %d, through pion %d; want all through pion", sent.Direct, sent.Pion)
			}
		})
	}
}
