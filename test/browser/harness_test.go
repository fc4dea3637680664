package browser_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testserver"
)

// ---------------------------------------------------------------------------------------
// Processes: each in its own process group, killed with it at the end of the test (and by
// the kernel if the test binary dies first: Pdeathsig), output kept for failure reports.

type proc struct {
	name    string
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []string
	dropped int
	done    chan struct{} // closed when the process has exited
	err     error         // its exit status, once done
	lineCh  chan string   // every output line, if not nil (never blocks)
}

func (p *proc) add(line string) {
	p.mu.Lock()
	p.lines = append(p.lines, line)
	if len(p.lines) > 4000 {
		p.dropped += 1000
		p.lines = append([]string(nil), p.lines[1000:]...)
	}
	ch := p.lineCh
	p.mu.Unlock()
	if ch != nil {
		select {
		case ch <- line:
		default:
		}
	}
}

// tail returns the last n output lines that keep passes (all if keep is nil).
func (p *proc) tail(n int, keep func(string) bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var sel []string
	for _, l := range p.lines {
		if keep == nil || keep(l) {
			sel = append(sel, l)
		}
	}
	skipped := ""
	if len(sel) > n {
		skipped = fmt.Sprintf("… (%d earlier lines)\n", len(sel)-n+p.dropped)
		sel = sel[len(sel)-n:]
	}
	return skipped + strings.Join(sel, "\n")
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs name args in dir; grace > 0 sends SIGTERM first at clean-up and waits that long.
func start(t *testing.T, name string, lineCh chan string, grace time.Duration, dir string, env []string, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), lineCh: lineCh}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			p.add(sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = cmd.Wait()
		pw.Close()
		<-readerDone
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() && grace > 0 {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		// The whole group: Chromium's helpers, anything the process started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s (pid %d) did not exit after SIGKILL", name, cmd.Process.Pid)
		}
	})
	return p
}

// ---------------------------------------------------------------------------------------
// The server under test.

type kms struct {
	*proc
	uri     string
	metrics string // the Prometheus endpoint
}

// counter reads one sample of the server's metrics ("name{labels}"), 0 when absent.
func (k *kms) counter(t *testing.T, sample string) float64 {
	t.Helper()
	resp, err := http.Get(k.metrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// startKMS starts the server binary with a temporary kurento.conf.json on a free loopback
// port and a module config dir whose BaseRtpEndpoint.conf.ini sets the RTP/ICE port range.
func startKMS(ctx context.Context, t *testing.T) *kms {
	t.Helper()
	dir := t.TempDir()
	port := testserver.FreePort(t)
	conf := fmt.Sprintf(`{
  "mediaServer": {
    "net": { "websocket": { "port": %d, "address": "127.0.0.1", "path": "kurento" } }
  }
}
`, port)
	write(t, filepath.Join(dir, "kurento.conf.json"), conf)
	write(t, filepath.Join(dir, "modules", "kurento", "BaseRtpEndpoint.conf.ini"), "minPort=40000\nmaxPort=40100\n")
	ops := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t)))
	p := start(t, "kurento-media-server", nil, 3*time.Second, dir, []string{"GST_DEBUG=3", "GST_DEBUG_NO_COLOR=1", "KMS_METRICS_ADDRESS=" + ops},
		kmsBin, "-f", filepath.Join(dir, "kurento.conf.json"), "-c", filepath.Join(dir, "modules"))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if p.exited() {
			t.Fatalf("kurento-media-server exited before listening (%v):\n%s", p.err, p.tail(50, nil))
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("kurento-media-server does not listen on %s after 10 s:\n%s", addr, p.tail(50, nil))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &kms{proc: p, uri: fmt.Sprintf("ws://%s/kurento", addr), metrics: "http://" + ops + "/metrics"}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------------------
// The application server (testdata/app/server.js, the tutorials' server logic).

type appServer struct {
	*proc
	base string // ws://127.0.0.1:<port>
}

func startApp(ctx context.Context, t *testing.T, kmsURI string) *appServer {
	t.Helper()
	lines := make(chan string, 1000)
	p := start(t, "application server", lines, 0, appDir, nil, nodePath, "server.js", "--ws_uri="+kmsURI, "--port=0")
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			if port, ok := strings.CutPrefix(l, "LISTENING "); ok {
				p.mu.Lock()
				p.lineCh = nil
				p.mu.Unlock()
				return &appServer{proc: p, base: "ws://127.0.0.1:" + port}
			}
		case <-p.done:
			t.Fatalf("application server exited (%v):\n%s", p.err, p.tail(50, nil))
		case <-timeout:
			t.Fatalf("application server not listening after 10 s:\n%s", p.tail(50, nil))
		case <-ctx.Done():
			t.Fatalf("application server: %v", ctx.Err())
		}
	}
}

