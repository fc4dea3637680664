//go:build !kmsfuzz

package webrtc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

// maxAudioRecvBandwidth and maxVideoRecvBandwidth reach the peer as b=AS in the answer's audio and
// video m-lines; getRembParams shows KMS's defaults under what the application set.
func TestRecvBandwidthAnnounced(t *testing.T) {
	s := newSession(t, 20*time.Second)
	ep := s.endpoint()
	for op, v := range map[string]int{"setMaxAudioRecvBandwidth": 32, "setMaxVideoRecvBandwidth": 700} {
		name := strings.ToLower(op[3:4]) + op[4:]
		if err := s.c.Invoke(s.ctx, ep, op, map[string]any{name: v}, nil); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	p := s.peer(testpeer.Options{Send: true, Receive: true})
	s.negotiate(p, ep)
	remote := p.PC.RemoteDescription().SDP
	for kind, want := range map[string]string{"audio": "b=AS:32", "video": "b=AS:700"} {
		i := strings.Index(remote, "m="+kind)
		end := strings.Index(remote[i+1:], "\nm=")
		section := remote[i:]
		if end >= 0 {
			section = remote[i : i+1+end]
		}
		if !strings.Contains(section, "\n"+want+"\r\n") {
			t.Errorf("%s m-line of the answer the peer applied lacks %s:\n%s", kind, want, section)
		}
	}

	if err := s.c.Invoke(s.ctx, ep, "setRembParams", map[string]any{"rembParams": map[string]any{
		"__module__": "kurento", "__type__": "RembParams", "rembOnConnect": 500000}}, nil); err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	if err := s.c.Invoke(s.ctx, ep, "getRembParams", nil, &raw); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(raw, &got)
	if got["__type__"] != "RembParams" || got["rembOnConnect"] != 500000.0 || got["upLosses"] != 12.0 || got["decrementFactor"] != 0.5 {
		t.Errorf("getRembParams: %s", raw)
	}
}

// A viewer whose WebRtcEndpoint has mtu 400 receives no RTP packet above 400 bytes from a presenter
// sending 612-byte packets, and still decodes its frames: they are repacketised for it. A viewer of
// the default mtu gets them as they are.
func TestMTUBoundsWhatTheViewerReceives(t *testing.T) {
	s := newSession(t, 30*time.Second)
	presenter, small, normal := s.endpoint(), s.endpoint(), s.endpoint()
	if err := s.c.Invoke(s.ctx, small, "setMtu", map[string]any{"mtu": 400}, nil); err != nil {
		t.Fatal(err)
	}
	s.connect(presenter, small, "")
	s.connect(presenter, normal, "")
	pub := s.peer(testpeer.Options{Send: true})
	s.negotiate(pub, presenter)
	pub.StartMedia()
	viewers := map[string]*testpeer.Peer{small: s.peer(testpeer.Options{Receive: true}), normal: s.peer(testpeer.Options{Receive: true})}
	for ep, p := range viewers {
		s.negotiate(p, ep)
	}
	if !poll(20*time.Second, func() bool {
		return viewers[small].DecodedFrames.Load() >= 30 && viewers[normal].DecodedFrames.Load() >= 30
	}) {
		t.Fatalf("decoded frames: mtu 400 %d, default %d", viewers[small].DecodedFrames.Load(), viewers[normal].DecodedFrames.Load())
	}
	if n := viewers[small].LargestVideoPacket.Load(); n > 400 {
		t.Errorf("the viewer of mtu 400 received a %d-byte packet", n)
	}
	if n := viewers[normal].LargestVideoPacket.Load(); n <= 400 {
		t.Errorf("the viewer of the default mtu received packets of %d bytes at most, want the presenter's 612", n)
	}
}
