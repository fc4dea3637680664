package media

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media/codec"
	"github.com/pion/rtp"
)

// WriteFunc sends one RTP packet to the network. It must not keep header or payload.
type WriteFunc func(header *rtp.Header, payload []byte) error

// Sender is the sink pad of an element that sends RTP to a peer (WebRTC, RTP). Whatever source feeds
// it, the peer sees one continuous stream: the sender's SSRC and payload type, sequence numbers and
// timestamps without jumps when the source changes, and video starting on a keyframe.
type Sender struct {
	cur   atomic.Pointer[Source]
	tc    atomic.Pointer[senderTranscode] // set when a transcoder feeds the sender instead of cur
	meter *FlowMeter
	video bool

	mu          sync.Mutex // hot-path state; two sources overlap only for a packet during a switch
	ssrc        uint32
	payloadType uint8
	mimeType    string
	clockRate   uint32
	channels    uint16
	fmtp        string
	write       WriteFunc
	mtu         int // largest RTP packet sent, 0: any (SetMTU)
	// a transcoder is being set up (tcPending), or could not be for that source (tcFailed)
	tcPending    bool
	tcFailed     *Source
	switched     bool // the source changed; offsets are set on its first packet
	waitKeyframe bool
	started      bool
	seqOffset    uint16
	tsOffset     uint32
	lastSeq      uint16
	lastTS       uint32
	// unlinkedAt is when the previous source stopped feeding the sender: the timestamps of the next
	// source continue from there, advanced by the time that passed. Taken on the control path, so
	// the packet path reads no clock.
	unlinkedAt time.Time
	// the last source codec checked against the negotiated one, and the verdict
	checkedCodec *Codec
	codecChecked bool
	codecOK      bool

	// epoch changes when the sequence mapping does (a source switch): retransmissions are served
	// only for packets forwarded in the current epoch.
	epoch uint32
	// floorSeq: source packets older than it (late retransmissions from before a rebase or a resync)
	// are not forwarded, their sequence numbers would not map.
	floorSeq uint16
	floorSet bool
	// the last in-order source packet seen: a new timestamp starts a frame
	lastSrcSeq uint16
	lastSrcTS  uint32
	srcStarted bool
	// seqmap maps the sequence numbers sent back to the source's, for retransmissions; made with the
	// first packet forwarded and sized to the source's cache (seqMapFor).
	seqmap []seqMapEntry

	rtx rtxState
	bwe bweState

	// the send step (writer.go)
	out       *binding // under mu; nil until bound
	q         atomic.Pointer[sendQueue]
	w         atomic.Pointer[writer]
	scheduled atomic.Bool   // on its writer's list
	drainMu   sync.Mutex    // one writer drains the queue at a time
	ownWriter bool          // under mu (SetBlockingWrites)
	sendEpoch atomic.Uint32 // epoch, for the writers: what was accepted before is not sent
	missed    atomic.Bool   // a video packet was not sent, the transport not being ready
	reached   atomic.Bool   // a packet got through since Bind
	lagging   bool          // under mu: dropping the rest of the frame lagTS for a full queue
	lagTS     uint32
	lagKF     bool  // under mu: a keyframe is due once the queue takes packets again
	lagKFAt   int64 // monotonic nanos of the last one asked for that
	lag       lagLog

	packets atomic.Uint64
	bytes   atomic.Uint64
	dropped atomic.Uint64 // waiting for a keyframe or for negotiation

	Stats SenderStats
}

// Bounds of a sender's sequence map, in entries (a power of two): twice the source cache's slots,
// so that packets cut to the MTU in a few fragments map back as long as the cache holds them.
const (
	minSeqMap = 64
	maxSeqMap = 2 * maxCacheSlots
)

type seqMapEntry struct {
	sinkSeq, srcSeq uint16
	epoch           uint32
	valid           bool
	resends         uint8
	// fragment i of n when the source packet was cut to the MTU (n 0: sent whole)
	fragIndex, fragCount uint8
}

// NewSender makes the sink pad of e for a media type and description.
func (e *Element) NewSender(t Type, pad string) *Sender {
	s := &Sender{meter: e.NewInputMeter(t, pad), video: t == Video}
	s.w.Store(sharedWriter())
	return s
}

