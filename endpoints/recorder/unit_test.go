package recorder

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

func TestParseProfile(t *testing.T) {
	cases := []struct {
		name         string
		c            Container
		audio, video bool
		err          error
	}{
		{"WEBM", WebM, true, true, nil},
		{"WEBM_AUDIO_ONLY", WebM, true, false, nil},
		{"WEBM_VIDEO_ONLY", WebM, false, true, nil},
		{"MKV", Matroska, true, true, nil},
		{"MKV_AUDIO_ONLY", Matroska, true, false, nil},
		{"MKV_VIDEO_ONLY", Matroska, false, true, nil},
		{"MP4", MP4, true, true, nil},
		{"MP4_AUDIO_ONLY", MP4, true, false, nil},
		{"MP4_VIDEO_ONLY", MP4, false, true, nil},
		{"JPEG_VIDEO_ONLY", JPEG, false, true, nil},
		{"JPEG", 0, false, false, ErrProfileUnsupported},
		{"FLV", FLV, true, true, nil},
		{"FLV_AUDIO_ONLY", 0, false, false, ErrProfileUnsupported},
		{"KURENTO_SPLIT_RECORDER", 0, false, false, ErrSplitRecorder},
	}
	for _, c := range cases {
		p, err := ParseProfile(c.name)
		if !errors.Is(err, c.err) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.err)
			continue
		}
		if err == nil && (p.Container != c.c || p.Audio != c.audio || p.Video != c.video) {
			t.Errorf("%s: got %+v", c.name, p)
		}
	}
}

func TestResolveURI(t *testing.T) {
	cases := []struct{ uri, def, want string }{
		{"file:///tmp/a.webm", "file:///var/lib/kurento/", "/tmp/a.webm"},
		{"rec/a.webm", "file:///var/lib/kurento/", "/var/lib/kurento/rec/a.webm"},
		{"a.webm", "file:///data", "/data/a.webm"},
		{"file://%2Ftmp%2Fb.webm", "file:///x/", "/tmp/b.webm"},
	}
	for _, c := range cases {
		u, err := ResolveURI(c.uri, c.def)
		if err != nil || u.Scheme != "file" || u.Path != c.want {
			t.Errorf("ResolveURI(%q, %q) = %v, %v; want file %s", c.uri, c.def, u, err, c.want)
		}
	}
	if u, err := ResolveURI("https://example.com/up?x=1", "file:///x/"); err != nil || u.Scheme != "https" {
		t.Errorf("https: %v %v", u, err)
	}
	if _, err := ResolveURI("file://host/a.webm", "file:///x/"); err == nil {
		t.Error("a file uri with a host should be refused")
	}
}

// TestBurstNeverBlocks pushes packets much faster than real time on the source's goroutine: WriteRTP
// never blocks (the queue drops and counts), and what was queued still makes a readable file.
func TestBurstNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "burst.webm")
	u, _ := ResolveURI("file://"+file, "")
	p := media.NewPipeline()
	defer p.Close()
	srcEl := p.NewElement(nil, nil)
	recEl := p.NewElement(nil, func(media.Event) {})
	prof, _ := ParseProfile("WEBM_AUDIO_ONLY")
	r := New(recEl, Config{URI: u, Profile: prof, QueueLen: 64})
	if err := media.Connect(srcEl, recEl, media.Audio, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	src := srcEl.Source(media.Audio, media.DefaultPad)
	src.SetCodec(&media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2})
	r.Record()
	time.Sleep(50 * time.Millisecond)
	payload := make([]byte, 120)
	payload[0] = 0xfc // Opus TOC: 20 ms CELT frame
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2}, Payload: payload}
	const n = 20000
	start := time.Now()
	var worst time.Duration
	for i := 0; i < n; i++ {
		pkt.SequenceNumber = uint16(i)
		pkt.Timestamp = uint32(i * 960)
		t0 := time.Now()
		src.WriteRTP(pkt)
		worst = max(worst, time.Since(t0))
	}
	elapsed := time.Since(start)
	if !r.StopAndWait(StopTimeout) {
		t.Fatal("stopAndWait timed out")
	}
	r.Close()
	st := r.Stats()
	t.Logf("%d packets in %v (%.0f ns each, worst %v): queued %d, dropped %d, frames written %d, %d bytes",
		n, elapsed, float64(elapsed.Nanoseconds())/n, worst, st.Packets, st.Drops, st.Frames, st.Bytes)
	if st.Packets+st.Drops != n {
		t.Errorf("queued %d + dropped %d != %d", st.Packets, st.Drops, n)
	}
	if st.Frames == 0 {
		t.Error("nothing written")
	}
	if worst > 50*time.Millisecond {
		t.Errorf("WriteRTP blocked for %v", worst)
	}
	if _, err := exec.LookPath("ffprobe"); err == nil {
		if out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", file).CombinedOutput(); err != nil {
			t.Errorf("ffprobe: %v\n%s", err, out)
		}
	} else if _, err := os.Stat(file); err != nil {
		t.Error(err)
	}
}

// TestPacketsPlacedByArrival: a packet read after a Pause or Record command that came later is
// placed by its arrival time, so no frame from the paused time slips into the file.
func TestPacketsPlacedByArrival(t *testing.T) {
	w := &writer{state: StatePause, resumedAt: 100, pausedAt: 200}
	cases := []struct {
		at   int64
		want bool
	}{{50, false}, {150, true}, {250, false}}
	for _, c := range cases {
		if got := w.recorded(c.at); got != c.want {
			t.Errorf("paused at 200: packet of %d recorded %v, want %v", c.at, got, c.want)
		}
	}
	w.state, w.resumedAt = StateStart, 300
	for _, c := range []struct {
		at   int64
		want bool
	}{{150, false}, {250, false}, {350, true}} {
		if got := w.recorded(c.at); got != c.want {
			t.Errorf("resumed at 300: packet of %d recorded %v, want %v", c.at, got, c.want)
		}
	}
}

// TestResumeKeepsFrameSpacing: the first frame after a pause keeps the usual distance from the last
// frame before it, even when its keyframe comes at once.
func TestResumeKeepsFrameSpacing(t *testing.T) {
	w := &writer{}
	tr := &track{kind: media.Video, clock: 90000}
	ms := int64(time.Millisecond)
	var last int64
	for i := int64(0); i < 4; i++ {
		last = w.timestamp(tr, &frame{ts: uint32(i * 3000), at: i * 33 * ms})
	}
	// Paused at 110 ms for 2 s; the keyframe after the resume arrives 2 ms after it.
	tr.restart()
	w.pausedTotal = 2000 * ms
	got := w.timestamp(tr, &frame{ts: 900000, at: 2112 * ms})
	if got-last < 33*ms {
		t.Errorf("first frame after the pause at %v, %v after the last one; want at least 33 ms",
			time.Duration(got), time.Duration(got-last))
	}
	next := w.timestamp(tr, &frame{ts: 903000, at: 2145 * ms})
	if d := next - got; d < 32*ms || d > 34*ms {
		t.Errorf("the frame after it %v later, want 33 ms", time.Duration(d))
	}
}
