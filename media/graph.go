// Package media is the media graph: pipelines, elements, their pads per media type and the connections
// between them. It keeps KMS's connection rules (one source per sink pad, loopback allowed, elements of
// one pipeline only) and reports what happens as typed events. It knows nothing about JSON.
package media

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Type is the kind of media a pad carries.
type Type uint8

// The media types of Kurento, in the order KMS connects them.
const (
	Audio Type = iota
	Video
	Data
)

// AllTypes is what a connect without a media type links.
var AllTypes = []Type{Audio, Video, Data}

func (t Type) String() string {
	switch t {
	case Audio:
		return "AUDIO"
	case Video:
		return "VIDEO"
	case Data:
		return "DATA"
	}
	return fmt.Sprintf("Type(%d)", t)
}

// ParseType reads a Kurento MediaType name.
func ParseType(s string) (Type, error) {
	for _, t := range AllTypes {
		if t.String() == s {
			return t, nil
		}
	}
	return 0, fmt.Errorf("unknown media type %q", s)
}

// DefaultPad is the pad description KMS uses when none is given.
const DefaultPad = "default"

// ErrOtherPipeline is returned when connecting elements of different pipelines.
var ErrOtherPipeline = errors.New("Media elements do not share pipeline")

// ErrReleased is returned when an element has been released.
var ErrReleased = errors.New("element released")

// Connection is one link from a source pad of one element to a sink pad of another (or the same).
type Connection struct {
	Source, Sink *Element
	Type         Type
	SourcePad    string
	SinkPad      string
}

// Connected is raised on the source element after a connection is made.
type Connected struct{ Connection }

// Disconnected is raised on the source element after a connection is undone (or was asked to be).
type Disconnected struct{ Connection }

// Event is anything the graph or an element reports; the object layer turns it into a Kurento event.
type Event any

// Pipeline owns the graph state of its elements: every change to connections happens under its lock,
// never from packet goroutines.
type Pipeline struct {
	mu       sync.Mutex
	elements map[*Element]struct{}
	closed   bool
	meters   []*FlowMeter
	checker  *time.Timer // the flow check (flow.go), armed with the first meter
	checking sync.Mutex  // held by a check in progress, which Close waits for
	// latencyStats (latency.go): on, and since when
	latency      atomic.Bool
	latencySince atomic.Int64
}

// NewPipeline makes an empty pipeline.
func NewPipeline() *Pipeline { return &Pipeline{elements: map[*Element]struct{}{}} }

// Close stops the pipeline's background work; its elements must have been released.
func (p *Pipeline) Close() {
	p.mu.Lock()
	p.closed = true
	checker := p.checker
	p.meters = nil
	p.mu.Unlock()
	if checker != nil {
		checker.Stop()
		p.checking.Lock() // a check under way sees closed and does not re-arm
		p.checking.Unlock()
	}
}

// Inputs is implemented by elements that take media: it returns the sink pad for a media type and
// description, or nil when the element takes no such media.
type Inputs interface {
	Input(t Type, pad string) Input
}

// Element is a node of the graph.
type Element struct {
	owner    any
	pipeline *Pipeline
	onEvent  func(Event)
	inputs   Inputs
	encoder  atomic.Pointer[EncoderBitrate]

	// guarded by pipeline.mu
	released bool
	out      []*Connection // connections this element feeds
	in       []*Connection // connections feeding this element
	sources  map[padKey]*Source
	routed   map[Type]*routed // hub ports: what the hub routes out of the port
	formats  map[Type]*Format // forced output formats (SetFormat)
}

type padKey struct {
	t   Type
	pad string
}

// NewElement adds an element to the pipeline. owner is the object that represents it; onEvent receives
// its events and must neither block nor call back into the pipeline.
func (p *Pipeline) NewElement(owner any, onEvent func(Event)) *Element {
	e := &Element{owner: owner, pipeline: p, onEvent: onEvent, sources: map[padKey]*Source{}}
	p.mu.Lock()
	p.elements[e] = struct{}{}
	p.mu.Unlock()
	return e
}

// SetInputs gives the element its sink pads; call it before the element is connected. Elements
// without inputs take no media: connections into them are kept but carry nothing.
func (e *Element) SetInputs(in Inputs) {
	e.pipeline.mu.Lock()
	e.inputs = in
	e.pipeline.mu.Unlock()
}

// Source returns the element's source pad for a media type and description, creating it on first use:
// producers write to it, connections read from it.
func (e *Element) Source(t Type, pad string) *Source {
	e.pipeline.mu.Lock()
	defer e.pipeline.mu.Unlock()
	return e.source(t, pad)
}

// source is Source for callers that hold the pipeline lock.
func (e *Element) source(t Type, pad string) *Source {
	k := padKey{t, pad}
	s := e.sources[k]
	if s == nil {
		s = &Source{Type: t, Pad: pad}
		empty := []Input{}
		s.sinks.Store(&empty)
		s.flow.element, s.flow.typ, s.flow.pad = e, t, pad
		s.latency = &e.pipeline.latency
		e.pipeline.meters = append(e.pipeline.meters, &s.flow)
		e.pipeline.startChecker()
		e.sources[k] = s
		if f := e.formats[t]; f != nil {
			s.setFormat(f)
		}
	}
	return s
}

