//go:build !kmsfuzz

package webrtc_test

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/rtp"
)

// BenchmarkEndpointReceive: a pion peer publishes video to a WebRtcEndpoint of an in-process
// server (its source has no sink), by the direct SRTP receive path or pion's. cpu-ns/op is the
// process's CPU per packet, the peer's sending included (the same in both).
func BenchmarkEndpointReceive(b *testing.B) {
	b.Run("path=direct", func(b *testing.B) { benchEndpointReceive(b) })
	b.Run("path=pion", func(b *testing.B) { benchEndpointReceive(b, "KMS_WEBRTC_DIRECT_SRTP=false") })
}

func benchEndpointReceive(b *testing.B, env ...string) {
	s := newSession(b, 10*time.Minute, env...)
	ep := s.endpoint()
	p := s.peer(testpeer.Options{Send: true})
	s.negotiate(p, ep)
	payload := make([]byte, 1100)
	payload[0] = 0x10
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}, Payload: payload}
	write := func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
		if err := p.WriteVideo(pkt); err != nil {
			b.Fatal(err)
		}
	}
	total := func() uint64 { r := webrtc.ReceivedRTP(); return r.Direct + r.Pion }
	// Until the track is made and, on the direct path, bound.
	for start := total(); total() < start+100; {
		write()
		time.Sleep(time.Millisecond)
	}
	payload[1] = 0x01
	b.ReportAllocs()
	start, cpu0 := total(), webrtc.CPUTime()
	b.ResetTimer()
	// Paced as a stream (8 packets a millisecond), the same wake-ups whatever the path.
	for i := range b.N {
		write()
		if i%8 == 7 {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for total()-start < uint64(b.N)*99/100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	got := total() - start
	b.ReportMetric(float64(webrtc.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
	full, rejected := webrtc.DirectRxDropped()
	b.Logf("%d of %d received; direct path dropped %d (ring full), %d (rejected)", got, b.N, full, rejected)
	if got < uint64(b.N)*99/100 {
		b.Fatalf("%d of %d packets received", got, b.N)
	}
}
