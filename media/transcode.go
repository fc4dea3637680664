package media

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// Transcoder converts the media of one source into another codec. It is an Input of the source it
// converts (it gets that source's packets on the source's goroutine, and must not block) and writes
// what it produces to the output source it was made with, from its own goroutine.
type Transcoder interface {
	Input
	// Close stops the transcoder; it writes nothing to its output afterwards.
	Close()
}

// TranscoderFactory makes a transcoder from the media of from into the codec to, writing to out (whose
// codec is already set to to). The factory installs out's keyframe requester (an encoder keyframe).
type TranscoderFactory func(from *Source, to Codec, out *Source) (Transcoder, error)

// ErrNoTranscoder is returned when no transcoder factory is installed, or it cannot make the
// conversion.
var ErrNoTranscoder = errors.New("media: no transcoder for this conversion")

var transcoderFactory atomic.Pointer[TranscoderFactory]

// SetTranscoderFactory installs how transcoders are made (package processing does, with GStreamer).
// nil removes it.
func SetTranscoderFactory(f TranscoderFactory) {
	if f == nil {
		transcoderFactory.Store(nil)
		return
	}
	transcoderFactory.Store(&f)
}

// transcodeKey identifies one shared transcoder: a source and the mime type it is converted to.
type transcodeKey struct {
	src  *Source
	mime string
}

// transcoding is one shared transcoder and who uses it.
type transcoding struct {
	key   transcodeKey
	refs  int
	ready chan struct{} // closed once tr/out/err are set
	tr    Transcoder
	out   *Source
	err   error
	bin   string
}

var (
	transcodeMu  sync.Mutex
	transcodings = map[transcodeKey]*transcoding{}
	// announced remembers the formats each source was transcoded to already: KMS reports
	// TRANSCODING once per new output format of an element.
	announced  = map[transcodeKey]bool{}
	transcodeN atomic.Uint64
	active     atomic.Int64
)

// forgetTranscodings drops what was remembered of a released source, which would otherwise keep it
// (and its packet cache) alive for the life of the process.
func forgetTranscodings(s *Source) {
	transcodeMu.Lock()
	defer transcodeMu.Unlock()
	for k := range announced {
		if k.src == s {
			delete(announced, k)
		}
	}
}

// ActiveTranscoders is the number of transcoders running, for tests and stats.
func ActiveTranscoders() int { return int(active.Load()) }

// Transcoded returns a source that carries s's media converted to target, made on first use and
// shared by every caller wanting the same codec from s. release lets go of it; the transcoder stops
// when the last user releases it. It may take a while (a GStreamer pipeline starts): never call it on
// a packet goroutine nor under the pipeline lock.
func (s *Source) Transcoded(target Codec) (*Source, func(), error) {
	key := transcodeKey{src: s, mime: strings.ToLower(target.MimeType)}
	transcodeMu.Lock()
	t := transcodings[key]
	if t != nil {
		t.refs++
		transcodeMu.Unlock()
		<-t.ready
		if t.err != nil {
			releaseTranscoding(t)
			return nil, nil, t.err
		}
		return t.out, onceFunc(func() { releaseTranscoding(t) }), nil
	}
	t = &transcoding{key: key, refs: 1, ready: make(chan struct{})}
	transcodings[key] = t
	first := !announced[key]
	transcodeMu.Unlock()

	t.err = t.start(target)
	close(t.ready)
	if t.err != nil {
		releaseTranscoding(t)
		return nil, nil, t.err
	}
	if first {
		transcodeMu.Lock()
		announced[key] = true
		transcodeMu.Unlock()
		if e := s.flow.element; e != nil {
			e.emit(TranscodingChanged{Type: s.Type, Bin: t.bin, Transcoding: true})
		}
	}
	return t.out, onceFunc(func() { releaseTranscoding(t) }), nil
}

func (t *transcoding) start(target Codec) error {
	fp := transcoderFactory.Load()
	if fp == nil {
		return ErrNoTranscoder
	}
	src := t.key.src
	out := &Source{Type: src.Type, Pad: src.Pad}
	empty := []Input{}
	out.sinks.Store(&empty)
	// The output has no element of its own: its flow is that of the sinks it feeds.
	out.flow.typ = src.Type
	out.flow.flowing.Store(true)
	c := target
	out.SetCodec(&c)
	if src.Type == Video {
		out.EnableCache() // the peer's NACKs are served from the transcoded packets
	}
	tr, err := (*fp)(src, target, out)
	if err != nil {
		return err
	}
	if tr == nil {
		return ErrNoTranscoder
	}
	t.tr, t.out = tr, out
	t.bin = fmt.Sprintf("transcoder%d_%s", transcodeN.Add(1), strings.ReplaceAll(t.key.mime, "/", "_"))
	active.Add(1)
	// The transcoder takes the source's packets like any sink of it.
	if e := src.flow.element; e != nil {
		e.pipeline.mu.Lock()
		src.link(tr)
		e.pipeline.mu.Unlock()
	} else {
		src.link(tr)
	}
	return nil
}

