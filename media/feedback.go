package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media/codec"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// SenderStats are the counters of what a sender's peer asked for and got, kept as atomics: the
// packet path touches them only on feedback or drops.
type SenderStats struct {
	NACKs            atomic.Uint64 // NACK messages received
	NACKedPackets    atomic.Uint64 // packets they asked for
	Retransmitted    atomic.Uint64 // packets sent again (RTX or plain)
	RetransmitBytes  atomic.Uint64 // payload bytes sent again
	RetransmitMissed atomic.Uint64 // asked for but no longer cached, or never forwarded
	PLIs             atomic.Uint64
	FIRs             atomic.Uint64
	REMB             atomic.Uint64 // last REMB received, bps
	BitrateDropped   atomic.Uint64 // packets not sent because the peer's bandwidth is below the stream's
	FramesDropped    atomic.Uint64 // runs of frames dropped for bandwidth (each ends at a keyframe)
	LagDropped       atomic.Uint64 // packets dropped because the peer's writes did not keep up
	RTT              atomic.Int64  // nanoseconds, from the peer's receiver reports; 0 unknown
	FractionLost     atomic.Uint32 // last reported, in 1/256
	PacketsLost      atomic.Int64  // cumulative, as reported by the peer
	Jitter           atomic.Uint32 // reported by the peer, in timestamp units
}

// rtxState is what retransmissions need: the RTX stream when the peer negotiated one, and scratch
// buffers so that serving a NACK allocates nothing.
type rtxState struct {
	ssrc atomic.Uint32 // 0: no RTX, retransmit on the media SSRC
	pt   atomic.Uint32

	mu   sync.Mutex // serialises retransmissions (the RTCP reader goroutine)
	seq  uint16
	bufs *rtxBuffers // made with the first retransmission: most senders (audio) never make one
	pkt  rtp.Packet
	hdr  rtp.Header
}

// rtxBuffers are where a retransmission is built: the cached payload, a fragment cut from it, the
// RTX payload.
type rtxBuffers struct {
	buf  [maxSlotPayload]byte
	frag [maxSlotPayload]byte
	out  [maxSlotPayload + 2]byte
}

// BindRTX sets the RTX stream of the peer (RFC 4588); ssrc 0 retransmits on the media stream.
func (s *Sender) BindRTX(ssrc uint32, payloadType uint8) {
	s.rtx.pt.Store(uint32(payloadType))
	s.rtx.ssrc.Store(ssrc)
}

// maxResends is how many times one packet is sent again for a peer's NACKs.
const maxResends = 3

// HandleNACK serves a generic NACK from the peer out of the source's packet cache.
func (s *Sender) HandleNACK(n *rtcp.TransportLayerNack) {
	s.Stats.NACKs.Add(1)
	for _, pair := range n.Nacks {
		s.Resend(pair.PacketID)
		for i := uint16(0); i < 16; i++ {
			if pair.LostPackets&(1<<i) != 0 {
				s.Resend(pair.PacketID + i + 1)
			}
		}
	}
}

