//go:build !kmsfuzz

package rtp_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian package ffmpeg): %v", tool, err)
		}
	}
}

// session is a test server, a client and a pipeline.
type session struct {
	t        *testing.T
	ctx      context.Context
	c        *client.Client
	pipeline string
}

func start(t *testing.T, timeout time.Duration, env ...string) *session {
	t.Helper()
	ss := testserver.StartSession(t, timeout, env...)
	return &session{t: t, ctx: ss.Ctx, c: ss.Client, pipeline: ss.Pipeline}
}

func (s *session) create(typ string, params map[string]any) string {
	s.t.Helper()
	if params == nil {
		params = map[string]any{}
	}
	params["mediaPipeline"] = s.pipeline
	id, err := s.c.Create(s.ctx, typ, params)
	if err != nil {
		s.t.Fatalf("create %s: %v", typ, err)
	}
	return id
}

func (s *session) invoke(obj, op string, params map[string]any) string {
	s.t.Helper()
	var out string
	if err := s.c.Invoke(s.ctx, obj, op, params, &out); err != nil {
		s.t.Fatalf("%s: %v", op, err)
	}
	return out
}

func (s *session) connect(src, sink string) {
	s.t.Helper()
	if err := s.c.Invoke(s.ctx, src, "connect", map[string]any{"sink": sink}, nil); err != nil {
		s.t.Fatalf("connect: %v", err)
	}
}

// watch records the events of a type on an object.
type watch struct {
	mu   sync.Mutex
	data []string
}

func (s *session) watch(obj, event string) *watch {
	s.t.Helper()
	w := &watch{}
	if err := s.c.Subscribe(s.ctx, obj, event, func(ev client.Event) {
		w.mu.Lock()
		w.data = append(w.data, string(ev.Data))
		w.mu.Unlock()
	}); err != nil {
		s.t.Fatalf("subscribe %s: %v", event, err)
	}
	return w
}

func (w *watch) has(substr string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.data {
		if strings.Contains(d, substr) {
			return true
		}
	}
	return false
}

