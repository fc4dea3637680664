package elements_test

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/processing"
)

const faceStill = "../processing/testdata/face.jpg" // a real face: facedetect finds it at x=82 y=44 144x144

func needFaces(t *testing.T) {
	t.Helper()
	needFilters(t, "facedetect", "videoconvert")
	if processing.FaceModel() == "" {
		t.Skip("no face model: install opencv-data")
	}
}

func writePNG(t *testing.T, w, h int, c color.NRGBA) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	var b strings.Builder
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return []byte(b.String())
}

// snapshot decodes the last frame the subscriber received so far.
func (s *subscriber) snapshot(t *testing.T, w, h int) []byte {
	t.Helper()
	s.mu.Lock()
	data, err := os.ReadFile(s.path)
	s.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "snap.ivf")
	if err := os.WriteFile(p, testmedia.TailIVF(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return testmedia.LastRGB(t, p, w, h)
}

func magentaAt(img []byte, w, x, y int) bool {
	p := img[(y*w+x)*3:]
	return p[0] > 180 && p[2] > 180 && p[1] < 80
}

func magentaIn(img []byte, w int, r image.Rectangle) float64 {
	n, m := 0, 0
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			n++
			if magentaAt(img, w, x, y) {
				m++
			}
		}
	}
	return float64(m) / float64(n)
}

// TestMagicMirror is the magic-mirror tutorial's flow through the Kurento protocol (Go client):
// WebRtcEndpoint -> FaceOverlayFilter -> WebRtcEndpoint, setOverlayedImage with an http URL served
// by the application and the tutorial's placement (-0.35, -1.2, 1.6, 1.6: a hat over the head). The
// video is a real photo of a face; the received frames carry the image where the face's placement
// puts it. A URL that cannot be loaded is accepted (as KMS) and leaves no image.
func TestMagicMirror(t *testing.T) {
	needFaces(t)
	hat := writePNG(t, 50, 40, color.NRGBA{255, 0, 255, 255})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/img/mario-wings.png" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Write(hat)
	}))
	defer app.Close()

	_, c, pipeline := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	clip := testmedia.VP8Clip(t, "-loop", "1", "-i", faceStill, "-vf", "format=yuv420p")
	filter, err := c.Create(ctx, "FaceOverlayFilter", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
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
	waitUntil(ctx, t, "30 frames", func() bool { return sub.frames.Load() >= 30 })
	// Face (82,44) 144x144: the hat spans x 82-0.35*144 = 31 .. 31+230, y 44-1.2*144 = -128 .. -128+230 = 102.
	hatBox := image.Rect(40, 5, 250, 95)
	faceBelow := image.Rect(110, 115, 200, 185) // lower face: not covered
	if s := magentaIn(sub.snapshot(t, 320, 240), 320, hatBox); s > 0.01 {
		t.Fatalf("magenta before setOverlayedImage: %.2f", s)
	}
	if err := c.Invoke(ctx, filter, "setOverlayedImage", map[string]any{"uri": app.URL + "/img/mario-wings.png",
		"offsetXPercent": -0.35, "offsetYPercent": -1.2, "widthPercent": 1.6, "heightPercent": 1.6}, nil); err != nil {
		t.Fatal(err)
	}
	n := sub.frames.Load()
	var got []byte
	waitUntil(ctx, t, "the hat", func() bool {
		if sub.frames.Load() < n+15 {
			return false
		}
		n = sub.frames.Load()
		got = sub.snapshot(t, 320, 240)
		return magentaIn(got, 320, hatBox) > 0.9
	})
	t.Logf("hat: %.0f%% of (40,5)-(250,95) magenta, %.0f%% of the lower face (110,115)-(200,185)",
		100*magentaIn(got, 320, hatBox), 100*magentaIn(got, 320, faceBelow))
	if s := magentaIn(got, 320, faceBelow); s > 0.01 {
		t.Errorf("the hat covers the lower face: %.2f", s)
	}
	for _, p := range []image.Point{{10, 200}, {300, 200}, {10, 50}, {300, 50}} {
		if magentaAt(got, 320, p.X, p.Y) {
			t.Errorf("magenta at %v, outside the hat", p)
		}
	}
	// A URL that does not load: the call succeeds, the faces get no image.
	if err := c.Invoke(ctx, filter, "setOverlayedImage", map[string]any{"uri": app.URL + "/img/missing.png",
		"offsetXPercent": -0.35, "offsetYPercent": -1.2, "widthPercent": 1.6, "heightPercent": 1.6}, nil); err != nil {
		t.Errorf("setOverlayedImage with a missing image: %v (KMS accepts it)", err)
	}
	waitUntil(ctx, t, "the hat gone", func() bool {
		if sub.frames.Load() < n+15 {
			return false
		}
		n = sub.frames.Load()
		return magentaIn(sub.snapshot(t, 320, 240), 320, hatBox) < 0.01
	})
	if err := c.Invoke(ctx, filter, "setOverlayedImage", map[string]any{"uri": app.URL + "/img/mario-wings.png",
		"offsetXPercent": -0.35, "offsetYPercent": -1.2, "widthPercent": 1.6, "heightPercent": 1.6}, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the hat back", func() bool {
		if sub.frames.Load() < n+15 {
			return false
		}
		n = sub.frames.Load()
		return magentaIn(sub.snapshot(t, 320, 240), 320, hatBox) > 0.9
	})
	if err := c.Invoke(ctx, filter, "unsetOverlayedImage", nil, nil); err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "the hat gone after unsetOverlayedImage", func() bool {
		if sub.frames.Load() < n+15 {
			return false
		}
		n = sub.frames.Load()
		return magentaIn(sub.snapshot(t, 320, 240), 320, hatBox) < 0.01
	})
	if err := c.Release(ctx, filter); err != nil {
		t.Error(err)
	}
}