// Owner is the object that represents the element.
func (e *Element) Owner() any { return e.owner }

// Pipeline returns the pipeline the element belongs to.
func (e *Element) Pipeline() *Pipeline { return e.pipeline }

func (e *Element) emit(ev Event) {
	if e.onEvent != nil {
		e.onEvent(ev)
	}
}

// Emit reports an event of the element.
func (e *Element) Emit(ev Event) { e.emit(ev) }

// Connect links src's pad to sink's pad for one media type. A sink pad takes one source: an existing
// link into it is undone first, and its source is told with Disconnected.
func Connect(src, sink *Element, t Type, srcPad, sinkPad string) error {
	p := src.pipeline
	if sink.pipeline != p {
		return ErrOtherPipeline
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if src.released || sink.released {
		return ErrReleased
	}
	for _, c := range sink.in {
		if c.Type == t && c.SinkPad == sinkPad {
			if c.Source == src && c.SourcePad == srcPad {
				c.Source.emit(Connected{*c})
				return nil
			}
			p.unlink(c)
			c.Source.emit(Disconnected{*c})
			break
		}
	}
	c := &Connection{Source: src, Sink: sink, Type: t, SourcePad: srcPad, SinkPad: sinkPad}
	src.out = append(src.out, c)
	sink.in = append(sink.in, c)
	if in := sink.input(t, sinkPad); in != nil {
		src.source(t, srcPad).link(in)
	}
	src.emit(Connected{*c})
	return nil
}

func (e *Element) input(t Type, pad string) Input {
	if e.inputs == nil {
		return nil
	}
	return e.inputs.Input(t, pad)
}

// Disconnect undoes a link. Like KMS it reports Disconnected even when no such link existed.
func Disconnect(src, sink *Element, t Type, srcPad, sinkPad string) error {
	p := src.pipeline
	if sink.pipeline != p {
		return ErrOtherPipeline
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range src.out {
		if c.Sink == sink && c.Type == t && c.SourcePad == srcPad && c.SinkPad == sinkPad {
			p.unlink(c)
			break
		}
	}
	src.emit(Disconnected{Connection{Source: src, Sink: sink, Type: t, SourcePad: srcPad, SinkPad: sinkPad}})
	return nil
}

// unlink removes c from both ends and stops its packets; the caller holds the pipeline lock.
func (p *Pipeline) unlink(c *Connection) {
	c.Source.out = remove(c.Source.out, c)
	c.Sink.in = remove(c.Sink.in, c)
	if in := c.Sink.input(c.Type, c.SinkPad); in != nil {
		c.Source.source(c.Type, c.SourcePad).unlink(in)
	}
}

func remove(list []*Connection, c *Connection) []*Connection {
	for i, x := range list {
		if x == c {
			return append(list[:i:i], list[i+1:]...)
		}
	}
	return list
}

// Filter selects connections; a nil field matches anything.
type Filter struct {
	Type *Type
	Pad  *string
}

func (f Filter) match(t Type, pad string) bool {
	return (f.Type == nil || *f.Type == t) && (f.Pad == nil || *f.Pad == pad)
}

// SourceConnections lists the connections feeding e, selected by its sink pad.
func (e *Element) SourceConnections(f Filter) []Connection {
	e.pipeline.mu.Lock()
	defer e.pipeline.mu.Unlock()
	var out []Connection
	for _, c := range e.in {
		if f.match(c.Type, c.SinkPad) {
			out = append(out, *c)
		}
	}
	return out
}

// SinkConnections lists the connections e feeds, selected by its source pad.
func (e *Element) SinkConnections(f Filter) []Connection {
	e.pipeline.mu.Lock()
	defer e.pipeline.mu.Unlock()
	var out []Connection
	for _, c := range e.out {
		if f.match(c.Type, c.SourcePad) {
			out = append(out, *c)
		}
	}
	return out
}

// Release disconnects every link of e (reporting each on its source) and removes e from the pipeline.
func (e *Element) Release() {
	p := e.pipeline
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.released {
		return
	}
	// unlink shrinks both lists, and removes a loopback link from both at once.
	for len(e.out) > 0 || len(e.in) > 0 {
		var c *Connection
		if len(e.out) > 0 {
			c = e.out[0]
		} else {
			c = e.in[0]
		}
		p.unlink(c)
		c.Source.emit(Disconnected{*c})
	}
	e.released = true
	delete(p.elements, e)
	p.dropMeters(e)
	for _, s := range e.sources {
		s.SetKeyframeRequester(nil)
		forgetTranscodings(s)
		if s.forcing.Load() != nil {
			go s.stopFormat() // releasing its transcoder takes the pipeline lock
		}
	}
}

// Len is the number of live elements, for tests and stats.
func (p *Pipeline) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.elements)
}

// FlowChanged is raised when media starts or stops crossing a pad: In for a sink pad (media arriving
// at the element), otherwise a source pad (media leaving it).
type FlowChanged struct {
	In      bool
	Type    Type
	Pad     string
	Flowing bool
}

// TranscodingChanged is raised when an element's output starts or stops being transcoded for a sink.
type TranscodingChanged struct {
	Type        Type
	Bin         string
	Transcoding bool
}
