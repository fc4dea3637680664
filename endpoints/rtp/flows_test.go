//go:build !kmsfuzz

package rtp_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
)

func codeOf(err error) int {
	var ke *client.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return 0
}

// TestRtpToRtpBetweenWebRTCPeers: WebRTC publisher -> WebRtcEndpoint -> RtpEndpoint (generateOffer)
// -> RtpEndpoint (processOffer) -> WebRtcEndpoint -> WebRTC viewer, over IPv4 and IPv6, plain and SDES.
func TestRtpToRtpBetweenWebRTCPeers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params map[string]any
		family string
	}{
		{"IPv4 RTP/AVPF", nil, "IN IP4"},
		{"IPv6 RTP/AVPF", map[string]any{"useIpv6": true}, "IN IP6"},
		{"IPv4 RTP/SAVPF AES_256_CM_HMAC_SHA1_80", map[string]any{"crypto": map[string]any{
			"__module__": "kurento", "__type__": "SDES", "crypto": "AES_256_CM_HMAC_SHA1_80"}}, "IN IP4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, 40*time.Second)
			pub, err := testpeer.New(testpeer.Options{Send: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pub.Close)
			if err := pub.Connect(s.ctx, s.c, s.pipeline, false); err != nil {
				t.Fatal(err)
			}
			if err := pub.WaitConnected(s.ctx); err != nil {
				t.Fatal(err)
			}
			pubFlow := s.watch(pub.Endpoint, "MediaFlowOutStateChanged")
			pub.StartMedia()
			s.waitFor("the publisher's video", func() bool { return pubFlow.has("VIDEO") })

			params := func() map[string]any {
				p := map[string]any{}
				for k, v := range tc.params {
					p[k] = v
				}
				return p
			}
			rtp1, rtp2 := s.create("RtpEndpoint", params()), s.create("RtpEndpoint", params())
			started := s.watch(rtp2, "MediaSessionStarted")
			s.connect(pub.Endpoint, rtp1)
			offer := s.invoke(rtp1, "generateOffer", nil)
			if !strings.Contains(offer, "c="+tc.family) {
				t.Fatalf("offer without c=%s:\n%s", tc.family, offer)
			}
			answer := s.invoke(rtp2, "processOffer", map[string]any{"offer": offer})
			if local := s.invoke(rtp1, "processAnswer", map[string]any{"answer": answer}); local != offer {
				t.Errorf("processAnswer returned\n%s\nnot the offer", local)
			}
			if got := s.invoke(rtp1, "getRemoteSessionDescriptor", nil); got != answer {
				t.Errorf("remote descriptor of the offerer is not the answer")
			}
			if got := s.invoke(rtp2, "getLocalSessionDescriptor", nil); got != answer {
				t.Errorf("local descriptor of the answerer is not the answer")
			}
			// The offer put VP8, the publisher's codec, first.
			_, ports := mediaOf(t, answer)
			if ports["video"] == 0 || ports["audio"] == 0 || !strings.Contains(answer, "VP8/90000") {
				t.Fatalf("answer:\n%s", answer)
			}
			s.waitFor("MediaSessionStarted", func() bool { return len(started.data) > 0 })

			viewer := s.viewer(rtp2)
			if err := viewer.WaitVideo(s.ctx); err != nil {
				t.Fatal(err)
			}
			s0, r0 := pub.FramesSent.Load(), viewer.FramesReceived.Load()
			time.Sleep(2 * time.Second)
			s1, r1, audio := pub.FramesSent.Load(), viewer.FramesReceived.Load(), viewer.AudioReceived.Load()
			t.Logf("%s: over 2 s the publisher sent %d frames, the viewer received %d (%.1f%%), %d audio packets",
				tc.name, s1-s0, r1-r0, 100*float64(r1-r0)/float64(s1-s0), audio)
			if float64(r1-r0) < 0.9*float64(s1-s0) || audio == 0 {
				t.Fatalf("viewer received %d of %d frames, %d audio packets", r1-r0, s1-s0, audio)
			}
			// The keyframe path works end to end: the viewer side asks, the publisher gets a PLI.
			if err := s.c.Invoke(s.ctx, rtp1, "requestKeyframe", nil, nil); err != nil {
				t.Errorf("requestKeyframe on the sending RtpEndpoint: %v", err)
			}
			// Negotiation happens once.
			if err := s.c.Invoke(s.ctx, rtp1, "generateOffer", nil, nil); codeOf(err) != 40208 {
				t.Errorf("second generateOffer: %v, want 40208", err)
			}
			if err := s.c.Invoke(s.ctx, rtp1, "processAnswer", map[string]any{"answer": answer}, nil); codeOf(err) != 40210 {
				t.Errorf("second processAnswer: %v, want 40210", err)
			}
		})
	}
}

