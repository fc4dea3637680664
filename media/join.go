package media

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// joinFromCache starts a sender waiting for a keyframe at the last keyframe in the cache of src,
// which holds p at ref: the packets from it up to p go to the queue at once, and the writer sends
// them as fast as the peer takes them, so that a new peer's first frame does not wait for a keyframe
// from the producer. False when the cache holds no keyframe before p, or the queue has no room for
// the frames since. Under s.mu, on the goroutine that writes src (the only one that writes its cache,
// so its slots are read in place).
func (s *Sender) joinFromCache(src *Source, p *rtp.Packet, ref cacheRef, transcoded bool, limit uint64) bool {
	r := ref.ring
	key := r.lastKey.Load()
	if key == 0 {
		return false
	}
	first := uint16(key)
	n := int(p.SequenceNumber - first)
	if n <= 0 || n >= len(r.slots) || n >= s.queue().free() {
		return false
	}
	if k := &r.slots[int(first)%len(r.slots)]; !k.valid || k.seq != first || !k.keyStart {
		return false // overwritten since
	}
	var pkt rtp.Packet
	for seq := first; seq != p.SequenceNumber; seq++ {
		if at, ok := r.view(seq, &pkt); ok {
			s.accept(src, &pkt, at, 0, transcoded, limit)
		}
	}
	return true
}

// view makes p the packet seq of the ring, its payload in the ring's memory: only for the goroutine
// that stores into the ring, which no other writes.
func (r *cacheRing) view(seq uint16, p *rtp.Packet) (cacheRef, bool) {
	i := int(seq) % len(r.slots)
	s := &r.slots[i]
	if !s.valid || s.seq != seq {
		return cacheRef{}, false
	}
	p.Header = rtp.Header{Version: 2, Padding: s.padding, PaddingSize: s.paddingSize, Marker: s.marker,
		SequenceNumber: seq, Timestamp: s.ts, CSRC: s.csrc[:s.ncsrc]}
	p.Payload = r.data[i*r.slotSize : i*r.slotSize+int(s.n)]
	return cacheRef{ring: r, gen: s.gen, seq: seq}, true
}

// lagLog aggregates the drops of a peer that does not keep up into one log line per interval.
type lagLog struct {
	pending atomic.Bool
	logged  uint64 // drops already logged, the timer's
	log     atomic.Pointer[slog.Logger]
	// the timer of the line, made by Bind and reset for each interval: a lagging peer costs the
	// packet path no allocation
	timer atomic.Pointer[time.Timer]
}

// lagLogInterval is the period of the lag log lines.
const lagLogInterval = 5 * time.Second

// SetLogger sets where the sender logs (the endpoint's logger); slog's default until then.
func (s *Sender) SetLogger(l *slog.Logger) { s.lag.log.Store(l) }

// noteLag schedules the log line of the drops of this interval, unless one is already due.
func (s *Sender) noteLag() {
	if !s.lag.pending.CompareAndSwap(false, true) {
		return
	}
	s.lag.timer.Load().Reset(lagLogInterval) // it fired, or never ran: logLag cleared pending
}

// makeLagTimer makes the lag log line's timer, stopped, on the control path (Bind).
func (s *Sender) makeLagTimer() {
	if s.lag.timer.Load() == nil {
		t := time.AfterFunc(time.Hour, s.logLag)
		t.Stop()
		s.lag.timer.Store(t)
	}
}

func (s *Sender) logLag() {
	total := s.Stats.LagDropped.Load()
	n := total - s.lag.logged
	s.lag.logged = total
	s.lag.pending.Store(false)
	l := s.lag.log.Load()
	if l == nil {
		l = slog.Default()
	}
	kind := "audio"
	if s.video {
		kind = "video"
	}
	l.Warn("peer does not keep up with the stream: packets dropped", "media", kind, "dropped", n,
		"interval", lagLogInterval, "total", total)
}
