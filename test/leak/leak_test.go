// Package leak holds the leak test: thousands of create → negotiate → connect → release cycles over
// the Kurento Protocol, after which the server must hold what it held before.
package leak

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// The endpoints' ports come from a range of their own, so that counting the UDP sockets bound in it
// counts exactly the server's media sockets.
const (
	minPort = 47800
	maxPort = 47999
)

// connectEvery: one cycle in this many connects a real peer (ICE + DTLS, media into the filter and
// the recorder); the others stop at negotiation, which is what most of a server's state is made of.
const connectEvery = 20

// Tolerances, once the warm-up has run every path (GStreamer's plugins loaded, pion's certificates,
// pools and maps at their working size): goroutines, descriptors, ports and child processes come
// back exactly. RSS (after a GC and returning freed pages to the system) may keep what glibc's malloc
// arenas hold for GStreamer's threads and what the Go heap's size classes fragment into: a few MB
// whatever the number of cycles. rssSlack is far below what a leak of one small buffer per cycle
// would add over 10,000 cycles (1.6 KB × 10,000 = 16 MB), and over 300 cycles it still catches the
// loss of a pipeline's worth of state per cycle.
const (
	heapSlack = 4 << 20
	rssSlack  = 16 << 20
)

// TestLeakCycles runs LEAK_CYCLES (default 300; make leak: 10,000) cycles, each a pipeline holding
// a WebRtcEndpoint negotiated with a pion peer's offer, an RtpEndpoint negotiated with an SDP offer,
// a GStreamerFilter (videoflip) and a RecorderEndpoint, connected WebRTC → filter → recorder and
// WebRTC → RTP; the recorder records and stops, then the pipeline is released. Afterwards the
// server's goroutines, descriptors, UDP ports, child processes, live GStreamer workers (gst.Workers),
// heap and RSS must be back at their baseline.
func TestLeakCycles(t *testing.T) {
	cycles := 300
	if v := os.Getenv("LEAK_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("LEAK_CYCLES=%q: want a positive number", v)
		}
		cycles = n
	}
	srv := testserver.Start(t, fmt.Sprintf("KMS_MIN_PORT=%d", minPort), fmt.Sprintf("KMS_MAX_PORT=%d", maxPort))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// One offer for the cycles that do not connect: the peer's own cost stays out of the rate.
	offer, err := testpeer.Offer()
	if err != nil {
		t.Fatal(err)
	}
	lc := &leakCycle{t: t, ctx: ctx, c: c, url: srv.URL, offer: offer, dir: t.TempDir()}

	for i := range 2 * connectEvery { // warm-up: every path, twice connected
		lc.run(i)
	}
	base := settle(t, usage{})
	t.Logf("baseline: %s", base)

	start := time.Now()
	for i := range cycles {
		lc.run(i)
		if (i+1)%1000 == 0 {
			t.Logf("%d cycles, %.1f/s, %s", i+1, float64(i+1)/time.Since(start).Seconds(), measure())
		}
	}
	elapsed := time.Since(start)
	if n := srv.Registry.Len(); n != 1 {
		t.Errorf("%d objects left after the cycles, want only the ServerManager", n)
	}
	after := settle(t, base)
	t.Logf("%d cycles (%d connected) in %v, %.1f cycles/s", cycles, cycles/connectEvery, elapsed.Round(time.Millisecond),
		float64(cycles)/elapsed.Seconds())
	t.Logf("before: %s", base)
	t.Logf("after:  %s", after)
	if bad := after.exceeds(base); bad != "" {
		buf := make([]byte, 1<<20)
		t.Fatalf("not back to baseline after %d cycles: %s\n%s", cycles, bad, buf[:runtime.Stack(buf, true)])
	}
}

type leakCycle struct {
	t     *testing.T
	ctx   context.Context
	c     *client.Client
	url   string
	offer string
	dir   string
}

// rtpOffer is what an RTP application (ffmpeg, a SIP gateway) offers: VP8 and Opus to and from a
// loopback port nobody listens on.
const rtpOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=leak\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 47700 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n" +
	"m=video 47702 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n"

