//go:build !kmsfuzz

package recorder_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/processing"
)

// session is an in-process server, a client and a pipeline, with a hard deadline.
func session(t *testing.T, timeout time.Duration) (context.Context, *client.Client, string) {
	t.Helper()
	return testserver.Connect(t, testserver.Start(t).URL, timeout)
}

var recorderEvents = []string{"UriEndpointStateChanged", "Recording", "Paused", "Stopped", "Error"}

// recording is one RecorderEndpoint under test.
type recording struct {
	id, file    string
	started     time.Time
	recorded    time.Duration
	pausedFor   time.Duration
	wantCodecs  []string
	wantError   string
	fromPackets bool // the container has no duration (an upload): use the last packet's end
}

func newRecording(t *testing.T, ctx context.Context, c *client.Client, ev *events, pipeline, source, uri, profile string, codecs ...string) *recording {
	t.Helper()
	id, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": uri, "mediaProfile": profile})
	if err != nil {
		t.Fatalf("create RecorderEndpoint %s: %v", profile, err)
	}
	ev.subscribe(t, ctx, c, id, recorderEvents...)
	invoke(t, ctx, c, source, "connect", map[string]any{"sink": id})
	return &recording{id: id, file: strings.TrimPrefix(uri, "file://"), wantCodecs: codecs}
}

func (r *recording) record(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	invoke(t, ctx, c, r.id, "record", nil)
	r.started = time.Now()
}

func (r *recording) stopAndWait(t *testing.T, ctx context.Context, c *client.Client) {
	t.Helper()
	r.recorded = time.Since(r.started) - r.pausedFor
	invoke(t, ctx, c, r.id, "stopAndWait", nil)
}

// check runs ffprobe on the file: the expected streams, and a duration within 0.5 s of the time
// recorded.
func (r *recording) check(t *testing.T, name string) *probe {
	t.Helper()
	p := ffprobe(t, r.file)
	if got := p.codecs(); !slices.Equal(got, r.wantCodecs) {
		t.Errorf("%s: streams %v, want %v", name, got, r.wantCodecs)
	}
	d, how := p.duration(), "format duration"
	if math.IsNaN(d) || r.fromPackets {
		d, how = p.lastPacketEnd(), "last packet end"
	}
	want := r.recorded.Seconds()
	t.Logf("%s: %s %.3f s for %.3f s recorded; streams %v; max gap %.3f s", name, how, d, want, p.codecs(), p.maxGap())
	if math.Abs(d-want) > 0.5 {
		t.Errorf("%s: duration %.3f s, recorded %.3f s", name, d, want)
	}
	if errs := decodeErrors(t, r.file); errs != "" {
		t.Errorf("%s: ffmpeg decoding reports errors:\n%s", name, errs)
	}
	if ext := filepath.Ext(r.file); (ext == ".webm" || ext == ".mkv") && !r.fromPackets {
		// Players seek with the Cues: one at least every 5 s (the longest cluster), to the end.
		cues := testmedia.CueTimes(t, r.file)
		if len(cues) == 0 || cues[len(cues)-1].Seconds() < want-5.5 {
			t.Errorf("%s: cues %v for %.3f s recorded", name, cues, want)
		}
	}
	return p
}

