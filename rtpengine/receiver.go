// Package rtpengine is the RTP machinery every endpoint shares, whatever its transport: what it
// follows of the streams it receives (statistics, NACK generation, reception reports, the REMB and
// TWCC feedback toward the sender) and of the streams it sends (sender reports, the retransmission
// budget), and the dispatch of a peer's feedback to the graph's senders. The endpoints only move
// bytes (pion for WebRTC, UDP sockets for RTP); the media package is the graph.
package rtpengine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// nackWindow is how far back (in packets) a receiver tracks missing packets.
const nackWindow = 512

// NACK timing: a gap is NACKed at once (the reader runs Due after each packet), again every
// nackRetry, at most nackTries times and while it is younger than nackGiveUp; then it is given up and
// the producer is asked for a keyframe.
const (
	nackRetry  = 40 * time.Millisecond
	nackTries  = 5
	nackGiveUp = 500 * time.Millisecond
	// nackMaxGap: a jump larger than this is not a loss to repair but a restart; ask for a keyframe.
	nackMaxGap = 256
)

// ReceiveStats are the counters of an incoming stream: what arrived, what was lost, what was asked
// again and recovered. Atomics, read by stats at any time.
type ReceiveStats struct {
	Packets       atomic.Uint64
	Bytes         atomic.Uint64 // payload bytes
	Expected      atomic.Uint64 // from the first to the highest sequence number
	NACKs         atomic.Uint64 // NACK messages sent
	NACKedPackets atomic.Uint64 // sequence numbers asked for (each try counts)
	Recovered     atomic.Uint64 // missing packets that arrived later
	GivenUp       atomic.Uint64 // missing packets given up
	PLIs          atomic.Uint64 // keyframe requests sent to the producer
	Jitter        atomic.Uint32 // RFC 3550 interarrival jitter, timestamp units
	REMB          atomic.Uint64 // last REMB sent to the producer, bps
	TargetBitrate atomic.Uint64
	LastFraction  atomic.Uint32 // loss over the last interval, 1/256
	HighestSeq    atomic.Uint32 // extended highest sequence number received (cycles << 16 | seq)
	// lastSR is the middle 32 bits of the NTP time of the sender's last SR, lastSRAt when it came
	// (unix nanos): a reception report returns them for the sender's round-trip time.
	lastSR         atomic.Uint32
	lastSRAt       atomic.Int64
	lastExpected   uint64
	lastPackets    uint64
	intervalLocked sync.Mutex
}

// Receiver follows an incoming RTP stream for its reader goroutine: it finds the missing packets
// to NACK, gives up on the hopeless ones, and keeps the stream's counters. Nothing is allocated per
// packet; Due allocates only when there is something to ask for.
type Receiver struct {
	Stats ReceiveStats

	clockRate uint32
	started   bool
	highest   uint16
	ext       uint64 // extended highest sequence number
	first     uint64
	// expectedBefore is what was expected of the streams before the last Restart
	expectedBefore uint64
	// missing is made with the first loss: a stream that loses nothing (most, and audio on a
	// good network) holds no window.
	missing *[nackWindow]missEntry
	pending int
	lastDue int64
	// jitter (RFC 3550 A.8) in timestamp units, scaled by 16
	jitter      int64
	lastTransit int64
	base        int64
	scratch     []uint16
}

type missEntry struct {
	seq    uint16
	valid  bool
	tries  uint8
	since  int64
	nextAt int64
}

// NewReceiver follows a stream of the given clock rate (for jitter).
func NewReceiver(clockRate uint32) *Receiver {
	return &Receiver{clockRate: clockRate}
}