// TestTutorialOffers: the SDP offers Kurento's RTP receiver tutorial builds for an external sender
// (H264, RTP/AVPF, comedia, optional SDES with an MKI), and a video-only recvonly RTP/AVP offer.
func TestTutorialOffers(t *testing.T) {
	s := start(t, 20*time.Second)
	const key = "MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw" // "123456789012345678901234567890"
	tutorial := func(proto, crypto string) string {
		return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Kurento Tutorial - RTP Receiver\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=video 5006 " + proto + " 103\r\na=rtpmap:103 H264/90000\r\na=rtcp-fb:103 goog-remb\r\n" +
			"a=sendonly\r\na=direction:active\r\na=ssrc:445566 cname:user@example.com\r\n" + crypto
	}
	t.Run("plain", func(t *testing.T) {
		ep := s.create("RtpEndpoint", nil)
		webrtcEp := s.create("WebRtcEndpoint", nil)
		s.connect(ep, webrtcEp)
		answer := s.invoke(ep, "processOffer", map[string]any{"offer": tutorial("RTP/AVPF", "")})
		for _, want := range []string{"m=video ", " RTP/AVPF 103", "a=rtpmap:103 H264/90000", "a=recvonly", "a=rtcp-fb:103 goog-remb"} {
			if !strings.Contains(answer, want) {
				t.Errorf("answer lacks %q:\n%s", want, answer)
			}
		}
		if strings.Contains(answer, "nack pli") {
			t.Errorf("answer grants feedback the offer did not ask for:\n%s", answer)
		}
	})
	t.Run("SRTP", func(t *testing.T) {
		ep := s.create("RtpEndpoint", map[string]any{"crypto": map[string]any{
			"__module__": "kurento", "__type__": "SDES", "crypto": "AES_128_CM_HMAC_SHA1_80", "key": "abcdefghijklmnopqrstuvwxyz0123"}})
		answer := s.invoke(ep, "processOffer", map[string]any{"offer": tutorial("RTP/SAVPF",
			"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"+key+"|2^31|1:1\r\n")})
		if !strings.Contains(answer, " RTP/SAVPF 103") || !strings.Contains(answer,
			"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXowMTIz") {
			t.Errorf("answer without the endpoint's key under the offer's tag:\n%s", answer)
		}
	})
	t.Run("SRTP offered to a plain endpoint", func(t *testing.T) {
		ep := s.create("RtpEndpoint", nil)
		answer := s.invoke(ep, "processOffer", map[string]any{"offer": tutorial("RTP/SAVPF",
			"a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:"+key+"\r\n")})
		if !strings.Contains(answer, "m=video 0 RTP/SAVPF") {
			t.Errorf("SRTP m-line not rejected by a plain endpoint:\n%s", answer)
		}
	})
	t.Run("video-only recvonly RTP/AVP", func(t *testing.T) {
		ep := s.create("RtpEndpoint", nil)
		offer := "v=0\r\no=- 12345 12345 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
			"m=video 52000 RTP/AVP 96 97 98\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01e;packetization-mode=1\r\n" +
			"a=rtpmap:97 MP4V-ES/90000\r\na=rtpmap:98 H263-1998/90000\r\na=recvonly\r\n"
		answer := s.invoke(ep, "processOffer", map[string]any{"offer": offer})
		_, ports := mediaOf(t, answer)
		want := fmt.Sprintf("m=video %d RTP/AVP 96\r\n", ports["video"])
		if ports["video"] == 0 || !strings.Contains(answer, want) || !strings.Contains(answer, "a=sendonly") ||
			!strings.Contains(answer, "a=fmtp:96 profile-level-id=42e01e;packetization-mode=1") || strings.Contains(answer, "m=audio") {
			t.Errorf("answer:\n%s", answer)
		}
		if err := s.c.Invoke(s.ctx, ep, "requestKeyframe", nil, nil); err != nil {
			t.Errorf("requestKeyframe on an endpoint sending video: %v", err)
		}
	})
}