// Bind sets where and how packets go once negotiation has fixed them; until then packets are dropped.
func (s *Sender) Bind(ssrc uint32, payloadType uint8, c Codec, write WriteFunc) {
	s.mu.Lock()
	s.newEpoch()
	if st := s.tc.Load(); st != nil && !strings.EqualFold(st.mime, c.MimeType) {
		s.dropTranscode()
		s.unlinkedAt = time.Now()
		s.switched = true
	}
	s.tcFailed = nil
	s.ssrc, s.payloadType, s.mimeType, s.clockRate, s.write = ssrc, payloadType, c.MimeType, c.ClockRate, write
	s.channels, s.fmtp = c.Channels, c.Fmtp
	s.rebind()
	s.makeLagTimer()
	s.reached.Store(false)
	s.codecChecked = false // check the source's codec against the new one
	// Video starts at a keyframe: the last one in the source's cache, or one asked for (accept).
	s.waitKeyframe = s.video
	s.mu.Unlock()
}

// rebind makes the binding the writers send with, under s.mu.
func (s *Sender) rebind() {
	if s.write == nil {
		s.out = nil
		return
	}
	s.out = &binding{write: s.write, mtu: s.mtu, mime: s.mimeType}
}

// queue is the sender's send queue, made when it is first needed, under s.mu: an endpoint that is
// negotiated but never sends holds none.
func (s *Sender) queue() *sendQueue {
	if q := s.q.Load(); q != nil {
		return q
	}
	n := audioQueueLen
	if s.video {
		n = videoQueueLen
	}
	q := &sendQueue{items: make([]sendItem, n)}
	s.q.Store(q)
	return q
}

// seqMapFor returns the sequence map, under s.mu, large enough for a source cache of slots slots:
// made on the first packet, grown (keeping its entries) when the source's cache grows. Never
// shrunk: a large map only costs memory, a short one loses retransmissions.
func (s *Sender) seqMapFor(slots int) []seqMapEntry {
	want := minSeqMap
	for want < 2*slots && want < maxSeqMap {
		want *= 2
	}
	if len(s.seqmap) >= want {
		return s.seqmap
	}
	m := make([]seqMapEntry, want)
	for _, e := range s.seqmap {
		if e.valid {
			m[int(e.sinkSeq)&(want-1)] = e
		}
	}
	s.seqmap = m
	return m
}

// Codec is the negotiated codec, "" before Bind.
func (s *Sender) Codec() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mimeType
}

// SetSource implements Input.
func (s *Sender) SetSource(src *Source) {
	old := s.cur.Swap(src)
	s.mu.Lock()
	s.dropTranscode()
	s.tcFailed = nil
	if old != nil {
		s.unlinkedAt = time.Now()
	}
	s.switched = true
	s.waitKeyframe = s.video // from the source's cache, or a keyframe asked for (accept)
	s.newEpoch()
	s.mu.Unlock()
}

// RequestKeyframe asks the current source for a keyframe (the peer sent a PLI or FIR).
func (s *Sender) RequestKeyframe() {
	if st := s.tc.Load(); st != nil {
		st.out.RequestKeyframe()
		return
	}
	if src := s.cur.Load(); src != nil {
		src.RequestKeyframe()
	}
}

// BoundCodec is the negotiated codec, zero before Bind.
func (s *Sender) BoundCodec() Codec {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Codec{MimeType: s.mimeType, ClockRate: s.clockRate}
}

// PayloadType is the negotiated payload type.
func (s *Sender) PayloadType() uint8 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.payloadType
}

// SSRC is the negotiated SSRC the sender sends with, 0 before Bind.
func (s *Sender) SSRC() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ssrc
}

// Source is the source currently feeding the sender, nil when none.
func (s *Sender) Source() *Source { return s.cur.Load() }

// Counters returns what was sent and what was dropped before it could be.
func (s *Sender) Counters() (packets, bytes, dropped uint64) {
	return s.packets.Load(), s.bytes.Load(), s.dropped.Load()
}

