//go:build !kmsfuzz

package webrtc_test

import (
	"bufio"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/rtp"
)

// captureStderr sends the process's file descriptor 2 (pion's default logger, the test server's log,
// anything native) to a pipe until the returned function is called, which gives the lines written.
func captureStderr(t *testing.T) func() []string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved, err := syscall.Dup(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup2(int(w.Fd()), 2); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	restored := false
	restore := func() []string {
		if !restored {
			restored = true
			syscall.Dup2(saved, 2)
			syscall.Close(saved)
			w.Close()
			<-done
			r.Close()
		}
		mu.Lock()
		defer mu.Unlock()
		return lines
	}
	t.Cleanup(func() { restore() })
	return restore
}

// A peer sending 1000 datagrams larger than the receive MTU makes at most a few log lines: pion's
// "short buffer" line per packet is aggregated per interval (today: one line per packet).
func TestBigPacketsDoNotFloodTheLog(t *testing.T) {
	s := newSession(t, 60*time.Second)
	ep := s.endpoint()
	s.connect(ep, ep, "")
	peer := s.peer(testpeer.Options{Send: true, Receive: true})
	s.negotiate(peer, ep)
	stop := captureStderr(t)
	big := make([]byte, 1400) // with 200 bytes of padding: a datagram over any receive MTU we set
	big[0] = 0x10
	for i := range 1000 {
		if err := peer.WriteVideo(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000, Marker: true, Padding: true, PaddingSize: 200}, Payload: big}); err != nil {
			stop()
			t.Fatal(err)
		}
	}
	// Normal media after the flood: once it comes back through the loopback, the big packets were
	// all read.
	peer.StartMedia()
	err := peer.WaitVideo(s.ctx)
	lines := stop()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range lines {
		if strings.Contains(l, "short buffer") {
			n++
		}
	}
	t.Logf("1000 datagrams of 1600 bytes: %d log lines about them (%d lines in all)", n, len(lines))
	if n == 0 || n > 3 {
		t.Fatalf("%d log lines for 1000 oversized packets, want 1 to 3:\n%s", n, strings.Join(lines[:min(len(lines), 20)], "\n"))
	}
}
