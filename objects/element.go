package objects

import (
	"fmt"
	"sync"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/dotgraph"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
)

// Pipeline is a MediaPipeline: the container of elements and owner of their graph.
type Pipeline struct {
	*Base
	Graph *media.Pipeline
	props *Properties
}

func newPipeline(b *Base, _ Args) (Object, error) {
	return &Pipeline{Base: b, Graph: media.NewPipeline(), props: NewProperties(map[string]any{"latencyStats": false})}, nil
}

var pipelineOps = dotOps(func(o Object, d dotgraph.Details) string { return o.(*Pipeline).GstreamerDot(d) })

// Close stops the pipeline's media work; the registry has released its elements before.
func (p *Pipeline) Close() { p.Graph.Close() }

// Element is the object side of every MediaElement: the media graph node, the connection API, flow
// state and the settings properties. Concrete element classes embed it.
type Element struct {
	*Base
	Media *media.Element
	Props *Properties
	// OnOtherEvent receives the media events of the element's own kind (ICE, recording, ...), which
	// its class turns into Kurento events. Set it before the element produces media.
	OnOtherEvent func(media.Event)

	flowMu      sync.Mutex
	flowIn      map[flowKey]bool
	flowOut     map[flowKey]bool
	transcoding map[flowKey]bool
}

type flowKey struct {
	t   media.Type
	pad string
}

// elementHolder is implemented by every object that embeds *Element.
type elementHolder interface{ element() *Element }

func (e *Element) element() *Element { return e }

// NewElement makes the element side of a new object created in a pipeline (or in a hub, whose
// pipeline it shares). Its settings properties start from the registry's defaults for its classes,
// overridden by initial.
func NewElement(b *Base, initial map[string]any) *Element {
	e := &Element{
		Base:        b,
		Props:       NewProperties(b.reg.defaultsFor(b.class)),
		flowIn:      map[flowKey]bool{},
		flowOut:     map[flowKey]bool{},
		transcoding: map[flowKey]bool{},
	}
	for k, v := range initial {
		e.Props.values[k] = v
	}
	e.Media = b.pipeline.(*Pipeline).Graph.NewElement(e, e.onMediaEvent)
	e.updateEncoderBitrate()
	return e
}

// updateEncoderBitrate gives the media element its encoder bitrate properties.
func (e *Element) updateEncoderBitrate() {
	prop := func(name string) int { v, _ := e.Props.Get(e, name).(int); return v }
	e.Media.SetEncoderBitrate(media.EncoderBitrate{
		Target: prop("encoderBitrate"), Min: prop("minEncoderBitrate"), Max: prop("maxEncoderBitrate")})
}

// Close releases the element from the graph, disconnecting it.
func (e *Element) Close() { e.Media.Release() }

func (e *Element) onMediaEvent(ev media.Event) {
	switch ev := ev.(type) {
	case media.Connected:
		e.Emit("ElementConnected", connectionFields(ev.Connection))
	case media.Disconnected:
		e.Emit("ElementDisconnected", connectionFields(ev.Connection))
	case media.FlowChanged:
		e.flowMu.Lock()
		states := e.flowOut
		event := "MediaFlowOutStateChanged"
		if ev.In {
			states, event = e.flowIn, "MediaFlowInStateChanged"
		}
		states[flowKey{ev.Type, ev.Pad}] = ev.Flowing
		e.flowMu.Unlock()
		e.Emit(event, map[string]any{"state": flowState(ev.Flowing), "padName": ev.Pad, "mediaType": ev.Type.String()})
	case media.TranscodingChanged:
		e.flowMu.Lock()
		e.transcoding[flowKey{ev.Type, ev.Bin}] = ev.Transcoding
		e.flowMu.Unlock()
		state := "NOT_TRANSCODING"
		if ev.Transcoding {
			state = "TRANSCODING"
		}
		e.Emit("MediaTranscodingStateChanged", map[string]any{"state": state, "binName": ev.Bin, "mediaType": ev.Type.String()})
	case media.FormatFailed:
		// What GStreamer reports when caps do not negotiate: a stream error, nothing flows out.
		e.Emit("Error", map[string]any{
			"description": fmt.Sprintf("Internal data stream error: cannot produce the %s format %s from %s (%v)",
				ev.Type, ev.To, ev.From, ev.Err),
			"errorCode": 1, // GST_STREAM_ERROR_FAILED, as for not-negotiated
			"type":      "UNEXPECTED_ELEMENT_ERROR",
		})
	case media.ResolutionExceeded:
		e.Emit("Error", map[string]any{
			"description": fmt.Sprintf("%s keyframe announces %dx%d, above the maximum %dx%d (maxVideoResolution): dropped up to the next keyframe of an allowed size",
				ev.MimeType, ev.Width, ev.Height, ev.MaxWidth, ev.MaxHeight),
			"errorCode": 1, // GST_STREAM_ERROR_FAILED
			"type":      "MEDIA_RESOLUTION_EXCEEDED",
		})
	case media.ErrorEvent:
		e.Emit("Error", map[string]any{"description": ev.Description, "errorCode": ev.Code, "type": ev.Type})
	default:
		if e.OnOtherEvent != nil {
			e.OnOtherEvent(ev)
		}
	}
}

