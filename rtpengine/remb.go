package rtpengine

import "time"

// RembParams are KMS's RembParams: how the REMB an endpoint sends to a publisher follows what it
// receives from it (RembLocal) and what the endpoint asks its own source for before the peer's
// first estimates (RembOnConnect).
type RembParams struct {
	// PacketsRecvIntervalTop is the window, in packets, over which losses are remembered.
	PacketsRecvIntervalTop int
	// ExponentialFactor is the growth per report while below the threshold (0.04: +4 %).
	ExponentialFactor float64
	// LinealFactorMin (bps) is the least linear growth per report above the threshold.
	LinealFactorMin int
	// LinealFactorGrade divides the distance to the threshold into linear steps.
	LinealFactorGrade float64
	// DecrementFactor cuts the estimate when losses exceed UpLosses.
	DecrementFactor float64
	// ThresholdFactor sets, on losses, where exponential growth turns linear.
	ThresholdFactor float64
	// UpLosses (fraction lost, 1/256) is the loss tolerated without cutting the estimate.
	UpLosses int
	// RembOnConnect (bps) is what a sender asks of its source until its peer's REMB has probed.
	RembOnConnect int
}

// DefaultRembParams are KMS's (kmsremb.c).
func DefaultRembParams() RembParams {
	return RembParams{PacketsRecvIntervalTop: 100, ExponentialFactor: 0.04, LinealFactorMin: 50,
		LinealFactorGrade: 30, DecrementFactor: 0.5, ThresholdFactor: 0.8, UpLosses: 12, RembOnConnect: 300000}
}

// REMB bounds of KMS: never ask for less than rembMin; an unprobed estimate starts at rembMax.
const (
	rembMin = 30000
	rembMax = 2000000
	// rembInputFactor bounds the growth to this many times the highest bitrate received.
	rembInputFactor = 2
)

// RembLocal estimates, from what arrives of one publisher's video, the bitrate to ask it for: KMS's
// KmsRembLocal. The estimate starts at the first measured bitrate, grows exponentially without
// losses up to a threshold and linearly above it (never beyond twice the highest bitrate seen),
// holds while losses stay under UpLosses and is cut by DecrementFactor above. Not safe for
// concurrent use: one goroutine reports.
type RembLocal struct {
	p      RembParams
	maxBps uint64 // maxVideoRecvBandwidth; 0: none

	probed       bool
	remb         uint64
	threshold    uint64
	linealFactor uint64
	maxBr        uint64
	avgBr        uint64
	lossRecord   uint64 // fraction lost (1/256) over the last PacketsRecvIntervalTop packets

	started                        bool
	lastAt                         time.Time
	lastPackets, lastExp, lastByte uint64
}

// NewRembLocal starts an estimator with the given parameters that never asks for more than maxKbps
// (maxVideoRecvBandwidth, 0: no limit).
func NewRembLocal(p RembParams, maxKbps int) *RembLocal {
	p.PacketsRecvIntervalTop = max(p.PacketsRecvIntervalTop, 1)
	if p.LinealFactorGrade <= 0 {
		p.LinealFactorGrade = 1
	}
	return &RembLocal{p: p, maxBps: uint64(max(maxKbps, 0)) * 1000, remb: rembMax, threshold: rembMax, linealFactor: uint64(max(p.LinealFactorMin, 0))}
}

// Update takes the receiver's cumulative counters (packets received, packets expected, payload
// bytes) and returns the new estimate in bps; false while nothing arrived since the last call.
func (r *RembLocal) Update(now time.Time, packets, expected, bytes uint64) (uint64, bool) {
	if !r.started || packets < r.lastPackets {
		r.started = true
		r.lastAt, r.lastPackets, r.lastExp, r.lastByte = now, packets, expected, bytes
		return 0, false
	}
	got, exp := packets-r.lastPackets, expected-r.lastExp
	if exp == 0 || now.Sub(r.lastAt) <= 0 {
		return 0, false
	}
	var fraction uint64
	if got < exp {
		fraction = (exp - got) * 256 / exp
	}
	bitrate := uint64(float64(bytes-r.lastByte) * 8 / now.Sub(r.lastAt).Seconds())
	r.lastAt, r.lastPackets, r.lastExp, r.lastByte = now, packets, expected, bytes
	return r.update(bitrate, fraction, got)
}

func (r *RembLocal) update(bitrate, fraction, packets uint64) (uint64, bool) {
	if !r.probed {
		if bitrate == 0 {
			return 0, false
		}
		r.remb, r.probed = bitrate, true
	}
	top := max(uint64(r.p.PacketsRecvIntervalTop), packets)
	r.lossRecord = (r.lossRecord*(top-packets) + fraction*packets) / top
	r.maxBr = max(r.maxBr, bitrate)
	if r.avgBr == 0 {
		r.avgBr = bitrate
	} else {
		r.avgBr = (r.avgBr*7 + bitrate) / 8
	}
	if r.lossRecord == 0 {
		base := max(r.remb, r.maxBr)
		next := base + r.linealFactor
		if base < r.threshold {
			next = uint64(float64(base) * (1 + r.p.ExponentialFactor))
		}
		r.remb = max(r.remb, min(next, r.maxBr*rembInputFactor))
	} else {
		base := max(r.remb, r.avgBr)
		r.threshold = uint64(float64(base) * r.p.ThresholdFactor)
		step := uint64(max(float64(base)-float64(r.threshold), 0) / r.p.LinealFactorGrade)
		r.linealFactor = max(uint64(max(r.p.LinealFactorMin, 0)), step)
		if r.lossRecord < uint64(max(r.p.UpLosses, 0)) {
			r.remb = min(r.remb, r.maxBr)
		} else {
			r.remb = uint64(float64(base) * r.p.DecrementFactor)
			r.lossRecord, r.maxBr, r.avgBr = 0, 0, 0
		}
	}
	if r.maxBps > 0 {
		r.remb = min(r.remb, r.maxBps)
	}
	return r.remb, true
}

// ClampREMB keeps a REMB within an endpoint's minVideoRecvBandwidth and maxVideoRecvBandwidth
// (kbps, 0: none), never below KMS's 30 kbps floor.
func ClampREMB(bps uint64, minKbps, maxKbps int) uint64 {
	if maxKbps > 0 {
		bps = min(bps, uint64(maxKbps)*1000)
	}
	return max(bps, uint64(max(minKbps, 0))*1000, rembMin)
}
