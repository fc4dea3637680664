package webrtc_test

import (
	"bufio"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

const (
	leakMinPort = 47400
	leakMaxPort = 47599
)

// udpSocketsInRange counts the machine's UDP sockets bound to a port in [lo, hi].
func udpSocketsInRange(t *testing.T, lo, hi int) int {
	n := 0
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			_, port, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(port, 16, 32)
			if err == nil && int(p) >= lo && int(p) <= hi {
				n++
			}
		}
		fh.Close()
	}
	return n
}

func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

// Creating, negotiating (with media) and releasing 20 WebRtcEndpoints leaves no goroutine, no file
// descriptor and no UDP socket behind.
func TestReleaseLeaksNothing(t *testing.T) {
	s := newSession(t, 50*time.Second, "KMS_MIN_PORT=47400", "KMS_MAX_PORT=47599")
	// Warm up once: certificates, pion's package-level state, the pipeline's flow checker.
	cycle := func(i int) {
		ep := s.endpoint()
		s.connect(ep, ep, "")
		p, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
		if err != nil {
			t.Fatal(err)
		}
		s.negotiate(p, ep)
		p.StartMedia()
		if err := p.WaitVideo(s.ctx); err != nil {
			t.Fatalf("endpoint %d: %v", i, err)
		}
		if n := udpSocketsInRange(t, leakMinPort, leakMaxPort); n == 0 {
			t.Fatalf("endpoint %d: no UDP socket in %d..%d while connected", i, leakMinPort, leakMaxPort)
		}
		if err := s.c.Release(s.ctx, ep); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	cycle(-1)
	settle := func() {
		poll(5*time.Second, func() bool { return udpSocketsInRange(t, leakMinPort, leakMaxPort) == 0 })
	}
	settle()
	time.Sleep(200 * time.Millisecond)
	baseG, baseFD := runtime.NumGoroutine(), openFDs()

	for i := range 20 {
		cycle(i)
	}
	if !poll(10*time.Second, func() bool { return udpSocketsInRange(t, leakMinPort, leakMaxPort) == 0 }) {
		t.Errorf("%d UDP sockets still open in %d..%d after release", udpSocketsInRange(t, leakMinPort, leakMaxPort), leakMinPort, leakMaxPort)
	}
	var g, fds int
	ok := poll(10*time.Second, func() bool {
		g, fds = runtime.NumGoroutine(), openFDs()
		return g <= baseG && fds <= baseFD
	})
	t.Logf("goroutines %d (baseline %d), fds %d (baseline %d)", g, baseG, fds, baseFD)
	if !ok {
		buf := make([]byte, 1<<20)
		t.Errorf("leak after 20 endpoints: goroutines %d (baseline %d), fds %d (baseline %d)\n%s",
			g, baseG, fds, baseFD, buf[:runtime.Stack(buf, true)])
	}
}