// Resend sends again the packet the peer knows as seq, if the source still has it; false if not.
func (s *Sender) Resend(seq uint16) bool {
	s.Stats.NACKedPackets.Add(1)
	s.mu.Lock()
	var m seqMapEntry
	var e *seqMapEntry
	if len(s.seqmap) > 0 {
		e = &s.seqmap[int(seq)&(len(s.seqmap)-1)]
		m = *e
	}
	src := s.cur.Load()
	if st := s.tc.Load(); st != nil {
		src = st.out
	}
	ok := m.valid && m.sinkSeq == seq && m.epoch == s.epoch && src != nil && s.write != nil
	if ok && m.resends >= maxResends {
		// A peer that keeps asking (its NACK generator not seeing RTX, say) gets no more copies.
		s.mu.Unlock()
		s.Stats.RetransmitMissed.Add(1)
		return false
	}
	if ok {
		e.resends++
	}
	ssrc, pt, tsOffset, write, mtu, mime := s.ssrc, s.payloadType, s.tsOffset, s.write, s.mtu, s.mimeType
	s.mu.Unlock()
	var cache *PacketCache
	if ok {
		cache = src.Cache()
	}
	if cache == nil {
		s.Stats.RetransmitMissed.Add(1)
		return false
	}
	r := &s.rtx
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bufs == nil {
		r.bufs = new(rtxBuffers)
	}
	b := r.bufs
	if !cache.Get(m.srcSeq, b.buf[:], &r.pkt) || len(r.pkt.Payload) == 0 {
		s.Stats.RetransmitMissed.Add(1)
		return false
	}
	h := &r.hdr
	*h = r.pkt.Header
	h.SSRC, h.PayloadType, h.SequenceNumber = ssrc, pt, seq
	h.Timestamp += tsOffset
	h.Extension, h.Extensions, h.ExtensionProfile = false, nil, 0
	h.Padding, h.PaddingSize = false, 0
	payload := r.pkt.Payload
	if m.fragCount > 0 {
		var f fragmentation
		planFragments(mtu, mime, h, payload, &f)
		if f.n != int(m.fragCount) { // the MTU changed since: this fragment no longer exists
			s.Stats.RetransmitMissed.Add(1)
			return false
		}
		h.Marker = h.Marker && int(m.fragIndex) == f.n-1
		payload = f.fragment(int(m.fragIndex), b.frag[:])
	}
	if rs := r.ssrc.Load(); rs != 0 {
		// RFC 4588: the original sequence number, then the payload, on the RTX stream.
		b.out[0], b.out[1] = byte(seq>>8), byte(seq)
		n := copy(b.out[2:], payload)
		payload = b.out[:2+n]
		h.SSRC, h.PayloadType, h.SequenceNumber = rs, uint8(r.pt.Load()), r.seq
		r.seq++
	}
	if write(h, payload) != nil {
		return false
	}
	s.Stats.Retransmitted.Add(1)
	s.Stats.RetransmitBytes.Add(uint64(len(r.pkt.Payload)))
	return true
}

// CountPLI and CountFIR record keyframe requests from the peer (RequestKeyframe serves them).
func (s *Sender) CountPLI() { s.Stats.PLIs.Add(1) }
func (s *Sender) CountFIR() { s.Stats.FIRs.Add(1) }

// bweState is what a sender knows of its peer's bandwidth, and the pacing state that keeps what it
// sends below it by dropping whole frames up to the next keyframe.
type bweState struct {
	limit atomic.Uint64 // bps; 0: no measured limit (the packet path reads this)
	// targetBps is what the peer can take for the bounds of the endpoint, for the source's
	// aggregate: 0 when unknown and unbounded.
	target atomic.Uint64

	// under Sender.mu
	dropping bool // dropping frames until a keyframe
	resync   bool // the next packet sent follows the last one sent
	tokens   int64
	last     int64 // unix nanos of the last refill
	lastKF   int64 // unix nanos of the last keyframe request made for this peer
	askKF    bool

	// control path
	mu          sync.Mutex
	minBps      uint64
	maxBps      uint64
	remb        uint64
	rembAt      time.Time
	lossEst     uint64
	sentBytes   uint64
	sentTS      uint32 // RTP time of the last packet sent when sentBytes was taken
	sentSet     bool
	sendingRate uint64
	// the reports not judged yet: they covered fewer than lossMinPackets
	lossExpected, lossLost256 uint32 // lost in 1/256 of a packet, as the reports' fractions
	lastExtSeq                uint32
	extSeqSet                 bool
	// onConnect (rembOnConnect, bps; 0: none) is the target until the peer's REMB has probed:
	// while its REMBs stay below it and keep rising, they are taken as the peer's ramp-up, as KMS's
	// RembRemote does. Unlike KMS, a REMB that repeats counts as probed: a peer that keeps saying
	// the same low figure means it.
	onConnect uint64
	probed    bool
}

// pacingWindow is how much of its bandwidth a peer may receive in a burst before frames are dropped.
const pacingWindow = 500 * time.Millisecond

// keyframeEvery bounds how often a sender that dropped frames asks its source for a keyframe.
const keyframeEvery = 2 * time.Second

