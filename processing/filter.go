// Package processing holds the media side of elements whose work is done by GStreamer: filters
// (GStreamerFilter, ZBar, FaceOverlay, ImageOverlay). Each is RTP in, RTP out: the filtered media
// type goes through its own GStreamer pipeline (depayload, decode, filter, encode, payload) built
// with the gst bridge; the other media types pass through unchanged, as KMS's filter element does.
package processing

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// Error is raised on the element when its GStreamer pipeline reports an error or a warning, with the
// fields of Kurento's Error event.
type Error struct {
	Description string
	Code        int
	Type        string // UNEXPECTED_ELEMENT_ERROR, STREAM_ERROR_DECODE, ...
}

// ElementMessage is an element message of the filter's pipeline (barcode, facedetect, ...), raised
// on the element for its class to interpret.
type ElementMessage struct{ gst.Message }

// Config describes a filter.
type Config struct {
	// Type is the media filtered: media.Video or media.Audio.
	Type media.Type
	// Element is the GStreamer element doing the work; the filter takes it over.
	Element *gst.Element
	Log     *slog.Logger
	// Setup, if set, prepares the pipeline (e.g. installs an Overlay) before it starts; it runs again
	// on the pipeline rebuilt after a worker's crash, so it must set up everything the pipeline
	// holds (the overlay's images...).
	Setup func(*gst.Pipeline) error
}

// Filter is the media part of a filter element.
type Filter struct {
	elem    *media.Element
	typ     media.Type
	factory string
	in      *gstInput
	out     *media.Source
	stream  *continuousOutput // out, one RTP stream across rebuilds
	log     *slog.Logger
	relays  map[media.Type]*relay
	failed  atomic.Bool

	run      atomic.Pointer[filterRun]
	spec     *gst.Element // an unused copy of the element, to build it again after a crash (nil in-process)
	setup    func(*gst.Pipeline) error
	restarts Restarts

	mu     sync.Mutex // props and closed; a rebuilt run takes over under it
	props  []elementProp
	closed bool
}

// filterRun is one GStreamer pipeline of a filter: the first, or one rebuilt after a crash.
type filterRun struct {
	pipe   *gst.Pipeline
	name   string // the filter element's name in this pipeline
	appsrc *gst.AppSrc
	pkt    rtp.Packet   // the sink goroutine's
	rate   *rateControl // the sink goroutine's
}

// elementProp is a property the application set on the filter element, replayed on a rebuilt one.
type elementProp struct{ name, value string }

// Names of the bridge elements in every filter pipeline.
const (
	srcName  = "kms_in"
	sinkName = "kms_out"
	preName  = "kms_pre"
	postName = "kms_post"
)

// Codecs the filters take and produce.
var (
	VP8  = &media.Codec{MimeType: "video/VP8", ClockRate: 90000}
	Opus = &media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
)

// ErrWrongKind is returned when the element cannot filter the requested media type.
var ErrWrongKind = errors.New("Given command is not valid, pad templates don't match")

// Payload types inside a filter's pipeline; the sinks rewrite them anyway.
const (
	filterVideoPT = 96
	filterAudioPT = 111
)

func filterPT(t media.Type) uint8 {
	if t == media.Audio {
		return filterAudioPT
	}
	return filterVideoPT
}

func describe(t media.Type, bitrate int) string {
	sink := fmt.Sprintf("appsink name=%s sync=false async=false max-buffers=200 drop=true", sinkName)
	if t == media.Audio {
		return fmt.Sprintf("appsrc name=%s is-live=true format=time max-bytes=1000000 leaky-type=downstream "+
			"caps=\"application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=%d\" ! "+
			"rtpopusdepay ! opusdec plc=true ! audioconvert ! audioresample ! queue name=%s leaky=downstream max-size-buffers=10 "+
			"audioconvert name=%s ! audioresample ! opusenc bitrate=32000 ! rtpopuspay pt=%d mtu=1200 ! %s",
			srcName, filterAudioPT, preName, postName, filterAudioPT, sink)
	}
	return fmt.Sprintf("appsrc name=%s is-live=true format=time max-bytes=4000000 leaky-type=downstream "+
		"caps=\"application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=%d\" ! "+
		"rtpvp8depay request-keyframe=true wait-for-keyframe=true ! vp8dec ! videoconvert ! "+
		"queue name=%s leaky=downstream max-size-buffers=1 max-size-bytes=0 max-size-time=0 "+
		"videoconvert name=%s ! vp8enc name="+encName+" deadline=1 cpu-used=8 lag-in-frames=0 end-usage=cbr "+
		"target-bitrate=%d keyframe-max-dist=300 error-resilient=default threads=2 ! "+
		"rtpvp8pay pt=%d mtu=1200 picture-id-mode=15-bit ! %s",
		srcName, filterVideoPT, preName, postName, bitrate, filterVideoPT, sink)
}