// ---------------------------------------------------------------------------------------
// Pages: served from testdata/app/public by the test's HTTP server, which also collects
// what the pages report (POST /report, see public/common.js).

type rtpIn struct {
	SSRC             uint32 `json:"ssrc"`
	Codec            string `json:"codec"`
	PacketsReceived  int64  `json:"packetsReceived"`
	BytesReceived    int64  `json:"bytesReceived"`
	PacketsLost      int64  `json:"packetsLost"`
	FramesDecoded    int64  `json:"framesDecoded"`
	FramesReceived   int64  `json:"framesReceived"`
	FrameWidth       int64  `json:"frameWidth"`
	FrameHeight      int64  `json:"frameHeight"`
	KeyFramesDecoded int64  `json:"keyFramesDecoded"`
}

type peerStats struct {
	Error              string           `json:"error"`
	SignalingState     string           `json:"signalingState"`
	IceConnectionState string           `json:"iceConnectionState"`
	ConnectionState    string           `json:"connectionState"`
	DtlsState          string           `json:"dtlsState"`
	Inbound            map[string]rtpIn `json:"inbound"`
	Pair               *struct {
		State  string `json:"state"`
		Local  string `json:"local"`
		Remote string `json:"remote"`
	} `json:"pair"`
}

type pages struct {
	srv *httptest.Server

	mu        sync.Mutex
	logs      []string
	sdps      []string
	errs      []string
	stats     map[string]peerStats
	statsJSON string // the last stats report as sent
	changed   chan struct{}
}

