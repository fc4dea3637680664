package gst

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"testing"
	"time"
)

func solid(w, h int, c color.NRGBA) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < len(img.Pix); i += 4 {
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = c.R, c.G, c.B, c.A
	}
	return img
}

func TestParseBin(t *testing.T) {
	need(t, "videoconvert", "identity")
	if _, err := ParseBin("videoconvert ! nosuchelement"); err == nil {
		t.Fatal("no error for an unknown element")
	} else {
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("err %T %v, want *ParseError", err, err)
		}
	}
	bin, err := ParseBin("videoconvert ! identity name=inner")
	if err != nil {
		t.Fatal(err)
	}
	if bin.Kind() != KindVideo {
		t.Errorf("bin kind %v, want video (ghost pads)", bin.Kind())
	}
	p, err := NewPipeline("videotestsrc num-buffers=1 ! capsfilter name=a caps=video/x-raw,width=8,height=8 fakesink name=b")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Insert(bin, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get("inner", "silent"); err != nil {
		t.Errorf("element inside the bin: %v", err)
	}
}

// TestOverlay draws into RGB frames: an opaque image placed in fractions of the frame, a
// half-transparent one, and images around a region of interest named "face".
func TestOverlay(t *testing.T) {
	need(t, "videotestsrc", "appsink", "identity")
	const w, h = 64, 48
	p, err := NewPipeline("videotestsrc pattern=red is-live=true ! video/x-raw,format=RGB,width=64,height=48,framerate=30/1 ! " +
		"identity name=o ! appsink name=out sync=false max-buffers=2 drop=true")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ov, err := p.Overlay("o")
	if err != nil {
		t.Fatal(err)
	}
	frames := make(chan []byte, 1)
	if err := p.HandleSink("out", func(data []byte, _ time.Duration) {
		select {
		case frames <- bytes.Clone(data):
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ov.Set([]OverlayImage{
		{Image: solid(4, 4, color.NRGBA{0, 0, 255, 255}), X: 0.5, Y: 0, Width: 0.5, Height: 0.5},
		{Image: solid(4, 4, color.NRGBA{0, 255, 0, 128}), X: 0, Y: 0.5, Width: 0.25, Height: 0.5},
		// Faces: none in this video, so never drawn.
		{Image: solid(4, 4, color.NRGBA{255, 255, 255, 255}), Faces: true, X: 0, Y: 0, Width: 1, Height: 1},
	}); err != nil {
		t.Fatal(err)
	}
	var f []byte
	deadline := time.After(10 * time.Second)
	for drawn := ov.Drawn(); ov.Drawn() < drawn+3; {
		select {
		case f = <-frames:
		case <-deadline:
			t.Fatal("no frames drawn")
		}
	}
	for i := 0; i < 4; i++ { // past frames queued before the images were set
		f = <-frames
	}
	px := func(x, y int) [3]byte { o := (y*w + x) * 3; return [3]byte{f[o], f[o+1], f[o+2]} }
	for _, c := range []struct {
		x, y int
		want [3]byte
	}{{48, 12, [3]byte{0, 0, 255}}, {16, 12, [3]byte{255, 0, 0}}, {48, 36, [3]byte{255, 0, 0}}, {32, 0, [3]byte{0, 0, 255}}, {31, 0, [3]byte{255, 0, 0}}} {
		if got := px(c.x, c.y); got != c.want {
			t.Errorf("(%d,%d) = %v, want %v", c.x, c.y, got, c.want)
		}
	}
	mix := px(8, 36)
	t.Logf("half-transparent green over red: %v", mix)
	if mix[0] < 110 || mix[0] > 145 || mix[1] < 110 || mix[1] > 145 || mix[2] != 0 {
		t.Errorf("(8,36) = %v, want about (127,128,0)", mix)
	}
	if err := ov.Set(nil); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if err := ov.Set(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Set after Close: %v", err)
	}
}
