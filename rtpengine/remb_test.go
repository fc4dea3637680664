package rtpengine

import "testing"

// After losses, growth is exponential (exponentialFactor) only up to thresholdFactor of where the
// losses happened, then linear in steps of (estimate - threshold) / linealFactorGrade, at least
// linealFactorMin; packetsRecvIntervalTop sets how long a loss is remembered.
func TestRembLocalThresholdAndLinealGrowth(t *testing.T) {
	p := DefaultRembParams()
	p.ExponentialFactor, p.ThresholdFactor, p.LinealFactorGrade, p.LinealFactorMin = 0.5, 0.5, 10, 1000
	p.PacketsRecvIntervalTop, p.UpLosses = 10, 255 // a loss is forgotten after 10 packets; never cut
	r := NewRembLocal(p, 0)
	step := func(bitrate, fraction uint64) uint64 {
		got, ok := r.update(bitrate, fraction, 10)
		if !ok {
			t.Fatal("no estimate")
		}
		return got
	}
	if got := step(400000, 0); got != 600000 {
		t.Fatalf("first lossless report: %d, want the 400000 received grown by half", got)
	}
	// A loss at 600000: the threshold becomes 300000, the linear step (600000-300000)/10 = 30000.
	if got := step(400000, 10); got != 400000 {
		t.Fatalf("tolerated loss: %d, want the highest received, 400000", got)
	}
	// The loss is forgotten; the estimate is above the threshold: linear growth from the highest
	// bitrate seen, twice the input at most.
	if got := step(400000, 0); got != 430000 {
		t.Fatalf("lossless above the threshold: %d, want 400000 + 30000", got)
	}
}
