package browser_test

import (
	"testing"
	"time"
)

// TestHarnessLoopback checks the harness itself, without the media server: in the private
// network namespace, headless Chromium with the fake camera and microphone connects two
// RTCPeerConnections of one page to each other over loopback ICE, and getStats() reports
// decoded video both ways, with the aspect ratios the one-to-one test relies on.
func TestHarnessLoopback(t *testing.T) {
	need(t)
	r := newRun(t, 45*time.Second)
	r.open("loopback.html")
	r.waitStats(10*time.Second, seeEachOther(30))
}

// TestHelloWorld is Kurento's hello-world tutorial: the page sends its camera and microphone
// (offer from the browser, trickle ICE) to a WebRtcEndpoint connected to itself, through the
// application server (create MediaPipeline, create WebRtcEndpoint, subscribe
// IceCandidateFound, connect(webRtc, webRtc), processOffer, gatherCandidates, addIceCandidate
// for each browser candidate). The page's peer connection must decode at least 100 frames of
// the server's video and receive audio packets within 20 s, sent by the direct SRTP path (the
// server Chromium's DTLS server, on the shared UDP port), none through pion's.
func TestHelloWorld(t *testing.T) {
	need(t, "kms", "app")
	r := newRun(t, 45*time.Second)
	r.startServers()
	r.open("helloworld.html", "ws", r.app.base+"/helloworld")
	r.waitStats(20*time.Second, func(st map[string]peerStats) (bool, string) {
		s, ok := st["hello-world"]
		if !ok {
			return false, "no peer connection yet"
		}
		v, a := s.Inbound["video"], s.Inbound["audio"]
		status := describe("hello-world", s)
		return v.FramesDecoded >= 100 && a.PacketsReceived > 0, status
	})
	direct := r.kms.counter(t, `kms_webrtc_rtp_sent_total{path="direct"}`)
	pion := r.kms.counter(t, `kms_webrtc_rtp_sent_total{path="pion"}`)
	if direct == 0 || pion != 0 {
		t.Errorf("RTP sent direct %v, through pion %v: want every packet direct", direct, pion)
	}
	// Received: each SSRC's first packets make pion's tracks, the rest comes by the direct path.
	direct = r.kms.counter(t, `kms_webrtc_rtp_received_total{path="direct"}`)
	pion = r.kms.counter(t, `kms_webrtc_rtp_received_total{path="pion"}`)
	if direct == 0 || pion > direct/10 {
		t.Errorf("RTP received direct %v, through pion %v: want nearly every packet direct", direct, pion)
	}
	t.Logf("RTP received direct %v, through pion %v", direct, pion)
}

// TestOneToOneCall is Kurento's one2one-call tutorial with two users in one page (each with
// its own camera, peer connection and WebSocket to the application server): one pipeline,
// two WebRtcEndpoints connected both ways. Each user must decode at least 30 frames of the
// other's video (told apart by aspect ratio) within 20 s.
func TestOneToOneCall(t *testing.T) {
	need(t, "kms", "app")
	r := newRun(t, 45*time.Second)
	r.startServers()
	r.open("one2one.html", "ws", r.app.base+"/one2one")
	r.waitStats(20*time.Second, seeEachOther(30))
}