// pace decides, under s.mu, whether a packet goes to a peer whose bandwidth (limit, bps) is measured:
// frames are dropped whole from the first one that finds the budget spent, up to the next keyframe.
func (s *Sender) pace(p *rtp.Packet, limit uint64, newFrame bool) bool {
	b := &s.bwe
	now := time.Now().UnixNano()
	burst := int64(float64(limit) / 8 * pacingWindow.Seconds())
	if b.last == 0 {
		b.last, b.tokens = now, burst
	}
	b.tokens += int64(float64(now-b.last) * float64(limit) / 8e9)
	if b.tokens > burst {
		b.tokens = burst
	}
	b.last = now
	if newFrame {
		key := codec.IsKeyframeStart(s.mimeType, p.Payload)
		switch {
		case b.dropping && key:
			b.dropping, b.resync = false, true
		case !b.dropping && limit > 0 && b.tokens < 0 && !key:
			b.dropping = true
			s.Stats.FramesDropped.Add(1)
		}
		if b.dropping && now-b.lastKF > int64(keyframeEvery) {
			b.lastKF, b.askKF = now, true // asked by WriteRTP once s.mu is released
		}
	}
	if b.dropping {
		return false
	}
	b.tokens -= int64(len(p.Payload))
	return true
}

// SetSendBandwidth sets the bounds, in bps (0: none), of what this sender asks its source for: the
// endpoint's minVideoSendBandwidth and maxVideoSendBandwidth.
func (s *Sender) SetSendBandwidth(minBps, maxBps uint64) {
	b := &s.bwe
	b.mu.Lock()
	b.minBps, b.maxBps = minBps, maxBps
	s.updateBWE()
	b.mu.Unlock()
}

// SetRembOnConnect sets what the sender asks of its source (bps) before its peer's REMB has probed.
func (s *Sender) SetRembOnConnect(bps uint64) {
	b := &s.bwe
	b.mu.Lock()
	b.onConnect = bps
	s.updateBWE()
	b.mu.Unlock()
}

// OnREMB records the peer's receiver estimate (bps).
func (s *Sender) OnREMB(bps uint64) {
	s.Stats.REMB.Store(bps)
	b := &s.bwe
	b.mu.Lock()
	if !b.probed && (bps >= b.onConnect || bps <= b.remb) {
		b.probed = true
	}
	b.remb, b.rembAt = bps, time.Now()
	s.updateBWE()
	b.mu.Unlock()
}

// OnReceiverReport records a report block of the peer about this sender's stream: loss drives a
// loss-based estimate (GCC's: below 2% grow 8%, above 10% cut by half the loss), and RTT is measured.
func (s *Sender) OnReceiverReport(r rtcp.ReceptionReport, now time.Time) {
	s.Stats.FractionLost.Store(uint32(r.FractionLost))
	s.Stats.PacketsLost.Store(int64(r.TotalLost))
	s.Stats.Jitter.Store(r.Jitter)
	if r.LastSenderReport != 0 {
		ntp := ntpCompact(now)
		if rtt := ntp - r.LastSenderReport - r.Delay; rtt < 1<<31 {
			s.Stats.RTT.Store(int64(rtt) * int64(time.Second) >> 16)
		}
	}
	if !s.video {
		return
	}
	s.mu.Lock()
	ts, clock, started := s.lastTS, s.clockRate, s.started
	s.mu.Unlock()
	b := &s.bwe
	b.mu.Lock()
	defer b.mu.Unlock()
	if started {
		s.measureSendingRate(ts, clock)
	}
	loss, judged := b.judgeLoss(r)
	switch {
	case !judged:
	case loss > 0.10 && b.sendingRate > 0:
		est := uint64(float64(b.sendingRate) * (1 - 0.5*loss))
		if b.lossEst == 0 || est < b.lossEst {
			b.lossEst = est
		}
	case loss < 0.02 && b.lossEst > 0:
		b.lossEst = b.lossEst * 108 / 100
		if b.sendingRate > 0 && b.lossEst > 2*b.sendingRate {
			b.lossEst = 0 // no longer limiting
		}
	}
	s.updateBWE()
}

