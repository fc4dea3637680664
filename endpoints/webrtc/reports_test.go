//go:build !kmsfuzz

package webrtc_test

import (
	"math"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/rtp"
)

// The RTCP reports are ours, not pion's interceptors': a publisher that never sends one packet in
// ten gets our receiver reports saying so (fraction lost about 10 %, the cumulative loss), and its
// viewer gets sender reports whose NTP time is the wall clock, whose RTP time matches the stream it
// receives (what browsers need for lip sync and round-trip times), and whose counts are what it got.
func TestReportsToPublisherAndViewer(t *testing.T) {
	s := newSession(t, 40*time.Second)
	pubEP, viewEP := s.endpoint(), s.endpoint()
	s.connect(pubEP, viewEP, "")
	pub := s.peer(testpeer.Options{Send: true})
	viewer := s.peer(testpeer.Options{Receive: true})
	s.negotiate(pub, pubEP)
	s.negotiate(viewer, viewEP)

	// One-packet keyframes at 30 fps; every tenth sequence number is never sent (no retransmission
	// can repair it).
	stop := make(chan struct{})
	defer close(stop)
	skipped := make(chan int, 1)
	go func() {
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		payload := make([]byte, 500)
		payload[0] = 0x10 // S=1, keyframe
		n := 0
		for seq := uint16(1000); ; seq++ {
			select {
			case <-stop:
				skipped <- n
				return
			case <-tick.C:
			}
			if seq%10 == 0 {
				n++
				continue
			}
			_ = pub.WriteVideo(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: uint32(seq) * 3000}, Payload: payload})
		}
	}()
	if err := viewer.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}

	// The publisher's side: reception reports with the loss.
	if !poll(20*time.Second, func() bool {
		rr, _ := pub.Reports.ReceptionReport()
		return rr != nil && rr.TotalLost >= 5 && rr.FractionLost > 0
	}) {
		rr, n := pub.Reports.ReceptionReport()
		t.Fatalf("%d reception reports, the last %+v: want the loss of one packet in ten", n, rr)
	}
	rr, n := pub.Reports.ReceptionReport()
	t.Logf("%d reception reports; the last: fraction lost %d/256, lost %d, highest %d, jitter %d, LSR %x DLSR %d",
		n, rr.FractionLost, rr.TotalLost, rr.LastSequenceNumber, rr.Jitter, rr.LastSenderReport, rr.Delay)
	if f := float64(rr.FractionLost) / 256; f < 0.04 || f > 0.2 {
		t.Errorf("fraction lost %.3f, want about 0.1", f)
	}

	// The viewer's side: sender reports about the stream it receives.
	var first uint32
	if !poll(20*time.Second, func() bool {
		sr, _, _, _, _, _ := viewer.Reports.SenderReport()
		if sr != nil && first == 0 {
			first = sr.PacketCount
		}
		return sr != nil && first != 0 && sr.PacketCount > first
	}) {
		t.Fatal("the viewer got no two sender reports on its video")
	}
	sr, at, lastTS, lastAt, packets, bytes := viewer.Reports.SenderReport()
	ntp := time.Unix(int64(sr.NTPTime>>32)-2208988800, int64((sr.NTPTime&0xffffffff)*1e9>>32))
	t.Logf("SR: NTP %v (arrived %v), RTP %d, %d packets, %d octets; the viewer had %d packets, %d bytes, the last RTP %d at %v",
		ntp.Format(time.StampMicro), at.Format(time.StampMicro), sr.RTPTime, sr.PacketCount, sr.OctetCount, packets, bytes, lastTS, lastAt.Format(time.StampMicro))
	if d := at.Sub(ntp); d < 0 || d > time.Second {
		t.Errorf("SR NTP time %v, arrived %v: want the wall clock when it was sent", ntp, at)
	}
	// The RTP time is that of the stream at the NTP time: the last packet's timestamp advanced by the
	// time between them (at 90 kHz), within the packet interval and the scheduling on a loaded machine.
	want := float64(lastTS) + ntp.Sub(lastAt).Seconds()*90000
	if d := math.Abs(float64(int32(sr.RTPTime-uint32(int64(want))))) / 90; d > 150 {
		t.Errorf("SR RTP time %d, the stream was at %.0f: %.0f ms apart", sr.RTPTime, want, d)
	}
	// The counts are those of the SR's NTP time; packets sent just after it may overtake it, others
	// sent before it may still be on their way.
	if d := int64(sr.PacketCount) - packets; d < -15 || d > 15 {
		t.Errorf("SR says %d packets sent, the viewer had received %d", sr.PacketCount, packets)
	}
	if d := int64(sr.OctetCount) - bytes; d < -15*500 || d > 15*500 {
		t.Errorf("SR says %d octets sent, the viewer had received %d payload bytes", sr.OctetCount, bytes)
	}
}

// A publisher whose packets carry the transport-wide sequence number, as browsers' do, gets
// transport-cc feedback every 100 ms or so (its send-side estimation lives on it), reporting on the
// packets it sent; measured against the publisher's own frame clock, not the wall clock.
func TestTWCCFeedbackToPublisher(t *testing.T) {
	s := newSession(t, 40*time.Second)
	pubEP, viewEP := s.endpoint(), s.endpoint()
	s.connect(pubEP, viewEP, "")
	pub := s.peer(testpeer.Options{Send: true, TWCC: true})
	viewer := s.peer(testpeer.Options{Receive: true})
	s.negotiate(pub, pubEP)
	s.negotiate(viewer, viewEP)
	pub.StartMedia()
	if err := viewer.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	// Two seconds of frames at 30 fps: about 20 feedback packets at 100 ms, 4 if the feedback only
	// went with the 500 ms reports.
	frames0, fb0, reported0 := pub.FramesSent.Load(), pub.TWCCFeedback.Load(), pub.TWCCReported.Load()
	sent0 := pub.VideoPacketsSent.Load()
	if !poll(20*time.Second, func() bool { return pub.FramesSent.Load() >= frames0+60 }) {
		t.Fatal("the publisher stopped sending")
	}
	fb, reported := pub.TWCCFeedback.Load()-fb0, pub.TWCCReported.Load()-reported0
	sent := pub.VideoPacketsSent.Load() - sent0
	t.Logf("over 60 frames: %d transport-cc feedback packets reporting on %d packets; %d video packets sent (and audio)", fb, reported, sent)
	if fb < 8 {
		t.Errorf("%d transport-cc feedback packets over two seconds of media, want about 20", fb)
	}
	if reported < sent/2 {
		t.Errorf("the feedback reported on %d packets, the publisher sent %d video packets alone", reported, sent)
	}
}
