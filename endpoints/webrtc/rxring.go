package webrtc

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// rxRing hands the decrypted RTP of one incoming track from the socket's reading goroutine (the
// producer, under its directRx's mutex) to the track's reader goroutine (the one consumer). It is
// a byte ring of variable-length records: a packet costs its own length, not a slot of the
// largest size. It never blocks the producer: a packet that does not fit is dropped, and the ring
// doubles (up to its maximum) the next time its consumer finds it empty, so that a stream whose
// reader keeps up holds the smallest ring.
//
// A record is a 4-byte length, the 8-byte arrival time (unix ns) and the packet, padded to 4
// bytes. A record never wraps: where the end's room is too short, a skip mark sends the consumer
// to the start.
type rxRing struct {
	buf     []byte
	head    atomic.Uint64 // bytes written, published after the record is complete
	tail    atomic.Uint64 // bytes consumed
	waiting atomic.Bool   // the consumer is about to sleep, or sleeps
	closed  atomic.Bool
	wake    chan struct{}
	grow    atomic.Bool // the producer found it full: double it once empty
	max     int
	mu      *sync.Mutex // the producer's: held to replace buf
	// the consumer's record being read, released by release
	cur uint64
	// the producer's reservation: where the record goes, and the skip to reach it
	pos, skip int
}

const (
	rxRecordHeader = 12
	rxSkipMark     = ^uint32(0)
)

// newRxRing makes a ring of size bytes (a multiple of 4) that may grow to maxSize; its mu must be
// set to what the producer holds while it writes.
func newRxRing(size, maxSize int) *rxRing {
	return &rxRing{buf: make([]byte, size), max: maxSize, wake: make(chan struct{}, 1)}
}

func pad4(n int) int { return (n + 3) &^ 3 }

// reserve returns room for a packet of up to n bytes, or false when the ring is full (the packet
// is dropped and counted). Producer side; commit publishes what was written.
func (r *rxRing) reserve(n int) ([]byte, bool) {
	size := len(r.buf)
	need := rxRecordHeader + pad4(n)
	h, t := r.head.Load(), r.tail.Load()
	free := size - int(h-t)
	pos := int(h % uint64(size))
	skip := 0
	if size-pos < need {
		skip, pos = size-pos, 0
	}
	if free < skip+need {
		if size < r.max {
			r.grow.Store(true)
		}
		return nil, false
	}
	r.pos, r.skip = pos, skip
	return r.buf[pos+rxRecordHeader : pos+rxRecordHeader+n : pos+rxRecordHeader+n], true
}

// commit publishes the n bytes written in the reserved room, with their arrival time, and wakes
// the consumer if it sleeps.
func (r *rxRing) commit(n int, arrival int64) {
	h := r.head.Load()
	if r.skip > 0 {
		binary.LittleEndian.PutUint32(r.buf[int(h%uint64(len(r.buf))):], rxSkipMark)
	}
	binary.LittleEndian.PutUint32(r.buf[r.pos:], uint32(n))
	binary.LittleEndian.PutUint64(r.buf[r.pos+4:], uint64(arrival))
	r.head.Store(h + uint64(r.skip+rxRecordHeader+pad4(n)))
	if r.waiting.Load() && r.waiting.CompareAndSwap(true, false) {
		r.signal()
	}
}

func (r *rxRing) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// close tells the consumer that nothing more comes: next returns false once the ring is empty.
func (r *rxRing) close() {
	r.closed.Store(true)
	r.signal()
}

// next waits for the next packet; false when the ring is closed and empty. The packet stays valid
// until release.
func (r *rxRing) next() (pkt []byte, arrival int64, ok bool) {
	size := uint64(len(r.buf))
	for {
		t := r.tail.Load()
		if r.head.Load() != t {
			pos := t % size
			n := binary.LittleEndian.Uint32(r.buf[pos:])
			if n == rxSkipMark {
				r.tail.Store(t + size - pos)
				continue
			}
			r.cur = uint64(rxRecordHeader + pad4(int(n)))
			at := int64(binary.LittleEndian.Uint64(r.buf[pos+4:]))
			return r.buf[pos+rxRecordHeader : pos+rxRecordHeader+uint64(n)], at, true
		}
		if r.closed.Load() {
			return nil, 0, false
		}
		if r.grow.Load() {
			r.double()
			continue
		}
		r.waiting.Store(true)
		if r.head.Load() != t || r.closed.Load() {
			r.waiting.Store(false)
			continue
		}
		<-r.wake
	}
}

// double replaces the ring, empty, by one twice as large, holding the producer off meanwhile.
func (r *rxRing) double() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.grow.Store(false)
	if r.head.Load() != r.tail.Load() {
		return
	}
	r.buf = make([]byte, min(2*len(r.buf), r.max))
	r.head.Store(0)
	r.tail.Store(0)
}

// release gives the room of the packet next returned back to the producer.
func (r *rxRing) release() {
	r.tail.Add(r.cur)
	r.cur = 0
}
