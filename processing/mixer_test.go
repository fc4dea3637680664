package processing

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// TestMixerGrid: two ports of a Composite, one of them sending the asymmetric clip: the other port
// receives the 800x600 mix, which shows the clip (the only video) over the whole picture; when a
// second port sends video too, the grid has two cells side by side.
func TestMixerGrid(t *testing.T) {
	needGst(t, "compositor", "audiomixer", "videotestsrc")
	pl := media.NewPipeline()
	t.Cleanup(pl.Close)
	a, b := pl.NewElement("a", nil), pl.NewElement("b", nil)
	a.HubPort()
	b.HubPort()
	pipelines := gst.Live()
	m := NewMixer(MixerConfig{}, func() media.EncoderBitrate { return media.EncoderBitrate{Target: 500000} })
	defer m.Close()
	m.AddPort(a)
	m.AddPort(b)

	pubA := pl.NewElement("pubA", nil)
	if err := media.Connect(pubA, a, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	col, sub, out := collectFrom(t, pl, b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	clip := asymmetricClip(t)
	publish(t, pubA.Source(media.Video, media.DefaultPad), clip, stop, &wg)
	waitUntil(t, 20*time.Second, "30 mixed frames at port b", func() bool { return col.frames.Load() >= 30 })
	// The layout follows the ports that send video, checked once a second: let it settle.
	time.Sleep(2500 * time.Millisecond)
	n := col.frames.Load()
	waitUntil(t, 10*time.Second, "15 more frames", func() bool { return col.frames.Load() >= n+15 })
	got := lastFrame(t, col, out)
	checkSpotsW(t, "one sender", got, 800, []spot{{100, 300, "blue"}, {600, 400, "red"}, {400, 60, "green"}})

	// Port b sends white video too: two cells side by side, each 400x600 with the 4:3 picture
	// letterboxed in it.
	pubB := pl.NewElement("pubB", nil)
	if err := media.Connect(pubB, b, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	white := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=white:s=320x240:r=30")
	publish(t, pubB.Source(media.Video, media.DefaultPad), white, stop, &wg)
	time.Sleep(3 * time.Second)
	out2 := filepath.Join(t.TempDir(), "mix2.ivf")
	col2 := newCollector(t, out2)
	sub.SetInputs(inputs{media.Video: col2})
	if err := media.Disconnect(b, sub, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	if err := media.Connect(b, sub, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	b.Source(media.Video, media.DefaultPad).RequestKeyframe() // as a new viewer's PLI: its decoder starts there
	waitUntil(t, 10*time.Second, "30 frames of the two-cell grid", func() bool { return col2.frames.Load() >= 30 })
	got = lastFrame(t, col2, out2)
	checkSpotsW(t, "two senders", got, 800, []spot{{50, 300, "blue"}, {300, 320, "red"}, {600, 300, "white"}, {600, 100, "black"}})

	// A viewer of port a whose link takes 150 kb/s: the one encoder follows it.
	viewer := pl.NewElement("viewer", nil)
	sender := viewer.NewSender(media.Video, media.DefaultPad)
	viewer.SetInputs(inputs{media.Video: sender})
	sender.Bind(1234, 96, *VP8, func(*rtp.Header, []byte) error { return nil })
	if err := media.Connect(a, viewer, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	sender.OnREMB(150000)
	waitUntil(t, 5*time.Second, "the mix encoder at the viewer's 150 kb/s", func() bool {
		v, err := m.run.Load().pipe.Get(encName, "target-bitrate")
		return err == nil && v == int64(150000)
	})

	m.Close()
	if n := gst.Live(); n != pipelines {
		t.Errorf("%d GStreamer pipelines after the mixer closed, %d before", n, pipelines)
	}
}

// lastFrame closes the collector and decodes the last frame it got, at the mixer's size.
func lastFrame(t *testing.T, col *collector, path string) []byte {
	t.Helper()
	col.close()
	return testmedia.LastRGB(t, path, 800, 600)
}
