// Package crash holds the end-to-end tests of worker isolation (issue 12): a GStreamer element that
// crashes the process it runs in (a filter's element, a transcoder's decoder, a player's decoder,
// all from internal/testgstplugin) while three unrelated sessions run loopback media on the same
// server. The server must live, the three sessions keep their frames, the element's application
// gets an Error event of type WORKER_CRASHED within a second of the crash, and releasing the element
// gives back what its dead worker held.
//
// The whole test binary runs with the plugin's directory scanned after the system's plugins
// (testgstplugin.Env with shadow), so every H.264 decoder GStreamer builds here is the crashing
// impostor: the tests decode nothing else in H.264.
package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testgstplugin"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

var pluginDir string
var pluginErr error

func TestMain(m *testing.M) {
	// Before anything starts GStreamer: the workers inherit this environment.
	if pluginDir, pluginErr = testgstplugin.Build(); pluginErr == nil {
		for _, kv := range testgstplugin.Env(pluginDir, true) {
			k, v, _ := strings.Cut(kv, "=")
			os.Setenv(k, v)
		}
	}
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

func needCrashPlugin(t *testing.T, elements ...string) {
	t.Helper()
	if pluginErr != nil {
		t.Skipf("crashing GStreamer plugin not built: %v", pluginErr)
	}
	if os.Getenv("KMS_GST_WORKERS") == "in-process" {
		t.Skip("KMS_GST_WORKERS=in-process: a crashing element would end the test binary")
	}
	testmedia.NeedFFmpeg(t)
	if err := gst.Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	for _, e := range append([]string{"vp8enc", "vp8dec", "rtpvp8depay", "rtpvp8pay"}, elements...) {
		if !gst.HasElement(e) {
			t.Skipf("GStreamer element %q missing", e)
		}
	}
}

// The figures of issue 12.
const (
	keptFrames   = 0.90            // of the bystanders' frames, across the crash
	eventWithin  = time.Second     // from the worker's death to the Error event
	afterCrash   = 2 * time.Second // bystanders measured this long past the crash
	crashTimeout = 30 * time.Second
)

// TestFilterCrash: a GStreamerFilter whose element (crashtransform after=60) writes through a NULL
// pointer after two seconds of video, in a pipeline of its own beside three loopback sessions.
func TestFilterCrash(t *testing.T) {
	needCrashPlugin(t)
	runCrash(t, func(s *scene) []string {
		filter, _ := s.filterChain("crashtransform after=60")
		return []string{filter}
	})
}

// TestTranscoderCrash: a publisher sends H.264 to an RtpEndpoint whose peer takes VP8 only; the
// server's transcoder decodes with avdec_h264, here the crashing impostor (after 30 frames). The
// transcoder belongs to the element owning its source, as in KMS: the publisher's WebRtcEndpoint
// gets the Error event.
func TestTranscoderCrash(t *testing.T) {
	needCrashPlugin(t, "avdec_h264", "rtph264depay", "h264parse")
	runCrash(t, func(s *scene) []string {
		return s.transcodeChain()
	})
}

// TestPlayerCrash: a PlayerEndpoint plays a file that uridecodebin gives to kmscrashdec, which
// crashes after 60 frames.
func TestPlayerCrash(t *testing.T) {
	needCrashPlugin(t, "uridecodebin")
	runCrash(t, func(s *scene) []string {
		file, err := testgstplugin.CrashFile(t.TempDir(), 60, 3000)
		if err != nil {
			t.Fatal(err)
		}
		player := s.create("PlayerEndpoint", map[string]any{"uri": "file://" + file})
		s.watchErrors(player)
		s.invoke(player, "play", nil, nil)
		return []string{player}
	})
}

// runCrash starts a server and three loopback sessions, builds the crashing elements with build in a
// pipeline of their own (it returns the objects to release afterwards, which it watches for Error
// events), waits for their worker to die, and checks what issue 12 asks.
func runCrash(t *testing.T, build func(s *scene) []string) {
	srv := testserver.Start(t)
	by := startBystanders(t, srv.URL, 3)
	s := newScene(t, srv)

	baseWorkers, basePIDs, baseChannels := gst.Workers(), gst.WorkerPIDs(), workerChannels(t)
	release := build(s)
	var newPIDs []int
	waitFor(t, "a worker for the crashing element", 20*time.Second, func() bool {
		newPIDs = newPIDs[:0]
		for _, pid := range gst.WorkerPIDs() {
			if !slices.Contains(basePIDs, pid) {
				newPIDs = append(newPIDs, pid)
			}
		}
		return len(newPIDs) > 0
	})
	before := by.counts()
	pid, died := waitDeath(t, newPIDs, crashTimeout)
	t.Logf("worker %d died %v after the bystanders' first count", pid, died.Sub(before.at).Round(time.Millisecond))

	ev := s.waitError("", "WORKER_CRASHED", died.Add(eventWithin+5*time.Second))
	if lag := ev.at.Sub(died); lag > eventWithin {
		t.Errorf("Error event %v after the worker's death, want within %v", lag.Round(time.Millisecond), eventWithin)
	}
	if ev.Description == "" || ev.ErrorCode == 0 {
		t.Errorf("Error event without a description or code: %+v", ev)
	}
	t.Logf("Error on %s %v after the death: %s (%d) %q", ev.object, ev.at.Sub(died).Round(time.Millisecond),
		ev.Type, ev.ErrorCode, ev.Description)

	waitFor(t, "the bystanders' media past the crash", afterCrash+10*time.Second, func() bool {
		return time.Since(died) >= afterCrash
	})
	by.check(t, before, by.counts())

	// The server serves: a new pipeline, and the crashed element's pipeline still answers.
	if _, err := s.c.Create(s.ctx, "MediaPipeline", nil); err != nil {
		t.Fatalf("create after the crash: %v", err)
	}
	for _, obj := range release {
		if err := s.c.Release(s.ctx, obj); err != nil {
			t.Errorf("release %s: %v", obj, err)
		}
	}
	var state string
	waitFor(t, "the dead worker's resources back", 10*time.Second, func() bool {
		w, ch, z := gst.Workers(), workerChannels(t), zombies(t)
		state = fmt.Sprintf("workers %d (baseline %d), worker channels %d (baseline %d), zombies %v", w, baseWorkers, ch, baseChannels, z)
		return w <= baseWorkers && ch <= baseChannels && len(z) == 0
	})
	t.Log(state)
}

// scene is a client session with a pipeline of its own, where the crashing elements live.
type scene struct {
	t        *testing.T
	ctx      context.Context
	c        *client.Client
	pipeline string
	opsURL   string // the server's /metrics listener, when started with one

	mu     sync.Mutex
	errors []errorEvent
}

type errorEvent struct {
	object      string
	at          time.Time
	Type        string `json:"type"`
	Description string `json:"description"`
	ErrorCode   int    `json:"errorCode"`
}

func newScene(t *testing.T, srv *testserver.Server) *scene {
	ctx, c, pipeline := testserver.Connect(t, srv.URL, 2*time.Minute)
	return &scene{t: t, ctx: ctx, c: c, pipeline: pipeline}
}

func (s *scene) create(typ string, params map[string]any) string {
	s.t.Helper()
	p := map[string]any{"mediaPipeline": s.pipeline}
	for k, v := range params {
		p[k] = v
	}
	id, err := s.c.Create(s.ctx, typ, p)
	if err != nil {
		s.t.Fatalf("create %s: %v", typ, err)
	}
	return id
}

func (s *scene) invoke(obj, op string, params map[string]any, out any) {
	s.t.Helper()
	if err := s.c.Invoke(s.ctx, obj, op, params, out); err != nil {
		s.t.Fatalf("%s: %v", op, err)
	}
}

func (s *scene) connect(src, sink string) {
	s.t.Helper()
	s.invoke(src, "connect", map[string]any{"sink": sink}, nil)
}

// watchErrors records the Error events of obj.
func (s *scene) watchErrors(obj string) {
	s.t.Helper()
	err := s.c.Subscribe(s.ctx, obj, "Error", func(ev client.Event) {
		e := errorEvent{object: obj, at: time.Now()}
		if err := json.Unmarshal(ev.Data, &e); err != nil {
			s.t.Errorf("Error event data %s: %v", ev.Data, err)
		}
		s.mu.Lock()
		s.errors = append(s.errors, e)
		s.mu.Unlock()
	})
	if err != nil {
		s.t.Fatalf("subscribe Error: %v", err)
	}
}

// waitError waits until deadline for an Error event of type typ on obj ("" any watched object).
func (s *scene) waitError(obj, typ string, deadline time.Time) errorEvent {
	s.t.Helper()
	for {
		s.mu.Lock()
		for _, e := range s.errors {
			if e.Type == typ && (obj == "" || e.object == obj) {
				s.mu.Unlock()
				return e
			}
		}
		got := fmt.Sprintf("%+v", s.errors)
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.t.Fatalf("no Error event of type %s; got %s", typ, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// filterChain builds publisher → WebRtcEndpoint → GStreamerFilter(command) → WebRtcEndpoint →
// receiving peer, with real VP8 from the publisher; it returns the filter and the receiver. prepare,
// if given, runs on the filter before media flows.
func (s *scene) filterChain(command string, prepare ...func(filter string)) (string, *testpeer.Peer) {
	filter := s.publishInto("GStreamerFilter", map[string]any{"command": command, "filterType": "VIDEO"}, prepare...)
	return filter, s.viewer(filter)
}

// publishInto creates a typ(params) element fed by a WebRtcEndpoint whose peer publishes real VP8,
// records its Error events, and returns it once the publisher is connected. prepare, if given, runs
// on the element before media flows.
func (s *scene) publishInto(typ string, params map[string]any, prepare ...func(elem string)) string {
	t := s.t
	pub, err := testpeer.NewClip(testpeer.ClipOptions{Video: testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=s=320x240:r=30")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	pub.Endpoint = s.create("WebRtcEndpoint", nil)
	elem := s.create(typ, params)
	s.watchErrors(elem)
	for _, f := range prepare {
		f(elem)
	}
	s.connect(pub.Endpoint, elem)
	if err := pub.Negotiate(s.ctx, s.c, false); err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitConnected(s.ctx); err != nil {
		t.Fatal(err)
	}
	return elem
}

// viewer connects src to a WebRtcEndpoint with a receiving peer, connected when it returns.
func (s *scene) viewer(src string) *testpeer.Peer {
	t := s.t
	sub, err := testpeer.New(testpeer.Options{Receive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	sub.Endpoint = s.create("WebRtcEndpoint", nil)
	s.connect(src, sub.Endpoint)
	if err := sub.Negotiate(s.ctx, s.c, false); err != nil {
		t.Fatal(err)
	}
	if err := sub.WaitConnected(s.ctx); err != nil {
		t.Fatal(err)
	}
	return sub
}

// transcodeChain builds an H.264 publisher → WebRtcEndpoint → RtpEndpoint whose peer (a UDP socket
// of the test) offered VP8 only, so the server transcodes; it watches the publisher's endpoint for
// Error events and returns both endpoints.
func (s *scene) transcodeChain() []string {
	t := s.t
	clip := filepath.Join(t.TempDir(), "clip.h264")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=s=320x240:r=30", "-t", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0",
		"-x264-params", "keyint=30:aud=1:repeat-headers=1", "-f", "h264", clip)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	pub, err := testpeer.NewClip(testpeer.ClipOptions{Video: clip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pub.Close)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() { // the RTP peer reads what it gets, as a real one would
		buf := make([]byte, 1500)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	pub.Endpoint = s.create("WebRtcEndpoint", nil)
	s.watchErrors(pub.Endpoint)
	rtp := s.create("RtpEndpoint", nil)
	offer := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=vp8-only\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n", conn.LocalAddr().(*net.UDPAddr).Port)
	var answer string
	s.invoke(rtp, "processOffer", map[string]any{"offer": offer}, &answer)
	s.connect(pub.Endpoint, rtp)
	if err := pub.Negotiate(s.ctx, s.c, false); err != nil {
		t.Fatal(err)
	}
	if err := pub.WaitConnected(s.ctx); err != nil {
		t.Fatal(err)
	}
	return []string{pub.Endpoint, rtp}
}

// bystanders are hello-world sessions (a WebRtcEndpoint connected to itself), each on a connection
// and in a pipeline of its own, with a peer sending and receiving 30 fps.
type bystanders struct{ peers []*testpeer.Peer }

type frameCounts struct {
	at             time.Time
	sent, received []int64
}

func startBystanders(t *testing.T, url string, n int) *bystanders {
	t.Helper()
	b := &bystanders{}
	for range n {
		ctx, c, pipeline := testserver.Connect(t, url, 2*time.Minute)
		p, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		if err := p.Connect(ctx, c, pipeline, true); err != nil {
			t.Fatal(err)
		}
		if err := p.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
		p.StartMedia()
		if err := p.WaitVideo(ctx); err != nil {
			t.Fatal(err)
		}
		b.peers = append(b.peers, p)
	}
	return b
}

func (b *bystanders) counts() frameCounts {
	f := frameCounts{at: time.Now()}
	for _, p := range b.peers {
		f.sent = append(f.sent, p.FramesSent.Load())
		f.received = append(f.received, p.FramesReceived.Load())
	}
	return f
}

// check: each session received at least keptFrames of what it sent between before and after.
func (b *bystanders) check(t *testing.T, before, after frameCounts) {
	t.Helper()
	for i := range b.peers {
		sent, got := after.sent[i]-before.sent[i], after.received[i]-before.received[i]
		t.Logf("session %d: %d of %d frames across the crash", i+1, got, sent)
		if sent == 0 || float64(got) < keptFrames*float64(sent) {
			t.Errorf("session %d received %d of the %d frames it sent across the crash, want ≥ %.0f %%", i+1, got, sent, keptFrames*100)
		}
	}
}

// waitDeath waits until one of pids has died (a zombie or gone) and says which and when.
func waitDeath(t *testing.T, pids []int, timeout time.Duration) (int, time.Time) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, pid := range pids {
			if state := procState(pid); state == "" || state == "Z" || state == "X" {
				return pid, time.Now()
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no worker among %v died within %v", pids, timeout)
	return 0, time.Time{}
}

// procState is the state letter of a process ("" when it does not exist).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+3 <= len(s) {
		return s[i+2 : i+3]
	}
	return ""
}

// zombies are this process's children that died and were not reaped.
func zombies(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	self := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[0] == "Z" && f[1] == self {
			out = append(out, pid)
		}
	}
	return out
}

// workerChannels counts this process's descriptors that are pipes or Unix sockets: what connects
// the server to its workers (control, media, stderr). The peers and clients use TCP and UDP only.
func workerChannels(t *testing.T) int {
	t.Helper()
	unix := map[string]bool{}
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 7 {
			unix[f[6]] = true
		}
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		link, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		if strings.HasPrefix(link, "pipe:") {
			n++
		} else if inode, ok := strings.CutPrefix(link, "socket:["); ok && unix[strings.TrimSuffix(inode, "]")] {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
