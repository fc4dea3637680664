package processing

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
)

func needGst(t *testing.T, factories ...string) {
	t.Helper()
	if err := gst.Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	for _, f := range append([]string{"vp8enc", "vp8dec", "rtpvp8depay", "rtpvp8pay", "appsrc"}, factories...) {
		if !gst.HasElement(f) {
			t.Skipf("GStreamer element %q missing (install its plugin package)", f)
		}
	}
	testmedia.NeedFFmpeg(t)
}

// Clip is 320x240: a blue band on the left quarter, a green band on the top quarter, red elsewhere.
const clipFilter = "drawbox=x=0:y=0:w=80:h=240:color=blue:t=fill,drawbox=x=0:y=0:w=320:h=60:color=green:t=fill"

func asymmetricClip(t *testing.T) string {
	return testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30", "-vf", clipFilter)
}

// publish sends the clip in a loop, packetized as RTP at 30 frames per second, until stop: VP8 from
// an IVF file, or H.264 from an Annex-B file with access unit delimiters (h264Clip).
func publish(t *testing.T, src *media.Source, clip string, stop <-chan struct{}, wg *sync.WaitGroup) {
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	var payloader rtp.Payloader
	if strings.HasSuffix(clip, ".h264") {
		src.SetCodec(&media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1;profile-level-id=42e01f;level-asymmetry-allowed=1"})
		payloader = &codecs.H264Payloader{}
		aud := []byte{0, 0, 0, 1, 9}
		for _, f := range bytes.Split(data, aud) {
			if len(f) > 0 {
				frames = append(frames, append(slices.Clone(aud), f...))
			}
		}
	} else {
		src.SetCodec(VP8)
		payloader = &codecs.VP8Payloader{EnablePictureID: true}
		if frames, err = testmedia.IVFFrames(clip); err != nil {
			t.Fatal(err)
		}
	}
	pz := rtp.NewPacketizer(1200, 96, 0x1234, payloader, rtp.NewRandomSequencer(), 90000)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for _, p := range pz.Packetize(frames[i%len(frames)], 3000) {
				src.WriteRTP(p)
			}
		}
	}()
}

