// Package memory measures what a WebRtcEndpoint costs the server: live heap, resident memory and
// goroutines per idle endpoint (negotiated, nobody connects) and per active loopback session (a pion
// peer sending VP8 and Opus to an endpoint connected to itself). The peers run in a child process
// (this test binary again), so that the figures are the server's alone.
package memory

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/kurento-go/kms/memreturn"
)

// Bounds the test holds the server to: the heap bounds are about twice what was measured
// (docs/ARCHITECTURE.md, "Memory per endpoint"), so that only a real regression trips them; the
// goroutines are those the architecture notes list and justify ("Goroutines per endpoint"): a fixed
// number, plus two per host candidate (pion reads each candidate's connection, and the shared UDP
// port's mux and the ICE-TCP port's mux each watch every connection they hand out for its close).
const (
	idleHeapBound    = 300 << 10
	sessionHeapBound = 1200 << 10
	// idleGoroutines: pion's ICE agent (task loop, connectivity checks, a context watch) and the
	// start of its transports, waiting for ICE.
	idleGoroutines = 4
	// sessionGoroutines: an endpoint's once connected (pion 13: ICE 3, the ICE connection's reader
	// and the mux 2, DTLS 3, SRTP and SRTCP accept loops 2, read-stream waiters 3; ours 6: 2 track
	// readers, 2 readers of the tracks' sender reports, 2 readers of our senders' RTCP; the feedback
	// loop and the pipeline's flow check are timers), plus the session's WebSocket connection.
	sessionGoroutines = 13 + 6 + 1
)

// peersEnv, set in the child process, holds the server URL the child's loopback peers connect to;
// sessionsEnv their number.
const (
	peersEnv    = "MEMORY_TEST_PEERS_URL"
	sessionsEnv = "MEMORY_TEST_SESSIONS"
)

