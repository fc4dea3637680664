package rtpengine

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A sender report carries what was sent and the newest timestamp advanced by the time since it went
// out; a retransmission counts as sent but does not move the timestamp back.
func TestSenderReport(t *testing.T) {
	o := NewOutbound(7, 90000)
	if _, ok := o.SenderReport(time.Now(), nil); ok {
		t.Fatal("a sender report before anything was sent")
	}
	for i := range 10 {
		o.Sent(&rtp.Header{SequenceNumber: uint16(65530 + i), Timestamp: uint32(i) * 3000}, 1000, 1012)
	}
	sentAt := time.Now()
	o.Sent(&rtp.Header{SequenceNumber: 65533, Timestamp: 9000}, 1000, 1012) // resent
	sr, ok := o.SenderReport(sentAt.Add(100*time.Millisecond), nil)
	if !ok || sr.SSRC != 7 || sr.PacketCount != 11 || sr.OctetCount != 11000 {
		t.Fatalf("SR %+v: want SSRC 7, 11 packets, 11000 octets", sr)
	}
	// The newest timestamp, 27000, advanced by the 100 ms since (9000 at 90 kHz), within what the
	// clock moved while the packets were recorded.
	if d := int32(sr.RTPTime - (9*3000 + 9000)); d > 0 || d < -90 {
		t.Errorf("RTP time %d, want 36000 (the newest 27000 + 100 ms at 90 kHz)", sr.RTPTime)
	}
	if want := NTPTime(sentAt.Add(100 * time.Millisecond)); sr.NTPTime != want {
		t.Errorf("NTP time %x, want %x", sr.NTPTime, want)
	}
}

// With the budget, retransmissions never take more than half of what was sent.
func TestRetransmissionBudget(t *testing.T) {
	o := NewOutbound(7, 90000)
	o.LimitRetransmissions()
	for i := range 10 {
		o.Sent(&rtp.Header{SequenceNumber: uint16(i)}, 988, 1000)
	}
	resent := 0
	for range 100 {
		if o.Sent(&rtp.Header{SequenceNumber: 3}, 988, 1000) {
			resent++
		}
	}
	if resent != 5 {
		t.Fatalf("%d retransmissions of 1000 bytes after 10 000 bytes sent, want 5", resent)
	}
}

// Following what is sent allocates nothing: video of three packets a frame.
func BenchmarkOutboundSent(b *testing.B) {
	o := NewOutbound(7, 90000)
	h := &rtp.Header{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		h.SequenceNumber++
		h.Timestamp = uint32(i/3) * 3000
		o.Sent(h, 1100, 1112)
	}
}
