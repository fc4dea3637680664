//go:build !kmsfuzz

package webrtc_test

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

const (
	leakMinPort = 47400
	leakMaxPort = 47599
)

// udpSocketsInRange counts this process's UDP sockets bound to a port in [lo, hi] (other processes'
// tests may use the same range at the same time).
func udpSocketsInRange(t *testing.T, lo, hi int) int {
	n := 0
	for _, s := range processSockets(t) {
		if s.proto == "udp" && int(s.addr.Port()) >= lo && int(s.addr.Port()) <= hi {
			n++
		}
	}
	return n
}

func openFDs() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

// Creating, negotiating (with media) and releasing 20 WebRtcEndpoints leaves no goroutine, no file
// descriptor and no UDP socket behind: with the shared UDP port, nothing but its sockets (opened
// with the first endpoint, one per interface address); with ports per endpoint, none.
func TestReleaseLeaksNothing(t *testing.T) {
	t.Run("shared port", func(t *testing.T) { testReleaseLeaksNothing(t, "true") })
	t.Run("port per endpoint", func(t *testing.T) { testReleaseLeaksNothing(t, "false") })
}

func testReleaseLeaksNothing(t *testing.T, udpMux string) {
	// Each its own half of the range: the shared sockets stay open for the process.
	lo, hi := leakMinPort, leakMinPort+99
	if udpMux == "true" {
		lo, hi = leakMinPort+100, leakMaxPort
	}
	s := newSession(t, 50*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", lo), fmt.Sprintf("KMS_MAX_PORT=%d", hi),
		"KMS_WEBRTC_UDP_MUX="+udpMux)
	// Warm up once: certificates, pion's package-level state, the pipeline's flow checker, the
	// shared sockets.
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
		if n := udpSocketsInRange(t, lo, hi); n == 0 {
			t.Fatalf("endpoint %d: no UDP socket in %d..%d while connected", i, lo, hi)
		}
		if err := s.c.Release(s.ctx, ep); err != nil {
			t.Fatal(err)
		}
		p.Close()
	}
	cycle(-1)
	shared := 0
	if udpMux == "true" {
		shared = len(sharedSocketAddresses())
	}
	settle := func() bool {
		return poll(10*time.Second, func() bool { return udpSocketsInRange(t, lo, hi) == shared })
	}
	settle()
	time.Sleep(200 * time.Millisecond)
	baseG, baseFD := runtime.NumGoroutine(), openFDs()

	for i := range 20 {
		cycle(i)
	}
	if !settle() {
		t.Errorf("%d UDP sockets open in %d..%d after release, want %d", udpSocketsInRange(t, lo, hi), lo, hi, shared)
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
