//go:build !kmsfuzz

package webrtc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	kms "github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// kurentoUtilsSimulcast munges an offer as kurento-utils-js 7.3 does with `simulcast: true`
// (WebRtcPeer's mangleSdpToAddSimulcast): everything from the first a=ssrc-group:FID on is cut,
// and three layers with SSRCs 1, 2, 3 are appended in one SIM group, with '\n' line ends.
func kurentoUtilsSimulcast(offer, stream, track string) string {
	if n := strings.Index(offer, "a=ssrc-group:FID"); n > 0 {
		offer = offer[:n]
	}
	lines := []string{"a=x-google-flag:conference", "a=ssrc-group:SIM 1 2 3"}
	for ssrc := 1; ssrc <= 3; ssrc++ {
		lines = append(lines, fmt.Sprintf("a=ssrc:%d cname:localVideo", ssrc),
			fmt.Sprintf("a=ssrc:%d msid:%s %s", ssrc, stream, track),
			fmt.Sprintf("a=ssrc:%d mslabel:%s", ssrc, stream),
			fmt.Sprintf("a=ssrc:%d label:%s", ssrc, track))
	}
	return offer + strings.Join(lines, "\n") + "\n"
}

// layerTrack is a video track whose packets keep the SSRC they are written with, so that one pion
// sender can put three simulcast layers on the wire as a browser with the munged offer does.
type layerTrack struct {
	w     atomic.Pointer[webrtc.TrackLocalWriter]
	pt    atomic.Uint32
	bound chan struct{}
}

func (l *layerTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8) {
			w := ctx.WriteStream()
			l.w.Store(&w)
			l.pt.Store(uint32(c.PayloadType))
			close(l.bound)
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

func (l *layerTrack) Unbind(webrtc.TrackLocalContext) error { return nil }
func (l *layerTrack) ID() string                            { return "video" }
func (l *layerTrack) RID() string                           { return "" }
func (l *layerTrack) StreamID() string                      { return "publisher" }
func (l *layerTrack) Kind() webrtc.RTPCodecType             { return webrtc.RTPCodecTypeVideo }

// layer is one simulcast encoding: what a browser's encoder makes of one resolution.
type layer struct {
	ssrc        uint32
	packets     int // per frame
	payloadSize int
}

// sendLayers writes 30 fps of synthetic VP8 on every layer until ctx ends: the frames of layer i
// carry tag i+1 (testpeer.FramesFrom), a keyframe every 10 frames.
func sendLayers(ctx context.Context, write func(i int, pkt *rtp.Packet) error, layers []layer) {
	seq := make([]uint16, len(layers))
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	for frame := 0; ; frame++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		// Highest layer first: the first packet to arrive must not decide what is forwarded.
		for i := len(layers) - 1; i >= 0; i-- {
			l := layers[i]
			for k := 0; k < l.packets; k++ {
				pl := make([]byte, l.payloadSize)
				pl[0], pl[1], pl[2] = 0x00, 0x01, byte(i+1)
				if k == 0 {
					pl[0] = 0x10
					if frame%10 == 0 {
						pl[1] = 0x00
					}
				}
				seq[i]++
				write(i, &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: l.ssrc, SequenceNumber: seq[i],
					Timestamp: uint32(frame * 3000), Marker: k == l.packets-1}, Payload: pl})
			}
		}
	}
}

// publisherAPI is a pion API gathering on loopback only, as testpeer's peers do.
func publisherAPI(t *testing.T) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	// The header extensions browsers offer, which rid layers need.
	for _, uri := range []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// signal sends offer to ep, applies the answer and trickles both ways; it returns the answer.
func (s *session) signal(pc *webrtc.PeerConnection, ep, offer string) string {
	s.t.Helper()
	err := s.c.Subscribe(s.ctx, ep, "IceCandidateFound", func(ev client.Event) {
		var d struct {
			Candidate webrtc.ICECandidateInit `json:"candidate"`
		}
		if json.Unmarshal(ev.Data, &d) == nil {
			pc.AddICECandidate(d.Candidate)
		}
	})
	if err != nil {
		s.t.Fatal(err)
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		go s.c.Invoke(context.Background(), ep, "addIceCandidate", map[string]any{"candidate": map[string]any{
			"__module__": "kurento", "__type__": "IceCandidate",
			"candidate": init.Candidate, "sdpMid": *init.SDPMid, "sdpMLineIndex": *init.SDPMLineIndex}}, nil)
	})
	var answer string
	if err := s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": offer}, &answer); err != nil {
		s.t.Fatalf("processOffer: %v\n%s", err, offer)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		s.t.Fatalf("answer: %v\n%s", err, answer)
	}
	if err := s.c.Invoke(s.ctx, ep, "gatherCandidates", nil, nil); err != nil {
		s.t.Fatal(err)
	}
	return answer
}

// simulcastLayers are three encodings as a browser makes them: quarter, half and full resolution.
var simulcastLayers = []layer{{ssrc: 1, packets: 1, payloadSize: 300}, {ssrc: 2, packets: 2, payloadSize: 700}, {ssrc: 3, packets: 4, payloadSize: 1100}}

// viewerOf connects a new WebRtcEndpoint with a receiving test peer to pub.
func (s *session) viewerOf(pub string) *testpeer.Peer {
	s.t.Helper()
	view := s.endpoint()
	s.connect(pub, view, "")
	v := s.peer(testpeer.Options{Receive: true})
	s.negotiate(v, view)
	return v
}

