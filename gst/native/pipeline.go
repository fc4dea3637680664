package native

/*
#include <stdlib.h>
#include "bridge.h"
#include "wire.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Pipeline is a running GStreamer pipeline built from a gst-launch description.
//
// Use: NewPipeline, then AppSrc / HandleSink / OnMessage / Insert, then Start; Close at the end.
// Callbacks run on the pipeline's own goroutines and must not call Close.
type Pipeline struct {
	ptr  *C.GstElement // owned reference
	bus  *C.GstBus     // owned reference
	desc string

	mu      sync.Mutex // control operations, and closing
	closed  bool
	started bool
	onMsg   func(Message)
	sinks   []*appSink
	srcs    map[string]*AppSrc
	ovls    []*Overlay

	busDone chan struct{}
	wg      sync.WaitGroup // sink goroutines
	live    atomic.Bool    // started and not closed: sink goroutines keep pulling
}

var pipelines atomic.Int64

// Live is the number of pipelines created and not closed, for leak checks.
func Live() int64 { return pipelines.Load() }

// NewPipeline parses a gst-launch description into a pipeline (a single element or an unlinked
// set of chains is wrapped into one). Nothing runs until Start. A description GStreamer cannot
// build is a *ParseError.
func NewPipeline(desc string) (*Pipeline, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	e, err := parse(desc)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{ptr: C.kb_as_pipeline(e), desc: desc, srcs: map[string]*AppSrc{}, busDone: make(chan struct{})}
	p.bus = C.kb_bus(p.ptr)
	pipelines.Add(1)
	go p.readBus()
	return p, nil
}

func parse(desc string) (*C.GstElement, error) {
	return parseWith(desc, func(d *C.char, gerr **C.GError) *C.GstElement { return C.kb_parse(d, gerr) })
}

// parseWith runs a launch-description parser and turns GStreamer's error into a ParseError.
func parseWith(desc string, parser func(*C.char, **C.GError) *C.GstElement) (*C.GstElement, error) {
	cdesc := C.CString(desc)
	defer C.free(unsafe.Pointer(cdesc))
	var gerr *C.GError
	e := parser(cdesc, &gerr)
	if gerr != nil {
		msg := C.GoString(gerr.message)
		C.g_error_free(gerr)
		return nil, &ParseError{Description: desc, Message: msg}
	}
	if e == nil {
		return nil, &ParseError{Description: desc, Message: "nothing was created"}
	}
	return e, nil
}

// Description is the launch description the pipeline was built from.
func (p *Pipeline) Description() string { return p.desc }

// OnMessage installs the function that receives the pipeline's bus messages, on the bus goroutine.
// Set it before Start.
func (p *Pipeline) OnMessage(f func(Message)) {
	p.mu.Lock()
	p.onMsg = f
	p.mu.Unlock()
}

// element looks up a named element; the caller holds p.mu and unrefs the result.
func (p *Pipeline) element(name string) (*C.GstElement, error) {
	if p.closed {
		return nil, ErrClosed
	}
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	e := C.kb_get_by_name(p.ptr, cname)
	if e == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return e, nil
}

// Insert adds e to the pipeline and links it between the elements named after and before (either
// may be empty). The pipeline takes e over: e must not be used afterwards except for its Name.
func (p *Pipeline) Insert(e *Element, after, before string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if e.ptr == nil {
		return fmt.Errorf("gst: element already used")
	}
	if C.kb_bin_add(p.ptr, e.ptr) == 0 {
		return fmt.Errorf("gst: cannot add %s to the pipeline", e.name)
	}
	C.gst_object_unref(C.gpointer(e.ptr)) // the bin holds it now
	ptr := e.ptr
	e.ptr = nil
	if after != "" {
		a, err := p.element(after)
		if err != nil {
			return err
		}
		ok := C.kb_link(a, ptr)
		C.gst_object_unref(C.gpointer(a))
		if ok == 0 {
			return fmt.Errorf("gst: cannot link %s to %s", after, e.name)
		}
	}
	if before != "" {
		b, err := p.element(before)
		if err != nil {
			return err
		}
		ok := C.kb_link(ptr, b)
		C.gst_object_unref(C.gpointer(b))
		if ok == 0 {
			return fmt.Errorf("gst: cannot link %s to %s", e.name, before)
		}
	}
	return nil
}

// Start sets the pipeline PLAYING and starts draining its sinks. A state change GStreamer refuses
// is an error; asynchronous failures arrive as Error messages.
func (p *Pipeline) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if p.started {
		return nil
	}
	if C.kb_set_state(p.ptr, C.GST_STATE_PLAYING) == C.GST_STATE_CHANGE_FAILURE {
		return fmt.Errorf("gst: pipeline %q refused to start", p.desc)
	}
	p.started = true
	p.live.Store(true)
	for _, s := range p.sinks {
		if s.wire == nil {
			p.wg.Add(1)
			go s.run(p)
		}
	}
	return nil
}

// Close stops the pipeline: no callback runs after it returns, every goroutine of the pipeline has
// ended and every reference is dropped. It must not be called from a callback of the pipeline.
func (p *Pipeline) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.live.Store(false)
	p.mu.Unlock()

	C.kb_post_stop(p.ptr)
	<-p.busDone
	for _, s := range p.sinks {
		if s.wire != nil {
			C.kb_wire_sink_close(s.wire)
		}
	}
	C.kb_set_state(p.ptr, C.GST_STATE_NULL) // no callback of a sink runs after this
	for _, s := range p.sinks {
		if s.notify != nil {
			s.notify.Close() // ends the sink's goroutine
		}
	}
	p.wg.Wait()
	for _, s := range p.srcs {
		s.release()
	}
	for _, o := range p.ovls {
		o.free()
	}
	for _, s := range p.sinks {
		C.gst_object_unref(C.gpointer(s.ptr))
	}
	C.gst_object_unref(C.gpointer(p.bus))
	C.gst_object_unref(C.gpointer(p.ptr))
	p.ptr, p.bus = nil, nil
	pipelines.Add(-1)
}

// Closed tells whether Close was called.
func (p *Pipeline) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Set sets a property of a named element from its textual form, converted to the property's type
// as gst-launch does (numbers, booleans, enum nicks, flags, caps...).
func (p *Pipeline) Set(element, property, value string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.element(element)
	if err != nil {
		return err
	}
	defer C.gst_object_unref(C.gpointer(e))
	return setProperty(e, element, property, value)
}

// SetValue sets a property from a Go value (formatted, then converted as Set does).
func (p *Pipeline) SetValue(element, property string, value any) error {
	return p.Set(element, property, fmt.Sprint(value))
}

func setProperty(e *C.GstElement, element, property, value string) error {
	cprop := C.CString(property)
	defer C.free(unsafe.Pointer(cprop))
	cval := C.CString(value)
	defer C.free(unsafe.Pointer(cval))
	var typeName *C.char
	switch C.kb_set_prop_string(e, cprop, cval, &typeName) {
	case 0:
		return nil
	case -1:
		return &PropertyError{Element: element, Property: property, Value: value, Reason: NoSuchProperty}
	case -3:
		return &PropertyError{Element: element, Property: property, Value: value, Type: C.GoString(typeName), Reason: NotWritable}
	}
	return &PropertyError{Element: element, Property: property, Value: value, Type: C.GoString(typeName), Reason: BadValue}
}

// Get reads a property of a named element: strings, booleans, int64, uint64, float64; other types
// (enums, caps, ...) in their textual form.
func (p *Pipeline) Get(element, property string) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.element(element)
	if err != nil {
		return nil, err
	}
	defer C.gst_object_unref(C.gpointer(e))
	cprop := C.CString(property)
	defer C.free(unsafe.Pointer(cprop))
	var v C.GValue
	if C.kb_get_prop(e, cprop, &v) != 0 {
		return nil, &PropertyError{Element: element, Property: property, Reason: NoSuchProperty}
	}
	defer C.g_value_unset(&v)
	return goValue(&v), nil
}

// ForceKeyUnit sends an upstream force-key-unit event from the named element (usually the appsink
// after an encoder): the encoder makes its next frame a keyframe.
func (p *Pipeline) ForceKeyUnit(element string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.element(element)
	if err != nil {
		return err
	}
	defer C.gst_object_unref(C.gpointer(e))
	if C.kb_force_key_unit(e) == 0 {
		return fmt.Errorf("gst: force-key-unit from %s was not handled", element)
	}
	return nil
}

// Element is a GStreamer element made on its own (ParseElement), before it joins a pipeline.
type Element struct {
	ptr  *C.GstElement
	name string
}

// ErrNotSingle is returned by ParseElement for a description that makes more than one element.
var ErrNotSingle = fmt.Errorf("gst: only one element can be created")

// ParseElement builds exactly one element from a gst-launch description such as
// "videoflip method=horizontal-flip".
func ParseElement(desc string) (*Element, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	e, err := parse(desc)
	if err != nil {
		return nil, err
	}
	if C.kb_is_bin(e) != 0 {
		C.gst_object_unref(C.gpointer(e))
		return nil, ErrNotSingle
	}
	el := &Element{ptr: e, name: C.GoString(C.kb_name(e))}
	runtime.SetFinalizer(el, (*Element).Close)
	return el, nil
}

// Name is the element's name in its pipeline.
func (e *Element) Name() string { return e.name }

// MediaKind tells the raw media an element filters.
type MediaKind int

// Media kinds of filter elements.
const (
	KindInvalid MediaKind = -1 // lacks a sink or src pad
	KindNone    MediaKind = 0
	KindAudio   MediaKind = 1
	KindVideo   MediaKind = 2
)

// Kind is what raw media the element can filter, decided as KMS's filter element does for
// AUTODETECT: audio if both of its pads accept raw audio, else video if both accept raw video.
func (e *Element) Kind() MediaKind {
	if e.ptr == nil {
		return KindInvalid
	}
	return MediaKind(C.kb_media_kind(e.ptr))
}

// Set sets a property of the element before it joins a pipeline.
func (e *Element) Set(property, value string) error {
	if e.ptr == nil {
		return ErrClosed
	}
	return setProperty(e.ptr, e.name, property, value)
}

// Close drops the element if it never joined a pipeline.
func (e *Element) Close() {
	if e.ptr != nil {
		C.gst_object_unref(C.gpointer(e.ptr))
		e.ptr = nil
	}
	runtime.SetFinalizer(e, nil)
}

// AppSrc is an appsrc element of a pipeline, to push data (RTP packets) into it.
type AppSrc struct {
	name string
	mu   sync.RWMutex // held for reading while pushing; Close takes it to drop the element
	ptr  *C.GstElement
}

// AppSrc returns the appsrc element of that name. It must be looked up before Start.
func (p *Pipeline) AppSrc(name string) (*AppSrc, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.srcs[name]; s != nil {
		return s, nil
	}
	e, err := p.element(name)
	if err != nil {
		return nil, err
	}
	if C.kb_is_appsrc(e) == 0 {
		C.gst_object_unref(C.gpointer(e))
		return nil, fmt.Errorf("gst: %s is not an appsrc", name)
	}
	s := &AppSrc{name: name, ptr: e}
	p.srcs[name] = s
	return s, nil
}

// WatchKeyUnit makes upstream force-key-unit requests reaching the appsrc (from a depayloader that
// lost packets, a decoder that needs a keyframe) arrive as KeyUnitRequest messages.
func (s *AppSrc) WatchKeyUnit() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr != nil {
		C.kb_watch_key_unit(s.ptr)
	}
}

// Push copies data into a new buffer and queues it on the appsrc. It does not block and does not
// allocate Go memory; the timestamp comes from the appsrc (do-timestamp) when the description asks.
func (s *AppSrc) Push(data []byte) error { return s.push(data, C.GST_CLOCK_TIME_NONE) }

// PushAt is Push with the buffer's timestamp given (for an appsrc without do-timestamp).
func (s *AppSrc) PushAt(data []byte, pts time.Duration) error {
	return s.push(data, C.GstClockTime(pts))
}

func (s *AppSrc) push(data []byte, pts C.GstClockTime) error {
	if len(data) == 0 {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return ErrClosed
	}
	if C.kb_push(s.ptr, unsafe.Pointer(&data[0]), C.gsize(len(data)), pts) != C.GST_FLOW_OK {
		return ErrFlow
	}
	return nil
}

func (s *AppSrc) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ptr != nil {
		C.gst_object_unref(C.gpointer(s.ptr))
		s.ptr = nil
	}
}

// SinkFunc receives a buffer of an appsink; data is valid only during the call.
type SinkFunc func(data []byte, pts time.Duration)

type appSink struct {
	name   string
	ptr    *C.GstElement
	fn     SinkFunc
	wire   *C.kb_wire_sink // set for a sink sent to a media socket from C (SinkToWire): no goroutine
	notify *os.File        // HandleSink's: counts the samples (and the end) that are ready to pull
	ended  chan struct{}   // closed once the sink is at end of stream with every buffer delivered
}

// maxBuffer is the largest buffer a sink delivers whole; bigger ones are dropped. It is room for a
// muxed keyframe or a JPEG image; RTP is far smaller. Only the pages a buffer touches are resident.
const maxBuffer = 4 << 20

// HandleSink makes one goroutine, from Start to Close, pull every buffer of the named appsink and
// give it to fn.
func (p *Pipeline) HandleSink(name string, fn SinkFunc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.appsinkBeforeStart(name, "HandleSink")
	if err != nil {
		return err
	}
	fd := C.kb_sink_notify(e)
	if fd < 0 {
		C.gst_object_unref(C.gpointer(e))
		return fmt.Errorf("gst: no eventfd for %s", name)
	}
	p.sinks = append(p.sinks, &appSink{name: name, ptr: e, fn: fn, notify: os.NewFile(uintptr(fd), name),
		ended: make(chan struct{})})
	return nil
}

// appsinkBeforeStart is the named appsink (a reference the caller keeps), for a way of reading it
// that must be chosen before Start; under p.mu.
func (p *Pipeline) appsinkBeforeStart(name, what string) (*C.GstElement, error) {
	if p.started {
		return nil, fmt.Errorf("gst: %s after Start", what)
	}
	e, err := p.element(name)
	if err != nil {
		return nil, err
	}
	if C.kb_is_appsink(e) == 0 {
		C.gst_object_unref(C.gpointer(e))
		return nil, fmt.Errorf("gst: %s is not an appsink", name)
	}
	return e, nil
}

// SinkEnded is closed when the named sink (of HandleSink) reached end of stream and fn has had every
// buffer before it; nil for an unknown sink.
func (p *Pipeline) SinkEnded(name string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sinks {
		if s.name == name {
			return s.ended
		}
	}
	return nil
}

func (s *appSink) run(p *Pipeline) {
	defer p.wg.Done()
	buf := C.malloc(maxBuffer) // C memory: GStreamer copies into it without Go pointers involved
	defer C.free(buf)
	view := unsafe.Slice((*byte)(buf), maxBuffer)
	var pts C.guint64
	var endOnce sync.Once
	var count [8]byte
	for p.live.Load() {
		n := int(C.kb_pull(s.ptr, 0, buf, maxBuffer, &pts))
		if n < 0 {
			if C.kb_appsink_eos(s.ptr) != 0 {
				endOnce.Do(func() { close(s.ended) })
			}
			// Parked in the poller until the next sample or the end; Close closes the eventfd.
			if _, err := s.notify.Read(count[:]); err != nil {
				return
			}
			continue
		}
		if n > maxBuffer || !p.live.Load() {
			continue
		}
		var d time.Duration = -1
		if uint64(pts) != uint64(C.GST_CLOCK_TIME_NONE) {
			d = time.Duration(pts)
		}
		s.fn(view[:n], d)
	}
}

// native is the appsrc's GstElement, for tests that compare with go-gst's own API.
func (s *AppSrc) native() unsafe.Pointer { return unsafe.Pointer(s.ptr) }

// Factory is the name of the element's factory ("videoflip").
func (e *Element) Factory() string {
	if e.ptr == nil {
		return ""
	}
	return C.GoString(C.kb_factory_name(e.ptr))
}

// Get reads a property of the element before it joins a pipeline (see Pipeline.Get).
func (e *Element) Get(property string) (any, error) {
	if e.ptr == nil {
		return nil, ErrClosed
	}
	cprop := C.CString(property)
	defer C.free(unsafe.Pointer(cprop))
	var v C.GValue
	if C.kb_get_prop(e.ptr, cprop, &v) != 0 {
		return nil, &PropertyError{Element: e.name, Property: property, Reason: NoSuchProperty}
	}
	defer C.g_value_unset(&v)
	return goValue(&v), nil
}
