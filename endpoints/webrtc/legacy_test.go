//go:build !kmsfuzz

package webrtc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/webrtc/v4"
)

// legacyShape rewrites a pion offer as an old SDK sends it: no a=mid, no BUNDLE group, no mid header
// extension, no candidates.
func legacyShape(offer string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(offer, "\n") {
		if strings.HasPrefix(line, "a=mid:") || strings.HasPrefix(line, "a=group:") ||
			strings.HasPrefix(line, "a=candidate:") || strings.Contains(line, "sdes:mid") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// withMids gives the answer's m-lines back the mids the peer's own offer had, by position: what a
// legacy client's stack does implicitly, and pion needs.
func withMids(answer string, mids []string) string {
	var b strings.Builder
	i := 0
	for _, line := range strings.SplitAfter(answer, "\n") {
		b.WriteString(line)
		if strings.HasPrefix(line, "m=") && i < len(mids) {
			fmt.Fprintf(&b, "a=mid:%s\r\n", mids[i])
			i++
		}
	}
	return b.String()
}

// TestLegacyOfferThenTrickle: an offer without mids, BUNDLE group or candidates gets an answer in its
// own shape (no mids, no group) and, once the peer trickles its candidates, media flows both ways
// through the loopback endpoint.
func TestLegacyOfferThenTrickle(t *testing.T) {
	s := newSession(t, 30*time.Second)
	ep := s.endpoint()
	s.connect(ep, ep, "")
	p := s.peer(testpeer.Options{Send: true, Receive: true})
	var mu sync.Mutex
	var held []webrtc.ICECandidateInit
	p.PC.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c != nil {
			mu.Lock()
			held = append(held, c.ToJSON())
			mu.Unlock()
		}
	})
	if err := s.c.Subscribe(s.ctx, ep, "IceCandidateFound", func(ev client.Event) {
		var d struct {
			Candidate webrtc.ICECandidateInit `json:"candidate"`
		}
		if json.Unmarshal(ev.Data, &d) == nil {
			d.Candidate.SDPMid = nil // a legacy peer matches by m-line index
			p.PC.AddICECandidate(d.Candidate)
		}
	}); err != nil {
		t.Fatal(err)
	}
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PC.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	var mids []string
	for _, tr := range p.PC.GetTransceivers() {
		mids = append(mids, tr.Mid())
	}
	var answer string
	if err := s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": legacyShape(offer.SDP)}, &answer); err != nil {
		t.Fatalf("processOffer of a legacy offer: %v", err)
	}
	if strings.Contains(answer, "a=mid:") || strings.Contains(answer, "a=group:") || strings.Count(answer, "\nm=") != 2 ||
		strings.Contains(answer, "\nm=audio 0 ") || strings.Contains(answer, "\nm=video 0 ") {
		t.Fatalf("answer not in the offer's shape (2 m-lines accepted, no mid, no group):\n%s", answer)
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: withMids(answer, mids)}); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Invoke(s.ctx, ep, "gatherCandidates", nil, nil); err != nil {
		t.Fatal(err)
	}
	// The peer's candidates only now, by trickle ICE.
	if !poll(10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(held) > 0
	}) {
		t.Fatal("the peer gathered no candidate")
	}
	mu.Lock()
	for _, c := range held {
		idx := 0
		if c.SDPMLineIndex != nil {
			idx = int(*c.SDPMLineIndex)
		}
		err := s.c.Invoke(s.ctx, ep, "addIceCandidate", map[string]any{"candidate": map[string]any{
			"__module__": "kurento", "__type__": "IceCandidate", "candidate": c.Candidate, "sdpMid": "", "sdpMLineIndex": idx}}, nil)
		if err != nil {
			t.Fatalf("addIceCandidate: %v", err)
		}
	}
	mu.Unlock()
	if err := p.WaitConnected(s.ctx); err != nil {
		t.Fatal(err)
	}
	p.StartMedia()
	ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
	defer cancel()
	if err := p.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	if !poll(10*time.Second, func() bool { return p.FramesReceived.Load() >= 30 && p.AudioReceived.Load() > 0 }) {
		t.Fatalf("frames back %d, audio packets %d", p.FramesReceived.Load(), p.AudioReceived.Load())
	}
}

// TestLegacyOfferShapes: offers pion alone refuses each get an answer with one m-line per offered
// m-line, those the endpoint cannot serve rejected with port 0, as KMS's SDP agent answers them.
func TestLegacyOfferShapes(t *testing.T) {
	s := newSession(t, 30*time.Second)
	for _, tc := range []struct {
		name   string
		offer  string
		ports0 []bool // per m-line: rejected
	}{
		{"RTP/AVP without mid, ICE or fingerprint", legacyAVPOffer, []bool{true}},
		{"plan-B with two video m-lines", planBOffer, []bool{false, false, true}},
		{"kurento-utils simulcast", simulcastOffer, []bool{false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := s.endpoint()
			var answer string
			if err := s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": tc.offer}, &answer); err != nil {
				t.Fatalf("processOffer: %v", err)
			}
			var got []bool
			for _, line := range strings.Split(answer, "\n") {
				if strings.HasPrefix(line, "m=") {
					got = append(got, strings.Fields(line)[1] == "0")
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.ports0) {
				t.Fatalf("rejected m-lines %v, want %v; answer:\n%s", got, tc.ports0, answer)
			}
			if !strings.Contains(tc.offer, "a=mid:") && strings.Contains(answer, "a=mid:") {
				t.Errorf("answer has mids the offer had not:\n%s", answer)
			}
		})
	}
}

const legacyAVPOffer = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
	"m=video 5004 RTP/AVP 96 97 98\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\na=rtpmap:98 VP9/90000\r\na=recvonly\r\n"

const planBOffer = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtcp-mux\r\na=setup:actpass\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n" +
	"a=ssrc:1001 cname:x\r\na=ssrc:1001 msid:s1 a1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtcp-mux\r\na=setup:actpass\r\na=sendrecv\r\na=rtpmap:96 VP8/90000\r\n" +
	"a=ssrc:2001 cname:x\r\na=ssrc:2001 msid:s1 v1\r\na=ssrc:2002 cname:x\r\na=ssrc:2002 msid:s2 v2\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtcp-mux\r\na=setup:actpass\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n" +
	"a=ssrc:3001 cname:x\r\na=ssrc:3001 msid:s3 v3\r\n"

const simulcastOffer = "v=0\r\no=- 3 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtcp-mux\r\na=setup:actpass\r\na=sendonly\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
	"a=x-google-flag:conference\r\na=ssrc-group:SIM 11 12 13\r\na=ssrc-group:FID 11 21\r\na=ssrc-group:FID 12 22\r\na=ssrc-group:FID 13 23\r\n" +
	"a=ssrc:11 cname:c\r\na=ssrc:11 msid:s v\r\na=ssrc:12 cname:c\r\na=ssrc:12 msid:s v\r\na=ssrc:13 cname:c\r\na=ssrc:13 msid:s v\r\n" +
	"a=ssrc:21 cname:c\r\na=ssrc:21 msid:s v\r\na=ssrc:22 cname:c\r\na=ssrc:22 msid:s v\r\na=ssrc:23 cname:c\r\na=ssrc:23 msid:s v\r\n"