func (s *session) waitFor(what string, cond func() bool) {
	s.t.Helper()
	for !cond() {
		select {
		case <-s.ctx.Done():
			s.t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// viewer is a pion WebRTC peer receiving from a new WebRtcEndpoint fed by src.
func (s *session) viewer(src string) *testpeer.Peer {
	s.t.Helper()
	return s.viewerWith(src, testpeer.Options{Receive: true})
}

// viewerWith is viewer with the peer's options (a lossy link, say).
func (s *session) viewerWith(src string, opts testpeer.Options) *testpeer.Peer {
	s.t.Helper()
	return s.viewerAt(s.create("WebRtcEndpoint", nil), src, opts)
}

// viewerAt is viewerWith through a WebRtcEndpoint made (and set up) by the caller.
func (s *session) viewerAt(ep, src string, opts testpeer.Options) *testpeer.Peer {
	s.t.Helper()
	s.connect(src, ep)
	p, err := testpeer.New(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(p.Close)
	p.Endpoint = ep
	if err := p.Negotiate(s.ctx, s.c, false); err != nil {
		s.t.Fatal(err)
	}
	if err := p.WaitConnected(s.ctx); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// freePair finds an even UDP port whose next port is free too, outside the server's range.
func freePair(t *testing.T) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		a, err := net.ListenUDP("udp", &net.UDPAddr{Port: 0})
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port &^ 1
		a.Close()
		c1, err1 := net.ListenUDP("udp", &net.UDPAddr{Port: p})
		c2, err2 := net.ListenUDP("udp", &net.UDPAddr{Port: p + 1})
		if c1 != nil {
			c1.Close()
		}
		if c2 != nil {
			c2.Close()
		}
		if err1 == nil && err2 == nil {
			return p
		}
	}
	t.Fatal("no free UDP port pair")
	return 0
}

// waitBound waits until some process binds a UDP port (ffmpeg getting ready to receive).
func waitBound(ctx context.Context, t *testing.T, port int) {
	t.Helper()
	for {
		c, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
		if err != nil {
			return
		}
		c.Close()
		select {
		case <-ctx.Done():
			t.Fatalf("nothing bound UDP port %d", port)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ffmpeg runs ffmpeg; it dies with the test.
func ffmpeg(ctx context.Context, t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-loglevel", ffLog()}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &stderr
}

// mediaOf reads the address and the port of each m-line of an SDP.
func mediaOf(t *testing.T, text string) (string, map[string]int) {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		t.Fatalf("SDP from the server does not parse: %v\n%s", err, text)
	}
	ports := map[string]int{}
	for _, m := range sd.MediaDescriptions {
		ports[m.MediaName.Media] = m.MediaName.Port.Value
	}
	return sd.ConnectionInformation.Address.Address, ports
}

type videoCase struct {
	name, codec, rtpmap string
	encoder             []string
}

var h264 = videoCase{"H264", "h264", "H264/90000\r\na=fmtp:96 packetization-mode=1",
	[]string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "30"}}
var vp8 = videoCase{"VP8", "vp8", "VP8/90000",
	[]string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "30"}}

const sentFrames = 90 // 3 s at 30 fps

// ffmpegSender streams 3 s of video (and Opus) from ffmpeg to the ports of the server's answer.
func ffmpegSender(ctx context.Context, t *testing.T, vc videoCase, addr string, ports map[string]int, vLocal, aLocal int, srtpKey string) *exec.Cmd {
	scheme, srtp := "rtp", []string(nil)
	if srtpKey != "" {
		scheme, srtp = "srtp", []string{"-srtp_out_suite", "AES_CM_128_HMAC_SHA1_80", "-srtp_out_params", srtpKey}
	}
	args := []string{"-re", "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3", "-map", "0:v"}
	args = append(args, vc.encoder...)
	args = append(args, "-payload_type", "96", "-ssrc", "1111")
	args = append(args, srtp...)
	args = append(args, "-f", "rtp", fmt.Sprintf("%s://%s:%d?localrtpport=%d&localrtcpport=%d&pkt_size=1200", scheme, addr, ports["video"], vLocal, vLocal+1))
	if aLocal != 0 {
		args = append(args, "-map", "1:a", "-c:a", "libopus", "-b:a", "32k", "-ac", "2", "-payload_type", "111", "-ssrc", "2222")
		args = append(args, srtp...)
		args = append(args, "-f", "rtp", fmt.Sprintf("%s://%s:%d?localrtpport=%d&localrtcpport=%d&pkt_size=1200", scheme, addr, ports["audio"], aLocal, aLocal+1))
	}
	cmd, stderr := ffmpeg(ctx, t, args...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ffmpeg sender stderr:\n%s", stderr)
		}
	})
	return cmd
}

// TestFFmpegToWebRTC: ffmpeg streams over RTP to an RtpEndpoint, with the SDP the server answered;
// a WebRTC viewer connected to it receives the frames.
func TestFFmpegToWebRTC(t *testing.T) {
	needFFmpeg(t)
	for _, vc := range []videoCase{h264, vp8} {
		t.Run(vc.name, func(t *testing.T) {
			s := start(t, 40*time.Second)
			rtpEp := s.create("RtpEndpoint", nil)
			flow := s.watch(rtpEp, "MediaFlowOutStateChanged")
			state := s.watch(rtpEp, "MediaStateChanged")
			vLocal, aLocal := freePair(t), freePair(t)
			offer := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=ffmpeg\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
				"m=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendonly\r\n"+
				"m=video %d RTP/AVP 96\r\na=rtpmap:96 %s\r\na=sendonly\r\n", aLocal, vLocal, vc.rtpmap)
			answer := s.invoke(rtpEp, "processOffer", map[string]any{"offer": offer})
			addr, ports := mediaOf(t, answer)
			if ports["audio"] == 0 || ports["video"] == 0 || !strings.Contains(answer, "a=recvonly") {
				t.Fatalf("answer does not take both streams:\n%s", answer)
			}
			viewer := s.viewer(rtpEp)
			time.Sleep(200 * time.Millisecond)
			cmd := ffmpegSender(s.ctx, t, vc, addr, ports, vLocal, aLocal, "")
			if err := cmd.Wait(); err != nil {
				t.Fatalf("ffmpeg: %v", err)
			}
			s.waitFor("95% of the frames", func() bool { return viewer.FramesReceived.Load() >= sentFrames*95/100 })
			time.Sleep(300 * time.Millisecond) // the last ones
			time.Sleep(300 * time.Millisecond)
			got, audio := viewer.FramesReceived.Load(), viewer.AudioReceived.Load()
			t.Logf("%s: ffmpeg sent %d frames, the WebRTC viewer received %d (%.1f%%) and %d audio packets",
				vc.name, sentFrames, got, 100*float64(got)/sentFrames, audio)
			if float64(got) < 0.95*sentFrames || audio < 100 {
				t.Fatalf("viewer received %d of %d frames and %d audio packets", got, sentFrames, audio)
			}
			s.waitFor("MediaFlowOut FLOWING", func() bool { return flow.has(`"FLOWING"`) && flow.has("VIDEO") })
			s.waitFor("MediaState CONNECTED (ffmpeg's RTCP)", func() bool { return state.has(`"newState":"CONNECTED"`) })
		})
	}
}