// NewFilter builds the filter's pipeline around cfg.Element and installs the element's sink pads.
// The pipeline runs from now on; media flows once a source is connected.
func NewFilter(e *media.Element, cfg Config) (*Filter, error) {
	if cfg.Type != media.Video && cfg.Type != media.Audio {
		return nil, fmt.Errorf("processing: a filter takes audio or video, not %v", cfg.Type)
	}
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	f := &Filter{elem: e, typ: cfg.Type, factory: cfg.Element.Factory(), log: log, relays: map[media.Type]*relay{},
		spec: cfg.Element.Copy(), setup: cfg.Setup}
	f.out = e.Source(cfg.Type, media.DefaultPad)
	if cfg.Type == media.Video {
		f.out.SetCodec(VP8)
	} else {
		f.out.SetCodec(Opus)
	}
	f.stream = &continuousOutput{src: f.out, ssrc: rand.Uint32(), seq: uint16(rand.Uint32())}
	f.in = newGstInput(f, e.NewInputMeter(cfg.Type, media.DefaultPad))
	run, err := f.start(cfg.Element)
	if err != nil {
		return nil, err
	}
	f.run.Store(run)
	f.in.feed.use(run.appsrc)
	f.out.SetKeyframeRequester(f.requestKeyframe)
	for _, t := range media.AllTypes {
		if t != cfg.Type {
			f.relays[t] = &relay{out: e.Source(t, media.DefaultPad), meter: e.NewInputMeter(t, media.DefaultPad)}
		}
	}
	e.SetInputs(f)
	return f, nil
}

// start builds a pipeline around el (taken over) and sets it playing.
func (f *Filter) start(el *gst.Element) (*filterRun, error) {
	pipe, err := gst.NewPipeline(describe(f.typ, f.elem.EncoderBitrate().For(0)))
	if err != nil {
		el.Close()
		return nil, err
	}
	fail := func(err error) (*filterRun, error) {
		pipe.Close()
		return nil, err
	}
	run := &filterRun{pipe: pipe}
	if err := pipe.Insert(el, preName, postName); err != nil {
		return fail(fmt.Errorf("%w: %v", ErrWrongKind, err))
	}
	run.name = el.Name() // the name it got in the pipeline's worker
	if run.appsrc, err = pipe.AppSrc(srcName); err != nil {
		return fail(err)
	}
	run.appsrc.WatchKeyUnit()
	run.rate = newRateControl(pipe, f.out.Codec().MimeType, f.out.SinkBitrate, f.elem.EncoderBitrate)
	if err := pipe.HandleSink(sinkName, func(data []byte, _ time.Duration) { f.onSample(run, data) }); err != nil {
		return fail(err)
	}
	pipe.OnMessage(func(m gst.Message) { f.onMessage(run, m) })
	if f.setup != nil {
		if err := f.setup(pipe); err != nil {
			return fail(err)
		}
	}
	if err := pipe.Start(); err != nil {
		return fail(err)
	}
	return run, nil
}

// restart builds the filter again in a new worker after old's died: the same element with the
// properties the application set, the same Setup (overlays), the same pads and links. Media goes on
// through it; WORKER_RESTARTED tells the application.
func (f *Filter) restart(old *filterRun, e *gst.Error) {
	run, err := f.start(f.spec.Copy())
	if err != nil {
		f.log.Error("filter not rebuilt after its worker died", "err", err)
		return
	}
	f.mu.Lock()
	if f.closed || f.run.Load() != old {
		f.mu.Unlock()
		run.pipe.Close()
		return
	}
	for _, p := range f.props {
		if err := f.setOn(run, p.name, p.value); err != nil {
			f.log.Warn("filter rebuilt without a property the application set", "property", p.name, "err", err)
		}
	}
	f.run.Store(run)
	f.in.feed.use(run.appsrc)
	f.failed.Store(false)
	f.mu.Unlock()
	old.pipe.Close()
	f.log.Info("filter rebuilt in a new worker", "workerPid", run.pipe.WorkerPID())
	f.elem.Emit(RestartedEvent(e, "filter"))
	f.in.requestKeyframe() // the new decoder starts on a keyframe
}

