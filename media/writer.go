package media

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/egress"
	"github.com/pion/rtp"
)

// Forwarding is split in two. The accept step runs on the source's reader goroutine (Sender.forward:
// keyframe gate, pacing, sequence and timestamp rewrite) and queues a reference to the packet in the
// source's cache; the send step (cut to the MTU, write) runs on a writer goroutine. A peer that does
// not keep up fills its own queue and loses its own packets; it never holds up the reader, nor the
// other peers.
//
// Writers are a small pool shared by all senders (one per CPU, each sender on one of them), so that
// one wake-up sends a packet to many peers in one round, which the batched egress turns into few
// system calls. A sender whose writes may block (TCP, TURN: SetBlockingWrites) gets a writer of its
// own, so that it stalls nobody else.

// sendItem is one packet accepted for a peer: where it is in the source's cache and the header fields
// the sender rewrote.
type sendItem struct {
	ring    *cacheRing
	out     *binding
	arrival int64 // monotonic nanos the packet entered the pipeline, 0 when not measured
	epoch   uint32
	gen     uint32
	ts      uint32
	ssrc    uint32
	srcSeq  uint16
	seq     uint16
	pt      uint8
}

// binding is where and how a sender's packets go, replaced whole by Bind and SetMTU, so that a writer
// sends each packet as it was accepted without taking the sender's lock.
type binding struct {
	write WriteFunc
	mtu   int
	mime  string
}

// sendQueue is a sender's bounded queue: one producer at a time (under Sender.mu), one consumer at a
// time (under Sender.drainMu).
type sendQueue struct {
	items      []sendItem
	head, tail atomic.Uint32 // head: next to pop; tail: next to push
}

// Queue lengths: a video queue holds a keyframe and the frames after it (a join's burst); audio
// needs little.
const (
	videoQueueLen = 256
	audioQueueLen = 64
)

func (q *sendQueue) push(it *sendItem) bool {
	t := q.tail.Load()
	if t-q.head.Load() >= uint32(len(q.items)) {
		return false
	}
	q.items[t%uint32(len(q.items))] = *it
	q.tail.Store(t + 1)
	return true
}

func (q *sendQueue) pop(it *sendItem) bool {
	h := q.head.Load()
	if h == q.tail.Load() {
		return false
	}
	i := &q.items[h%uint32(len(q.items))]
	*it = *i
	*i = sendItem{} // let a replaced ring or binding go
	q.head.Store(h + 1)
	return true
}

func (q *sendQueue) free() int { return len(q.items) - int(q.tail.Load()-q.head.Load()) }

func (q *sendQueue) empty() bool { return q.head.Load() == q.tail.Load() }

// writer is a goroutine that sends the queued packets of its senders. It runs while there is work,
// and ends after writerIdle without any.
type writer struct {
	mu      sync.Mutex
	ready   []*Sender // senders with queued packets, in the order they got them
	spare   []*Sender
	running bool
	wake    chan struct{}

	// the goroutine's own
	buf  [maxSlotPayload]byte
	pkt  cachedPacket
	hdr  rtp.Header
	csrc [maxCSRC]uint32
	frag fragmentation
}

// writerIdle is how long a writer waits for work before its goroutine ends: a goroutine start is
// cheap, and a server without media keeps none.
const writerIdle = 2 * time.Second

func newWriter() *writer { return &writer{wake: make(chan struct{}, 1)} }

// sharedWriters is the pool, one writer per CPU; nextWriter spreads the senders over it.
var (
	sharedWriters = func() []*writer {
		ws := make([]*writer, runtime.GOMAXPROCS(0))
		for i := range ws {
			ws[i] = newWriter()
		}
		return ws
	}()
	nextWriter atomic.Uint32
)

func sharedWriter() *writer {
	return sharedWriters[nextWriter.Add(1)%uint32(len(sharedWriters))]
}