func TestFFmpegToWebRTCOverSRTP(t *testing.T) {
	needFFmpeg(t)
	serverKey := base64.StdEncoding.EncodeToString([]byte("0123456789abcdefghijklmnopqrst"))
	ffKey := base64.StdEncoding.EncodeToString([]byte("ffmpeg-key-0123456789-salt-30b"))
	otherKey := base64.StdEncoding.EncodeToString([]byte("not-the-key-in-the-offer-30b!!"))
	for _, tc := range []struct {
		name, offered, used string
	}{{"right key", ffKey, ffKey}, {"wrong key", ffKey, otherKey}} {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, 40*time.Second)
			rtpEp := s.create("RtpEndpoint", map[string]any{"crypto": map[string]any{
				"__module__": "kurento", "__type__": "SDES", "crypto": "AES_128_CM_HMAC_SHA1_80", "keyBase64": serverKey}})
			errs := s.watch(rtpEp, "Error")
			vLocal := freePair(t)
			offer := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=ffmpeg\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
				"m=video %d RTP/SAVP 96\r\na=rtpmap:96 %s\r\na=sendonly\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:%s\r\n",
				vLocal, vp8.rtpmap, tc.offered)
			answer := s.invoke(rtpEp, "processOffer", map[string]any{"offer": offer})
			if !strings.Contains(answer, "RTP/SAVP 96") || !strings.Contains(answer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"+serverKey) {
				t.Fatalf("answer without the SRTP line and the endpoint's key:\n%s", answer)
			}
			addr, ports := mediaOf(t, answer)
			viewer := s.viewer(rtpEp)
			time.Sleep(200 * time.Millisecond)
			cmd := ffmpegSender(s.ctx, t, vp8, addr, ports, vLocal, 0, tc.used)
			if err := cmd.Wait(); err != nil {
				t.Fatalf("ffmpeg: %v", err)
			}
			if tc.used == tc.offered {
				s.waitFor("95% of the frames", func() bool { return viewer.FramesReceived.Load() >= sentFrames*95/100 })
				time.Sleep(300 * time.Millisecond) // the last ones
				got := viewer.FramesReceived.Load()
				t.Logf("SRTP: ffmpeg sent %d frames, the WebRTC viewer received %d (%.1f%%)", sentFrames, got, 100*float64(got)/sentFrames)
				if errs.has("STREAM_ERROR_DECRYPT") {
					t.Errorf("decrypt error reported with the right key: %v", errs.data)
				}
				return
			}
			s.waitFor("an Error event for the wrong key", func() bool { return errs.has("STREAM_ERROR_DECRYPT") })
			if got := viewer.FramesReceived.Load(); got != 0 {
				t.Errorf("%d frames passed with a wrong key", got)
			}
			// The server is still there and the endpoint still answers.
			var st string
			if err := s.c.Invoke(s.ctx, rtpEp, "getMediaState", nil, &st); err != nil {
				t.Fatalf("getMediaState after a wrong key: %v", err)
			}
			errs.mu.Lock()
			t.Logf("wrong key reported: %s", errs.data[0])
			errs.mu.Unlock()
		})
	}
}

// publisher is a pion peer sending a VP8 IVF file to a new WebRtcEndpoint, paced at its frame rate.
type publisher struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticSample
	connected chan struct{}
}

func (s *session) publisher() (*publisher, string) {
	s.t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		s.t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	if err != nil {
		s.t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		s.t.Fatal(err)
	}
	go func() {
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	p := &publisher{pc: pc, track: track, connected: make(chan struct{})}
	var once sync.Once
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(p.connected) })
		}
	})
	ep := s.create("WebRtcEndpoint", nil)
	peer := &testpeer.Peer{PC: pc, Endpoint: ep}
	if err := peer.Negotiate(s.ctx, s.c, false); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-p.connected:
	case <-s.ctx.Done():
		s.t.Fatal("publisher not connected")
	}
	return p, ep
}

// send plays an IVF file once, in real time; it returns how long the media lasts.
func (p *publisher) send(t *testing.T, file string) time.Duration {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	frame := time.Second * time.Duration(hdr.TimebaseNumerator) / time.Duration(hdr.TimebaseDenominator)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	n := 0
	for ; ; n++ {
		data, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := p.track.WriteSample(media.Sample{Data: data, Duration: frame}); err != nil {
			t.Fatal(err)
		}
		<-tick.C
	}
	return time.Duration(n) * frame
}

// makeClip encodes a VP8 test clip of 3 s with a keyframe every second.
func makeClip(ctx context.Context, t *testing.T) string {
	file := filepath.Join(t.TempDir(), "clip.ivf")
	cmd, stderr := ffmpeg(ctx, t, "-f", "lavfi", "-i", "testsrc=duration=3:size=320x240:rate=30",
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "30", "-y", file)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("making the clip: %v\n%s", err, stderr)
	}
	return file
}

