package elements_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
)

// needPlayer skips unless GStreamer has what the player's pipelines use and ffmpeg can make media.
func needPlayer(t *testing.T, factories ...string) {
	t.Helper()
	if err := gst.Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	for _, f := range append([]string{"uridecodebin", "decodebin", "vp8enc", "opusenc", "rtpvp8pay", "rtpopuspay",
		"videoconvert", "audioconvert", "audioresample", "appsink"}, factories...) {
		if !gst.HasElement(f) {
			t.Skipf("GStreamer element %q missing (install its plugin package)", f)
		}
	}
	testmedia.NeedFFmpeg(t)
}

// playEvents records the events of an element.
type playEvents struct {
	mu     sync.Mutex
	events []recvEvent
	signal chan struct{}
}

type recvEvent struct {
	at   time.Time
	typ  string
	data map[string]any
}

func watchEvents(ctx context.Context, t *testing.T, c *client.Client, id string, types ...string) *playEvents {
	t.Helper()
	ev := &playEvents{signal: make(chan struct{}, 1)}
	for _, typ := range types {
		err := c.Subscribe(ctx, id, typ, func(e client.Event) {
			var d map[string]any
			json.Unmarshal(e.Data, &d)
			ev.mu.Lock()
			ev.events = append(ev.events, recvEvent{at: time.Now(), typ: e.Type, data: d})
			ev.mu.Unlock()
			select {
			case ev.signal <- struct{}{}:
			default:
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return ev
}

// wait returns the n-th (1-based) event of a type, waiting for it.
func (ev *playEvents) wait(ctx context.Context, t *testing.T, typ string, n int) recvEvent {
	t.Helper()
	for {
		ev.mu.Lock()
		k := 0
		for _, e := range ev.events {
			if e.typ == typ {
				if k++; k == n {
					ev.mu.Unlock()
					return e
				}
			}
		}
		ev.mu.Unlock()
		select {
		case <-ev.signal:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s #%d; events: %v", typ, n, ev.list())
		}
	}
}

func (ev *playEvents) list() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	var out []string
	for _, e := range ev.events {
		out = append(out, fmt.Sprintf("%s%v", e.typ, e.data))
	}
	return out
}

func playerSetup(t *testing.T, timeout time.Duration) (context.Context, *client.Client, string) {
	t.Helper()
	return testserver.Connect(t, testserver.Start(t).URL, timeout)
}

// viewer connects a receiving pion peer through a new WebRtcEndpoint fed by source.
func viewer(ctx context.Context, t *testing.T, c *client.Client, pipeline, source string) *testpeer.Peer {
	t.Helper()
	peer, err := testpeer.New(testpeer.Options{Receive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if err := peer.Connect(ctx, c, pipeline, false); err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, source, "connect", map[string]any{"sink": peer.Endpoint}, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return peer
}

func createPlayer(ctx context.Context, t *testing.T, c *client.Client, pipeline, uri string, extra map[string]any) string {
	t.Helper()
	params := map[string]any{"mediaPipeline": pipeline, "uri": uri}
	for k, v := range extra {
		params[k] = v
	}
	id, err := c.Create(ctx, "PlayerEndpoint", params)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type videoInfo struct {
	IsSeekable   bool  `json:"isSeekable"`
	SeekableInit int64 `json:"seekableInit"`
	SeekableEnd  int64 `json:"seekableEnd"`
	Duration     int64 `json:"duration"`
}

func getVideoInfo(ctx context.Context, t *testing.T, c *client.Client, id string) videoInfo {
	t.Helper()
	var vi videoInfo
	if err := c.Invoke(ctx, id, "getVideoInfo", nil, &vi); err != nil {
		t.Fatal(err)
	}
	return vi
}

func getPosition(ctx context.Context, t *testing.T, c *client.Client, id string) int64 {
	t.Helper()
	var pos int64
	if err := c.Invoke(ctx, id, "getPosition", nil, &pos); err != nil {
		t.Fatal(err)
	}
	return pos
}

func pollUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// TestPlayerEndpointEndsWithoutSinks: a player connected to nothing still plays its file in real time
// and reports EndOfStream, as kurento-client's own PlayerEndpoint test expects.
func TestPlayerEndpointEndsWithoutSinks(t *testing.T) {
	needPlayer(t, "matroskademux", "vp8dec", "opusdec")
	file := testmedia.Clip(t, t.TempDir(), "clip.webm", 2*time.Second, testmedia.WebMArgs...)
	ctx, c, pipeline := playerSetup(t, 20*time.Second)
	pl := createPlayer(ctx, t, c, pipeline, "file://"+file, nil)
	ev := watchEvents(ctx, t, c, pl, "EndOfStream", "Error")
	start := time.Now()
	if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
		t.Fatal(err)
	}
	ev.wait(ctx, t, "EndOfStream", 1)
	took := time.Since(start)
	t.Logf("EndOfStream %v after play of a 2 s file with no sink", took.Round(time.Millisecond))
	if took < 1500*time.Millisecond || took > 4*time.Second || countEvents(ev, "Error") > 0 {
		t.Errorf("EndOfStream after %v (want about 2 s), events %v", took, ev.list())
	}
}

// TestPlayerEndpointContainers plays a file of each container into a WebRtcEndpoint: a pion viewer
// receives frames, getVideoInfo tells the duration, EndOfStream comes within 2 s of the media's end.
func TestPlayerEndpointContainers(t *testing.T) {
	needPlayer(t, "matroskademux", "qtdemux", "avdec_h264", "avdec_aac", "vp8dec", "opusdec")
	dir := t.TempDir()
	const length = 4 * time.Second
	webm := testmedia.Clip(t, dir, "clip.webm", length, testmedia.WebMArgs...)
	cases := []struct {
		name, file string
		encoded    bool
	}{
		{"webm-vp8-opus", webm, false},
		{"webm-vp8-opus-useEncodedMedia", webm, true},
		{"mp4-h264-aac", testmedia.Clip(t, dir, "clip.mp4", length, testmedia.MP4Args...), false},
		{"mkv-h264-aac", testmedia.Clip(t, dir, "clip.mkv", length, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := testmedia.Duration(t, tc.file)
			ctx, c, pipeline := playerSetup(t, 60*time.Second)
			pl := createPlayer(ctx, t, c, pipeline, "file://"+tc.file, map[string]any{"useEncodedMedia": tc.encoded})
			ev := watchEvents(ctx, t, c, pl, "EndOfStream", "UriEndpointStateChanged", "Error")
			peer := viewer(ctx, t, c, pipeline, pl)
			lastMedia := watchArrivals(t, peer)
			start := time.Now()
			if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := peer.WaitVideo(ctx); err != nil {
				t.Fatal(err)
			}
			firstVideo := time.Since(start)
			var vi videoInfo
			pollUntil(ctx, t, "a duration", func() bool { vi = getVideoInfo(ctx, t, c, pl); return vi.Duration > 0 })
			eos := ev.wait(ctx, t, "EndOfStream", 1)
			played := eos.at.Sub(start)
			frames, audio := peer.FramesReceived.Load(), peer.AudioReceived.Load()
			afterMedia := eos.at.Sub(lastMedia())
			t.Logf("%s: duration %v (ffprobe %v), seekable %v [%d, %d] ms; first video after %v; EndOfStream %v after play (media %v: %+v), %v after the last media received; %d video frames, %d audio packets received",
				tc.name, time.Duration(vi.Duration)*time.Millisecond, want, vi.IsSeekable, vi.SeekableInit, vi.SeekableEnd,
				firstVideo.Round(time.Millisecond), played.Round(time.Millisecond), want, (played - want).Round(time.Millisecond),
				afterMedia.Round(time.Millisecond), frames, audio)
			if d := time.Duration(vi.Duration)*time.Millisecond - want; d < -100*time.Millisecond || d > 100*time.Millisecond {
				t.Errorf("duration %d ms, want %v ± 100 ms", vi.Duration, want)
			}
			if !vi.IsSeekable {
				t.Errorf("a file is seekable: %+v", vi)
			}
			if played < want-300*time.Millisecond {
				t.Errorf("EndOfStream after %v: the media (%v) was not played in real time", played, want)
			}
			// EndOfStream follows the end of the media at once. (Compared with the last media the peer
			// got, not with the clock: on a loaded machine decoding and encoding run slower than real
			// time, and the whole media comes late.)
			if afterMedia > 2*time.Second {
				t.Errorf("EndOfStream %v after the last media received", afterMedia)
			}
			if min := int64(want.Seconds() * 30 * 0.6); frames < min {
				t.Errorf("%d video frames received, want at least %d", frames, min)
			}
			if audio == 0 {
				t.Error("no audio received")
			}
			if errs := countEvents(ev, "Error"); errs > 0 {
				t.Errorf("Error events: %v", ev.list())
			}
			// As KMS, the end of the media stops the endpoint.
			var state string
			if err := c.Invoke(ctx, pl, "getState", nil, &state); err != nil || state != "STOP" {
				t.Errorf("state after EndOfStream = %q, %v", state, err)
			}
		})
	}
}

// watchArrivals polls what peer receives until the test ends; the function it returns tells when
// the last video frame or audio packet came.
func watchArrivals(t *testing.T, peer *testpeer.Peer) func() time.Time {
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		var n int64
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if m := peer.FramesReceived.Load() + peer.AudioReceived.Load(); m != n {
				n = m
				last.Store(time.Now().UnixNano())
			}
		}
	}()
	return func() time.Time { return time.Unix(0, last.Load()) }
}

func countEvents(ev *playEvents, typ string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, e := range ev.events {
		if e.typ == typ {
			n++
		}
	}
	return n
}

// TestPlayerEndpointSeekPauseRestart: setPosition seeks (the position follows, the end comes sooner),
// pause holds the media, play after the end starts over, and a seek when stopped fails with 40700.
func TestPlayerEndpointSeekPauseRestart(t *testing.T) {
	needPlayer(t, "matroskademux", "vp8dec", "opusdec")
	const length = 6 * time.Second
	file := testmedia.Clip(t, t.TempDir(), "clip.webm", length, testmedia.WebMArgs...)
	ctx, c, pipeline := playerSetup(t, 90*time.Second)
	pl := createPlayer(ctx, t, c, pipeline, "file://"+file, nil)
	ev := watchEvents(ctx, t, c, pl, "EndOfStream", "UriEndpointStateChanged", "Error")
	peer := viewer(ctx, t, c, pipeline, pl)

	var kerr *client.Error
	if err := c.Invoke(ctx, pl, "setPosition", map[string]any{"position": 1000}, nil); !errors.As(err, &kerr) || kerr.Code != 40700 {
		t.Errorf("setPosition when stopped: %v, want 40700", err)
	}
	start := time.Now()
	if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	pollUntil(ctx, t, "position 500 ms", func() bool { return getPosition(ctx, t, c, pl) >= 500 })

	// Seek forward to 4 s of 6: the position follows and the end comes about 2 s later.
	const target = 4000
	seekAt := time.Now()
	if err := c.Invoke(ctx, pl, "setPosition", map[string]any{"position": target}, nil); err != nil {
		t.Fatalf("setPosition: %v", err)
	}
	seekTook := time.Since(seekAt)
	time.Sleep(100 * time.Millisecond)
	pos := getPosition(ctx, t, c, pl)
	since := time.Since(seekAt).Milliseconds()
	t.Logf("seek to %d ms took %v; position %d ms read %d ms after the seek (error %+d ms against target + elapsed)",
		target, seekTook.Round(time.Millisecond), pos, since, pos-target-since)
	if pos < target-100 || pos > target+since+300 {
		t.Errorf("position after seek = %d ms, want about %d (+%d elapsed)", pos, target, since)
	}
	framesBefore := peer.FramesReceived.Load()
	eos := ev.wait(ctx, t, "EndOfStream", 1)
	rest := eos.at.Sub(seekAt)
	t.Logf("EndOfStream %v after the seek (%v of media left), %v after play; %d frames after the seek",
		rest.Round(time.Millisecond), time.Duration(length.Milliseconds()-target)*time.Millisecond, eos.at.Sub(start).Round(time.Millisecond),
		peer.FramesReceived.Load()-framesBefore)
	// The seek skipped media: what came after it is the clip's last 2 s at 30 fps, not the 5 s that
	// playing on would have taken (counted in frames: on a loaded machine the end comes late, the
	// frames do not multiply); and the player did not rush through it.
	left := time.Duration(length.Milliseconds()-target) * time.Millisecond
	if rest < left-500*time.Millisecond {
		t.Errorf("EndOfStream %v after seeking with %v left", rest, left)
	}
	if after, most := peer.FramesReceived.Load()-framesBefore, int64((left+time.Second).Seconds()*30); after > most {
		t.Errorf("%d frames after seeking with %v left, want at most %d", after, left, most)
	}

	// Play again after the end: from the beginning, frames flow again; pause stops them.
	if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
		t.Fatal(err)
	}
	n := peer.FramesReceived.Load()
	pollUntil(ctx, t, "frames after restart", func() bool { return peer.FramesReceived.Load() > n+15 })
	if pos := getPosition(ctx, t, c, pl); pos > 3000 {
		t.Errorf("position after restart = %d ms, want from the beginning", pos)
	}
	if err := c.Invoke(ctx, pl, "pause", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // let what was in flight arrive
	paused := peer.FramesReceived.Load()
	posPaused := getPosition(ctx, t, c, pl)
	time.Sleep(700 * time.Millisecond)
	if got := peer.FramesReceived.Load() - paused; got > 2 {
		t.Errorf("%d frames received while paused", got)
	}
	if p := getPosition(ctx, t, c, pl); p-posPaused > 50 {
		t.Errorf("position moved while paused: %d -> %d ms", posPaused, p)
	}
	if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
		t.Fatal(err)
	}
	n = peer.FramesReceived.Load()
	pollUntil(ctx, t, "frames after resume", func() bool { return peer.FramesReceived.Load() > n+15 })
	if err := c.Invoke(ctx, pl, "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	var states []string
	ev.mu.Lock()
	for _, e := range ev.events {
		if e.typ == "UriEndpointStateChanged" {
			states = append(states, fmt.Sprint(e.data["state"]))
		}
	}
	ev.mu.Unlock()
	if want := "START STOP START PAUSE START STOP"; strings.Join(states, " ") != want {
		t.Errorf("states %v, want %s", states, want)
	}
	if errs := countEvents(ev, "Error"); errs > 0 {
		t.Errorf("Error events: %v", ev.list())
	}
	var dot string
	if err := c.Invoke(ctx, pl, "getElementGstreamerDot", nil, &dot); err != nil || !strings.Contains(dot, "digraph") || !strings.Contains(dot, "GstURIDecodeBin") {
		t.Errorf("getElementGstreamerDot: %v, %.100q", err, dot)
	}
}

// TestPlayerEndpointHTTP plays a file served over HTTP on loopback (seekable by ranges).
func TestPlayerEndpointHTTP(t *testing.T) {
	needPlayer(t, "souphttpsrc", "matroskademux", "vp8dec", "opusdec")
	dir := t.TempDir()
	const length = 3 * time.Second
	file := testmedia.Clip(t, dir, "clip.webm", length, testmedia.WebMArgs...)
	hs := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer hs.Close()
	ctx, c, pipeline := playerSetup(t, 60*time.Second)
	pl := createPlayer(ctx, t, c, pipeline, hs.URL+"/"+filepath.Base(file), nil)
	ev := watchEvents(ctx, t, c, pl, "EndOfStream", "Error")
	peer := viewer(ctx, t, c, pipeline, pl)
	start := time.Now()
	if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	var vi videoInfo
	pollUntil(ctx, t, "a duration", func() bool { vi = getVideoInfo(ctx, t, c, pl); return vi.Duration > 0 })
	eos := ev.wait(ctx, t, "EndOfStream", 1)
	want := testmedia.Duration(t, file)
	t.Logf("http: %+v; EndOfStream %v after play (media %v); %d frames", vi, eos.at.Sub(start).Round(time.Millisecond), want, peer.FramesReceived.Load())
	if d := time.Duration(vi.Duration)*time.Millisecond - want; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("duration %d ms, want %v", vi.Duration, want)
	}
	if peer.FramesReceived.Load() < 45 {
		t.Errorf("%d frames", peer.FramesReceived.Load())
	}
	if countEvents(ev, "Error") > 0 {
		t.Errorf("errors: %v", ev.list())
	}
}

// TestPlayerEndpointBadURIs: creating never fails; play raises an Error event naming the URI.
func TestPlayerEndpointBadURIs(t *testing.T) {
	needPlayer(t, "souphttpsrc")
	dir := t.TempDir()
	text := filepath.Join(dir, "notmedia.webm")
	os.WriteFile(text, []byte(strings.Repeat("this is not media\n", 2000)), 0o644)
	hs := httptest.NewServer(http.NotFoundHandler())
	defer hs.Close()
	cases := []struct{ uri, typ string }{
		{"file:///nonexistent/dir/clip.webm", "INVALID_URI"},
		{hs.URL + "/missing.webm", "INVALID_URI"},
		{"http://127.0.0.1:1/refused.webm", "INVALID_URI"},
		{"nosuchscheme://host/clip", "INVALID_URI"},
		{"file://" + text, "INVALID_MEDIA"},
	}
	ctx, c, pipeline := playerSetup(t, 60*time.Second)
	for _, tc := range cases {
		pl := createPlayer(ctx, t, c, pipeline, tc.uri, nil)
		ev := watchEvents(ctx, t, c, pl, "Error")
		if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
			t.Errorf("play %s: %v (must not fail)", tc.uri, err)
			continue
		}
		e := ev.wait(ctx, t, "Error", 1)
		desc, _ := e.data["description"].(string)
		t.Logf("%s -> %v: %s", tc.uri, e.data["type"], desc)
		if e.data["type"] != tc.typ {
			t.Errorf("%s: type %v, want %s", tc.uri, e.data["type"], tc.typ)
		}
		if !strings.Contains(desc, tc.uri) {
			t.Errorf("%s: description %q does not name the URI", tc.uri, desc)
		}
		for _, op := range []string{"pause", "stop", "play", "stop"} {
			if err := c.Invoke(ctx, pl, op, nil, nil); err != nil {
				t.Errorf("%s after an error: %v", op, err)
			}
		}
	}
}

// TestPlayerEndpointReleaseLeaksNothing: players released while playing leave no goroutine and no
// GStreamer pipeline behind.
func TestPlayerEndpointReleaseLeaksNothing(t *testing.T) {
	needPlayer(t, "matroskademux", "vp8dec", "opusdec")
	file := testmedia.Clip(t, t.TempDir(), "clip.webm", 3*time.Second, testmedia.WebMArgs...)
	ctx, c, pipeline := playerSetup(t, 60*time.Second)
	// One round first, so that lazily started runtime goroutines exist before counting.
	round := func() {
		var ids []string
		for i := 0; i < 3; i++ {
			pl := createPlayer(ctx, t, c, pipeline, "file://"+file, nil)
			if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, pl)
		}
		pollUntil(ctx, t, "a position", func() bool { return getPosition(ctx, t, c, ids[2]) > 200 })
		for _, id := range ids {
			if err := c.Release(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	round()
	live0 := gst.Live()
	g0 := runtime.NumGoroutine()
	round()
	var g1 int
	deadline := time.Now().Add(5 * time.Second)
	for {
		g1 = runtime.NumGoroutine()
		if g1 <= g0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("goroutines %d -> %d, live GStreamer pipelines %d -> %d", g0, g1, live0, gst.Live())
	if g1 > g0 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d -> %d\n%s", g0, g1, buf[:runtime.Stack(buf, true)])
	}
	if gst.Live() != live0 {
		t.Errorf("live pipelines %d -> %d", live0, gst.Live())
	}
}

// rtspServerScript serves a live VP8 + Opus test stream at rtsp://127.0.0.1:<port>/test with
// GStreamer's RTSP server (Python bindings), printing the port. ffmpeg cannot serve RTSP to a
// client (its -rtsp_flags listen only receives).
const rtspServerScript = `
import sys, gi
gi.require_version('Gst', '1.0')
gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address('127.0.0.1')
server.set_service('0')
f = GstRtspServer.RTSPMediaFactory()
f.set_launch('( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=30 ! rtpvp8pay name=pay0 pt=96 '
             'audiotestsrc is-live=true ! audio/x-raw,rate=48000 ! opusenc ! rtpopuspay name=pay1 pt=97 )')
f.set_shared(True)
server.get_mount_points().add_factory('/test', f)
server.attach(None)
print(server.get_bound_port(), flush=True)
GLib.MainLoop().run()
`

// TestPlayerEndpointRTSP plays a live RTSP stream from a server on loopback.
func TestPlayerEndpointRTSP(t *testing.T) {
	needPlayer(t, "rtspsrc", "rtpvp8depay", "rtpopusdepay", "vp8dec", "opusdec")
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer").Run(); err != nil {
		t.Skip("no RTSP server to test with: install gir1.2-gst-rtsp-server-1.0 (and python3-gi)")
	}
	cmd := exec.Command(py, "-c", rtspServerScript)
	cmd.SysProcAttr = rtspSysProcAttr()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		n, _ := stdout.Read(buf)
		line <- strings.TrimSpace(string(buf[:n]))
	}()
	var port string
	select {
	case port = <-line:
	case <-time.After(20 * time.Second):
		t.Fatal("RTSP server did not start")
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.Fatalf("RTSP server said %q", port)
	}
	uri := "rtsp://127.0.0.1:" + port + "/test"
	ctx, c, pipeline := playerSetup(t, 60*time.Second)
	pl := createPlayer(ctx, t, c, pipeline, uri, map[string]any{"networkCache": 200})
	ev := watchEvents(ctx, t, c, pl, "Error")
	peer := viewer(ctx, t, c, pipeline, pl)
	start := time.Now()
	if err := c.Invoke(ctx, pl, "play", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitVideo(ctx); err != nil {
		t.Fatalf("%v; events %v", err, ev.list())
	}
	first := time.Since(start)
	pollUntil(ctx, t, "60 frames", func() bool { return peer.FramesReceived.Load() >= 60 })
	vi := getVideoInfo(ctx, t, c, pl)
	t.Logf("rtsp: first video %v after play, 60 frames after %v, %d audio packets; video info %+v", first.Round(time.Millisecond),
		time.Since(start).Round(time.Millisecond), peer.AudioReceived.Load(), vi)
	if err := c.Invoke(ctx, pl, "stop", nil, nil); err != nil {
		t.Fatal(err)
	}
	if countEvents(ev, "Error") > 0 {
		t.Errorf("errors: %v", ev.list())
	}
}