// TestImageOverlayFilter: addImage (file:// URI) places an image in fractions of the frame;
// removeImage by id takes it away; a wrong id or URI is accepted as KMS does.
func TestImageOverlayFilter(t *testing.T) {
	needFilters(t, "videoconvert", "capsfilter")
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30")
	png := filepath.Join(t.TempDir(), "blue.png")
	if err := os.WriteFile(png, writePNG(t, 8, 8, color.NRGBA{0, 0, 255, 255}), 0o644); err != nil {
		t.Fatal(err)
	}
	// The deadline starts once the clip is made, and is as generous as TestMagicMirror's: on a
	// loaded machine each look at the received video (an ffmpeg run) takes seconds, and 60 s ran
	// out (the next call then failed at once, "failed to acquire lock: context deadline exceeded").
	_, c, pipeline := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	filter, err := c.Create(ctx, "ImageOverlayFilter", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
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
	add := func(id, uri string) error {
		return c.Invoke(ctx, filter, "addImage", map[string]any{"id": id, "uri": uri, "offsetXPercent": 0.5, "offsetYPercent": 0,
			"widthPercent": 0.5, "heightPercent": 0.5, "keepAspectRatio": false, "center": false}, nil)
	}
	if err := add("logo", "file://"+png); err != nil {
		t.Fatal(err)
	}
	if err := add("broken", "file:///nonexistent/logo.png"); err != nil {
		t.Errorf("addImage with a missing file: %v (KMS accepts it)", err)
	}
	var n int64
	var got []byte
	waitUntil(ctx, t, "the logo", func() bool {
		if sub.frames.Load() < n+15 {
			return false
		}
		n = sub.frames.Load()
		got = sub.snapshot(t, 320, 240)
		return testmedia.ColorAt(got, 320, 240, 60) == "blue"
	})
	for _, s := range []struct {
		x, y int
		want string
	}{{240, 60, "blue"}, {80, 60, "red"}, {240, 180, "red"}, {170, 10, "blue"}, {150, 10, "red"}} {
		p := got[(s.y*320+s.x)*3:]
		t.Logf("(%d,%d) rgb(%d,%d,%d)", s.x, s.y, p[0], p[1], p[2])
		if testmedia.ColorAt(got, 320, s.x, s.y) != s.want {
			t.Errorf("(%d,%d) is %s, want %s", s.x, s.y, testmedia.ColorAt(got, 320, s.x, s.y), s.want)
		}
	}
	for _, id := range []string{"nothing", "logo"} {
		if err := c.Invoke(ctx, filter, "removeImage", map[string]any{"id": id}, nil); err != nil {
			t.Errorf("removeImage(%s): %v", id, err)
		}
	}
	n = sub.frames.Load() // the frames before it have the logo: look at none of them
	waitUntil(ctx, t, "the logo gone", func() bool {
		if sub.frames.Load() < n+15 {
			return false
		}
		n = sub.frames.Load()
		return testmedia.ColorAt(sub.snapshot(t, 320, 240), 320, 240, 60) == "red"
	})
	// A missing parameter is the protocol's error, as for any method.
	err = c.Invoke(ctx, filter, "addImage", map[string]any{"id": "x"}, nil)
	var ke *client.Error
	if !errors.As(err, &ke) {
		t.Errorf("addImage without uri: %v", err)
	} else {
		t.Logf("addImage without uri: %v", err)
	}
}

// procStatus reads a field of /proc/self/status (kB for memory).
func procStatus(t *testing.T, field string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.Fields(v)[0])
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

type usage struct{ goroutines, threads, rssKB int }

func measure(t *testing.T) usage {
	runtime.GC()
	debug.FreeOSMemory()
	return usage{runtime.NumGoroutine(), procStatus(t, "Threads"), procStatus(t, "VmRSS")}
}

// settle waits (10 s at most) for goroutines and threads to come back to base.
func settle(t *testing.T, base usage) usage {
	deadline := time.Now().Add(10 * time.Second)
	for {
		u := measure(t)
		if (u.goroutines <= base.goroutines && u.threads <= base.threads) || time.Now().After(deadline) {
			return u
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestFilterCyclesLeak: create, connect (with media flowing through it) and release each filter class
// many times (100 by default, KMS_FILTER_CYCLES to change); goroutines, threads and RSS come back
// to their baseline.
func TestFilterCyclesLeak(t *testing.T) {
	needFaces(t)
	needFilters(t, "zbar", "videoflip", "capsfilter")
	if testing.Short() {
		t.Skip("long: skipped with -short")
	}
	cycles := 100
	if v, err := strconv.Atoi(os.Getenv("KMS_FILTER_CYCLES")); err == nil && v > 0 {
		cycles = v
	}
	_, c, pipeline := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	// A keyframe every 3 frames: each new filter starts decoding within 0.1 s (the peer ignores PLI).
	clip := filepath.Join(t.TempDir(), "face-g3.ivf")
	if b, err := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-loop", "1", "-i", faceStill, "-vf", "format=yuv420p",
		"-t", "2", "-r", "30", "-c:v", "libvpx", "-g", "3", "-deadline", "realtime", "-b:v", "400k", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	pub, stop := publisher(ctx, t, c, pipeline, clip)
	defer stop()
	sink, err := c.Create(ctx, "PassThrough", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	classes := []struct {
		class  string
		params map[string]any
		setup  func(id string) error
	}{
		{"GStreamerFilter", map[string]any{"command": "videoflip method=horizontal-flip"}, nil},
		{"ZBarFilter", nil, nil},
		{"FaceOverlayFilter", nil, func(id string) error {
			return c.Invoke(ctx, id, "setOverlayedImage", map[string]any{"uri": "file://" + mustAbs(t, faceStill),
				"offsetXPercent": 0.0, "offsetYPercent": 0.0, "widthPercent": 1.0, "heightPercent": 1.0}, nil)
		}},
		{"ImageOverlayFilter", nil, func(id string) error {
			return c.Invoke(ctx, id, "addImage", map[string]any{"id": "a", "uri": mustAbs(t, faceStill), "offsetXPercent": 0.1,
				"offsetYPercent": 0.1, "widthPercent": 0.3, "heightPercent": 0.3, "keepAspectRatio": true, "center": true}, nil)
		}},
	}
	cycle := func(class string, params map[string]any, setup func(string) error) {
		p := map[string]any{"mediaPipeline": pipeline}
		for k, v := range params {
			p[k] = v
		}
		id, err := c.Create(ctx, class, p)
		if err != nil {
			t.Fatalf("create %s: %v", class, err)
		}
		if setup != nil {
			if err := setup(id); err != nil {
				t.Fatalf("%s: %v", class, err)
			}
		}
		for _, link := range [][2]string{{pub, id}, {id, sink}} {
			if err := c.Invoke(ctx, link[0], "connect", map[string]any{"sink": link[1]}, nil); err != nil {
				t.Fatalf("connect: %v", err)
			}
		}
		// Media goes through the filter (decoded, filtered, encoded) before it goes.
		for {
			var flowing bool
			if err := c.Invoke(ctx, id, "isMediaFlowingOut", map[string]any{"mediaType": "VIDEO"}, &flowing); err != nil {
				t.Fatalf("isMediaFlowingOut: %v", err)
			}
			if flowing {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("no media out of the filter")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := c.Release(ctx, id); err != nil {
			t.Fatalf("release %s: %v", class, err)
		}
	}
	// Warm-up: plugins, OpenCV, GStreamer's thread pools and the server's first allocations.
	for _, cl := range classes {
		for i := 0; i < 3; i++ {
			cycle(cl.class, cl.params, cl.setup)
		}
	}
	base := measure(t)
	t.Logf("baseline: %d goroutines, %d threads, RSS %d kB, %d live GStreamer pipelines", base.goroutines, base.threads, base.rssKB, gst.Live())
	live0 := gst.Live()
	for _, cl := range classes {
		start := time.Now()
		var rss []string
		for i := 1; i <= cycles; i++ {
			cycle(cl.class, cl.params, cl.setup)
			if i%(max(cycles/4, 1)) == 0 {
				rss = append(rss, fmt.Sprintf("%d:%+dkB", i, measure(t).rssKB-base.rssKB))
			}
		}
		t.Logf("%s RSS after n cycles: %s", cl.class, strings.Join(rss, " "))
		u := settle(t, base)
		t.Logf("%s: %d cycles in %v; then %d goroutines (%+d), %d threads (%+d), RSS %d kB (%+d kB), live pipelines %d",
			cl.class, cycles, time.Since(start).Round(time.Millisecond), u.goroutines, u.goroutines-base.goroutines,
			u.threads, u.threads-base.threads, u.rssKB, u.rssKB-base.rssKB, gst.Live())
	}
	u := settle(t, base)
	if u.goroutines > base.goroutines {
		t.Errorf("goroutines %d -> %d", base.goroutines, u.goroutines)
	}
	// GLib keeps a few idle threads in its pools: allow those, not one per cycle.
	if u.threads > base.threads+4 {
		t.Errorf("threads %d -> %d", base.threads, u.threads)
	}
	if grow := u.rssKB - base.rssKB; grow > 48*1024 {
		t.Errorf("RSS grew %d kB over %d cycles of each filter", grow, cycles)
	}
	if gst.Live() != live0 {
		t.Errorf("live GStreamer pipelines %d -> %d", live0, gst.Live())
	}
}

func mustAbs(t *testing.T, p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