// TestRecordVP8Opus records one VP8+Opus publisher into every kind of recording at once, for about
// ten seconds: WEBM, its audio-only and video-only profiles, MKV, an upload by HTTP POST, MP4 (VP8
// transcoded to H.264, Opus kept), FLV (the same H.264, AAC), and a WEBM recording paused for two
// seconds.
func TestRecordVP8Opus(t *testing.T) {
	t.Parallel()
	vp8, _, opus := clipFiles(t)
	ctx, c, pipeline := session(t, 60*time.Second)
	dir := t.TempDir()
	src := publish(t, ctx, c, pipeline, testpeer.ClipOptions{Video: vp8, Audio: opus})

	var upload struct {
		sync.Mutex
		chunked bool
		err     error
	}
	uploaded := filepath.Join(dir, "uploaded.webm")
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		f, err := os.Create(uploaded)
		if err == nil {
			_, err = io.Copy(f, req.Body)
			f.Close()
		}
		upload.Lock()
		upload.chunked, upload.err = slices.Contains(req.TransferEncoding, "chunked"), err
		upload.Unlock()
	}))
	defer hs.Close()

	ev := &events{}
	av := []string{"audio:opus", "video:vp8"}
	recs := map[string]*recording{
		"WEBM":            newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.webm", "WEBM", av...),
		"WEBM_AUDIO_ONLY": newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/a.webm", "WEBM_AUDIO_ONLY", "audio:opus"),
		"WEBM_VIDEO_ONLY": newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/v.webm", "WEBM_VIDEO_ONLY", "video:vp8"),
		"MKV":             newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.mkv", "MKV", av...),
		"MP4 of VP8":      newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/vp8.mp4", "MP4", "audio:opus", "video:h264"),
		"FLV of VP8":      newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.flv", "FLV", "audio:aac", "video:h264"),
		"HTTP POST":       newRecording(t, ctx, c, ev, pipeline, src, hs.URL+"/upload", "WEBM", av...),
		"paused":          newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/paused.webm", "WEBM", av...),
	}
	recs["HTTP POST"].file, recs["HTTP POST"].fromPackets = uploaded, true
	for _, r := range recs {
		r.record(t, ctx, c)
	}

	paused := recs["paused"]
	time.Sleep(3 * time.Second)
	invoke(t, ctx, c, paused.id, "pause", nil)
	pausedAt := time.Now()
	time.Sleep(2 * time.Second)
	invoke(t, ctx, c, paused.id, "record", nil)
	paused.pausedFor = time.Since(pausedAt)
	time.Sleep(5 * time.Second)

	for _, r := range recs {
		r.stopAndWait(t, ctx, c)
	}
	for name, r := range recs {
		got := ev.of(r.id)
		want := []string{"UriEndpointStateChanged:START", "Recording", "UriEndpointStateChanged:STOP", "Stopped"}
		switch {
		case r == paused:
			want = []string{"UriEndpointStateChanged:START", "Recording", "UriEndpointStateChanged:PAUSE", "Paused",
				"UriEndpointStateChanged:START", "Recording", "UriEndpointStateChanged:STOP", "Stopped"}
		case r.wantError != "":
			want = slices.Insert(want, 2, "Error:"+r.wantError)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: events %v, want %v", name, got, want)
		}
		var state string
		if err := c.Invoke(ctx, r.id, "getState", nil, &state); err != nil || state != "STOP" {
			t.Errorf("%s: getState %q %v, want STOP", name, state, err)
		}
		p := r.check(t, name)
		if r == paused && p.maxGap() >= paused.pausedFor.Seconds() {
			t.Errorf("paused: a gap of %.3f s in the file, paused for %.3f s", p.maxGap(), paused.pausedFor.Seconds())
		}
	}
	upload.Lock()
	if upload.err != nil || !upload.chunked {
		t.Errorf("upload: chunked %v, err %v", upload.chunked, upload.err)
	}
	upload.Unlock()
}

