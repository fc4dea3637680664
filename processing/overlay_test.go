package processing

import (
	"context"
	"fmt"
	"image"
	icolor "image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/media"
)

// solidPNG writes a w x h PNG of one colour and returns its path and the decoded image.
func solidPNG(t *testing.T, w, h int, c icolor.NRGBA) (string, *image.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("solid-%dx%d.png", w, h))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path, img
}

var magenta = icolor.NRGBA{255, 0, 255, 255}

func TestLoadImage(t *testing.T) {
	path, _ := solidPNG(t, 7, 5, magenta)
	data, _ := os.ReadFile(path)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/img.png":
			w.Write(data)
		case "/text":
			w.Write([]byte("not an image"))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, uri := range []string{path, "file://" + path, srv.URL + "/img.png"} {
		img, err := LoadImage(ctx, uri, nil)
		if err != nil {
			t.Errorf("%s: %v", uri, err)
			continue
		}
		if img.Rect.Dx() != 7 || img.Rect.Dy() != 5 || img.NRGBAAt(3, 3) != magenta {
			t.Errorf("%s: %v %v", uri, img.Rect, img.NRGBAAt(3, 3))
		}
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	for uri, c := range map[string]context.Context{
		srv.URL + "/missing.png": ctx, srv.URL + "/text": ctx, "file:///nonexistent.png": ctx,
		"ftp://example.invalid/x.png": ctx, "": ctx, srv.URL + "/slow": short,
	} {
		start := time.Now()
		_, err := LoadImage(c, uri, nil)
		t.Logf("%q: %v (%v)", uri, err, time.Since(start).Round(time.Millisecond))
		if err == nil {
			t.Errorf("%q: no error", uri)
		}
	}
}

// overlayRun sends a clip through a filter built by build, collecting what comes out.
type overlayRun struct {
	t    *testing.T
	col  *collector
	out  string
	stop chan struct{}
	wg   sync.WaitGroup
	els  []*media.Element
	f    *Filter
	pl   *media.Pipeline
}

func startOverlay(t *testing.T, clip string, build func(*media.Element) (*Filter, error), onEvent ...func(media.Event)) *overlayRun {
	t.Helper()
	r := &overlayRun{t: t, stop: make(chan struct{}), pl: media.NewPipeline()}
	t.Cleanup(r.pl.Close)
	pub := r.pl.NewElement("pub", nil)
	fe := r.pl.NewElement("filter", func(ev media.Event) {
		for _, f := range onEvent {
			f(ev)
		}
	})
	var err error
	if r.f, err = build(fe); err != nil {
		t.Fatal(err)
	}
	r.out = filepath.Join(t.TempDir(), "out.ivf")
	r.col = newCollector(t, r.out)
	sub := r.pl.NewElement("sub", nil)
	sub.SetInputs(inputs{media.Video: r.col})
	r.els = []*media.Element{pub, fe, sub}
	if err := media.Connect(pub, fe, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	if err := media.Connect(fe, sub, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	publish(t, pub.Source(media.Video, media.DefaultPad), clip, r.stop, &r.wg)
	return r
}

// startImageOverlay is startOverlay with an ImageOverlay.
func startImageOverlay(t *testing.T, clip string, onEvent ...func(media.Event)) (*ImageOverlay, *overlayRun) {
	var io *ImageOverlay
	r := startOverlay(t, clip, func(e *media.Element) (*Filter, error) {
		var err error
		if io, err = NewImageOverlay(e, Config{}); err != nil {
			return nil, err
		}
		return io.Filter, nil
	}, onEvent...)
	return io, r
}

// waitFrames waits (30 s at most) until n more frames came out and cond holds.
func (r *overlayRun) waitFrames(n int64, cond func() bool) {
	r.t.Helper()
	target := r.col.frames.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for r.col.frames.Load() < target || (cond != nil && !cond()) {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out: %d frames out (want %d)", r.col.frames.Load(), target)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// snapshot decodes the last frame received so far (the collector's file is closed and reopened
// by copying it).
func (r *overlayRun) snapshot(w, h int) []byte {
	r.t.Helper()
	r.col.mu.Lock()
	data, err := os.ReadFile(r.out)
	r.col.mu.Unlock()
	if err != nil {
		r.t.Fatal(err)
	}
	p := filepath.Join(r.t.TempDir(), "snap.ivf")
	if err := os.WriteFile(p, testmedia.TailIVF(data), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return testmedia.LastRGB(r.t, p, w, h)
}

func (r *overlayRun) finish() {
	close(r.stop)
	r.wg.Wait()
	for _, e := range r.els {
		e.Release()
	}
	r.f.Close()
	r.col.close()
}

func rgbAt(img []byte, w, x, y int) (int, int, int) {
	p := img[(y*w+x)*3:]
	return int(p[0]), int(p[1]), int(p[2])
}

func isMagenta(img []byte, w, x, y int) bool {
	r, g, b := rgbAt(img, w, x, y)
	return r > 180 && b > 180 && g < 80
}

// magentaShare is the fraction of magenta pixels in a rectangle.
func magentaShare(img []byte, w int, rect image.Rectangle) float64 {
	n, m := 0, 0
	for y := rect.Min.Y; y < rect.Max.Y; y++ {
		for x := rect.Min.X; x < rect.Max.X; x++ {
			n++
			if isMagenta(img, w, x, y) {
				m++
			}
		}
	}
	return float64(m) / float64(n)
}

// TestFaceOverlayOnFace: a real photo of a face (OpenCV's sample face_swapped.jpg, cropped to
// 320x240; facedetect finds the face at x=82 y=44 144x144) as VP8 video, at 320x240 and scaled to
// 640x480 (faces are looked for at 320 wide, so there the face comes back scaled by 2); a magenta
// image placed at offsets 0.25/0.25 with size 0.5/0.5 of the face lands in the middle of the face
// and nowhere else; after unsetting it, the face shows again.
func TestFaceOverlayOnFace(t *testing.T) {
	needGst(t, "facedetect", "videoconvert", "videoscale", "tee")
	if FaceModel() == "" {
		t.Skip("no face model: install opencv-data")
	}
	for _, k := range []int{1, 2} {
		t.Run(fmt.Sprintf("%dx%d", 320*k, 240*k), func(t *testing.T) { faceOverlayAt(t, k) })
	}
}

func faceOverlayAt(t *testing.T, k int) {
	W, H := 320*k, 240*k
	clip := testmedia.VP8Clip(t, "-loop", "1", "-i", "testdata/face.jpg", "-vf", fmt.Sprintf("scale=%d:%d,format=yuv420p", W, H))
	_, img := solidPNG(t, 40, 30, magenta)
	var fo *FaceOverlay
	r := startOverlay(t, clip, func(e *media.Element) (*Filter, error) {
		var err error
		fo, err = NewFaceOverlay(e, Config{})
		if err != nil {
			return nil, err
		}
		return fo.Filter, nil
	})
	defer r.finish()
	r.waitFrames(30, nil)
	before := r.snapshot(W, H)
	// The face (82,44) 144x144 at 320x240, times k; the image box is its middle.
	box := image.Rect(118*k, 80*k, 190*k, 152*k)
	inner := box.Inset(6 * k)
	outside := []image.Point{{20, 20}, {300, 20}, {20, 220}, {300, 220}, {90, 200}, {230, 60}}
	if s := magentaShare(before, W, inner); s > 0.01 {
		t.Fatalf("magenta before any overlay: %.2f", s)
	}
	if err := fo.SetImage(img, Placement{X: 0.25, Y: 0.25, Width: 0.5, Height: 0.5}); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(30, func() bool { return fo.Drawn() >= 20 })
	r.waitFrames(10, nil)
	got := r.snapshot(W, H)
	share := magentaShare(got, W, inner)
	cr, cg, cb := rgbAt(got, W, (box.Min.X+box.Max.X)/2, (box.Min.Y+box.Max.Y)/2)
	t.Logf("with overlay: %.0f%% magenta inside the face box, its centre rgb(%d,%d,%d); drawn %d times, %d frames looked at for faces",
		share*100, cr, cg, cb, fo.Drawn(), fo.Detections())
	if share < 0.9 {
		t.Errorf("only %.2f of the face box is magenta", share)
	}
	// The box's edges: magenta ends where the face's middle half ends.
	minX, minY, maxX, maxY := W, H, 0, 0
	for y := 0; y < H; y++ {
		for x := 0; x < W; x++ {
			if isMagenta(got, W, x, y) {
				minX, minY, maxX, maxY = min(minX, x), min(minY, y), max(maxX, x), max(maxY, y)
			}
		}
	}
	t.Logf("magenta spans (%d,%d)-(%d,%d); expected about %v", minX, minY, maxX, maxY, box)
	for _, d := range []int{minX - box.Min.X, minY - box.Min.Y, maxX + 1 - box.Max.X, maxY + 1 - box.Max.Y} {
		if d < -12*k || d > 12*k {
			t.Errorf("overlay box (%d,%d)-(%d,%d) is off the face's middle %v", minX, minY, maxX, maxY, box)
			break
		}
	}
	for _, p := range outside {
		p = p.Mul(k)
		r, g, b := rgbAt(got, W, p.X, p.Y)
		t.Logf("outside (%d,%d) rgb(%d,%d,%d)", p.X, p.Y, r, g, b)
		if isMagenta(got, W, p.X, p.Y) {
			t.Errorf("magenta outside the face at %v", p)
		}
	}
	if err := fo.SetImage(nil, Placement{}); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(30, nil)
	after := r.snapshot(W, H)
	if s := magentaShare(after, W, inner); s > 0.01 {
		t.Errorf("magenta after unsetting: %.2f", s)
	}
}

// TestImageOverlayPlacement: images placed in fractions of the frame, with keepAspectRatio and
// center, over a red clip; removing one by id uncovers the video.
func TestImageOverlayPlacement(t *testing.T) {
	needGst(t, "videoconvert", "capsfilter")
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30")
	_, blue := solidPNG(t, 16, 16, icolor.NRGBA{0, 0, 255, 255})
	_, wide := solidPNG(t, 100, 50, icolor.NRGBA{0, 255, 0, 255})
	_, half := solidPNG(t, 10, 10, icolor.NRGBA{0, 0, 255, 128})
	io, r := startImageOverlay(t, clip)
	defer r.finish()
	// blue: top-left quarter (0,0)-(160,120), stretched.
	if err := io.Add("blue", blue, Placement{X: 0, Y: 0, Width: 0.5, Height: 0.5}); err != nil {
		t.Fatal(err)
	}
	// wide 2:1 image in the box (160,120)-(320,240) (160x120), aspect kept: 160x80, centred: y 140-220.
	if err := io.Add("wide", wide, Placement{X: 0.5, Y: 0.5, Width: 0.5, Height: 0.5, KeepAspectRatio: true, Center: true}); err != nil {
		t.Fatal(err)
	}
	// half-transparent blue at (0,180)-(32,240): a mix of red and blue.
	if err := io.Add("half", half, Placement{X: 0, Y: 0.75, Width: 0.1, Height: 0.25}); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(30, func() bool { return io.Drawn() >= 30 })
	r.waitFrames(10, nil)
	got := r.snapshot(320, 240)
	spots := []spot{{80, 60, "blue"}, {200, 60, "red"}, {80, 160, "red"}, {240, 180, "green"}, {240, 130, "red"}, {240, 230, "red"},
		{150, 200, "red"}}
	checkSpots(t, "overlaid", got, spots)
	pr, pg, pb := rgbAt(got, 320, 16, 210)
	t.Logf("half-transparent blue over red at (16,210): rgb(%d,%d,%d)", pr, pg, pb)
	if pr < 70 || pr > 190 || pb < 70 || pb > 190 {
		t.Errorf("(16,210) rgb(%d,%d,%d) is not a red/blue mix", pr, pg, pb)
	}
	if ok, err := io.Remove("blue"); !ok || err != nil {
		t.Fatalf("Remove(blue) = %v, %v", ok, err)
	}
	if ok, _ := io.Remove("nothing"); ok {
		t.Error("Remove(nothing) found something")
	}
	if ids := io.IDs(); fmt.Sprint(ids) != "[wide half]" {
		t.Errorf("ids %v", ids)
	}
	r.waitFrames(30, nil)
	got = r.snapshot(320, 240)
	checkSpots(t, "after removing blue", got, []spot{{80, 60, "red"}, {240, 180, "green"}})
}
