package processing

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	_, sub, _ := collectFrom(t, pl, b)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	clip := asymmetricClip(t)
	publish(t, pubA.Source(media.Video, media.DefaultPad), clip, stop, &wg)
	// The layout follows the ports that send video, checked once a second, and each change restarts
	// the mixing pipeline (seconds on a loaded machine): the picture is waited for.
	waitForPicture(t, b, sub, "one sender", []spot{{100, 300, "blue"}, {600, 400, "red"}, {400, 60, "green"}})

	// Port b sends white video too: two cells side by side, each 400x600 with the 4:3 picture
	// letterboxed in it.
	pubB := pl.NewElement("pubB", nil)
	if err := media.Connect(pubB, b, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	white := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=white:s=320x240:r=30")
	publish(t, pubB.Source(media.Video, media.DefaultPad), white, stop, &wg)
	waitForPicture(t, b, sub, "two senders", []spot{{50, 300, "blue"}, {300, 320, "red"}, {600, 300, "white"}, {600, 100, "black"}})

	// A viewer of port a whose link takes 150 kb/s: the one encoder follows it.
	viewer := pl.NewElement("viewer", nil)
	sender := viewer.NewSender(media.Video, media.DefaultPad)
	viewer.SetInputs(inputs{media.Video: sender})
	sender.Bind(1234, 96, *VP8, func(*rtp.Header, []byte) error { return nil })
	if err := media.Connect(a, viewer, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	sender.OnREMB(150000)
	waitUntil(t, 30*time.Second, "the mix encoder at the viewer's 150 kb/s", func() bool {
		run := m.run.Load()
		if run == nil {
			return false
		}
		v, err := run.pipe.Get(encName, "target-bitrate")
		return err == nil && v == int64(150000)
	})

	m.Close()
	if n := gst.Live(); n != pipelines {
		t.Errorf("%d GStreamer pipelines after the mixer closed, %d before", n, pipelines)
	}
}

// ivfHeader is the size of an IVF file without frames.
const ivfHeader = 32

// pictureWait bounds how long a mix may take to show a picture: a layout change restarts the mixing
// pipeline, seconds on a loaded machine, and there the mix runs at a frame a second or less.
const pictureWait = 150 * time.Second

// waitForPicture records what port sends to sub (connected to it) in a new file at a time, as a
// new viewer (a keyframe first), until the last of 15 frames, decoded at the mixer's size, shows the
// spots; past pictureWait it reports the last picture's spots.
func waitForPicture(t *testing.T, port, sub *media.Element, name string, spots []spot) {
	t.Helper()
	deadline := time.Now().Add(pictureWait)
	for try := 1; ; try++ {
		out := filepath.Join(t.TempDir(), "mix.ivf")
		col := newCollector(t, out)
		sub.SetInputs(inputs{media.Video: col})
		if err := media.Disconnect(port, sub, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
			t.Fatal(err)
		}
		if err := media.Connect(port, sub, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
			t.Fatal(err)
		}
		port.Source(media.Video, media.DefaultPad).RequestKeyframe() // as a new viewer's PLI
		waitUntil(t, time.Until(deadline), name+": 15 frames of the mix", func() bool { return col.frames.Load() >= 15 })
		col.close()
		if fi, err := os.Stat(out); err != nil || fi.Size() <= ivfHeader {
			continue // the file holds frames from a keyframe on: none came (a rebuild took the request)
		}
		got := testmedia.LastRGB(t, out, 800, 600)
		shows := true
		for _, s := range spots {
			shows = shows && testmedia.ColorAt(got, 800, s.x, s.y) == s.want
		}
		if shows || time.Now().After(deadline) {
			t.Logf("%s: the picture after %d tries", name, try)
			checkSpotsW(t, name, got, 800, spots)
			return
		}
	}
}

// TestMixerJoinsDoNotWaitForARebuild: a Composite's pipeline restarts on every join and leave, which
// takes seconds on a loaded machine. createHubPort and release must not wait for a restart in
// progress (they once queued behind one another for over 20 s with 40 ports), and the joins that
// came meanwhile are taken by one more restart, not one each.
func TestMixerJoinsDoNotWaitForARebuild(t *testing.T) {
	needGst(t, "audiomixer")
	pl := media.NewPipeline()
	t.Cleanup(pl.Close)
	var layouts atomic.Int32
	inLayout, resume := make(chan struct{}), make(chan struct{})
	cfg := MixerConfig{AudioOnly: true, Layout: func(w, h int, ports []*media.Element) []Tile {
		if layouts.Add(1) == 1 {
			close(inLayout)
			<-resume // the first rebuild is slow
		}
		return GridLayout(w, h, ports)
	}}
	m := NewMixer(cfg, func() media.EncoderBitrate { return media.EncoderBitrate{Target: 500000} })
	defer m.Close()
	port := func(name string) *media.Element {
		el := pl.NewElement(name, nil)
		el.HubPort()
		return el
	}
	a, b, c := port("a"), port("b"), port("c")
	go m.AddPort(a) // so that, were it to wait for its rebuild, the test still gets to say so
	<-inLayout

	joined := make(chan struct{})
	go func() {
		m.AddPort(b)
		m.AddPort(c)
		m.RemovePort(a)
		close(joined)
	}()
	select {
	case <-joined:
	case <-time.After(10 * time.Second):
		close(resume)
		t.Fatal("AddPort and RemovePort waited for the rebuild in progress")
	}
	close(resume)

	waitUntil(t, 30*time.Second, "a pipeline mixing b and c", func() bool {
		run := m.run.Load()
		return run != nil && len(run.index) == 2
	})
	if n := layouts.Load(); n != 2 {
		t.Errorf("%d rebuilds for one join and then three changes during it, want 2", n)
	}
}
