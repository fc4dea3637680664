//go:build !kmsfuzz

package webrtc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/webrtc/v4"
)

// offerWith makes a WebRTC offer of a pion peer that knows only the given video codec.
func offerWith(t *testing.T, c webrtc.RTPCodecCapability, pt webrtc.PayloadType) string {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: c, PayloadType: pt}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// Bad input gives the JSON-RPC error KMS gives, and leaves the endpoint and the server usable.
func TestNegotiationErrors(t *testing.T) {
	s := newSession(t, 30*time.Second)
	ep := s.endpoint()

	for _, tc := range []struct{ name, offer string }{
		{"empty", ""},
		{"garbage", "this is not an SDP"},
		{"truncated", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nm=video"},
	} {
		err := s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": tc.offer}, nil)
		if errorCode(err) != 40201 {
			t.Errorf("processOffer(%s): %v, want error 40201 SDP_PARSE_ERROR", tc.name, err)
		}
	}

	for _, cand := range []string{"candidate:garbage", "candidate:1 1 udp notanumber 127.0.0.1 9 typ host", "hello"} {
		err := s.c.Invoke(s.ctx, ep, "addIceCandidate", map[string]any{"candidate": map[string]any{
			"__module__": "kurento", "__type__": "IceCandidate", "candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0,
		}}, nil)
		if errorCode(err) != 40401 {
			t.Errorf("addIceCandidate(%q): %v, want error 40401 ICE_ADD_CANDIDATE_ERROR", cand, err)
		}
	}
	// End of candidates is not an error.
	if err := s.c.Invoke(s.ctx, ep, "addIceCandidate", map[string]any{"candidate": map[string]any{
		"__module__": "kurento", "__type__": "IceCandidate", "candidate": "", "sdpMid": "0", "sdpMLineIndex": 0,
	}}, nil); err != nil {
		t.Errorf("addIceCandidate(end of candidates): %v", err)
	}

	// An offer with no codec in common: answered with the media section rejected (port 0), as KMS does.
	noCommon := offerWith(t, webrtc.RTPCodecCapability{MimeType: "video/H263", ClockRate: 90000}, 34)
	other := s.endpoint()
	var answer string
	err := s.c.Invoke(s.ctx, other, "processOffer", map[string]any{"offer": noCommon}, &answer)
	if err != nil {
		t.Errorf("processOffer(no common codec): %v", err)
	} else if !strings.Contains(answer, "m=video 0 ") {
		t.Errorf("processOffer(no common codec): video not rejected in the answer:\n%s", answer)
	}
	// A plain RTP offer (no ICE, no DTLS) with a codec we do not have is answered too.
	plain := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=video 5004 RTP/AVP 34\r\na=rtpmap:34 H263/90000\r\n"
	third := s.endpoint()
	if err := s.c.Invoke(s.ctx, third, "processOffer", map[string]any{"offer": plain}, &answer); err != nil {
		t.Errorf("processOffer(plain RTP, H263): %v", err)
	} else if !strings.Contains(answer, "m=video 0 RTP/AVP") {
		t.Errorf("processOffer(plain RTP, H263): video not rejected:\n%s", answer)
	}

	// The endpoint that saw the errors still negotiates, and media flows.
	s.connect(ep, ep, "")
	p := s.peer(testpeer.Options{Send: true, Receive: true})
	s.negotiate(p, ep)
	p.StartMedia()
	if err := p.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	// One negotiation per endpoint.
	offer, _ := p.PC.CreateOffer(nil)
	if err := s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": offer.SDP}, nil); errorCode(err) != 40208 {
		t.Errorf("second processOffer: %v, want 40208", err)
	}
	// A second endpoint in the same pipeline negotiates fine.
	ep2 := s.endpoint()
	s.connect(ep, ep2, "")
	p2 := s.peer(testpeer.Options{Receive: true})
	s.negotiate(p2, ep2)
	if err := p2.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
}
