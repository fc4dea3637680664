//go:build !kmsfuzz

package recorder_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if clips.dir != "" {
		os.RemoveAll(clips.dir)
	}
	os.Exit(code)
}

// needFFmpeg skips tests that make or check media files when ffmpeg is missing.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("SKIP: %s not found; the recorder's media tests need ffmpeg and ffprobe (apt-get install ffmpeg)", bin)
		}
	}
}

// clips are made once per test binary: 3 s (looped by the peers) of VP8 (IVF), H.264 (Annex-B) and Opus (Ogg), with a
// keyframe every 10 frames so that a recording starts within a third of a second.
var clips struct {
	once            sync.Once
	dir             string
	vp8, h264, opus string
	err             error
}

func clipFiles(t *testing.T) (vp8, h264, opus string) {
	t.Helper()
	needFFmpeg(t)
	clips.once.Do(func() {
		dir, err := os.MkdirTemp("", "recorder-clips-")
		if err != nil {
			clips.err = err
			return
		}
		clips.dir = dir
		clips.vp8, clips.h264, clips.opus = filepath.Join(dir, "clip.ivf"), filepath.Join(dir, "clip.h264"), filepath.Join(dir, "clip.ogg")
		src := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "3"}
		jobs := [][]string{
			append(append([]string{}, src...), "-c:v", "libvpx", "-g", "10", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-y", clips.vp8),
			append(append([]string{}, src...), "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
				"-x264-params", "keyint=10:min-keyint=10:scenecut=0:repeat-headers=1:sliced-threads=0:threads=1", "-f", "h264", "-y", clips.h264),
			{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "3",
				"-c:a", "libopus", "-b:a", "32k", "-ac", "2", "-page_duration", "20000", "-y", clips.opus},
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // three short clips: seconds, but minutes on a loaded machine
		defer cancel()
		errs := make(chan error, len(jobs))
		for _, args := range jobs {
			go func() {
				out, err := exec.CommandContext(ctx, "ffmpeg", args...).CombinedOutput()
				if err != nil {
					err = fmt.Errorf("ffmpeg %v: %v\n%s", args, err, out)
				}
				errs <- err
			}()
		}
		for range jobs {
			if err := <-errs; err != nil && clips.err == nil {
				clips.err = err
			}
		}
	})
	if clips.err != nil {
		t.Fatal(clips.err)
	}
	return clips.vp8, clips.h264, clips.opus
}

// probe is what ffprobe says about a file.
type probe struct {
	Streams []struct {
		Index     int    `json:"index"`
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Packets []struct {
		StreamIndex int    `json:"stream_index"`
		PTS         string `json:"pts_time"`
		Duration    string `json:"duration_time"`
	} `json:"packets"`
}

func ffprobe(t *testing.T, file string) *probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_format", "-show_streams",
		"-show_entries", "packet=stream_index,pts_time,duration_time", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	return &p
}

// decodeErrors decodes the whole file with ffmpeg and returns what it complained about.
func decodeErrors(t *testing.T, file string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The decoded frames keep the container's timebase (-enc_time_base -1): at ffmpeg's default of
	// the guessed frame rate, millisecond timestamps of a 30 fps stream can round two frames to one
	// tick and be reported as non-monotonic although the file is right.
	out, err := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-i", file, "-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return string(out)
}

// codecs lists "type:name" of the streams, sorted.
func (p *probe) codecs() []string {
	var out []string
	for _, s := range p.Streams {
		out = append(out, s.CodecType+":"+s.CodecName)
	}
	sort.Strings(out)
	return out
}

// duration is the format duration, or NaN when the container gives none.
func (p *probe) duration() float64 {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		return math.NaN()
	}
	return d
}

// lastPacketEnd is the end of the last packet (pts + duration), over all streams.
func (p *probe) lastPacketEnd() float64 {
	end := 0.0
	for _, k := range p.Packets {
		pts, err := strconv.ParseFloat(k.PTS, 64)
		if err != nil {
			continue
		}
		d, _ := strconv.ParseFloat(k.Duration, 64)
		end = math.Max(end, pts+d)
	}
	return end
}

// maxGap is the longest time between consecutive packets of one stream, over all streams.
func (p *probe) maxGap() float64 {
	last := map[int]float64{}
	gap := 0.0
	for _, k := range p.Packets {
		pts, err := strconv.ParseFloat(k.PTS, 64)
		if err != nil {
			continue
		}
		if l, ok := last[k.StreamIndex]; ok {
			gap = math.Max(gap, pts-l)
		}
		last[k.StreamIndex] = pts
	}
	return gap
}

// event is one Kurento event as the test saw it.
type event struct {
	Object, Type string
	Data         map[string]any
}

// events keeps the events of the objects subscribed, in arrival order.
type events struct {
	mu  sync.Mutex
	all []event
}

func (e *events) subscribe(t *testing.T, ctx context.Context, c *client.Client, object string, types ...string) {
	t.Helper()
	for _, typ := range types {
		err := c.Subscribe(ctx, object, typ, func(ev client.Event) {
			var data map[string]any
			json.Unmarshal(ev.Data, &data)
			e.mu.Lock()
			e.all = append(e.all, event{Object: ev.Object, Type: ev.Type, Data: data})
			e.mu.Unlock()
		})
		if err != nil {
			t.Fatalf("subscribe %s: %v", typ, err)
		}
	}
}

// of lists the events of one object, as "Type" or "Type:state" for state changes.
func (e *events) of(object string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, ev := range e.all {
		if ev.Object != object {
			continue
		}
		s := ev.Type
		if st, ok := ev.Data["state"].(string); ok && ev.Type == "UriEndpointStateChanged" {
			s += ":" + st
		}
		if typ, ok := ev.Data["type"].(string); ok && ev.Type == "Error" {
			s += ":" + typ
		}
		out = append(out, s)
	}
	return out
}

func (e *events) find(object, typ string) *event {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if ev.Object == object && ev.Type == typ {
			return &ev
		}
	}
	return nil
}

// waitFor polls until cond holds or the deadline passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// publish connects a clip peer to a new WebRtcEndpoint of the pipeline and returns the endpoint.
func publish(t *testing.T, ctx context.Context, c *client.Client, pipeline string, opts testpeer.ClipOptions) string {
	t.Helper()
	p, err := testpeer.NewClip(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if err := p.Connect(ctx, c, pipeline, false); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return p.Endpoint
}

func invoke(t *testing.T, ctx context.Context, c *client.Client, object, op string, params map[string]any) {
	t.Helper()
	if err := c.Invoke(ctx, object, op, params, nil); err != nil {
		t.Fatalf("%s %s: %v", op, object, err)
	}
}
