package media

import (
	"strings"
	"sync/atomic"

	"github.com/pion/rtp"
)

// Format is the output an element is forced to produce for one media type (MediaElement
// setAudioFormat/setVideoFormat, KMS's audio-caps/video-caps): every sink downstream receives Codec,
// transcoded from what the element produces when that differs. Bitrate (bps, audio) and the frame rate
// (video) are for the encoder of that transcoder; media already in Codec passes unchanged.
type Format struct {
	Codec                      Codec
	Bitrate                    int
	FramerateNum, FramerateDen int
}

// FormatFailed is raised on an element whose forced format cannot be produced from its media (no
// transcoder for it): that output carries nothing, as in KMS when the caps do not negotiate.
type FormatFailed struct {
	Type Type
	From string // the codec the element produces
	To   string // the codec asked for
	Err  error
}

// forcedOutput is a source's forced format at work: the producer's packets go to raw, a transcoder
// turns them into the format, and the tap hands its output to the source's sinks.
type forcedOutput struct {
	format *Format
	from   *Codec  // the produced codec it converts
	raw    *Source // nil in the placeholder kept while the transcoder starts, or when it could not
	out    *Source
	tap    *forcedTap
	// handedOver is set by the producer's goroutine once it writes to raw: from then on the tap
	// delivers, so the two goroutines never deliver at the same time. stopped ends the tap's turn.
	handedOver atomic.Bool
	stopped    atomic.Bool
	release    func()
}

// take is the producer's write while a format is forced.
func (fo *forcedOutput) take(p *rtp.Packet) {
	if fo.raw == nil {
		return // nothing can be sent in the forced format (yet)
	}
	if !fo.handedOver.Load() {
		fo.handedOver.Store(true)
	}
	fo.raw.WriteRTP(p)
}

// forcedTap is the sink of the transcoder's output: it delivers to the sinks of the forced source.
type forcedTap struct {
	fo *forcedOutput
	s  *Source
}

func (t *forcedTap) WriteRTP(_ *Source, p *rtp.Packet) {
	if t.fo.handedOver.Load() && !t.fo.stopped.Load() {
		t.s.deliver(p)
	}
}

func (t *forcedTap) SetSource(*Source) {}

// TargetBitrate passes what the forced source's sinks take to the transcoder's encoder.
func (t *forcedTap) TargetBitrate() uint64 { return t.s.SinkBitrate() }

// SetFormat forces the output of every source pad of e of type t (nil: no longer forced).
func (e *Element) SetFormat(t Type, f *Format) {
	e.pipeline.mu.Lock()
	if e.formats == nil {
		e.formats = map[Type]*Format{}
	}
	e.formats[t] = f
	var srcs []*Source
	for k, s := range e.sources {
		if k.t == t {
			srcs = append(srcs, s)
		}
	}
	e.pipeline.mu.Unlock()
	for _, s := range srcs {
		s.setFormat(f)
	}
}

// Format is the format forced on the source (nil when none): the input of a forced output's
// transcoder carries the format its encoder is to follow.
func (s *Source) Format() *Format { return s.spec }

func (s *Source) setFormat(f *Format) {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	s.format.Store(f)
	s.applyFormat()
}

// needsTranscoder tells whether media in c must be transcoded to honour f.
func needsTranscoder(f *Format, c *Codec) bool {
	return f != nil && c != nil && !strings.EqualFold(f.Codec.MimeType, c.MimeType)
}

// applyFormat sets the codec the sinks see and blocks the producer's media until a transcoder into
// the forced format runs, which is started off the caller's goroutine (it may be a packet goroutine
// or hold the pipeline lock). The caller holds s.fmu.
func (s *Source) applyFormat() {
	f, c := s.format.Load(), s.produced.Load()
	fo := s.forcing.Load()
	if fo != nil && fo.format == f && fo.from == c {
		return // already at work (or failed) for this format and codec
	}
	if f == nil {
		s.codec.Store(c)
	} else if c == nil || needsTranscoder(f, c) {
		s.codec.Store(&f.Codec)
	} else {
		s.codec.Store(c) // already in the forced codec
	}
	if fo != nil {
		fo.stopped.Store(true) // its tap delivers no more, the producer delivers from now on
	}
	var next *forcedOutput
	if needsTranscoder(f, c) {
		next = &forcedOutput{format: f, from: c}
	}
	s.forcing.Store(next)
	if fo != nil || next != nil {
		s.formatGen++
		go s.reconcileFormat(fo, next, s.formatGen)
	}
}

// reconcileFormat stops the previous forced output and starts the next one.
func (s *Source) reconcileFormat(prev, next *forcedOutput, gen uint64) {
	if prev != nil {
		prev.stop()
	}
	if next == nil {
		return
	}
	raw := &Source{Type: s.Type, Pad: s.Pad, spec: next.format}
	empty := []Input{}
	raw.sinks.Store(&empty)
	raw.flow.element, raw.flow.typ, raw.flow.pad = s.flow.element, s.Type, s.Pad
	raw.flow.flowing.Store(true) // its flow is the source's own
	raw.codec.Store(next.from)
	raw.produced.Store(next.from)
	raw.keyframer.Store(s.keyframer.Load())
	out, release, err := raw.Transcoded(next.format.Codec)
	if err != nil {
		forgetTranscodings(raw)
		if e := s.flow.element; e != nil {
			e.emit(FormatFailed{Type: s.Type, From: next.from.MimeType, To: next.format.Codec.MimeType, Err: err})
		}
		return
	}
	active := &forcedOutput{format: next.format, from: next.from, raw: raw, out: out, release: release}
	active.tap = &forcedTap{fo: active, s: s}
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if s.formatGen != gen {
		active.stop() // the format or codec changed meanwhile
		return
	}
	if s.Type == Video {
		s.EnableCache() // the sinks' NACKs are served with the transcoded packets
	}
	out.addSink(active.tap)
	s.forcing.Store(active)
	if s.Type == Video {
		out.RequestKeyframe()
	}
}

// stop ends a forced output; the transcoder's last packet is delivered before it returns.
func (fo *forcedOutput) stop() {
	fo.stopped.Store(true)
	if fo.out == nil {
		return
	}
	fo.out.removeSink(fo.tap)
	fo.release() // waits for the transcoder's goroutine when it is the last user
	forgetTranscodings(fo.raw)
}

// stopFormat lets go of the source's forced output (its element is released).
func (s *Source) stopFormat() {
	s.fmu.Lock()
	fo := s.forcing.Swap(nil)
	s.formatGen++
	s.fmu.Unlock()
	if fo != nil {
		fo.stop()
	}
}