// Input implements media.Inputs: the default pads only, as KMS filters have.
func (f *Filter) Input(t media.Type, pad string) media.Input {
	if pad != media.DefaultPad {
		return nil
	}
	if t == f.typ {
		return f.in
	}
	if r := f.relays[t]; r != nil {
		return r
	}
	return nil
}

// ElementName is the name of the filter element inside the pipeline.
func (f *Filter) ElementName() string { return f.run.Load().name }

// SetProperty sets a property of the filter element from its textual form; a rebuilt element gets it
// again.
func (f *Filter) SetProperty(name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.setOn(f.run.Load(), name, value); err != nil {
		return err
	}
	f.props = slices.DeleteFunc(f.props, func(p elementProp) bool { return p.name == name })
	f.props = append(f.props, elementProp{name, value})
	return nil
}

func (f *Filter) setOn(run *filterRun, name, value string) error {
	if err := run.pipe.Set(run.name, name, value); err != nil {
		return err
	}
	if n, v, ok := propertyQuirk(f.factory, name, value); ok {
		return run.pipe.Set(run.name, n, v)
	}
	return nil
}

// Property reads a property of the filter element.
func (f *Filter) Property(name string) (any, error) {
	run := f.run.Load()
	return run.pipe.Get(run.name, name)
}

// Pipeline is the filter's GStreamer pipeline, for classes that drive more of it.
func (f *Filter) Pipeline() *gst.Pipeline { return f.run.Load().pipe }

// Close stops the pipeline; the element must have been released from the graph (or be about to).
func (f *Filter) Close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	run := f.run.Load()
	f.mu.Unlock()
	f.out.SetKeyframeRequester(nil)
	run.pipe.Close()
}

// requestKeyframe serves a keyframe request from downstream: the encoder makes one, and the source
// feeding the filter is asked too (the decoder recovers faster from a loss that way).
func (f *Filter) requestKeyframe() {
	if f.typ != media.Video {
		return
	}
	if err := f.run.Load().pipe.ForceKeyUnit(sinkName); err != nil && !errors.Is(err, gst.ErrClosed) {
		f.log.Debug("force-key-unit", "err", err)
	}
	f.in.requestKeyframe()
}

func (f *Filter) onSample(run *filterRun, data []byte) {
	if err := run.pkt.Unmarshal(data); err != nil {
		return
	}
	f.stream.write(run, &run.pkt)
	run.rate.check(time.Now())
}

func (f *Filter) onMessage(run *filterRun, m gst.Message) {
	switch m.Type {
	case gst.MessageKeyUnitRequest:
		f.in.requestKeyframe()
	case gst.MessageError, gst.MessageWarning:
		if m.Type == gst.MessageError && errors.Is(m.Err, gst.ErrWorkerCrashed) {
			f.workerDied(run, m.Err)
			return
		}
		if m.Type == gst.MessageError {
			f.failed.Store(true)
			f.log.Error("filter pipeline error", "err", m.Err)
		} else {
			f.log.Warn("filter pipeline warning", "err", m.Err)
		}
		f.elem.Emit(Error{Description: describeError(m.Err, run.name), Code: m.Err.Code, Type: ErrorType(m.Err)})
	case gst.MessageElement:
		f.elem.Emit(ElementMessage{m})
	}
}

// workerDied raises WORKER_CRASHED and, with --gst-worker-restart and within the restart budget,
// rebuilds the filter in a new worker.
func (f *Filter) workerDied(run *filterRun, e *gst.Error) {
	f.failed.Store(true)
	f.log.Error("filter pipeline error", "err", e)
	restart, why := false, ""
	if f.spec != nil {
		restart, why = f.restarts.Allow(e)
	}
	f.elem.Emit(CrashedEvent(e, run.name, why))
	if restart {
		go f.restart(run, e)
	}
}

// describeError words an error as KMS's Error events do.
func describeError(e *gst.Error, element string) string {
	s := fmt.Sprintf("Error code %d: %s, source: %s, element: %s", e.Code, e.Message, e.Source, element)
	if e.Debug != "" {
		s += ", debug info: " + e.Debug
	}
	return s
}

// Failed tells whether the pipeline stopped on an error.
func (f *Filter) Failed() bool { return f.failed.Load() }

// WorkerCrashed is the Error event type of an element whose GStreamer worker process died (a crash,
// or a kill above its memory or CPU limit); errorCode is 1 for a crash, 2 for a limit.
const WorkerCrashed = "WORKER_CRASHED"