// receiverSDP turns the server's offer into the SDP ffmpeg receives with: the same description,
// with VP8 only, ffmpeg's port and address, and ffmpeg's direction. It is also the answer.
func receiverSDP(t *testing.T, offer string, port int) string {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	sd.ConnectionInformation.Address.Address = "127.0.0.1"
	sd.Origin.UnicastAddress = "127.0.0.1"
	var kept []*sdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media != "video" {
			continue
		}
		vp8PT := ""
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" && strings.Contains(a.Value, "VP8/90000") {
				vp8PT, _, _ = strings.Cut(a.Value, " ")
			}
		}
		if vp8PT == "" {
			t.Fatalf("offer without VP8:\n%s", offer)
		}
		m.MediaName.Port.Value = port
		m.MediaName.Formats = []string{vp8PT}
		var attrs []sdp.Attribute
		for _, a := range m.Attributes {
			switch a.Key {
			case "rtpmap", "fmtp", "rtcp-fb":
				if !strings.HasPrefix(a.Value, vp8PT+" ") {
					continue
				}
			case "rtcp":
				a.Value = strconv.Itoa(port + 1)
			case "sendrecv":
				a.Key = "recvonly"
			case "ssrc":
				continue
			}
			attrs = append(attrs, a)
		}
		m.Attributes = attrs
		kept = append(kept, m)
	}
	sd.MediaDescriptions = kept
	out, err := sd.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

type probe struct {
	Streams []struct {
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file string) (string, float64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil || len(p.Streams) == 0 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return p.Streams[0].CodecName, d
}

// TestWebRTCToFFmpeg: a WebRTC publisher's VP8 goes out of an RtpEndpoint to ffmpeg, which receives
// with the server's offer and writes a file.
func TestWebRTCToFFmpeg(t *testing.T) {
	needFFmpeg(t)
	for _, srtp := range []bool{false, true} {
		name := "RTP"
		if srtp {
			name = "SRTP"
		}
		t.Run(name, func(t *testing.T) {
			s := start(t, 40*time.Second)
			clip := makeClip(s.ctx, t)
			pub, pubEp := s.publisher()
			var params map[string]any
			if srtp {
				params = map[string]any{"crypto": map[string]any{"__module__": "kurento", "__type__": "SDES", "crypto": "AES_128_CM_HMAC_SHA1_80"}}
			}
			rtpEp := s.create("RtpEndpoint", params)
			flowIn := s.watch(rtpEp, "MediaFlowInStateChanged")
			s.connect(pubEp, rtpEp)
			offer := s.invoke(rtpEp, "generateOffer", map[string]any{"options": map[string]any{
				"__module__": "kurento", "__type__": "OfferOptions", "offerToReceiveAudio": false, "offerToReceiveVideo": true}})
			if srtp != strings.Contains(offer, "RTP/SAVPF") || srtp != strings.Contains(offer, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") {
				t.Fatalf("offer:\n%s", offer)
			}
			port := freePair(t)
			recv := receiverSDP(t, offer, port)
			sdpFile := filepath.Join(t.TempDir(), "recv.sdp")
			if err := os.WriteFile(sdpFile, []byte(recv), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := s.invoke(rtpEp, "processAnswer", map[string]any{"answer": recv}); got != offer {
				t.Errorf("processAnswer returned another SDP than the offer:\n%s", got)
			}
			out := filepath.Join(t.TempDir(), "out.webm")
			cmd, stderr := ffmpeg(s.ctx, t, "-listen_timeout", "3", "-protocol_whitelist", "file,udp,rtp,srtp", "-i", sdpFile, "-c", "copy", "-y", out)
			waitBound(s.ctx, t, port)
			time.Sleep(200 * time.Millisecond)
			sent := pub.send(t, clip)
			// Releasing the endpoint says RTCP BYE, on which ffmpeg ends the file.
			if err := s.c.Release(s.ctx, rtpEp); err != nil {
				t.Fatal(err)
			}
			// ffmpeg ends on the BYE, or listen_timeout after the last packet, and finishes the file
			// (SIGINT does not stop it while it waits on the socket).
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("ffmpeg: %v\n%s", err, stderr)
				}
			case <-s.ctx.Done():
				t.Fatalf("ffmpeg did not stop after the stream; flow in: %v\nSDP:\n%s\n%s", flowIn.data, recv, stderr)
			}
			codecName, dur := ffprobe(t, out)
			t.Logf("%s: sent %.2f s of VP8, ffprobe: codec %s, duration %.2f s (%.1f%%)", name, sent.Seconds(), codecName, dur, 100*dur/sent.Seconds())
			if codecName != "vp8" || dur < 0.9*sent.Seconds() || dur > 1.1*sent.Seconds() {
				t.Fatalf("file has codec %s and lasts %.2f s; sent %.2f s of vp8\n%s", codecName, dur, sent.Seconds(), stderr)
			}
		})
	}
}

func ffLog() string {
	if l := os.Getenv("FFLOG"); l != "" {
		return l
	}
	return "error"
}