// TestRecordH264 records an H.264+Opus publisher into MP4 (fragmented), MKV, MP4_VIDEO_ONLY, WEBM
// (H.264 transcoded to VP8), FLV (Opus encoded to AAC) and JPEG_VIDEO_ONLY (a JPEG image per frame).
func TestRecordH264(t *testing.T) {
	t.Parallel()
	_, h264, opus := clipFiles(t)
	ctx, c, pipeline := session(t, 60*time.Second)
	dir := t.TempDir()
	src := publish(t, ctx, c, pipeline, testpeer.ClipOptions{Video: h264, Audio: opus})
	ev := &events{}
	av := []string{"audio:opus", "video:h264"}
	recs := map[string]*recording{
		"MP4":            newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.mp4", "MP4", av...),
		"MP4_VIDEO_ONLY": newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/v.mp4", "MP4_VIDEO_ONLY", "video:h264"),
		"MKV":            newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.mkv", "MKV", av...),
		"WEBM of H264":   newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.webm", "WEBM", "audio:opus", "video:vp8"),
		"FLV":            newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/av.flv", "FLV", "audio:aac", "video:h264"),
	}
	jpeg := newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/v.jpeg", "JPEG_VIDEO_ONLY")
	recs["JPEG_VIDEO_ONLY"] = jpeg
	for _, r := range recs {
		r.record(t, ctx, c)
	}
	time.Sleep(6 * time.Second)
	for _, r := range recs {
		r.stopAndWait(t, ctx, c)
	}
	for name, r := range recs {
		want := []string{"UriEndpointStateChanged:START", "Recording", "UriEndpointStateChanged:STOP", "Stopped"}
		if got := ev.of(r.id); !slices.Equal(got, want) {
			t.Errorf("%s: events %v, want %v", name, got, want)
		}
		if r != jpeg {
			r.check(t, name)
		}
	}
	// The JPEG recording is the frames as images, one after the other: about 30 of them a second.
	data, err := os.ReadFile(jpeg.file)
	if err != nil {
		t.Fatal(err)
	}
	images := bytes.Count(data, []byte{0xff, 0xd8, 0xff})
	t.Logf("JPEG_VIDEO_ONLY: %d images, %d bytes, for %.3f s recorded", images, len(data), jpeg.recorded.Seconds())
	if want := 30 * jpeg.recorded.Seconds(); float64(images) < want*0.8 || float64(images) > want*1.1 {
		t.Errorf("JPEG_VIDEO_ONLY: %d images for %.1f s at 30 fps", images, jpeg.recorded.Seconds())
	}
	if out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", jpeg.file).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "mjpeg,320,240") {
		t.Errorf("JPEG_VIDEO_ONLY: ffprobe reads %q (%v), want mjpeg 320x240", out, err)
	}
}

// TestProfilesAndStates checks creation errors, the state machine without media and KMS's
// single-use rule; no media, no file.
func TestProfilesAndStates(t *testing.T) {
	t.Parallel()
	ctx, c, pipeline := session(t, 20*time.Second)
	dir := t.TempDir()
	for profile, code := range map[string]int{"KURENTO_SPLIT_RECORDER": 40107} {
		_, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + dir + "/x", "mediaProfile": profile})
		var e *client.Error
		if !errors.As(err, &e) || e.Code != code {
			t.Errorf("%s: got %v, want error %d", profile, err, code)
		}
	}
	for _, profile := range []string{"WEBM", "MKV", "MP4", "WEBM_VIDEO_ONLY", "WEBM_AUDIO_ONLY", "MKV_VIDEO_ONLY", "MKV_AUDIO_ONLY", "MP4_VIDEO_ONLY", "MP4_AUDIO_ONLY",
		"FLV", "JPEG_VIDEO_ONLY"} {
		if _, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + dir + "/x", "mediaProfile": profile}); err != nil {
			t.Errorf("%s: %v", profile, err)
		}
	}

	ev := &events{}
	file := dir + "/nomedia.webm"
	id, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + strings.ReplaceAll(file, "/", "%2F")})
	if err != nil {
		t.Fatal(err)
	}
	ev.subscribe(t, ctx, c, id, recorderEvents...)
	var uri, state string
	if err := c.Invoke(ctx, id, "getUri", nil, &uri); err != nil || uri != "file://"+file {
		t.Errorf("getUri: %q %v", uri, err)
	}
	if err := c.Invoke(ctx, id, "getState", nil, &state); err != nil || state != "STOP" {
		t.Errorf("getState before record: %q %v", state, err)
	}
	invoke(t, ctx, c, id, "pause", nil) // invalid: logged only
	invoke(t, ctx, c, id, "record", nil)
	invoke(t, ctx, c, id, "record", nil) // invalid: logged only
	if !waitFor(2*time.Second, func() bool { c.Invoke(ctx, id, "getState", nil, &state); return state == "START" }) {
		t.Errorf("getState after record: %q", state)
	}
	invoke(t, ctx, c, id, "pause", nil)
	start := time.Now()
	invoke(t, ctx, c, id, "stopAndWait", nil)
	if d := time.Since(start); d > time.Second {
		t.Errorf("stopAndWait without media took %v", d)
	}
	invoke(t, ctx, c, id, "record", nil) // single use: ignored
	invoke(t, ctx, c, id, "stop", nil)   // ignored
	time.Sleep(200 * time.Millisecond)
	if err := c.Invoke(ctx, id, "getState", nil, &state); err != nil || state != "STOP" {
		t.Errorf("getState after record-after-stop: %q %v", state, err)
	}
	want := []string{"UriEndpointStateChanged:START", "Recording", "UriEndpointStateChanged:PAUSE", "Paused",
		"UriEndpointStateChanged:STOP", "Stopped"}
	if got := ev.of(id); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a recording without media left a file: %v", err)
	}

	// A directory that does not exist: RESOURCE_ERROR_OPEN when recording starts, not a call error.
	bad, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file:///nonexistent-dir/x.webm"})
	if err != nil {
		t.Fatal(err)
	}
	ev.subscribe(t, ctx, c, bad, recorderEvents...)
	invoke(t, ctx, c, bad, "record", nil)
	if !waitFor(2*time.Second, func() bool { return ev.find(bad, "Error") != nil }) {
		t.Fatalf("no Error event for a bad path: %v", ev.of(bad))
	}
	if e := ev.find(bad, "Error"); e.Data["type"] != "RESOURCE_ERROR_OPEN" {
		t.Errorf("bad path: error %v", e.Data)
	}
	// Release while recording finalizes first (stopAndWait).
	if err := c.Release(ctx, bad); err != nil {
		t.Fatal(err)
	}
}