// measureSendingRate updates the rate the peer receives, over the media time of what was sent since
// the last measure (ts, the RTP time of the last packet sent): a stall of the server holds the
// stream back with the clock, where a rate over wall time (a report late after the stall, little sent
// since the last) would read as a slow peer and cut it far below the stream. The caller holds b.mu.
func (s *Sender) measureSendingRate(ts, clock uint32) {
	b := &s.bwe
	sent := s.bytes.Load()
	span := ts - b.sentTS
	switch {
	case clock == 0:
		return
	case b.sentSet && span < clock/10:
		return // too little media since the last measure (or none): keep the rate
	case b.sentSet && span <= 10*clock:
		b.sendingRate = uint64(float64(sent-b.sentBytes) * 8 * float64(clock) / float64(span))
	}
	// (a first measure, or a jump of the stream's time: a new baseline)
	b.sentBytes, b.sentTS, b.sentSet = sent, ts, true
}

// lossMinPackets is how many packets the reports judged together cover at least, as libwebrtc's
// loss-based estimate waits for: a report over a handful of packets (two reports close together, as
// a stall of the peer or the server makes) says 1 lost in 6 is 16%.
const lossMinPackets = 20

// judgeLoss adds a report to those not judged yet and returns their loss fraction once they cover
// lossMinPackets. The caller holds b.mu.
func (b *bweState) judgeLoss(r rtcp.ReceptionReport) (loss float64, judged bool) {
	expected := r.LastSequenceNumber - b.lastExtSeq
	first := !b.extSeqSet
	b.lastExtSeq, b.extSeqSet = r.LastSequenceNumber, true
	if first || expected > 1<<15 {
		b.lossExpected, b.lossLost256 = 0, 0 // no interval yet, or the peer's count restarted
		return 0, false
	}
	b.lossExpected += expected
	b.lossLost256 += expected * uint32(r.FractionLost)
	if b.lossExpected < lossMinPackets {
		return 0, false
	}
	loss = float64(b.lossLost256) / 256 / float64(b.lossExpected)
	b.lossExpected, b.lossLost256 = 0, 0
	return loss, true
}

// rembTimeout is how long a REMB counts without being renewed (browsers send one a second or so).
const rembTimeout = 5 * time.Second

// updateBWE recomputes the limit and the target; the caller holds s.bwe.mu.
func (s *Sender) updateBWE() {
	b := &s.bwe
	var measured uint64
	if b.remb > 0 && time.Since(b.rembAt) < rembTimeout {
		measured = b.remb
	}
	if b.lossEst > 0 && (measured == 0 || b.lossEst < measured) {
		measured = b.lossEst
	}
	limit := measured
	if limit > 0 && limit < b.minBps {
		limit = b.minBps
	}
	target := measured
	if !b.probed && b.onConnect > 0 {
		target = b.onConnect
	}
	if target == 0 || (b.maxBps > 0 && target > b.maxBps) {
		target = b.maxBps
	}
	if target > 0 && target < b.minBps {
		target = b.minBps
	}
	b.limit.Store(limit)
	b.target.Store(target)
}

// Bandwidth is what the peer can take (bps) as measured from its REMB and reports (0: unknown), and
// the target this sender votes for upstream, within the endpoint's bounds (0: no opinion).
func (s *Sender) Bandwidth() (measured, target uint64) {
	s.bwe.mu.Lock()
	if s.bwe.remb > 0 && time.Since(s.bwe.rembAt) >= rembTimeout {
		s.updateBWE()
	}
	s.bwe.mu.Unlock()
	return s.bwe.limit.Load(), s.bwe.target.Load()
}

// TargetBitrate implements bitrateSink.
func (s *Sender) TargetBitrate() uint64 {
	_, t := s.Bandwidth()
	return t
}

// ntpCompact is the middle 32 bits of the NTP time of t, the unit of LSR and DLSR.
func ntpCompact(t time.Time) uint32 {
	secs := uint64(t.Unix()) + 2208988800
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return uint32((secs<<32 | frac) >> 16)
}

// bitrateSink is an input that has an opinion on the bitrate its source should produce.
type bitrateSink interface{ TargetBitrate() uint64 }

// SinkBitrate is the highest target bitrate among the sinks of the source (through pass-through
// elements), 0 when none has an opinion: the fastest peer decides what the producer sends, slower
// ones get frames dropped.
func (s *Source) SinkBitrate() uint64 {
	var best uint64
	for _, in := range *s.sinks.Load() {
		if b, ok := in.(bitrateSink); ok {
			best = max(best, b.TargetBitrate())
		}
	}
	return best
}