// WriteRTP implements Input: accept the packet for the peer; a writer sends it (writer.go).
func (s *Sender) WriteRTP(src *Source, p *rtp.Packet) {
	if s.cur.Load() != src {
		return
	}
	s.meter.MarkFrom(src)
	if s.tc.Load() != nil {
		return // a transcoder feeds the sender with this source's media
	}
	s.forward(src, p, false)
}

// What accept leaves to do once the sender's lock is released.
type acceptResult uint8

const (
	queued      acceptResult = 1 << iota // a packet was queued: schedule the writer
	askKeyframe                          // ask the source for a keyframe
	lagged                               // the queue was full: a packet was dropped
	needsWriter                          // (queued) the sender is not scheduled yet
)

// forward accepts a packet of src, the linked source or the transcoder feeding the sender in its
// place (transcoded), on the goroutine that writes src.
func (s *Sender) forward(src *Source, p *rtp.Packet, transcoded bool) {
	limit := s.bwe.limit.Load()
	var arrival int64
	if !transcoded {
		arrival = src.arrivalStamp() // transcoded media is new media: its arrival is not known
	}
	s.mu.Lock()
	res := s.accept(src, p, src.stored, arrival, transcoded, limit)
	w := s.w.Load()
	s.mu.Unlock()
	if res&askKeyframe != 0 {
		src.RequestKeyframe() // rate-limited by the source
	}
	if res&lagged != 0 {
		s.noteLag()
	}
	if res&queued != 0 && s.scheduled.CompareAndSwap(false, true) {
		w.schedule(s)
	}
}