// assertOneLayer checks that the viewer decodes one continuous layer, tag want, and nothing of the
// others.
func assertOneLayer(t *testing.T, v *testpeer.Peer, want byte) {
	t.Helper()
	if !poll(20*time.Second, func() bool { return v.FramesFrom(want) >= 90 }) {
		t.Fatalf("viewer got %d/%d/%d frames of layers 1/2/3, want 90 of layer %d", v.FramesFrom(1), v.FramesFrom(2), v.FramesFrom(3), want)
	}
	for tag := byte(1); tag <= 3; tag++ {
		if tag != want && v.FramesFrom(tag) != 0 {
			t.Errorf("viewer got %d frames of layer %d besides layer %d: layers mixed", v.FramesFrom(tag), tag, want)
		}
	}
	// One layer's stream: every sequence number follows the last, every frame decodes.
	if j := v.SeqJumps.Load(); j != 0 {
		t.Errorf("viewer's video sequence jumped %d times", j)
	}
	if d, r := v.DecodedFrames.Load(), v.FramesReceived.Load(); d < r-2 {
		t.Errorf("viewer decoded %d of %d frames", d, r)
	}
	t.Logf("viewer: %d frames of layer %d, %d decoded, %d packets", v.FramesFrom(want), want, v.DecodedFrames.Load(), v.VideoPackets.Load())
}

// TestSimulcastKurentoUtilsOffer: a publisher offering as kurento-utils-js 7.3 with simulcast: true
// sends three layers (SSRCs 1, 2, 3 of the SIM group); a viewer of its WebRtcEndpoint receives one
// layer, continuous and decodable: the first SSRC of the group, as KMS takes the first a=ssrc of
// the m-line, which is that SSRC in kurento-utils' munging.
func TestSimulcastKurentoUtilsOffer(t *testing.T) {
	s := newSession(t, 60*time.Second)
	pub := s.endpoint()
	v := s.viewerOf(pub)

	pc, err := publisherAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track := &layerTrack{bound: make(chan struct{})}
	if _, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	munged := kurentoUtilsSimulcast(offer.SDP, "publisher", "video")
	if !strings.Contains(offer.SDP, "a=ssrc-group:FID") || strings.Count(munged, "a=ssrc:") != 12 {
		t.Fatalf("munging as kurento-utils did not apply:\n%s", munged)
	}
	answer := s.signal(pc, pub, munged)
	if strings.Contains(answer, "m=video 0 ") {
		t.Fatalf("video rejected:\n%s", answer)
	}
	select {
	case <-track.bound:
	case <-s.ctx.Done():
		t.Fatal("publisher track never bound")
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	w, pt := *track.w.Load(), uint8(track.pt.Load())
	go sendLayers(ctx, func(_ int, p *rtp.Packet) error {
		p.PayloadType = pt
		_, err := w.WriteRTP(&p.Header, p.Payload)
		return err
	}, simulcastLayers)
	assertOneLayer(t, v, 1)
}

// TestSimulcastRidOffer: a publisher offering rid-based simulcast (a=rid, a=simulcast, as browsers
// do with sendEncodings) gets an answer, and a viewer receives one continuous layer.
func TestSimulcastRidOffer(t *testing.T) {
	s := newSession(t, 60*time.Second)
	pub := s.endpoint()
	v := s.viewerOf(pub)

	pc, err := publisherAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var tracks []*webrtc.TrackLocalStaticRTP
	for _, rid := range []string{"q", "h", "f"} {
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000},
			"video", "publisher", webrtc.WithRTPStreamID(rid))
		if err != nil {
			t.Fatal(err)
		}
		tracks = append(tracks, tr)
	}
	sender, err := pc.AddTrack(tracks[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range tracks[1:] {
		if err := sender.AddEncoding(tr); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer.SDP, "a=simulcast:send q;h;f") {
		t.Fatalf("not a rid simulcast offer:\n%s", offer.SDP)
	}
	answer := s.signal(pc, pub, offer.SDP)
	if strings.Contains(answer, "m=video 0 ") {
		t.Fatalf("video rejected:\n%s", answer)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	// As a browser does, each packet names its m-line and layer (pion's sender leaves that to us).
	midID, ridID := extmapID(t, offer.SDP, sdp.SDESMidURI), extmapID(t, offer.SDP, sdp.SDESRTPStreamIDURI)
	before := kms.ReceivedRTP()
	go sendLayers(ctx, func(i int, p *rtp.Packet) error {
		p.Header.SetExtension(midID, []byte("0"))
		p.Header.SetExtension(ridID, []byte(tracks[i].RID()))
		return tracks[i].WriteRTP(p)
	}, simulcastLayers)
	assertOneLayer(t, v, 1)
	// The forwarded layer comes by the direct receive path once its track is made.
	if got := kms.ReceivedRTP().Direct - before.Direct; got < 60 {
		t.Errorf("%d RTP packets received by the direct path, want the forwarded layer's", got)
	}
}

// extmapID is the id an SDP gives a header extension.
func extmapID(t *testing.T, sdpText, uri string) uint8 {
	t.Helper()
	for _, line := range strings.Split(sdpText, "\n") {
		if id, rest, ok := strings.Cut(strings.TrimPrefix(line, "a=extmap:"), " "); ok && strings.TrimSpace(rest) == uri {
			if n, err := strconv.Atoi(id); err == nil {
				return uint8(n)
			}
		}
	}
	t.Fatalf("no extmap for %s", uri)
	return 0
}
