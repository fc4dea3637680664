package media

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media/codec"
	"github.com/pion/rtp"
)

// Codec describes the encoding of a stream as negotiated in SDP.
type Codec struct {
	MimeType  string // "video/VP8", "audio/opus", ...
	ClockRate uint32
	Channels  uint16
	Fmtp      string
}

// Input is a sink pad of an element: packets from the one source linked to it arrive here.
type Input interface {
	// WriteRTP delivers a packet from src on src's reader goroutine. It must not block, and must not
	// keep p, its header or its payload after returning.
	WriteRTP(src *Source, p *rtp.Packet)
	// SetSource tells the input which source now feeds it (nil when unlinked). It is called under the
	// pipeline lock, before the first WriteRTP from that source. A source being unlinked may still
	// deliver a packet or two afterwards: inputs drop packets from sources that are not current.
	SetSource(src *Source)
}

// keyframeInterval is the shortest time between two keyframe requests sent upstream by one source;
// requests in between are served by the keyframe already asked for.
const keyframeInterval = 500 * time.Millisecond

// Source is a source pad: the media of one type an element produces. The element's reader goroutine
// calls WriteRTP; the packet goes to every linked input without copying and without blocking.
type Source struct {
	Type Type
	Pad  string

	codec     atomic.Pointer[Codec]
	sinks     atomic.Pointer[[]Input] // copy-on-write, replaced under the pipeline lock
	keyframer atomic.Pointer[func()]
	lastKF    atomic.Int64 // unix nanos of the last keyframe request sent upstream
	flow      FlowMeter

	packets atomic.Uint64
	bytes   atomic.Uint64
	cache   atomic.Pointer[PacketCache]
	// stored is where the packet being delivered sits in the cache: the senders queue it from there.
	// The reader goroutine's.
	stored cacheRef
	// upstream is the source a pass-through re-emits: its cache serves this source's sinks, the
	// sequence numbers being the same.
	upstream atomic.Pointer[Source]

	refusing    bool         // dropping video up to a keyframe of an allowed size (see refuses)
	lastRefusal atomic.Int64 // unix nanos of the last ResolutionExceeded event

	// A forced format (format.go): codec is what the sinks receive, produced what the producer
	// writes; forcing is set while the producer's media is to be transcoded into the format.
	produced  atomic.Pointer[Codec]
	format    atomic.Pointer[Format]
	forcing   atomic.Pointer[forcedOutput]
	fmu       sync.Mutex // orders format changes; never held on the packet path
	formatGen uint64     // guarded by fmu
	spec      *Format    // set on the input of a forced output's transcoder

	// latency is the pipeline's latencyStats switch (nil for sources outside a pipeline); arrival
	// is when the packet being written entered the pipeline, while it is on (latency.go).
	latency *atomic.Bool
	arrival atomic.Int64
	stamped uint32 // packets seen by stamp, the writer's
}

// SetCodec records the codec of the media the producer writes (nil when unknown).
func (s *Source) SetCodec(c *Codec) {
	if s.produced.Swap(c) == c {
		return
	}
	s.fmu.Lock()
	s.applyFormat()
	s.fmu.Unlock()
}

// Codec is the codec of the media the sinks receive, nil until known: the producer's, or the
// forced format's.
func (s *Source) Codec() *Codec { return s.codec.Load() }

// producedCodec is the codec of the media the producer writes.
func (s *Source) producedCodec() *Codec { return s.produced.Load() }

// SetKeyframeRequester installs how to ask the producer for a keyframe (an RTCP PLI to a remote
// sender, for instance).
func (s *Source) SetKeyframeRequester(f func()) {
	var p *func()
	if f != nil {
		p = &f
	}
	s.keyframer.Store(p)
	if fo := s.forcing.Load(); fo != nil && fo.raw != nil {
		fo.raw.keyframer.Store(p)
	}
}

// RequestKeyframe asks the producer for a keyframe, at most once per keyframeInterval however many
// sinks ask.
func (s *Source) RequestKeyframe() {
	if fo := s.forcing.Load(); fo != nil && fo.out != nil {
		fo.out.RequestKeyframe() // the forced format's encoder makes it
		return
	}
	f := s.keyframer.Load()
	if f == nil {
		return
	}
	now := time.Now().UnixNano()
	last := s.lastKF.Load()
	if now-last < int64(keyframeInterval) || !s.lastKF.CompareAndSwap(last, now) {
		return
	}
	(*f)()
}

// WriteRTP hands a packet to every linked input. Called by the producer's reader goroutine only.
func (s *Source) WriteRTP(p *rtp.Packet) {
	s.stamp()
	if fo := s.forcing.Load(); fo != nil {
		fo.take(p) // the sinks get it in the forced format
		return
	}
	s.deliver(p)
}

// deliver hands a packet in the codec of the source to its inputs.
func (s *Source) deliver(p *rtp.Packet) {
	if s.Type == Video && s.refuses(p.Payload) {
		return
	}
	s.stored = cacheRef{}
	if c := s.cache.Load(); c != nil {
		key := false
		if s.Type == Video {
			if cd := s.codec.Load(); cd != nil {
				key = codec.IsKeyframeStart(cd.MimeType, p.Payload)
			}
		}
		s.stored = c.Store(p, key)
	}
	s.packets.Add(1)
	s.bytes.Add(uint64(len(p.Payload)))
	s.flow.Mark()
	for _, in := range *s.sinks.Load() {
		in.WriteRTP(s, p)
	}
}

// EndOfStreamInput is an input that cares when its source's media ends (a file played to its end,
// an upload finished): a recorder with stopOnEndOfStream, a pass-through that passes it on.
type EndOfStreamInput interface {
	EndOfStream(src *Source)
}

// EndOfStream tells the sinks that no more media comes from this source, until it writes again.
func (s *Source) EndOfStream() {
	for _, in := range *s.sinks.Load() {
		if e, ok := in.(EndOfStreamInput); ok {
			e.EndOfStream(s)
		}
	}
}

// EnableCache makes the source keep its last packets (packetcache.go), to serve its sinks' NACKs and
// joins. A source gets one when a sender is linked to it; a producer may ask before.
func (s *Source) EnableCache() {
	if s.cache.Load() == nil {
		s.cache.CompareAndSwap(nil, NewPacketCache(s.Type == Video))
	}
}

// Cache is the packet cache that holds the source's packets (its own, or that of the source a
// pass-through re-emits), nil when none.
func (s *Source) Cache() *PacketCache {
	for i := 0; s != nil && i < 8; i++ {
		if c := s.cache.Load(); c != nil {
			return c
		}
		s = s.upstream.Load()
	}
	return nil
}

// Counters returns the packets and payload bytes the source has carried.
func (s *Source) Counters() (packets, bytes uint64) { return s.packets.Load(), s.bytes.Load() }

// Sinks is the number of inputs linked to the source.
func (s *Source) Sinks() int { return len(*s.sinks.Load()) }

// link and unlink run under the pipeline lock, which serialises the copy-on-write updates.
func (s *Source) link(in Input) {
	old := *s.sinks.Load()
	next := make([]Input, len(old), len(old)+1)
	copy(next, old)
	next = append(next, in)
	if _, ok := in.(*Sender); ok {
		s.EnableCache() // the sender queues references to its packets
	}
	s.sinks.Store(&next)
	in.SetSource(s)
}

func (s *Source) unlink(in Input) {
	old := *s.sinks.Load()
	next := make([]Input, 0, len(old))
	for _, x := range old {
		if x != in {
			next = append(next, x)
		}
	}
	s.sinks.Store(&next)
	in.SetSource(nil)
}