func flowState(flowing bool) string {
	if flowing {
		return "FLOWING"
	}
	return "NOT_FLOWING"
}

func connectionFields(c media.Connection) map[string]any {
	return map[string]any{
		"sink":                   c.Sink.Owner(),
		"mediaType":              c.Type.String(),
		"sourceMediaDescription": c.SourcePad,
		"sinkMediaDescription":   c.SinkPad,
	}
}

func connectionData(cs []media.Connection) []any {
	out := make([]any, len(cs))
	for i, c := range cs {
		out[i] = &api.Register{Type: "ElementConnectionData", Fields: map[string]any{
			"source":            c.Source.Owner(),
			"sink":              c.Sink.Owner(),
			"type":              c.Type.String(),
			"sourceDescription": c.SourcePad,
			"sinkDescription":   c.SinkPad,
		}}
	}
	return out
}

func elementOf(o Object) *Element { return o.(elementHolder).element() }

// typesOf is the media types a connect or disconnect applies to.
func typesOf(a Args) []media.Type {
	if s := a.String("mediaType"); s != "" {
		t, _ := media.ParseType(s) // already checked against the enum
		return []media.Type{t}
	}
	return media.AllTypes
}

func padArg(a Args, name string) string {
	if s := a.OptString(name); s != nil {
		return *s
	}
	return media.DefaultPad
}

func connectionFilter(a Args) media.Filter {
	var f media.Filter
	if s := a.String("mediaType"); s != "" {
		t, _ := media.ParseType(s)
		f.Type = &t
	}
	f.Pad = a.OptString("description")
	return f
}

func linkOp(link func(src, sink *media.Element, t media.Type, srcPad, sinkPad string) error) Handler {
	return func(o Object, a Args) (any, error) {
		src := elementOf(o)
		sinkObj, ok := a.Object("sink").(elementHolder)
		if !ok {
			return nil, kerr.New(kerr.MarshallError, "'sink' parameter should be a MediaElement")
		}
		sink := sinkObj.element()
		srcPad, sinkPad := padArg(a, "sourceMediaDescription"), padArg(a, "sinkMediaDescription")
		for _, t := range typesOf(a) {
			if err := link(src.Media, sink.Media, t, srcPad, sinkPad); err != nil {
				return nil, kerr.New(kerr.ConnectError, "%v", err)
			}
		}
		return nil, nil
	}
}

func flowQuery(in bool, padParam string) Handler {
	what := "MediaFlowingOut"
	if in {
		what = "MediaFlowingIn"
	}
	return func(o Object, a Args) (any, error) {
		t, _ := media.ParseType(a.String("mediaType"))
		if t == media.Data {
			return nil, kerr.New(kerr.IllegalParam, "Media type DATA is not supported for %s", what)
		}
		e := elementOf(o)
		e.flowMu.Lock()
		defer e.flowMu.Unlock()
		states := e.flowOut
		if in {
			states = e.flowIn
		}
		return states[flowKey{t, padArg(a, padParam)}], nil
	}
}

var mediaElementOps = map[string]Handler{
	"connect":    linkOp(media.Connect),
	"disconnect": linkOp(media.Disconnect),
	"getSourceConnections": func(o Object, a Args) (any, error) {
		return connectionData(elementOf(o).Media.SourceConnections(connectionFilter(a))), nil
	},
	"getSinkConnections": func(o Object, a Args) (any, error) {
		return connectionData(elementOf(o).Media.SinkConnections(connectionFilter(a))), nil
	},
	"setAudioFormat":    setFormatOp(media.Audio),
	"setVideoFormat":    setFormatOp(media.Video),
	"isMediaFlowingIn":  flowQuery(true, "sinkMediaDescription"),
	"isMediaFlowingOut": flowQuery(false, "sourceMediaDescription"),
	"isMediaTranscoding": func(o Object, a Args) (any, error) {
		t, _ := media.ParseType(a.String("mediaType"))
		if t == media.Data {
			return nil, kerr.New(kerr.IllegalParam, "Media type DATA is not supported for MediaTranscoding")
		}
		e := elementOf(o)
		e.flowMu.Lock()
		defer e.flowMu.Unlock()
		return e.transcoding[flowKey{t, padArg(a, "binName")}], nil
	},
	"getStats": func(o Object, _ Args) (any, error) {
		id, own := OwnStats(o)
		return map[string]any{id: own}, nil
	},
}

// PassThrough is an element that forwards its input unchanged.
type PassThrough struct{ *Element }

func newPassThrough(b *Base, _ Args) (Object, error) {
	p := &PassThrough{Element: NewElement(b, nil)}
	p.Media.PassThrough()
	return p, nil
}

// Close releases the element.
func (p *PassThrough) Close() { p.Element.Close() }