// TestMissingTrack records an audio-only publisher with the audio+video WEBM profile, connected for
// every media type: the recorder waits 2 s for video, then writes the audio it has (from the start).
func TestMissingTrack(t *testing.T) {
	t.Parallel()
	_, _, opus := clipFiles(t)
	ctx, c, pipeline := session(t, 30*time.Second)
	dir := t.TempDir()
	src := publish(t, ctx, c, pipeline, testpeer.ClipOptions{Audio: opus})
	ev := &events{}
	r := newRecording(t, ctx, c, ev, pipeline, src, "file://"+dir+"/audio.webm", "WEBM", "audio:opus")
	r.record(t, ctx, c)
	time.Sleep(4 * time.Second)
	r.stopAndWait(t, ctx, c)
	r.check(t, "WEBM without video")
}

// TestRecordWaitsForSlowTranscoder: on a loaded machine the transcoder of an H.264 publisher into a
// WEBM recording (a GStreamer worker to start) takes longer than the 2 s a recording waits for its
// second track. The recording waits for it: the file has the VP8 video, not only the audio. (It
// failed so under load: "WEBM of H264: streams [audio:opus]".) The tracks are decided when the
// header is written: the recording stops once the file has it. Not parallel: it slows every
// transcoder of the process down.
func TestRecordWaitsForSlowTranscoder(t *testing.T) {
	_, h264, opus := clipFiles(t)
	media.SetTranscoderFactory(func(from *media.Source, to media.Codec, out *media.Source) (media.Transcoder, error) {
		time.Sleep(3 * time.Second)
		return processing.NewTranscoder(from, to, out)
	})
	t.Cleanup(func() { media.SetTranscoderFactory(processing.NewTranscoder) })
	ctx, c, pipeline := session(t, 60*time.Second)
	src := publish(t, ctx, c, pipeline, testpeer.ClipOptions{Video: h264, Audio: opus})
	ev := &events{}
	r := newRecording(t, ctx, c, ev, pipeline, src, "file://"+t.TempDir()+"/av.webm", "WEBM", "audio:opus", "video:vp8")
	r.record(t, ctx, c)
	if !waitFor(45*time.Second, func() bool { fi, err := os.Stat(r.file); return err == nil && fi.Size() > 0 }) {
		t.Fatal("no file written")
	}
	r.stopAndWait(t, ctx, c)
	if got := ffprobe(t, r.file).codecs(); !slices.Equal(got, r.wantCodecs) {
		t.Errorf("streams %v, want %v", got, r.wantCodecs)
	}
}