// h264Clip is the asymmetric clip in H.264 (Annex B, an access unit delimiter before each frame).
func h264Clip(t *testing.T) string {
	out := filepath.Join(t.TempDir(), "clip.h264")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30", "-vf", clipFilter,
		"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
		"-x264-params", "keyint=30:aud=1:repeat-headers=1", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// collector is a sink pad that records VP8 RTP into an IVF file.
type collector struct {
	mu      sync.Mutex
	w       *ivfwriter.IVFWriter
	frames  atomic.Int64
	packets atomic.Int64
	first   atomic.Int64 // unix nanos of the first packet
}

func newCollector(t *testing.T, path string) *collector {
	w, err := ivfwriter.New(path)
	if err != nil {
		t.Fatal(err)
	}
	return &collector{w: w}
}

func (c *collector) WriteRTP(_ *media.Source, p *rtp.Packet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == nil {
		return
	}
	c.first.CompareAndSwap(0, time.Now().UnixNano())
	c.packets.Add(1)
	cp := *p
	cp.Payload = bytes.Clone(p.Payload)
	if c.w.WriteRTP(&cp) == nil && p.Marker {
		c.frames.Add(1)
	}
}
func (c *collector) SetSource(*media.Source) {}

// collectFrom connects the video of from to a new element whose sink pad is a collector.
func collectFrom(t *testing.T, pl *media.Pipeline, from *media.Element) (*collector, *media.Element, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.ivf")
	col := newCollector(t, out)
	sub := pl.NewElement("sub", nil)
	sub.SetInputs(inputs{media.Video: col})
	if err := media.Connect(from, sub, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	return col, sub, out
}
func (c *collector) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w != nil {
		c.w.Close()
		c.w = nil
	}
}

type inputs map[media.Type]media.Input

func (in inputs) Input(t media.Type, pad string) media.Input { return in[t] }

type spot struct {
	x, y int
	want string
}

func checkSpots(t *testing.T, name string, img []byte, spots []spot) {
	t.Helper()
	checkSpotsW(t, name, img, 320, spots)
}

// checkSpotsW checks pixels of a w pixels wide RGB image.
func checkSpotsW(t *testing.T, name string, img []byte, w int, spots []spot) {
	t.Helper()
	for _, s := range spots {
		p := img[(s.y*w+s.x)*3:]
		got := testmedia.ColorAt(img, w, s.x, s.y)
		t.Logf("%s (%d,%d) = rgb(%d,%d,%d) %s, want %s", name, s.x, s.y, p[0], p[1], p[2], got, s.want)
		if got != s.want {
			t.Errorf("%s: pixel (%d,%d) is %s, want %s", name, s.x, s.y, got, s.want)
		}
	}
}

// runFilter sends the clip through a filter made of desc until done says so (or 30 s), returning
// the received IVF path. Waiting on a condition, not a fixed time, keeps it robust on a loaded machine.
func runFilter(t *testing.T, clip, desc string, done func(*collector) bool, onEvent func(media.Event)) (string, *collector, *Filter) {
	t.Helper()
	pl := media.NewPipeline()
	t.Cleanup(pl.Close)
	pub := pl.NewElement("pub", nil)
	var fe *media.Element
	fe = pl.NewElement("filter", func(ev media.Event) {
		if onEvent != nil {
			onEvent(ev)
		}
	})
	el, err := ParseElement(desc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewFilter(fe, Config{Type: media.Video, Element: el})
	if err != nil {
		t.Fatal(err)
	}
	if err := media.Connect(pub, fe, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	col, sub, out := collectFrom(t, pl, fe)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	publish(t, pub.Source(media.Video, media.DefaultPad), clip, stop, &wg)
	deadline := time.Now().Add(30 * time.Second)
	for !done(col) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if first := col.first.Load(); first != 0 {
		t.Logf("first output packet %v after the first input packet; %d frames, %d packets out; %d input packets dropped",
			time.Unix(0, first).Sub(start).Round(time.Millisecond), col.frames.Load(), col.packets.Load(), f.Dropped())
	}
	pub.Release()
	fe.Release()
	sub.Release()
	f.Close()
	col.close()
	return out, col, f
}

func TestFilterFlip(t *testing.T) {
	needGst(t, "videoflip")
	clip := asymmetricClip(t)
	sent := testmedia.LastRGB(t, clip, 320, 240)
	checkSpots(t, "sent", sent, []spot{{40, 150, "blue"}, {280, 150, "red"}, {160, 30, "green"}})

	out, col, _ := runFilter(t, clip, "videoflip method=horizontal-flip", func(c *collector) bool { return c.frames.Load() >= 30 }, nil)
	if col.frames.Load() < 30 {
		t.Fatalf("only %d frames came out of the filter", col.frames.Load())
	}
	got := testmedia.LastRGB(t, out, 320, 240)
	checkSpots(t, "received", got, []spot{{40, 150, "red"}, {280, 150, "blue"}, {160, 30, "green"}})
}

// TestFilterTakesH264: the filter decodes VP8 only; an H.264 source is converted by a transcoder the
// filter asks for, which goes away with the filter.
func TestFilterTakesH264(t *testing.T) {
	needGst(t, "videoflip", "x264enc", "rtph264depay")
	clip := h264Clip(t)
	var transcoders int
	out, col, _ := runFilter(t, clip, "videoflip method=horizontal-flip", func(c *collector) bool {
		transcoders = max(transcoders, media.ActiveTranscoders())
		return c.frames.Load() >= 30
	}, nil)
	if col.frames.Load() < 30 {
		t.Fatalf("only %d frames came out of the filter", col.frames.Load())
	}
	if transcoders != 1 {
		t.Errorf("%d transcoders ran, want 1", transcoders)
	}
	got := testmedia.LastRGB(t, out, 320, 240)
	checkSpots(t, "received", got, []spot{{40, 150, "red"}, {280, 150, "blue"}, {160, 30, "green"}})
	waitUntil(t, 5*time.Second, "the transcoder to stop", func() bool { return media.ActiveTranscoders() == 0 })
}

func TestFilterRuntimeError(t *testing.T) {
	needGst(t, "capsfilter")
	clip := asymmetricClip(t)
	errs := make(chan Error, 8)
	_, col, f := runFilter(t, clip, "capsfilter caps=video/x-raw,width=7", func(*collector) bool { return len(errs) > 0 }, func(ev media.Event) {
		if e, ok := ev.(Error); ok {
			select {
			case errs <- e:
			default:
			}
		}
	})
	select {
	case e := <-errs:
		t.Logf("Error event: type %s code %d: %s", e.Type, e.Code, e.Description)
		if e.Type == "" || e.Description == "" {
			t.Errorf("incomplete Error %+v", e)
		}
	default:
		t.Fatal("no Error event")
	}
	if !f.Failed() || col.frames.Load() != 0 {
		t.Errorf("failed %v, frames out %d", f.Failed(), col.frames.Load())
	}
}

// TestFilterLeaks makes and releases filters, checking goroutines and pipelines come back.
func TestFilterLeaks(t *testing.T) {
	needGst(t, "videoflip")
	g0 := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		pl := media.NewPipeline()
		e := pl.NewElement("f", nil)
		el, _ := gst.ParseElement("videoflip")
		f, err := NewFilter(e, Config{Type: media.Video, Element: el})
		if err != nil {
			t.Fatal(err)
		}
		e.Release()
		f.Close()
		pl.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0 || gst.Live() != 0 {
		t.Errorf("goroutines %d -> %d, live pipelines %d", g0, g, gst.Live())
	}
}