func releaseTranscoding(t *transcoding) {
	transcodeMu.Lock()
	t.refs--
	last := t.refs == 0
	if last && transcodings[t.key] == t {
		delete(transcodings, t.key)
	}
	transcodeMu.Unlock()
	if !last || t.tr == nil {
		return
	}
	src := t.key.src
	if e := src.flow.element; e != nil {
		e.pipeline.mu.Lock()
		src.unlink(t.tr)
		e.pipeline.mu.Unlock()
	} else {
		src.unlink(t.tr)
	}
	t.out.SetKeyframeRequester(nil)
	t.tr.Close()
	active.Add(-1)
}

func onceFunc(f func()) func() {
	var once sync.Once
	return func() { once.Do(f) }
}

// addSink and removeSink link an input to a transcoder's output without telling it (SetSource): the
// input keeps the original source as its own and takes the converted media on the side.
func (s *Source) addSink(in Input) {
	transcodeMu.Lock()
	defer transcodeMu.Unlock()
	old := *s.sinks.Load()
	next := make([]Input, len(old), len(old)+1)
	copy(next, old)
	next = append(next, in)
	s.sinks.Store(&next)
}

func (s *Source) removeSink(in Input) {
	transcodeMu.Lock()
	defer transcodeMu.Unlock()
	old := *s.sinks.Load()
	next := make([]Input, 0, len(old))
	for _, x := range old {
		if x != in {
			next = append(next, x)
		}
	}
	s.sinks.Store(&next)
}

// senderTranscode is a sender fed by a transcoder rather than by its source.
type senderTranscode struct {
	s       *Sender
	orig    *Source // the source linked to the sender
	out     *Source // the transcoded source feeding it
	mime    string
	release func()
}

// WriteRTP takes the transcoder's packets into the sender.
func (st *senderTranscode) WriteRTP(src *Source, p *rtp.Packet) {
	if st.s.tc.Load() != st {
		return
	}
	st.s.forward(src, p, true)
}

// SetSource is never called: the sender keeps its linked source.
func (st *senderTranscode) SetSource(*Source) {}

// TargetBitrate passes the sender's bandwidth to the transcoder's encoder.
func (st *senderTranscode) TargetBitrate() uint64 { return st.s.TargetBitrate() }

// close lets go of the transcoded source, off the caller's goroutine (which may hold the pipeline
// lock, which releasing takes).
func (st *senderTranscode) close() {
	go func() {
		st.out.removeSink(st)
		st.release()
	}()
}

// needTranscode asks, off the packet goroutine, for src's media in the negotiated codec. The caller
// holds s.mu.
func (s *Sender) needTranscode(src *Source) {
	if s.tcPending || s.tcFailed == src {
		return
	}
	s.tcPending = true
	target := Codec{MimeType: s.mimeType, ClockRate: s.clockRate, Channels: s.channels, Fmtp: s.fmtp}
	go s.startTranscode(src, target)
}

func (s *Sender) startTranscode(src *Source, target Codec) {
	out, release, err := src.Transcoded(target)
	s.mu.Lock()
	s.tcPending = false
	if err != nil {
		s.tcFailed = src
		s.mu.Unlock()
		return
	}
	if s.cur.Load() != src || !strings.EqualFold(s.mimeType, target.MimeType) || s.tc.Load() != nil {
		s.mu.Unlock()
		release()
		return
	}
	st := &senderTranscode{s: s, orig: src, out: out, mime: target.MimeType, release: release}
	s.tc.Store(st)
	s.unlinkedAt = time.Now()
	s.switched = true
	s.waitKeyframe = s.video
	s.newEpoch()
	out.addSink(st) // before it is published: dropTranscode must find it linked
	s.mu.Unlock()
	if s.video {
		out.RequestKeyframe()
	}
}

// dropTranscode stops feeding the sender from a transcoder (its source or its codec changed).
func (s *Sender) dropTranscode() {
	if st := s.tc.Swap(nil); st != nil {
		st.close()
	}
}

// Transcoding tells whether the sender is fed by a transcoder.
func (s *Sender) Transcoding() bool { return s.tc.Load() != nil }
