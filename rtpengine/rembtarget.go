package rtpengine

import "time"

// RembTarget decides the REMB an endpoint sends a publisher for one video stream: KMS's RembLocal
// estimate of what arrives (RembOnConnect until it has measured anything), no more than the
// highest bitrate the stream's sinks can take (the fastest viewer decides; slower ones get frames
// dropped at their sender), within minVideoRecvBandwidth (floor 30 kbps) and maxVideoRecvBandwidth.
// One goroutine reports.
type RembTarget struct {
	local            *RembLocal
	onConnect        uint64
	minKbps, maxKbps int
	est              uint64 // the last estimate, bps; 0: none yet
}

// NewRembTarget follows a stream with the endpoint's rembParams and receive bounds (kbps, 0: none).
func NewRembTarget(p RembParams, minKbps, maxKbps int) *RembTarget {
	return &RembTarget{local: NewRembLocal(p, maxKbps), onConnect: uint64(max(p.RembOnConnect, 0)), minKbps: minKbps, maxKbps: maxKbps}
}

// Next is the REMB to send at now for the stream stats counts, whose sinks take at most sinks bps
// (0: no opinion). It is recorded in stats (REMB, TargetBitrate) for getStats.
func (t *RembTarget) Next(now time.Time, stats *ReceiveStats, sinks uint64) uint64 {
	if est, ok := t.local.Update(now, stats.Packets.Load(), stats.Expected.Load(), stats.Bytes.Load()); ok {
		t.est = est
	}
	target := t.est
	if target == 0 {
		target = t.onConnect
	}
	if sinks > 0 {
		target = min(target, sinks)
	}
	target = ClampREMB(target, t.minKbps, t.maxKbps)
	stats.REMB.Store(target)
	stats.TargetBitrate.Store(target)
	return target
}