func (lc *leakCycle) run(i int) {
	t, ctx, c := lc.t, lc.ctx, lc.c
	must := func(what string, err error) {
		if err != nil {
			t.Fatalf("cycle %d: %s: %v", i, what, err)
		}
	}
	create := func(typ string, params map[string]any) string {
		id, err := c.Create(ctx, typ, params)
		must("create "+typ, err)
		return id
	}
	invoke := func(obj, op string, params map[string]any, out any) {
		must(op, c.Invoke(ctx, obj, op, params, out))
	}
	pipe := create("MediaPipeline", nil)
	in := map[string]any{"mediaPipeline": pipe}
	webrtc := create("WebRtcEndpoint", in)
	rtp := create("RtpEndpoint", in)
	filter := create("GStreamerFilter", map[string]any{"mediaPipeline": pipe, "command": "videoflip method=horizontal-flip"})
	rec := create("RecorderEndpoint", map[string]any{"mediaPipeline": pipe, "uri": "file://" + filepath.Join(lc.dir, "rec.webm"),
		"mediaProfile": "WEBM"})
	invoke(webrtc, "connect", map[string]any{"sink": filter}, nil)
	invoke(filter, "connect", map[string]any{"sink": rec}, nil)
	invoke(webrtc, "connect", map[string]any{"sink": rtp}, nil)
	var answer string
	invoke(rtp, "processOffer", map[string]any{"offer": rtpOffer}, &answer)
	if !strings.Contains(answer, "m=video") {
		t.Fatalf("cycle %d: RtpEndpoint answer without video:\n%s", i, answer)
	}
	invoke(rec, "record", nil, nil)

	var peer *testpeer.Peer
	if i%connectEvery == 0 {
		// On a connection of its own, as a browser's application session would be: the client
		// keeps its event handlers (and through them the peer) until the connection closes.
		pc, err := client.Dial(ctx, lc.url)
		must("dial", err)
		defer pc.Close()
		peer, err = testpeer.New(testpeer.Options{Send: true, Receive: true})
		must("peer", err)
		peer.Endpoint = webrtc
		must("negotiate", peer.Negotiate(ctx, pc, false))
		must("ICE and DTLS", peer.WaitConnected(ctx))
		peer.StartMedia()
	} else {
		invoke(webrtc, "processOffer", map[string]any{"offer": lc.offer}, &answer)
		invoke(webrtc, "gatherCandidates", nil, nil)
	}
	invoke(rec, "stop", nil, nil)
	must("release", c.Release(ctx, pipe))
	if peer != nil {
		peer.Close()
	}
}

// usage is what the server process holds; the test's own peers are closed when it is read.
type usage struct {
	goroutines, fds, udpPorts, children, workers, gstPipelines int
	heap, rss                                                  uint64
}

func (u usage) String() string {
	return fmt.Sprintf("goroutines %d, fds %d, UDP ports in %d-%d %d, child processes %d, GStreamer workers %d, GStreamer pipelines %d, heap %.1f MB, RSS %.1f MB",
		u.goroutines, u.fds, minPort, maxPort, u.udpPorts, u.children, u.workers, u.gstPipelines, float64(u.heap)/(1<<20), float64(u.rss)/(1<<20))
}

// exceeds says what is above the baseline beyond its tolerance ("" when nothing).
func (u usage) exceeds(base usage) string {
	var bad []string
	check := func(name string, got, want uint64) {
		if got > want {
			bad = append(bad, fmt.Sprintf("%s %d > %d", name, got, want))
		}
	}
	check("goroutines", uint64(u.goroutines), uint64(base.goroutines))
	check("fds", uint64(u.fds), uint64(base.fds))
	check("UDP ports", uint64(u.udpPorts), uint64(base.udpPorts))
	check("child processes", uint64(u.children), uint64(base.children))
	check("GStreamer workers", uint64(u.workers), uint64(base.workers))
	check("GStreamer pipelines", uint64(u.gstPipelines), uint64(base.gstPipelines))
	check("heap bytes", u.heap, base.heap+heapSlack)
	check("RSS bytes", u.rss, base.rss+rssSlack)
	return strings.Join(bad, ", ")
}

// settle waits (up to a deadline) until usage is within the tolerances of base, or stops changing
// when there is no base yet, and returns it.
func settle(t *testing.T, base usage) usage {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	u := measure()
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		next := measure()
		if base == (usage{}) {
			if next.goroutines == u.goroutines && next.fds == u.fds && next.udpPorts == 0 {
				return next
			}
		} else if next.exceeds(base) == "" {
			return next
		}
		u = next
	}
	return u
}

func measure() usage {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{goroutines: runtime.NumGoroutine(), fds: count("/proc/self/fd"), udpPorts: udpPortsInRange(),
		children: childProcesses(), workers: gst.Workers(), gstPipelines: int(gst.Live()), heap: ms.HeapAlloc, rss: vmRSS()}
}

func count(dir string) int {
	es, _ := os.ReadDir(dir)
	return len(es)
}

// udpPortsInRange counts this process's UDP sockets (IPv4 and IPv6) bound to a port of the
// endpoints' range (other processes on the machine may use the range too).
func udpPortsInRange() int {
	mine := map[string]bool{}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil {
			if inode, ok := strings.CutPrefix(l, "socket:["); ok {
				mine[strings.TrimSuffix(inode, "]")] = true
			}
		}
	}
	n := 0
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 10 || !mine[fields[9]] {
				continue
			}
			_, port, _ := strings.Cut(fields[1], ":")
			if p, err := strconv.ParseInt(port, 16, 32); err == nil && p >= minPort && p <= maxPort {
				n++
			}
		}
	}
	return n
}

// childProcesses counts the processes this one started that are still there (GStreamer workers,
// when they run out of process, and anything else the server spawns).
func childProcesses() int {
	tasks, _ := os.ReadDir("/proc/self/task")
	n := 0
	for _, task := range tasks {
		b, _ := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "children"))
		n += len(strings.Fields(string(b)))
	}
	return n
}

func vmRSS() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