// accept is the accept step, under s.mu: the packet p of src, stored in its cache at ref, is checked,
// rewritten and queued for the writer.
func (s *Sender) accept(src *Source, p *rtp.Packet, ref cacheRef, arrival int64, transcoded bool, limit uint64) acceptResult {
	if !transcoded {
		if c := src.Codec(); c != s.checkedCodec || !s.codecChecked {
			s.checkedCodec, s.codecChecked = c, true
			s.codecOK = c == nil || s.mimeType == "" || strings.EqualFold(c.MimeType, s.mimeType)
		}
		if !s.codecOK && s.write != nil {
			s.needTranscode(src) // off this goroutine; packets are dropped until it is ready
		}
	}
	if s.out == nil || (!transcoded && !s.codecOK) || ref.ring == nil || ref.seq != p.SequenceNumber {
		// Not negotiated, not the codec, or not cached (a payload beyond maxSlotPayload).
		s.dropped.Add(1)
		return 0
	}
	if s.video && s.missed.Load() {
		s.missed.Store(false)
		s.restartVideo()
	}
	if s.floorSet && !s.switched && int16(p.SequenceNumber-s.floorSeq) < 0 {
		// A late packet from before the last rebase: its sequence number does not map.
		s.dropped.Add(1)
		return 0
	}
	var res acceptResult
	if s.waitKeyframe && !codec.IsKeyframeStart(s.mimeType, p.Payload) {
		if !s.joinFromCache(src, p, ref, transcoded, limit) {
			s.dropped.Add(1)
			return askKeyframe
		}
		res = queued // the frames since the last keyframe are queued; p follows them
	}
	inOrder := !s.srcStarted || s.switched || int16(p.SequenceNumber-s.lastSrcSeq) > 0
	newFrame := inOrder && (!s.srcStarted || s.switched || p.Timestamp != s.lastSrcTS)
	if inOrder {
		s.lastSrcSeq, s.lastSrcTS, s.srcStarted = p.SequenceNumber, p.Timestamp, true
		// The floor trails the stream, so that the signed comparison above never wraps.
		if s.floorSet && p.SequenceNumber-s.floorSeq > floorTrail {
			s.floorSeq = p.SequenceNumber - floorTrail
		}
	}
	s.waitKeyframe = false
	if s.video && (limit > 0 || s.bwe.dropping) && !s.pace(p, limit, newFrame) {
		s.Stats.BitrateDropped.Add(1)
		if s.bwe.askKF {
			s.bwe.askKF = false
			res |= askKeyframe
		}
		return res
	}
	if s.switched {
		s.switched = false
		s.rebase(p)
	} else if s.bwe.resync {
		// Frames were dropped for the peer's bandwidth: go on from the last sequence number sent.
		s.bwe.resync = false
		s.seqOffset = s.lastSeq + 1 - p.SequenceNumber
		s.floorSeq, s.floorSet = p.SequenceNumber, true
	}
	if len(p.Payload) == 0 && (!p.Padding || p.Header.PaddingSize == 0) {
		s.dropped.Add(1)
		return res
	}
	seq, ts := p.SequenceNumber+s.seqOffset, p.Timestamp+s.tsOffset
	var frag fragmentation
	planFragments(s.mtu, s.mimeType, &p.Header, p.Payload, &frag)
	extra := uint16(frag.n - 1) // fragments beyond the first take the next sequence numbers
	if !s.started || int16(seq+extra-s.lastSeq) > 0 {
		s.lastSeq, s.lastTS = seq+extra, ts
	}
	s.started = true
	s.seqOffset += extra
	// A fragment is served again by cutting the cached source packet the same way (Resend); an MTU
	// so small that a packet makes more than 255 fragments is not worth retransmitting.
	resendable := frag.n <= 255
	fragCount := uint8(0)
	if extra > 0 && resendable {
		fragCount = uint8(frag.n)
	}
	seqmap := s.seqMapFor(len(ref.ring.slots))
	for i := uint16(0); i <= extra; i++ {
		m := &seqmap[int(seq+i)&(len(seqmap)-1)]
		m.sinkSeq, m.srcSeq, m.epoch, m.valid, m.resends = seq+i, p.SequenceNumber, s.epoch, resendable, 0
		m.fragIndex, m.fragCount = uint8(i), fragCount
	}
	// A peer whose queue is full loses the rest of the frame (the gap its NACKs may fill from the
	// cache); once it takes packets again it is offered a keyframe, at most every keyframeEvery (a
	// keyframe while it is still full would be lost, and would cost every other peer). It never
	// holds up the source.
	if s.lagging && (!s.video || p.Timestamp != s.lagTS) {
		s.lagging = false
	}
	it := sendItem{ring: ref.ring, out: s.out, arrival: arrival, epoch: s.epoch, gen: ref.gen, ts: ts, ssrc: s.ssrc,
		srcSeq: p.SequenceNumber, seq: seq, pt: s.payloadType}
	if !s.lagging && s.queue().push(&it) {
		if s.lagKF && newFrame {
			if now := monotonic(); s.lagKFAt == 0 || now-s.lagKFAt > int64(keyframeEvery) {
				s.lagKF, s.lagKFAt = false, now
				res |= askKeyframe
			}
		}
		return res | queued
	}
	s.Stats.LagDropped.Add(1)
	res |= lagged
	if s.video && !s.lagging {
		s.lagging, s.lagTS, s.lagKF = true, p.Timestamp, true
	}
	return res
}

// restartVideo starts the peer's video again at a keyframe, under s.mu: what it was sent did not
// reach it (the transport was not ready), and what is queued is not sent.
func (s *Sender) restartVideo() {
	s.waitKeyframe = true
	if s.started {
		s.switched, s.unlinkedAt = true, time.Now()
	}
	s.newEpoch()
}

// newEpoch changes the sequence mapping (retransmissions are served in the current epoch only) and
// drops what the writer has queued; under s.mu.
func (s *Sender) newEpoch() {
	s.epoch++
	s.sendEpoch.Store(s.epoch)
}

// floorTrail is how far behind the newest source sequence number the rebase floor may stay.
const floorTrail = 0x4000

// rebase sets the offsets that make the first packet of a new source follow the last one sent.
func (s *Sender) rebase(p *rtp.Packet) {
	s.floorSeq, s.floorSet = p.SequenceNumber, true
	s.bwe.resync, s.bwe.dropping = false, false
	if !s.started {
		s.seqOffset, s.tsOffset = 0, 0
		return
	}
	s.seqOffset = s.lastSeq + 1 - p.SequenceNumber
	step := uint32(time.Since(s.unlinkedAt).Seconds() * float64(s.clockRate))
	if step == 0 {
		step = 1
	}
	s.tsOffset = s.lastTS + step - p.Timestamp
}