func servePages(t *testing.T) *pages {
	t.Helper()
	pg := &pages{changed: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(filepath.Join(appDir, "public"))))
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep struct {
			Kind string          `json:"kind"`
			Data json.RawMessage `json:"data"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&rep); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		pg.add(rep.Kind, rep.Data)
		w.WriteHeader(http.StatusNoContent)
	})
	pg.srv = httptest.NewServer(mux)
	t.Cleanup(pg.srv.Close)
	return pg
}

func (pg *pages) add(kind string, data json.RawMessage) {
	pg.mu.Lock()
	defer pg.mu.Unlock()
	str := func() string {
		var s string
		if json.Unmarshal(data, &s) == nil {
			return s
		}
		return string(data)
	}
	switch kind {
	case "log":
		if len(pg.logs) < 5000 {
			pg.logs = append(pg.logs, str())
		}
	case "error":
		pg.errs = append(pg.errs, str())
	case "sdp":
		var d struct{ Label, SDP string }
		_ = json.Unmarshal(data, &d)
		pg.sdps = append(pg.sdps, fmt.Sprintf("--- %s ---\n%s", d.Label, strings.TrimSpace(d.SDP)))
	case "stats":
		var s map[string]peerStats
		if json.Unmarshal(data, &s) == nil {
			pg.stats = s
			pg.statsJSON = string(data)
		}
	}
	select {
	case pg.changed <- struct{}{}:
	default:
	}
}

func (pg *pages) url(page string, q ...string) string {
	u := pg.srv.URL + "/" + page + "?run=1"
	for i := 0; i+1 < len(q); i += 2 {
		u += "&" + q[i] + "=" + q[i+1]
	}
	return u
}

// ---------------------------------------------------------------------------------------
// Headless Chromium (TESTING.md flags), run by plain exec with a page that reports to us.

func startChromium(t *testing.T, url string) *proc {
	t.Helper()
	profile := t.TempDir() // removed after the browser is killed (clean-ups run last-in first-out)
	return start(t, "chromium", nil, 0, profile, nil, chromiumPath,
		"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile,
		"--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
		"--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
		"--autoplay-policy=no-user-gesture-required",
		"--enable-logging=stderr", "--v=0",
		url)
}

// chromiumNoise drops Chromium's log lines about the missing D-Bus, GPU and the like.
func chromiumNoise(l string) bool {
	for _, s := range []string{"dbus", "D-Bus", "vaapi", "Floss", "bluez", "Fontconfig", "unexpected operator",
		"Slow network is detected", "gcm/engine", "sandbox_linux", "gpu_", "viz_main", "ui/gl"} {
		if strings.Contains(l, s) {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------------------
// A run: processes and pages of one test, dumped when the test fails.

type run struct {
	t       *testing.T
	ctx     context.Context
	pages   *pages
	kms     *kms
	app     *appServer
	browser *proc
	t0      time.Time
	marks   []milestone
}

// newRun gives a test its hard timeout (the context) and its failure report.
func newRun(t *testing.T, timeout time.Duration) *run {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	r := &run{t: t, ctx: ctx, t0: time.Now()}
	r.pages = servePages(t)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("KMS_BROWSER_VERBOSE") != "" {
			t.Log(r.report())
		}
	})
	return r
}

func (r *run) report() string {
	var b strings.Builder
	pg := r.pages
	pg.mu.Lock()
	fmt.Fprintf(&b, "\n===== page console (%d lines) =====\n%s\n", len(pg.logs), lastLines(pg.logs, 150))
	if len(pg.errs) > 0 {
		fmt.Fprintf(&b, "===== page errors =====\n%s\n", strings.Join(pg.errs, "\n"))
	}
	fmt.Fprintf(&b, "===== last getStats() summary =====\n%s\n", indentJSON(pg.statsJSON))
	fmt.Fprintf(&b, "===== session descriptions =====\n%s\n", strings.Join(pg.sdps, "\n"))
	pg.mu.Unlock()
	if r.app != nil {
		fmt.Fprintf(&b, "===== application server (kurento-client wire log) =====\n%s\n", r.app.tail(150, nil))
	}
	if r.kms != nil {
		fmt.Fprintf(&b, "===== kurento-media-server output =====\n%s\n", r.kms.tail(150, nil))
	}
	if r.browser != nil {
		fmt.Fprintf(&b, "===== chromium stderr (filtered) =====\n%s\n", r.browser.tail(60, chromiumNoise))
	}
	return b.String()
}

func lastLines(lines []string, n int) string {
	if len(lines) > n {
		return fmt.Sprintf("… (%d earlier lines)\n%s", len(lines)-n, strings.Join(lines[len(lines)-n:], "\n"))
	}
	return strings.Join(lines, "\n")
}

func indentJSON(s string) string {
	var v any
	if json.Unmarshal([]byte(s), &v) != nil {
		return s
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

// startServers starts the media server and the application server.
func (r *run) startServers() {
	r.kms = startKMS(r.ctx, r.t)
	r.mark("media server up")
	r.app = startApp(r.ctx, r.t, r.kms.uri)
	r.mark("application server up")
}

// open starts Chromium on a page.
func (r *run) open(page string, q ...string) {
	r.browser = startChromium(r.t, r.pages.url(page, q...))
	r.mark("chromium started")
}

// waitStats waits until ok accepts the page's stats. The page has pageLoad to start (its first
// stats report: Chromium started, page loaded, camera opened, peer connections made), then
// within to satisfy ok; all within the test's hard timeout. It fails at once if the page
// reports an error or a process dies.
func (r *run) waitStats(within time.Duration, ok func(map[string]peerStats) (bool, string)) {
	r.t.Helper()
	const pageLoad = 15 * time.Second
	deadline := time.NewTimer(pageLoad)
	defer deadline.Stop()
	var started time.Time // first stats report
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	status := "no stats reported by the page"
	for {
		r.pages.mu.Lock()
		errs := append([]string(nil), r.pages.errs...)
		stats := r.pages.stats
		r.pages.mu.Unlock()
		if stats != nil {
			if started.IsZero() {
				started = time.Now()
				r.mark("page up (first stats)")
				deadline.Reset(within)
			}
			for label, s := range stats {
				if s.IceConnectionState == "connected" || s.IceConnectionState == "completed" {
					r.mark("ICE connected: " + label)
				}
				if s.Inbound["video"].FramesDecoded > 0 {
					r.mark("first video frame decoded: " + label)
				}
			}
			var done bool
			done, status = ok(stats)
			if done {
				r.mark("done")
				r.t.Logf("after %.1f s of call: %s\ntimeline: %s", time.Since(started).Seconds(), status, r.timeline())
				return
			}
		}
		if len(errs) > 0 {
			r.t.Fatalf("the page failed: %s\nstats: %s\ntimeline: %s", strings.Join(errs, "; "), status, r.timeline())
		}
		for _, p := range r.procs() {
			if p != nil && p.exited() {
				r.t.Fatalf("%s exited (%v); stats: %s\ntimeline: %s", p.name, p.err, status, r.timeline())
			}
		}
		select {
		case <-r.pages.changed:
		case <-tick.C:
		case <-deadline.C:
			if started.IsZero() {
				r.t.Fatalf("the page did not start within %v (no stats report)\ntimeline: %s", pageLoad, r.timeline())
			}
			r.t.Fatalf("not reached within %v of the page's start: %s\ntimeline: %s", within, status, r.timeline())
		case <-r.ctx.Done():
			r.t.Fatalf("test timeout: %s\ntimeline: %s", status, r.timeline())
		}
	}
}

// mark records when something first happened in the test.
func (r *run) mark(what string) {
	for _, m := range r.marks {
		if m.what == what {
			return
		}
	}
	r.marks = append(r.marks, milestone{what, time.Since(r.t0)})
}

func (r *run) timeline() string {
	var parts []string
	for _, m := range r.marks {
		parts = append(parts, fmt.Sprintf("%.1fs %s", m.at.Seconds(), m.what))
	}
	return strings.Join(parts, ", ")
}

type milestone struct {
	what string
	at   time.Duration
}

func (r *run) procs() []*proc {
	ps := []*proc{r.browser}
	if r.app != nil {
		ps = append(ps, r.app.proc)
	}
	if r.kms != nil {
		ps = append(ps, r.kms.proc)
	}
	return ps
}

// describe is a one-line summary of a peer connection's stats.
func describe(label string, s peerStats) string {
	v, a := s.Inbound["video"], s.Inbound["audio"]
	pair := "none"
	if s.Pair != nil {
		pair = fmt.Sprintf("%s → %s (%s)", s.Pair.Local, s.Pair.Remote, s.Pair.State)
	}
	e := ""
	if s.Error != "" {
		e = " getStats error: " + s.Error
	}
	return fmt.Sprintf("%s: ice=%s conn=%s dtls=%s pair=%s; video in: %d frames decoded, %dx%d, %d packets %s; audio in: %d packets %s%s",
		label, s.IceConnectionState, s.ConnectionState, s.DtlsState, pair,
		v.FramesDecoded, v.FrameWidth, v.FrameHeight, v.PacketsReceived, v.Codec, a.PacketsReceived, a.Codec, e)
}

// aspect returns the width/height of a peer connection's inbound video (0 if unknown).
func aspect(v rtpIn) float64 {
	if v.FrameHeight == 0 {
		return 0
	}
	return float64(v.FrameWidth) / float64(v.FrameHeight)
}

// seeEachOther is the condition of the one-to-one tests: alice and bob each decode at least
// minFrames frames of the other's video; the aspect ratios tell whose video it is (alice's
// camera is 16:9, bob's 4:3, see public/users.js).
func seeEachOther(minFrames int64) func(map[string]peerStats) (bool, string) {
	return func(st map[string]peerStats) (bool, string) {
		labels := make([]string, 0, len(st))
		for l := range st {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		var parts []string
		for _, l := range labels {
			parts = append(parts, describe(l, st[l]))
		}
		status := strings.Join(parts, " | ")
		alice, okA := st["alice"]
		bob, okB := st["bob"]
		if !okA || !okB {
			return false, status
		}
		va, vb := alice.Inbound["video"], bob.Inbound["video"]
		if va.FramesDecoded < minFrames || vb.FramesDecoded < minFrames {
			return false, status
		}
		// alice must see bob's 4:3 video, bob alice's 16:9.
		if math.Abs(aspect(va)-4.0/3) > 0.1 || math.Abs(aspect(vb)-16.0/9) > 0.1 {
			return false, status + " (aspect ratios wrong: alice must receive bob's 4:3 video, bob alice's 16:9 video)"
		}
		return true, status
	}
}