// TestErrors: what an application gets wrong comes back as a JSON-RPC error.
func TestErrors(t *testing.T) {
	port := freePair(t)
	s := start(t, 20*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", port), fmt.Sprintf("KMS_MAX_PORT=%d", port+1))
	check := func(what string, err error, code int, text string) {
		t.Helper()
		if codeOf(err) != code || !strings.Contains(err.Error(), text) {
			t.Errorf("%s: %v, want error %d mentioning %q", what, err, code, text)
		} else {
			t.Logf("%s: %v", what, err)
		}
	}
	ep := s.create("RtpEndpoint", nil)
	check("malformed SDP", s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": "this is not SDP"}, nil), 40201, "SDP")
	check("empty SDP", s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": ""}, nil), 40201, "SDP")
	valid := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
	check("answer before offer", s.c.Invoke(s.ctx, ep, "processAnswer", map[string]any{"answer": valid}, nil), 40209, "offer")
	check("no local SDP yet", s.c.Invoke(s.ctx, ep, "getLocalSessionDescriptor", nil, nil), 40202, "")
	sdes := func(fields map[string]any) map[string]any {
		fields["__module__"], fields["__type__"] = "kurento", "SDES"
		return map[string]any{"mediaPipeline": s.pipeline, "crypto": fields}
	}
	_, err := s.c.Create(s.ctx, "RtpEndpoint", sdes(map[string]any{"crypto": "AES_512_CM_HMAC_SHA1_80"}))
	check("unknown crypto suite", err, 40001, "CryptoSuite")
	_, err = s.c.Create(s.ctx, "RtpEndpoint", sdes(map[string]any{"crypto": "AES_256_CM_HMAC_SHA1_32", "key": "only-thirty-chars-for-aes-128"}))
	check("short key", err, 40107, "Master key size")
	_, err = s.c.Create(s.ctx, "RtpEndpoint", sdes(map[string]any{"crypto": "AES_128_CM_HMAC_SHA1_32", "keyBase64": "!!not base64!!"}))
	check("bad base64 key", err, 40107, "Base64")

	// The range holds one RTP/RTCP pair: the first offer takes it, the next ones find no port.
	if _, err := s.c.Create(s.ctx, "RtpEndpoint", nil); err == nil {
		t.Fatal("create without mediaPipeline succeeded")
	}
	first := s.create("RtpEndpoint", nil)
	s.invoke(first, "generateOffer", map[string]any{"options": map[string]any{
		"__module__": "kurento", "__type__": "OfferOptions", "offerToReceiveAudio": false}})
	second := s.create("RtpEndpoint", nil)
	err = s.c.Invoke(s.ctx, second, "generateOffer", nil, nil)
	check("port range exhausted (generateOffer)", err, 40204, fmt.Sprintf("%d-%d", port, port+1))
	offer := valid
	err = s.c.Invoke(s.ctx, second, "processOffer", map[string]any{"offer": offer}, nil)
	check("port range exhausted (processOffer)", err, 40205, "no free UDP port")
	// Releasing the first endpoint frees its ports.
	if err := s.c.Release(s.ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Invoke(s.ctx, second, "processOffer", map[string]any{"offer": offer}, nil); err != nil {
		t.Errorf("processOffer after the ports were freed: %v", err)
	}
}
