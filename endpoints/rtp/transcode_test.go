//go:build !kmsfuzz

package rtp_test

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst"
	pionrtp "github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// TestWebRTCVP8ToRtpH264: a WebRTC publisher sends VP8 to an RtpEndpoint whose peer offered H264
// only: the server transcodes, the peer receives H264 with SPS, PPS and IDR frames, and the
// publisher's endpoint reports MediaTranscodingStateChanged(TRANSCODING).
func TestWebRTCVP8ToRtpH264(t *testing.T) {
	needFFmpeg(t)
	if err := gst.Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	for _, f := range []string{"vp8dec", "x264enc", "rtph264pay", "rtpvp8depay"} {
		if !gst.HasElement(f) {
			t.Skipf("GStreamer element %s missing", f)
		}
	}
	s := start(t, 40*time.Second)
	clip := makeClip(s.ctx, t)
	pub, pubEp := s.publisher()
	transcoding := s.watch(pubEp, "MediaTranscodingStateChanged")
	rtpEp := s.create("RtpEndpoint", nil)

	port := freePair(t)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	offer := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=h264-only\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVP 103\r\na=rtpmap:103 H264/90000\r\n"+
		"a=fmtp:103 packetization-mode=1;profile-level-id=42e01f\r\na=recvonly\r\n", port)
	answer := s.invoke(rtpEp, "processOffer", map[string]any{"offer": offer})
	if !strings.Contains(answer, "H264/90000") || !strings.Contains(answer, "a=sendonly") {
		t.Fatalf("answer:\n%s", answer)
	}
	s.connect(pubEp, rtpEp)
	go func() { // the clip in a loop, in real time, until the test ends
		for s.ctx.Err() == nil {
			f, err := os.Open(clip)
			if err != nil {
				return
			}
			r, _, err := ivfreader.NewWith(f)
			for err == nil && s.ctx.Err() == nil {
				var data []byte
				if data, _, err = r.ParseNextFrame(); err == nil {
					err = pub.track.WriteSample(media.Sample{Data: data, Duration: time.Second / 30})
					time.Sleep(time.Second / 30)
				}
			}
			f.Close()
		}
	}()

	nals := map[byte]int{}
	packets, badPT := 0, 0
	buf := make([]byte, 2048)
	var p pionrtp.Packet
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && (nals[5] == 0 || packets < 60) {
		conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			continue
		}
		if p.Unmarshal(buf[:n]) != nil || len(p.Payload) < 2 {
			continue
		}
		packets++
		if p.PayloadType != 103 {
			badPT++
		}
		switch typ := p.Payload[0] & 0x1f; typ {
		case 28:
			nals[p.Payload[1]&0x1f]++
		case 24:
			for b := p.Payload[1:]; len(b) > 2; {
				l := int(b[0])<<8 | int(b[1])
				if l == 0 || len(b) < 2+l {
					break
				}
				nals[b[2]&0x1f]++
				b = b[2+l:]
			}
		default:
			nals[typ]++
		}
	}
	t.Logf("the H264 peer received %d packets, NAL types %v", packets, nals)
	if nals[5] == 0 || nals[7] == 0 || nals[8] == 0 || badPT != 0 {
		t.Fatalf("no H264 keyframe (or wrong payload type on %d packets): %v", badPT, nals)
	}
	s.waitFor("MediaTranscodingStateChanged(TRANSCODING) on the publisher", func() bool {
		return transcoding.has(`"state":"TRANSCODING"`) && transcoding.has(`"mediaType":"VIDEO"`)
	})
	transcoding.mu.Lock()
	t.Logf("events: %v", transcoding.data)
	transcoding.mu.Unlock()
}
