package rtpengine

import (
	"fmt"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// TestReceiverForgetsOldLosses: a loss nobody recovered leaves the window when the stream moves a
// window further, instead of staying pending (which kept Due scanning forever).
func TestReceiverForgetsOldLosses(t *testing.T) {
	r := NewReceiver(48000)
	r.Push(0, 0, 10, 1)
	r.Push(2, 960, 10, 2) // 1 is lost, and never NACKed (audio)
	if r.pending != 1 {
		t.Fatalf("pending %d after one loss, want 1", r.pending)
	}
	for seq := uint16(3); seq < nackWindow+8; seq++ {
		r.Push(seq, uint32(seq)*960, 10, int64(seq))
	}
	if r.pending != 0 || r.Stats.GivenUp.Load() != 1 {
		t.Errorf("a window later: pending %d, given up %d; want 0 and 1", r.pending, r.Stats.GivenUp.Load())
	}
}

// A gap is NACKed at once, again after nackRetry, and given up after nackTries (the caller then asks
// for a keyframe); a packet that arrives late is counted as recovered and not asked for again.
func TestReceiverNACKTiming(t *testing.T) {
	r := NewReceiver(90000)
	ms := int64(time.Millisecond)
	now := 1000 * ms
	r.Push(9, 0, 100, now)
	r.Push(8, 0, 100, now) // late: no loss, no window yet
	r.Push(10, 0, 100, now)
	if r.missing != nil {
		t.Fatal("a stream without loss holds a loss window")
	}
	r.Push(13, 9000, 100, now) // 11 and 12 lost
	if seqs, _ := r.Due(now); len(seqs) != 2 || seqs[0] != 11 || seqs[1] != 12 {
		t.Fatalf("first NACK %v, want [11 12]", seqs)
	}
	if seqs, _ := r.Due(now + 20*ms); len(seqs) != 0 {
		t.Fatalf("NACKed again after 20 ms: %v", seqs)
	}
	r.Push(12, 6000, 100, now+30*ms)
	if seqs, _ := r.Due(now + 45*ms); len(seqs) != 1 || seqs[0] != 11 {
		t.Fatalf("second NACK %v, want [11]", seqs)
	}
	gaveUp := false
	for i := int64(2); i <= nackTries+1 && !gaveUp; i++ {
		_, gaveUp = r.Due(now + i*45*ms)
	}
	if !gaveUp || r.Stats.Recovered.Load() != 1 || r.Stats.GivenUp.Load() != 1 {
		t.Fatalf("gave up %v, recovered %d, given up %d; want true, 1, 1", gaveUp, r.Stats.Recovered.Load(), r.Stats.GivenUp.Load())
	}
}

// The reception report says what RFC 3550 asks: fraction lost over the interval, cumulative loss,
// extended highest sequence number across the wrap, and the last SR with the delay since.
func TestReportBlock(t *testing.T) {
	r := NewReceiver(90000)
	now := time.Unix(1700000000, 0)
	for seq := 65530; seq < 65530+20; seq++ {
		if seq%5 == 2 {
			continue // 4 of 20 lost
		}
		r.Push(uint16(seq), uint32(seq)*3000, 100, now.UnixNano())
	}
	r.Stats.OnSenderReport(NTPTime(now), now)
	b := r.Stats.ReportBlock(42, now.Add(500*time.Millisecond))
	if b.SSRC != 42 || b.TotalLost != 4 || b.LastSequenceNumber != 1<<16+(65530+19-65536) {
		t.Fatalf("block %+v: want SSRC 42, 4 lost, highest %d", b, 1<<16+(65530+19-65536))
	}
	if want := uint8(4 * 256 / 20); b.FractionLost != want {
		t.Errorf("fraction lost %d, want %d", b.FractionLost, want)
	}
	if b.LastSenderReport != uint32(NTPTime(now)>>16) || b.Delay != 65536/2 {
		t.Errorf("LSR %x DLSR %d, want %x and half a second (32768)", b.LastSenderReport, b.Delay, uint32(NTPTime(now)>>16))
	}
	if b := r.Stats.ReportBlock(42, now); b.FractionLost != 0 {
		t.Errorf("nothing new arrived, yet fraction lost %d", b.FractionLost)
	}
}

// After a Restart (a new SSRC whose sequence numbers start elsewhere) the loss is not counted from
// the old numbers, and the counters go on.
func TestReceiverRestart(t *testing.T) {
	r := NewReceiver(90000)
	for seq := uint16(100); seq < 110; seq++ {
		r.Push(seq, 0, 10, 1)
	}
	r.Restart()
	for seq := uint16(5); seq < 15; seq++ {
		r.Push(seq, 0, 10, 2)
	}
	if r.Stats.Expected.Load() != 20 || r.Stats.Lost() != 0 {
		t.Fatalf("expected %d lost %d, want 20 and 0", r.Stats.Expected.Load(), r.Stats.Lost())
	}
}

// The receiving side of NACK: following the stream for gaps, per packet.
func BenchmarkReceiverPush(b *testing.B) {
	r := NewReceiver(90000)
	b.ReportAllocs()
	now := int64(1)
	for i := 0; i < b.N; i++ {
		now += 1000
		r.Push(uint16(i), uint32(i)*3000, 1100, now)
		r.Due(now)
	}
}

// AppendNackPairs makes the items pion's NackPairsFromSequenceNumbers makes, into the caller's slice,
// across a sequence number wrap too.
func TestAppendNackPairs(t *testing.T) {
	for _, seqs := range [][]uint16{{5}, {1, 2, 3, 17, 18, 40}, {65530, 65535, 0, 4, 30}, {100, 116, 117, 133}} {
		got := AppendNackPairs(make([]rtcp.NackPair, 0, 1), seqs)
		if want := rtcp.NackPairsFromSequenceNumbers(seqs); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%v: %v, want %v", seqs, got, want)
		}
	}
}
