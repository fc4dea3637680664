package elements_test

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
)

func needFilters(t *testing.T, factories ...string) {
	t.Helper()
	if err := gst.Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	for _, f := range append([]string{"vp8enc", "vp8dec", "rtpvp8depay", "rtpvp8pay"}, factories...) {
		if !gst.HasElement(f) {
			t.Skipf("GStreamer element %q missing (install its plugin package)", f)
		}
	}
	testmedia.NeedFFmpeg(t)
}

func newPC(t *testing.T) *webrtc.PeerConnection {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// publisher sends an IVF clip in a loop as real VP8 through a WebRtcEndpoint.
func publisher(ctx context.Context, t *testing.T, c *client.Client, pipeline, clip string) (endpoint string, stop func()) {
	t.Helper()
	frames, err := testmedia.IVFFrames(clip)
	if err != nil {
		t.Fatal(err)
	}
	pc := newPC(t)
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	peer := &testpeer.Peer{PC: pc}
	endpoint = connectPeer(ctx, t, c, pipeline, peer)
	return endpoint, every30fps(func(i int) {
		track.WriteSample(media.Sample{Data: frames[i%len(frames)], Duration: time.Second / 30})
	})
}

// every30fps calls send with 0, 1, 2, ... 30 times a second until stop is called.
func every30fps(send func(i int)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			send(i)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

func connectPeer(ctx context.Context, t *testing.T, c *client.Client, pipeline string, peer *testpeer.Peer) string {
	t.Helper()
	ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	peer.Endpoint = ep
	if err := peer.Negotiate(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	return ep
}

// subscriber receives video from a WebRtcEndpoint into an IVF file.
type subscriber struct {
	endpoint string
	path     string
	mu       sync.Mutex
	w        *ivfwriter.IVFWriter
	frames   atomic.Int64
}

func newSubscriber(ctx context.Context, t *testing.T, c *client.Client, pipeline string) *subscriber {
	t.Helper()
	s := &subscriber{path: filepath.Join(t.TempDir(), "received.ivf")}
	w, err := ivfwriter.New(s.path)
	if err != nil {
		t.Fatal(err)
	}
	s.w = w
	pc := newPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.w != nil && s.w.WriteRTP(p) == nil && p.Marker {
				s.frames.Add(1)
			}
			s.mu.Unlock()
		}
	})
	s.endpoint = connectPeer(ctx, t, c, pipeline, &testpeer.Peer{PC: pc})
	return s
}

func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
}

func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func setup(t *testing.T) (context.Context, *client.Client, string) {
	return testserver.Connect(t, testserver.Start(t).URL, 60*time.Second)
}

// TestGStreamerFilterMirrors: publisher -> GStreamerFilter(videoflip) -> subscriber, and the
// subscriber's last decoded frame is the mirror image of the clip.
func TestGStreamerFilterMirrors(t *testing.T) {
	needFilters(t, "videoflip")
	ctx, c, pipeline := setup(t)
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30", "-vf",
		"drawbox=x=0:y=0:w=80:h=240:color=blue:t=fill,drawbox=x=0:y=0:w=320:h=60:color=green:t=fill")

	filter, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline, "command": "videoflip method=horizontal-flip"})
	if err != nil {
		t.Fatal(err)
	}
	var cmd string
	if err := c.Invoke(ctx, filter, "getCommand", nil, &cmd); err != nil || cmd != "videoflip method=horizontal-flip" {
		t.Errorf("getCommand = %q, %v", cmd, err)
	}
	pub, stop := publisher(ctx, t, c, pipeline, clip)
	defer stop()
	sub := newSubscriber(ctx, t, c, pipeline)
	defer sub.close()
	for _, link := range [][2]string{{pub, filter}, {filter, sub.endpoint}} {
		if err := c.Invoke(ctx, link[0], "connect", map[string]any{"sink": link[1]}, nil); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	waitUntil(ctx, t, "60 filtered frames", func() bool { return sub.frames.Load() >= 60 })
	t.Logf("60 filtered frames received %v after connecting", time.Since(start).Round(time.Millisecond))
	stop()
	sub.close()

	sent := testmedia.LastRGB(t, clip, 320, 240)
	got := testmedia.LastRGB(t, sub.path, 320, 240)
	for _, s := range []struct {
		x, y      int
		sent, got string
	}{{40, 150, "blue", "red"}, {280, 150, "red", "blue"}, {160, 30, "green", "green"}} {
		gs, gg := testmedia.ColorAt(sent, 320, s.x, s.y), testmedia.ColorAt(got, 320, s.x, s.y)
		p := got[(s.y*320+s.x)*3:]
		t.Logf("pixel (%d,%d): sent %s, received %s rgb(%d,%d,%d)", s.x, s.y, gs, gg, p[0], p[1], p[2])
		if gs != s.sent || gg != s.got {
			t.Errorf("pixel (%d,%d): sent %s received %s, want %s -> %s", s.x, s.y, gs, gg, s.sent, s.got)
		}
	}
}