func TestMain(m *testing.M) {
	if url := os.Getenv(peersEnv); url != "" {
		n, _ := strconv.Atoi(os.Getenv(sessionsEnv))
		if err := runPeers(url, n); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	memreturn.SetGCPercent(os.Getenv) // the server's policy, whose resident memory is measured
	if os.Getenv("MEMORY_PROFILE_DIR") != "" {
		runtime.MemProfileRate = 1 // every allocation: the profiles must add up per endpoint
	}
	os.Exit(m.Run())
}

// runPeers connects n loopback sessions, each in a pipeline of its own as an echo application makes
// them, says "ready" once every peer gets its video back, and keeps them until stdin closes.
func runPeers(url string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var peers []*testpeer.Peer
	defer func() {
		for _, p := range peers {
			p.Close()
		}
	}()
	for i := range n {
		c, err := client.Dial(ctx, url)
		if err != nil {
			return err
		}
		defer c.Close()
		pipeline, err := c.Create(ctx, "MediaPipeline", nil)
		if err != nil {
			return err
		}
		p, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
		if err != nil {
			return err
		}
		peers = append(peers, p)
		if err := p.Connect(ctx, c, pipeline, true); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		if err := p.WaitConnected(ctx); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		p.StartMedia()
		if err := p.WaitVideo(ctx); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	// Two seconds of video back on every session: the caches fill, REMB and TWCC run, the pools
	// reach their working size.
	for _, p := range peers {
		for p.FramesReceived.Load() < 60 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("no steady video: %w", ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	fmt.Println("ready")
	bufio.NewReader(os.Stdin).ReadString('\n')
	return nil
}

// usage is what the process holds at one moment: the resident memory as the process runs, the
// live heap and stacks after a full collection.
type usage struct {
	heap, stacks, rss uint64
	goroutines        int
}

var pageSize = uint64(os.Getpagesize())

func measure() usage {
	u := usage{rss: resident()}
	runtime.GC()
	runtime.GC() // the first may leave finalizers' objects for the second
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	u.heap, u.stacks, u.goroutines = s[0].Value.Uint64(), s[1].Value.Uint64(), runtime.NumGoroutine()
	return u
}

func resident() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * pageSize
}

// baseline is measure after giving the free memory back, so that the growth is measured from a
// compact process.
func baseline(ctx context.Context, t *testing.T) usage {
	settle(ctx, t)
	debug.FreeOSMemory()
	return measure()
}

// rates are what the server does per second over a window of steady media: bytes allocated,
// collections, CPU time (user and system, the whole process: the peers are in another).
type rates struct{ allocs, gcs, cpu float64 }

func measureRates(window time.Duration) rates {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	a0, g0, c0 := s[0].Value.Uint64(), s[1].Value.Uint64(), cpuTime()
	start := time.Now()
	for time.Since(start) < window {
		time.Sleep(100 * time.Millisecond)
	}
	metrics.Read(s)
	d := time.Since(start).Seconds()
	return rates{float64(s[0].Value.Uint64()-a0) / d, float64(s[1].Value.Uint64()-g0) / d, (cpuTime() - c0).Seconds() / d}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// perEndpoint is the growth from base to now divided among n endpoints.
type perEndpoint struct {
	heap, stacks, rss float64 // bytes
	goroutines        float64
}

func per(base, now usage, n int) perEndpoint {
	d := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return perEndpoint{heap: d(now.heap, base.heap), stacks: d(now.stacks, base.stacks), rss: d(now.rss, base.rss),
		goroutines: float64(now.goroutines-base.goroutines) / float64(n)}
}

func (p perEndpoint) String() string {
	return fmt.Sprintf("live heap %.1f KB, goroutine stacks %.1f KB, RSS %.1f KB, goroutines %.2f",
		p.heap/1024, p.stacks/1024, p.rss/1024, p.goroutines)
}

// count reads an integer from the environment, def when unset.
func count(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// heapProfile writes the heap profile of the moment to MEMORY_PROFILE_DIR/name, when set.
func heapProfile(t *testing.T, name string) {
	dir := os.Getenv("MEMORY_PROFILE_DIR")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
	g, err := os.Create(filepath.Join(dir, strings.TrimSuffix(name, ".pprof")+".goroutines"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	pprof.Lookup("goroutine").WriteTo(g, 1)
}

// settle waits until the goroutine count has stopped moving (pion's gathering and ICE goroutines
// come and go for a while after negotiation), then measures. Under media, goroutines that live for a
// burst (the forwarding writers) keep it moving: after 10 s it takes the lowest count of the last
// second, the goroutines that stay.
func settle(ctx context.Context, t *testing.T) usage {
	var recent []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		recent = append(recent, runtime.NumGoroutine())
		if len(recent) > 5 {
			recent = recent[1:]
		}
		if len(recent) == 5 && (slices.Min(recent) == slices.Max(recent) || time.Now().After(deadline)) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("goroutines never settled")
		case <-time.After(200 * time.Millisecond):
		}
	}
	u := measure()
	u.goroutines = min(u.goroutines, slices.Min(recent))
	return u
}

// hostCandidates counts the UDP and TCP host candidates of an endpoint of the pipeline, from its
// local description once gathering is done.
func hostCandidates(ctx context.Context, t *testing.T, c *client.Client, pipeline string) (udp, tcp int) {
	var children []string
	if err := c.Invoke(ctx, pipeline, "getChildren", nil, &children); err != nil || len(children) == 0 {
		t.Fatalf("pipeline children: %v %v", children, err)
	}
	var sdp string
	if err := c.Invoke(ctx, children[0], "getLocalSessionDescriptor", nil, &sdp); err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(sdp, "\n") {
		f := strings.Fields(line) // a=candidate:foundation component transport ...
		if !strings.HasPrefix(line, "a=candidate:") || !strings.Contains(line, " typ host") || len(f) < 3 || f[1] != "1" {
			continue
		}
		if strings.EqualFold(f[2], "tcp") {
			tcp++
		} else {
			udp++
		}
	}
	if udp == 0 {
		t.Fatalf("no host candidate in the local description:\n%s", sdp)
	}
	return udp, tcp
}

// TestMemoryPerEndpoint measures MEMORY_IDLE (default 40) idle endpoints, then MEMORY_SESSIONS
// (default 10) active loopback sessions, logs the figures and holds them to the bounds above.
// MEMORY_PROFILE_DIR, when set, receives heap profiles taken with the endpoints alive.
func TestMemoryPerEndpoint(t *testing.T) {
	idle, sessions := count(t, "MEMORY_IDLE", 40), count(t, "MEMORY_SESSIONS", 10)
	srv := testserver.Start(t, "KMS_MIN_PORT=48400", "KMS_MAX_PORT=48799")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	offer, err := testpeer.Offer()
	if err != nil {
		t.Fatal(err)
	}

	// Idle: processOffer and gatherCandidates, as an application does before its browser connects.
	idleEndpoints := func(n int) string {
		pipeline, err := c.Create(ctx, "MediaPipeline", nil)
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": offer}, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Invoke(ctx, ep, "gatherCandidates", nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		return pipeline
	}
	// Warm-up: certificates, pools and pion's package-level state, the pipeline's own goroutines.
	warm := idleEndpoints(2)
	base := baseline(ctx, t)
	udp, tcp := hostCandidates(ctx, t, c, warm)
	t.Logf("host candidates per endpoint: %d UDP, %d TCP", udp, tcp)
	pipeline := idleEndpoints(idle)
	now := settle(ctx, t)
	heapProfile(t, "idle.pprof")
	idleCost := per(base, now, idle)
	t.Logf("idle endpoint (%d): %s", idle, idleCost)
	if err := c.Release(ctx, pipeline); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, warm); err != nil {
		t.Fatal(err)
	}

	// Active: the peers in a child process.
	base = baseline(ctx, t)
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), peersEnv+"="+srv.URL, sessionsEnv+"="+strconv.Itoa(sessions))
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		child.Wait()
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("peers: %q %v", line, err)
	}
	r := measureRates(time.Duration(count(t, "MEMORY_WINDOW_SECONDS", 2)) * time.Second)
	now = settle(ctx, t)
	heapProfile(t, "active.pprof")
	sessionCost := per(base, now, sessions)
	t.Logf("active loopback session (%d): %s", sessions, sessionCost)
	t.Logf("per session: %.1f KB/s allocated, %.2f ms/s CPU; %.2f collections/s (GOGC %q)",
		r.allocs/float64(sessions)/1024, 1000*r.cpu/float64(sessions), r.gcs, os.Getenv("GOGC"))

	if idleCost.heap > idleHeapBound {
		t.Errorf("an idle endpoint holds %.1f KB of live heap, bound %d KB", idleCost.heap/1024, idleHeapBound>>10)
	}
	if sessionCost.heap > sessionHeapBound {
		t.Errorf("an active session holds %.1f KB of live heap, bound %d KB", sessionCost.heap/1024, sessionHeapBound>>10)
	}
	perCandidate := 2 * (udp + tcp)
	if want := idleGoroutines + perCandidate; idleCost.goroutines > float64(want)+0.5 {
		t.Errorf("%.2f goroutines per idle endpoint, documented %d", idleCost.goroutines, want)
	}
	if want := sessionGoroutines + perCandidate; sessionCost.goroutines > float64(want)+0.5 {
		t.Errorf("%.2f goroutines per active session, documented %d", sessionCost.goroutines, want)
	}
}