// schedule puts s, which has packets queued, on the writer's list.
func (w *writer) schedule(s *Sender) {
	w.mu.Lock()
	w.ready = append(w.ready, s)
	start := !w.running
	w.running = true
	w.mu.Unlock()
	if start {
		go w.run()
		return
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *writer) run() {
	idle := time.NewTimer(writerIdle)
	defer idle.Stop()
	for {
		w.mu.Lock()
		batch := w.ready
		w.ready, w.spare = w.spare[:0], nil
		if len(batch) == 0 {
			w.spare = batch
			w.mu.Unlock()
			idle.Reset(writerIdle)
			select {
			case <-w.wake:
				continue
			case <-idle.C:
			}
			w.mu.Lock()
			if len(w.ready) == 0 {
				w.running = false
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			continue
		}
		w.mu.Unlock()
		egress.Hold() // the round's datagrams leave together in one sendmmsg
		for _, s := range batch {
			w.drain(s)
		}
		egress.Release()
		clear(batch)
		w.mu.Lock()
		w.spare = batch[:0]
		w.mu.Unlock()
	}
}

// drain sends what s has queued.
func (w *writer) drain(s *Sender) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	q := s.q.Load()
	var it sendItem
	for {
		for q.pop(&it) {
			w.send(s, &it)
		}
		s.scheduled.Store(false)
		// A packet queued after the last pop, seeing the sender still scheduled, is left to us.
		if q.empty() || !s.scheduled.CompareAndSwap(false, true) {
			return
		}
	}
}

// ErrNotSent is what a WriteFunc returns for a packet its transport dropped: before anything got
// through, because it cannot carry media yet (SRTP not started), and the sender starts the peer's
// video again at a keyframe; after, because it is full, and the peer lags.
var ErrNotSent = errors.New("media: the transport cannot send yet")

// send cuts one accepted packet to the MTU and writes it.
func (w *writer) send(s *Sender, it *sendItem) {
	if it.epoch != s.sendEpoch.Load() {
		s.dropped.Add(1) // accepted before a restart of the stream
		return
	}
	p := &w.pkt
	p.csrc = w.csrc[:0]
	if !it.ring.read(it.srcSeq, it.gen, w.buf[:], p) {
		// Overwritten in the cache: this peer is more than the cache's length behind.
		s.Stats.LagDropped.Add(1)
		s.noteLag()
		return
	}
	h := &w.hdr
	*h = rtp.Header{Version: 2, Marker: p.marker, PayloadType: it.pt, SequenceNumber: it.seq,
		Timestamp: it.ts, SSRC: it.ssrc, CSRC: p.csrc}
	if len(p.payload) == 0 {
		h.Padding, h.PaddingSize = p.padding, p.paddingSize // a probe keeps its padding
	}
	b := it.out
	planFragments(b.mtu, b.mime, h, p.payload, &w.frag)
	var err error
	if w.frag.n > 1 {
		err = writeFragments(b.write, h, &w.frag)
	} else {
		err = b.write(h, p.payload)
	}
	switch {
	case err == ErrNotSent && !s.reached.Load():
		// Nothing got through yet (SRTP starting): the peer is to start again at a keyframe.
		if s.video {
			s.missed.Store(true)
		}
	case err != nil:
		// The transport refused it (its buffer full, a TCP peer not reading): the peer lags.
		s.Stats.LagDropped.Add(1)
		s.noteLag()
	}
	if err == nil {
		if !s.reached.Load() {
			s.reached.Store(true)
		}
		s.packets.Add(uint64(w.frag.n))
		s.bytes.Add(uint64(len(p.payload)))
		if it.arrival != 0 {
			now := monotonic()
			s.meter.e2e.add(now-it.arrival, now)
		}
	}
}

// SetBlockingWrites tells the sender whether its writes may block (a TCP or TURN transport): such a
// sender gets a writer of its own.
func (s *Sender) SetBlockingWrites(blocking bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if blocking == s.ownWriter {
		return
	}
	s.ownWriter = blocking
	if blocking {
		s.w.Store(newWriter())
	} else {
		s.w.Store(sharedWriter())
	}
}

// Settled reports whether every packet the sender accepted has been handed to its write function.
func (s *Sender) Settled() bool {
	q := s.q.Load()
	return q == nil || (q.empty() && !s.scheduled.Load())
}