// WorkerRestarted is the Error event type that tells an element's GStreamer pipeline was rebuilt in a
// new worker after its worker died (--gst-worker-restart).
const WorkerRestarted = "WORKER_RESTARTED"

// ErrorType names a GStreamer error the way KMS's Error events do.
func ErrorType(e *gst.Error) string {
	switch e.Domain {
	case gst.DomainWorker:
		return WorkerCrashed
	case gst.DomainResource:
		switch e.Code {
		case gst.ResourceErrorOpenRead, gst.ResourceErrorOpenWrite, gst.ResourceErrorOpenReadWrite:
			return "RESOURCE_ERROR_OPEN"
		case gst.ResourceErrorWrite:
			return "RESOURCE_ERROR_WRITE"
		case gst.ResourceErrorNoSpaceLeft:
			return "RESOURCE_ERROR_NO_SPACE_LEFT"
		}
	case gst.DomainStream:
		switch e.Code {
		case gst.StreamErrorFailed:
			return "STREAM_ERROR_FAILED"
		case gst.StreamErrorDecode:
			return "STREAM_ERROR_DECODE"
		}
	}
	return "UNEXPECTED_ELEMENT_ERROR"
}

// gstInput is the sink pad of the filtered media type: packets go to the pipeline's appsrc, from a
// transcoder of the source when the filter's decoder does not take the source's codec.
type gstInput struct {
	out   *media.Source // the filter's output
	cur   atomic.Pointer[media.Source]
	meter *media.FlowMeter
	feed  *rtpFeed
	conv  media.Converter
}

func newGstInput(f *Filter, meter *media.FlowMeter) *gstInput {
	want := f.out.Codec()
	in := &gstInput{out: f.out, meter: meter, feed: newRTPFeed(nil, filterPT(f.typ), want.ClockRate)}
	in.conv = media.Converter{
		Accepts: func(c *media.Codec) bool { return strings.EqualFold(c.MimeType, want.MimeType) },
		Target:  func(media.Type) media.Codec { return *want },
		Deliver: in.feed.push,
		Failed: func(src *media.Source, err error) {
			f.log.Warn("the filter cannot take this source's codec", "codec", src.Codec().MimeType, "err", err)
		},
	}
	return in
}

func (in *gstInput) WriteRTP(src *media.Source, p *rtp.Packet) {
	if in.cur.Load() != src {
		return
	}
	in.meter.MarkFrom(src)
	if !in.conv.Direct(src) {
		return // a transcoder feeds the filter, or is being made
	}
	if acceptable(&in.conv, src) {
		in.feed.push(src, p)
	} else {
		in.feed.dropped.Add(1) // no transcoder could convert it
	}
}

func (in *gstInput) SetSource(src *media.Source) {
	in.cur.Store(src)
	in.conv.Link(src)
	if src != nil {
		src.RequestKeyframe() // the decoder starts on a keyframe
	}
}

// TargetBitrate tells the source what the filter's sinks take: no need to send it more.
func (in *gstInput) TargetBitrate() uint64 { return in.out.SinkBitrate() }

// requestKeyframe asks what feeds the filter for a keyframe: the transcoder in front, or the source.
func (in *gstInput) requestKeyframe() {
	if in.conv.RequestKeyframe() {
		return
	}
	if src := in.cur.Load(); src != nil {
		src.RequestKeyframe()
	}
}

// Dropped is the number of input packets that could not be filtered (wrong codec, pipeline down).
func (f *Filter) Dropped() uint64 { return f.in.feed.dropped.Load() }

// relay passes a media type the filter does not touch straight to its source pad.
type relay struct {
	out   *media.Source
	cur   atomic.Pointer[media.Source]
	meter *media.FlowMeter
}

func (r *relay) WriteRTP(src *media.Source, p *rtp.Packet) {
	if r.cur.Load() != src {
		return
	}
	r.meter.MarkFrom(src)
	if c := src.Codec(); r.out.Codec() != c {
		r.out.SetCodec(c)
	}
	r.out.WriteRTP(p)
}

func (r *relay) SetSource(src *media.Source) {
	r.cur.Store(src)
	if src == nil {
		r.out.SetKeyframeRequester(nil)
		return
	}
	r.out.SetKeyframeRequester(src.RequestKeyframe)
	if r.out.Sinks() > 0 {
		src.RequestKeyframe()
	}
}