func TestGStreamerFilterBadCommand(t *testing.T) {
	needFilters(t)
	ctx, c, pipeline := setup(t)
	for _, cmd := range []string{"nosuchelement", "videoflip method=sideways", "videoflip ! videoconvert", "fakesink"} {
		_, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline, "command": cmd})
		var ke *client.Error
		if !errors.As(err, &ke) || ke.Code != 40001 {
			t.Errorf("%q: err = %v, want a 40001 error", cmd, err)
			continue
		}
		t.Logf("%q: %v", cmd, err)
	}
	f, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline, "command": "videobalance"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, f, "setElementProperty", map[string]any{"propertyName": "saturation", "propertyValue": "0.0"}, nil); err != nil {
		t.Errorf("setElementProperty: %v", err)
	}
	for _, p := range [][2]string{{"nope", "1"}, {"saturation", "grey"}} {
		err := c.Invoke(ctx, f, "setElementProperty", map[string]any{"propertyName": p[0], "propertyValue": p[1]}, nil)
		var ke *client.Error
		if !errors.As(err, &ke) || ke.Code != 40001 {
			t.Errorf("setElementProperty(%s, %s): %v", p[0], p[1], err)
		} else {
			t.Logf("setElementProperty(%s, %s): %v", p[0], p[1], err)
		}
	}
}

// TestGStreamerFilterRuntimeError: a filter whose pipeline fails raises Error on itself, while
// another pipeline's WebRTC loopback keeps flowing.
func TestGStreamerFilterRuntimeError(t *testing.T) {
	needFilters(t, "capsfilter")
	ctx, c, pipeline := setup(t)
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30")

	// The other pipeline: a loopback with synthetic media.
	other, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	loop, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	if err := loop.Connect(ctx, c, other, true); err != nil {
		t.Fatal(err)
	}
	if err := loop.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	loop.StartMedia()
	if err := loop.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}

	filter, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline,
		"command": "capsfilter caps=video/x-raw,width=7", "filterType": "VIDEO"})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan map[string]any, 4)
	if err := c.Subscribe(ctx, filter, "Error", func(ev client.Event) {
		var d map[string]any
		json.Unmarshal(ev.Data, &d)
		select {
		case errs <- d:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	pub, stop := publisher(ctx, t, c, pipeline, clip)
	defer stop()
	if err := c.Invoke(ctx, pub, "connect", map[string]any{"sink": filter}, nil); err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	select {
	case ev = <-errs:
	case <-ctx.Done():
		t.Fatal("no Error event")
	}
	t.Logf("Error event: %v", ev)
	if ev["type"] != "STREAM_ERROR_FAILED" || !strings.Contains(ev["description"].(string), "not-negotiated") {
		t.Errorf("Error event = %v", ev)
	}
	before := loop.FramesReceived.Load()
	time.Sleep(time.Second)
	after := loop.FramesReceived.Load()
	t.Logf("loopback in the other pipeline: %d frames in the second after the error", after-before)
	if after-before < 10 {
		t.Errorf("the other pipeline's loopback stalled: %d frames", after-before)
	}
	if err := c.Release(ctx, filter); err != nil {
		t.Errorf("release failed filter: %v", err)
	}
}

// TestZBarFilterCodeFound: a QR code in real VP8 video gives CodeFound with its exact text.
func TestZBarFilterCodeFound(t *testing.T) {
	needFilters(t, "zbar")
	if _, err := exec.LookPath("qrencode"); err != nil {
		t.Skip("qrencode missing")
	}
	const text = "kurento-go: QR 42 ✓"
	png := filepath.Join(t.TempDir(), "qr.png")
	if b, err := exec.Command("qrencode", "-s", "8", "-o", png, text).CombinedOutput(); err != nil {
		t.Fatalf("qrencode: %v %s", err, b)
	}
	ctx, c, pipeline := setup(t)
	clip := testmedia.VP8Clip(t, "-loop", "1", "-i", png, "-vf", "scale=320:320:flags=neighbor,format=yuv420p")
	zbar, err := c.Create(ctx, "ZBarFilter", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	type code struct{ CodeType, Value string }
	codes := make(chan code, 64)
	if err := c.Subscribe(ctx, zbar, "CodeFound", func(ev client.Event) {
		var d code
		json.Unmarshal(ev.Data, &d)
		codes <- d
	}); err != nil {
		t.Fatal(err)
	}
	pub, stop := publisher(ctx, t, c, pipeline, clip)
	defer stop()
	start := time.Now()
	if err := c.Invoke(ctx, pub, "connect", map[string]any{"sink": zbar}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-codes:
		t.Logf("CodeFound %+v after %v", got, time.Since(start).Round(time.Millisecond))
		if got.Value != text || got.CodeType != "QR-Code" {
			t.Errorf("CodeFound = %+v, want QR-Code %q", got, text)
		}
	case <-ctx.Done():
		t.Fatal("no CodeFound")
	}
	// The same code again is reported at most once per second of stream time, as KMS does.
	time.Sleep(2500 * time.Millisecond)
	extra := len(codes)
	t.Logf("CodeFound repeated %d times in the next 2.5 s", extra)
	if extra > 4 {
		t.Errorf("CodeFound repeated %d times in 2.5 s", extra)
	}
}
