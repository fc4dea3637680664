package media

import (
	"sync"

	"github.com/pion/rtp"
)

// CacheSlots is how many packets a source's cache keeps: at 1 Mbit/s of 1200-byte packets about 4 s,
// far more than a retransmission can usefully come late.
const CacheSlots = 512

// slotSize is the largest packet a slot keeps; longer ones are not cached.
const slotSize = 1500

// PacketCache keeps the last packets of a source, as received, in preallocated fixed slots indexed by
// sequence number (galene's packetcache): storing and looking up allocate nothing. It serves the
// retransmissions its sinks' peers ask for.
type PacketCache struct {
	mu    sync.Mutex
	slots [CacheSlots]cacheSlot
}

type cacheSlot struct {
	seq   uint16
	valid bool
	n     int
	buf   [slotSize]byte
}

// NewPacketCache makes an empty cache (about 770 KB).
func NewPacketCache() *PacketCache { return &PacketCache{} }

// Store keeps a copy of p. Called by the source's reader goroutine.
func (c *PacketCache) Store(p *rtp.Packet) {
	s := &c.slots[p.SequenceNumber%CacheSlots]
	c.mu.Lock()
	n, err := p.MarshalTo(s.buf[:])
	s.seq, s.valid, s.n = p.SequenceNumber, err == nil, n
	c.mu.Unlock()
}

// Get unmarshals the packet with sequence number seq into p, using buf for its bytes (buf must hold
// slotSize bytes; the packet's payload points into it). False when the packet is not cached.
func (c *PacketCache) Get(seq uint16, buf []byte, p *rtp.Packet) bool {
	s := &c.slots[seq%CacheSlots]
	c.mu.Lock()
	if !s.valid || s.seq != seq {
		c.mu.Unlock()
		return false
	}
	n := copy(buf, s.buf[:s.n])
	c.mu.Unlock()
	return p.Unmarshal(buf[:n]) == nil
}
