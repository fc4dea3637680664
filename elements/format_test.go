package elements_test

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/rtp"
)

// rtpPeer is a plain RTP receiver on loopback: it counts what arrives per payload type.
type rtpPeer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pts  map[uint8]int
	// video: H.264 IDR NAL units seen, and the distinct timestamps (frames) per payload type
	idr    int
	frames map[uint8]map[uint32]bool
	last   time.Time
}

func newRTPPeer(t *testing.T) *rtpPeer {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPeer{conn: conn, pts: map[uint8]int{}, frames: map[uint8]map[uint32]bool{}}
	t.Cleanup(func() { conn.Close() })
	go p.read()
	return p
}

func (p *rtpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *rtpPeer) read() {
	buf := make([]byte, 2048)
	var pkt rtp.Packet
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil || len(pkt.Payload) < 2 {
			continue
		}
		p.mu.Lock()
		p.pts[pkt.PayloadType]++
		if p.frames[pkt.PayloadType] == nil {
			p.frames[pkt.PayloadType] = map[uint32]bool{}
		}
		p.frames[pkt.PayloadType][pkt.Timestamp] = true
		if nal := pkt.Payload[0] & 0x1f; nal == 5 || (nal == 28 && pkt.Payload[1]&0x1f == 5) {
			p.idr++
		}
		p.last = time.Now()
		p.mu.Unlock()
	}
}

// counts returns the packets per payload type and the frames of one payload type.
func (p *rtpPeer) counts(pt uint8) (packets map[uint8]int, frames, idr int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	packets = map[uint8]int{}
	for k, v := range p.pts {
		packets[k] = v
	}
	return packets, len(p.frames[pt]), p.idr
}

func (p *rtpPeer) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pts, p.frames, p.idr = map[uint8]int{}, map[uint8]map[uint32]bool{}, 0
}

// TestForcedFormatsReachRtpPeer: a WebRTC publisher sends VP8 (30 fps) and Opus; its endpoint is
// told setVideoFormat(H264 at 15 fps) and setAudioFormat(PCMU). An RtpEndpoint whose peer offers
// VP8 before H264 and Opus before PCMU answers H264 and PCMU, and its peer receives H.264 (IDR
// frames, payload type 103, about 15 frames a second) and PCMU (payload type 0), nothing else.
// Forcing a codec no transcoder makes (AV1) raises an Error on the publisher's endpoint.
func TestForcedFormatsReachRtpPeer(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	needFilters(t, "vp8dec", "x264enc", "rtph264pay", "mulawenc", "opusdec", "videorate")
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30")
	tone := testmedia.ToneOgg(t, 440)
	ctx, c, pipeline := setup(t) // its deadline starts once the clips are made
	pub, err := testpeer.NewClip(testpeer.ClipOptions{Video: clip, Audio: tone})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pubEp := connectPeer(ctx, t, c, pipeline, pub)
	errs := watchEvents(ctx, t, c, pubEp, "Error")
	invoke := func(id, op string, params map[string]any, out any) {
		t.Helper()
		if err := c.Invoke(ctx, id, op, params, out); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	invoke(pubEp, "setVideoFormat", map[string]any{"caps": map[string]any{
		"codec": "H264", "framerate": map[string]any{"numerator": 15, "denominator": 1}}}, nil)
	invoke(pubEp, "setAudioFormat", map[string]any{"caps": map[string]any{"codec": "PCMU", "bitrate": 64000}}, nil)

	rtpEp, err := c.Create(ctx, "RtpEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	invoke(pubEp, "connect", map[string]any{"sink": rtpEp}, nil)
	video, audio := newRTPPeer(t), newRTPPeer(t)
	offer := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=both\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"+
		"m=video %d RTP/AVP 96 103\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:103 H264/90000\r\n"+
		"a=fmtp:103 packetization-mode=1;profile-level-id=42e01f\r\na=recvonly\r\n", audio.port(), video.port())
	var answer string
	invoke(rtpEp, "processOffer", map[string]any{"offer": offer}, &answer)
	if !strings.Contains(answer, "H264/90000") || !strings.Contains(answer, "PCMU/8000") {
		t.Fatalf("the answer does not take H264:\n%s", answer)
	}
	t.Logf("answer:\n%s", answer)
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	waitUntil(ctx, t, "H.264 keyframes and PCMU at the RTP peer", func() bool {
		v, _, idr := video.counts(103)
		a, _, _ := audio.counts(0)
		return idr > 0 && v[103] > 50 && a[0] > 50
	})
	// Count frames over 4 s from now on: the forced frame rate is the transcoder's.
	video.reset()
	audio.reset()
	time.Sleep(4 * time.Second)
	v, frames, _ := video.counts(103)
	a, _, _ := audio.counts(0)
	t.Logf("video packets by payload type %v, %d frames in 4 s; audio %v", v, frames, a)
	if len(v) != 1 || len(a) != 1 {
		t.Fatalf("the peer received other payload types: video %v, audio %v", v, a)
	}
	if frames < 20 || frames > 80 { // 30 fps would be ~120; a loaded machine transcodes slower
		t.Fatalf("%d H.264 frames in 4 s, want about 60 (15 fps forced, the clip is 30)", frames)
	}
	if n := countEvents(errs, "Error"); n != 0 {
		t.Fatalf("%d Error events while the formats were producible", n)
	}

	invoke(pubEp, "setVideoFormat", map[string]any{"caps": map[string]any{
		"codec": "AV1", "framerate": map[string]any{"numerator": 30, "denominator": 1}}}, nil)
	ev := errs.wait(ctx, t, "Error", 1)
	t.Logf("Error: %v", ev.data)
	if ev.data["type"] != "UNEXPECTED_ELEMENT_ERROR" || !strings.Contains(fmt.Sprint(ev.data["description"]), "AV1") {
		t.Fatalf("unexpected Error event %v", ev.data)
	}
}