// Push records a packet that arrived at now (unix nanos). It returns true when the gap before it is
// too large to repair: the caller should ask the producer for a keyframe.
func (r *Receiver) Push(seq uint16, ts uint32, payloadLen int, now int64) (keyframe bool) {
	r.Stats.Packets.Add(1)
	r.Stats.Bytes.Add(uint64(payloadLen))
	if r.clockRate > 0 {
		if r.base == 0 {
			r.base = now
		}
		arrival := (now - r.base) / 1000 * int64(r.clockRate) / 1000000
		transit := arrival - int64(ts)
		if r.started {
			d := transit - r.lastTransit
			if d < 0 {
				d = -d
			}
			if d < int64(r.clockRate)*10 { // ignore timestamp jumps (source switches)
				r.jitter += d - (r.jitter+8)>>4
				r.Stats.Jitter.Store(uint32(r.jitter >> 4))
			}
		}
		r.lastTransit = transit
	}
	if !r.started {
		r.started, r.highest = true, seq
		r.ext = uint64(seq)
		r.first = r.ext
		r.Stats.Expected.Store(r.expectedBefore + 1)
		r.Stats.HighestSeq.Store(uint32(r.ext))
		return false
	}
	d := int16(seq - r.highest)
	switch {
	case d > 0:
		if d > nackMaxGap {
			r.clear()
			keyframe = true
		} else {
			if r.missing == nil && d > 1 {
				// With the first loss; Due's slice holds a window, so that it never grows on the
				// packet path.
				r.missing = new([nackWindow]missEntry)
				r.scratch = make([]uint16, 0, nackWindow)
			}
			// The window moves on: the slot of this packet may still hold a loss from a window ago
			// that was never recovered (audio, which is not NACKed, or one Due never reached).
			if e := r.slot(seq); e != nil && e.valid {
				e.valid = false
				r.pending--
				r.Stats.GivenUp.Add(1)
			}
			for s := r.highest + 1; s != seq; s++ {
				e := &r.missing[s%nackWindow]
				if e.valid {
					r.pending--
					r.Stats.GivenUp.Add(1)
				}
				*e = missEntry{seq: s, valid: true, since: now, nextAt: now}
				r.pending++
			}
		}
		r.ext += uint64(d)
		r.highest = seq
		r.Stats.Expected.Store(r.expectedBefore + r.ext - r.first + 1)
		r.Stats.HighestSeq.Store(uint32(r.ext))
	case d < 0:
		if e := r.slot(seq); e != nil && e.valid && e.seq == seq {
			e.valid = false
			r.pending--
			r.Stats.Recovered.Add(1)
		}
	}
	return keyframe
}

// Restart follows a new stream in place of the old one (the peer changed its SSRC): its sequence
// numbers start afresh, the counters go on.
func (r *Receiver) Restart() {
	r.expectedBefore = r.Stats.Expected.Load()
	r.started = false
	r.clear()
}

func (r *Receiver) clear() {
	if r.missing != nil {
		for i := range r.missing {
			r.missing[i].valid = false
		}
	}
	r.pending = 0
}

// slot is where the loss of seq is tracked, nil before the first loss.
func (r *Receiver) slot(seq uint16) *missEntry {
	if r.missing == nil {
		return nil
	}
	return &r.missing[seq%nackWindow]
}

// Due returns the sequence numbers to NACK now (nil when none; the slice is reused by the next call)
// and whether a packet was given up, in which case the caller should ask for a keyframe. Calls closer
// than 10 ms apart return nothing.
func (r *Receiver) Due(now int64) (seqs []uint16, gaveUp bool) {
	if r.pending == 0 || now-r.lastDue < int64(10*time.Millisecond) {
		return nil, false
	}
	r.lastDue = now
	out := r.scratch[:0]
	for i := uint16(nackWindow - 1); ; i-- {
		seq := r.highest - i
		e := &r.missing[seq%nackWindow]
		if e.valid && e.seq == seq && e.nextAt <= now {
			if e.tries >= nackTries || now-e.since > int64(nackGiveUp) {
				e.valid = false
				r.pending--
				r.Stats.GivenUp.Add(1)
				gaveUp = true
			} else {
				e.tries++
				e.nextAt = now + int64(nackRetry)
				out = append(out, seq)
			}
		}
		if i == 0 {
			break
		}
	}
	r.scratch = out
	if len(out) > 0 {
		r.Stats.NACKs.Add(1)
		r.Stats.NACKedPackets.Add(uint64(len(out)))
	}
	return out, gaveUp
}

// AppendNackPairs appends the generic NACK items (RFC 4585 §6.2.1) asking for seqs, ascending as Due
// returns them: what rtcp.NackPairsFromSequenceNumbers makes, into the caller's slice.
func AppendNackPairs(pairs []rtcp.NackPair, seqs []uint16) []rtcp.NackPair {
	for _, seq := range seqs {
		if n := len(pairs); n > 0 {
			if d := seq - pairs[n-1].PacketID; d >= 1 && d <= 16 {
				pairs[n-1].LostPackets |= 1 << (d - 1)
				continue
			}
		}
		pairs = append(pairs, rtcp.NackPair{PacketID: seq})
	}
	return pairs
}

// Interval returns the fraction of packets lost (1/256) since the previous call, as RTCP reports it.
func (s *ReceiveStats) Interval() uint8 {
	s.intervalLocked.Lock()
	defer s.intervalLocked.Unlock()
	exp, got := s.Expected.Load(), s.Packets.Load()
	de, dg := exp-s.lastExpected, got-s.lastPackets
	s.lastExpected, s.lastPackets = exp, got
	var f uint8
	if de > 0 && dg < de {
		f = uint8((de - dg) * 256 / de)
	}
	s.LastFraction.Store(uint32(f))
	return f
}

// Lost is the number of packets lost so far (expected minus received, never below 0).
func (s *ReceiveStats) Lost() int64 {
	l := int64(s.Expected.Load()) - int64(s.Packets.Load())
	return max(l, 0)
}
