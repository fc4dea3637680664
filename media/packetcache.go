package media

import (
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// PacketCache keeps the last packets of a source in preallocated slots indexed by sequence number
// (galene's packetcache): storing and reading allocate nothing. The senders fed by the source queue
// references to its slots rather than copies, serve their peers' retransmissions from it, and start a
// new peer's video at the last keyframe it holds.
//
// It holds about a second of the source (longer for video when keyframes are further apart, so that
// a joining peer finds one), measured from the packet rate, in slots as large as the largest payload
// seen. Resizing swaps in a new ring: a reference keeps the ring it points into, which is never
// written again, so references stay valid and writers need no lock beyond the slot's.
type PacketCache struct {
	ring atomic.Pointer[cacheRing]

	// Store's own, the source's reader goroutine
	video       bool
	counted     int     // packets since rateSince
	lookAt      int     // counted at which the clock is read again
	rateSince   int64   // monotonic nanos
	rate        float64 // packets per second, as last measured
	prevRate    float64 // and the time before
	lastKeyAt   int64   // monotonic nanos of the last keyframe start
	keyInterval int64   // nanos between the last two keyframe starts, 0 unknown
	lowSince    int64   // monotonic nanos since the rate has been low enough to shrink, 0 not
}

// maxSlotPayload is the largest payload a cache keeps (a UDP datagram of a 1500-byte MTU); longer
// packets are not cached, and so not forwarded to senders.
const maxSlotPayload = 1500

// Bounds of a ring, in slots: a few seconds of a busy source at most; at least what a keyframe's
// burst may put between the reader and a writer (audio is never bursty).
const (
	minVideoSlots = 64
	minAudioSlots = 32
	maxCacheSlots = 2048
)

// maxCSRC is how many contributing sources a cached packet keeps; packets with more are not cached.
const maxCSRC = 4

// cacheWindow is how much of a source its cache keeps; maxCacheWindow bounds the stretch to the last
// keyframe of video.
const (
	cacheWindow    = int64(1e9)
	maxCacheWindow = int64(3e9)
	// rateEvery is how many stores pass between two looks at the clock; the packet rate is measured
	// over rateSpan at least. Over fewer packets, a frame's burst, or a reader that was not
	// scheduled for a while and then gets a backlog at once, reads as a rate change, and each
	// change makes a new ring (megabytes at the largest, copied).
	rateEvery = 64
	rateSpan  = int64(500e6)
	// shrinkAfter is how long the rate stays below half of what the ring holds before it shrinks:
	// a publisher starved of CPU for a moment, or pausing, does not cost two new rings (one down,
	// one back up) and its senders' sequence maps.
	shrinkAfter = int64(5e9)
)

type cacheRing struct {
	slots    []cacheSlot
	data     []byte // the slots' payloads, slotSize bytes each
	slotSize int
	// newest is the sequence number stored last, lastKey that of the last keyframe start; bit 16
	// says it is set.
	newest  atomic.Uint32
	lastKey atomic.Uint32
}

// cacheSlot is one packet, as the senders need it: the header fields they do not rewrite, and the
// payload (in the ring's data). gen changes on every store, so that a reference can tell its packet
// was overwritten.
type cacheSlot struct {
	mu          sync.RWMutex
	gen         uint32
	seq         uint16
	valid       bool
	keyStart    bool
	marker      bool
	padding     bool
	paddingSize byte
	ncsrc       uint8
	n           uint16
	ts          uint32
	csrc        [maxCSRC]uint32
}

// cacheRef designates one stored packet; the zero value designates none.
type cacheRef struct {
	ring *cacheRing
	gen  uint32
	seq  uint16
}

// cachedPacket is what a reader copies out of a slot, with the payload in its own buffer.
type cachedPacket struct {
	seq         uint16
	ts          uint32
	marker      bool
	keyStart    bool
	padding     bool
	paddingSize byte
	csrc        []uint32
	payload     []byte
}

// NewPacketCache makes an empty cache of video (sized to reach back to a keyframe) or of audio; its
// ring is made on the first packet.
func NewPacketCache(video bool) *PacketCache { return &PacketCache{video: video} }

// Store keeps a copy of p, keyStart telling whether it starts a keyframe, and returns where. Called by
// the source's reader goroutine only. The zero reference when p cannot be cached.
func (c *PacketCache) Store(p *rtp.Packet, keyStart bool) cacheRef {
	n := len(p.Payload)
	if n > maxSlotPayload || len(p.CSRC) > maxCSRC {
		return cacheRef{}
	}
	r := c.ring.Load()
	if r == nil || n > r.slotSize || c.counted >= c.lookAt {
		r = c.resize(r, n, keyStart)
	}
	c.counted++
	if keyStart {
		now := monotonic()
		if c.lastKeyAt != 0 {
			c.keyInterval = now - c.lastKeyAt
		}
		c.lastKeyAt = now
	}
	i := int(p.SequenceNumber) % len(r.slots)
	s := &r.slots[i]
	s.mu.Lock()
	s.gen++
	s.seq, s.valid, s.keyStart, s.marker = p.SequenceNumber, true, keyStart, p.Marker
	s.padding, s.paddingSize = p.Padding, p.Header.PaddingSize
	s.ts, s.n = p.Timestamp, uint16(n)
	s.ncsrc = uint8(copy(s.csrc[:], p.CSRC))
	copy(r.data[i*r.slotSize:], p.Payload)
	gen := s.gen
	s.mu.Unlock()
	r.newest.Store(1<<16 | uint32(p.SequenceNumber))
	if keyStart {
		r.lastKey.Store(1<<16 | uint32(p.SequenceNumber))
	}
	return cacheRef{ring: r, gen: gen, seq: p.SequenceNumber}
}

// resize measures the packet rate and makes a new ring when the current one is too short, far too
// long, or its slots too small for a payload of n bytes. It copies the packets over, so that
// retransmissions and joins keep being served across the change.
func (c *PacketCache) resize(old *cacheRing, n int, keyStart bool) *cacheRing {
	// The rate is measured over rateEvery packets and rateSpan (a resize for a larger payload
	// keeps it).
	measured := false
	now := monotonic()
	if c.rateSince == 0 {
		c.rateSince, c.counted = now, 0
	} else if c.counted >= rateEvery && now-c.rateSince >= rateSpan {
		c.prevRate = c.rate
		c.rate = float64(c.counted) * 1e9 / float64(now-c.rateSince)
		c.rateSince, c.counted, measured = now, 0, true
	}
	c.lookAt = c.counted + rateEvery
	if old != nil && n <= old.slotSize && !measured {
		return old
	}
	window := cacheWindow
	if c.video && c.keyInterval > 0 {
		window = min(max(window, c.keyInterval*9/8), maxCacheWindow)
	}
	least := minAudioSlots
	if c.video {
		least = minVideoSlots
	}
	// The ring follows a rate seen in two measures in a row: it grows to the lower of the last two
	// and shrinks to the higher, so that one burst does not make two new rings.
	grow, shrink := c.rate, c.rate
	if c.prevRate > 0 {
		grow, shrink = min(c.prevRate, c.rate), max(c.prevRate, c.rate)
	}
	slotsFor := func(rate float64) int { return min(max(int(rate*float64(window)/1e9), least), maxCacheSlots) }
	want, wantShrink := slotsFor(grow), slotsFor(shrink)
	slots, size := least, roundUp(max(n, 1), 64)
	if c.video {
		size = max(size, defaultSlotPayload)
	}
	if old != nil {
		slots, size = len(old.slots), max(size, old.slotSize)
		if low := wantShrink < slots/2; !low {
			c.lowSince = 0
		} else if c.lowSince == 0 {
			c.lowSince = now
		}
		switch {
		case want > slots:
			slots = min(want*9/8, maxCacheSlots)
		case c.lowSince != 0 && now-c.lowSince >= shrinkAfter:
			slots = max(wantShrink*9/8, least)
			c.lowSince = 0
		case size == old.slotSize:
			return old
		}
	}
	size = min(size, maxSlotPayload)
	slots = roundUp(slots, 8)
	r := &cacheRing{slots: make([]cacheSlot, slots), data: make([]byte, slots*size), slotSize: size}
	if old != nil {
		r.copyFrom(old)
	}
	c.ring.Store(r)
	return r
}

// defaultSlotPayload fits the packets of browsers and of our payloaders (KMS's default mtu 1200).
const defaultSlotPayload = 1216

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// copyFrom copies the newest packets of old that fit, straight from its slots (view): only the
// reader goroutine, ours, writes old.
func (r *cacheRing) copyFrom(old *cacheRing) {
	newest := old.newest.Load()
	if newest == 0 {
		return
	}
	count := min(len(old.slots), len(r.slots))
	var p rtp.Packet
	for i := count - 1; i >= 0; i-- {
		seq := uint16(newest) - uint16(i)
		o := &old.slots[int(seq)%len(old.slots)]
		if _, ok := old.view(seq, &p); !ok {
			continue
		}
		j := int(seq) % len(r.slots)
		s := &r.slots[j]
		s.gen++
		s.seq, s.valid, s.keyStart, s.marker = seq, true, o.keyStart, p.Marker
		s.padding, s.paddingSize, s.ts, s.n = p.Padding, p.PaddingSize, p.Timestamp, uint16(len(p.Payload))
		s.ncsrc = uint8(copy(s.csrc[:], p.CSRC))
		copy(r.data[j*r.slotSize:], p.Payload)
		if o.keyStart {
			r.lastKey.Store(1<<16 | uint32(seq))
		}
	}
	r.newest.Store(newest)
}

// read copies the packet seq out of its slot into buf (p.payload points into it, p.csrc into the
// slot's copy in p), if it is still there; gen 0 takes whatever generation holds it.
func (r *cacheRing) read(seq uint16, gen uint32, buf []byte, p *cachedPacket) bool {
	i := int(seq) % len(r.slots)
	s := &r.slots[i]
	s.mu.RLock()
	if !s.valid || s.seq != seq || (gen != 0 && s.gen != gen) || len(buf) < int(s.n) {
		s.mu.RUnlock()
		return false
	}
	p.seq, p.ts, p.marker, p.keyStart = s.seq, s.ts, s.marker, s.keyStart
	p.padding, p.paddingSize = s.padding, s.paddingSize
	p.csrc = append(p.csrc[:0], s.csrc[:s.ncsrc]...)
	p.payload = buf[:copy(buf, r.data[i*r.slotSize:i*r.slotSize+int(s.n)])]
	s.mu.RUnlock()
	return true
}

// ref designates packet seq of the ring as it is now; ok false when the ring does not hold it.
func (r *cacheRing) ref(seq uint16) (cacheRef, bool) {
	s := &r.slots[int(seq)%len(r.slots)]
	s.mu.RLock()
	defer s.mu.RUnlock()
	return cacheRef{ring: r, gen: s.gen, seq: seq}, s.valid && s.seq == seq
}

// Get copies the packet with sequence number seq into p, its payload in buf (which must hold
// maxSlotPayload bytes). False when the packet is not cached.
func (c *PacketCache) Get(seq uint16, buf []byte, p *rtp.Packet) bool {
	r := c.ring.Load()
	if r == nil {
		return false
	}
	var cp cachedPacket
	cp.csrc = p.CSRC
	if !r.read(seq, 0, buf, &cp) {
		return false
	}
	p.Header = rtp.Header{Version: 2, Padding: cp.padding, PaddingSize: cp.paddingSize, Marker: cp.marker,
		SequenceNumber: cp.seq, Timestamp: cp.ts, CSRC: cp.csrc}
	p.Payload = cp.payload
	return true
}
