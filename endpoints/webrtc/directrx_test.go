package webrtc_test

import (
	"testing"

	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/testpeer"
)

// received is what the WebRtcEndpoints received by each path while f ran.
func received(f func()) webrtc.RTPPaths {
	before := webrtc.ReceivedRTP()
	f()
	after := webrtc.ReceivedRTP()
	return webrtc.RTPPaths{Direct: after.Direct - before.Direct, Pion: after.Pion - before.Pion}
}

// A publisher on the shared UDP port, the endpoint its DTLS server: after the first packets of
// each stream (pion's, which make the tracks), its RTP is decrypted by the endpoint's own context
// on the socket's reading goroutine and reaches the viewer, which decodes it.
func TestDirectRxCarriesMedia(t *testing.T) {
	var sub *testpeer.Peer
	got := received(func() { sub, _ = directOneToMany(t, testpeer.Options{}, 60) })
	full, rejected := webrtc.DirectRxDropped()
	t.Logf("received direct %d, through pion %d; dropped full %d, rejected %d; viewer video packets %d",
		got.Direct, got.Pion, full, rejected, sub.VideoPackets.Load())
	if got.Direct == 0 || got.Pion > got.Direct/10 {
		t.Errorf("RTP received direct %d, through pion %d; want nearly all direct", got.Direct, got.Pion)
	}
}
