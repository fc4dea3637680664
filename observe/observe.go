// Package observe reads the live state of the server for operations: the pipelines with their
// elements, pads, links, transcoders and counters, as plain values. The inspector serves them as JSON
// and the metrics collector sums them up. Everything is read from counters the media layer keeps
// anyway (the ones getStats reports), at the moment it is asked for.
package observe

import (
	"sort"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/metrics"
	"github.com/kurento-go/kms/objects"
)

// rtpStatser is implemented by endpoints that talk RTP with a peer (WebRtcEndpoint, RtpEndpoint).
type rtpStatser interface {
	RTPStreams() (inbound, outbound []endpoints.RTPStats)
}

// recordingStatser is implemented by RecorderEndpoint.
type recordingStatser interface {
	RecordingStats() (bytes int64, drops uint64, writing bool)
}

// Pipeline is one MediaPipeline as the inspector shows it.
type Pipeline struct {
	ID       string    `json:"id"`
	Sessions []string  `json:"sessions"`
	Elements []Element `json:"elements"`
	Links    []Link    `json:"links"`
}

// Element is one media element with its figures. Counters are totals since the element was created;
// the page turns them into rates.
type Element struct {
	ID          string       `json:"id"`
	Class       string       `json:"class"`
	Parent      string       `json:"parent,omitempty"` // the hub of a hub port
	Pads        []Pad        `json:"pads"`             // source pads
	Transcoders []Transcoder `json:"transcoders,omitempty"`
	Streams     []Stream     `json:"streams,omitempty"` // RTP streams with the peer
	// ConnectionState and MediaState are those of SDP endpoints, "" for other elements.
	ConnectionState string `json:"connectionState,omitempty"`
	MediaState      string `json:"mediaState,omitempty"`
	BytesIn         uint64 `json:"bytesIn"`  // media arriving at its sink pads from the pipeline
	BytesOut        uint64 `json:"bytesOut"` // media leaving its source pads
	FlowingIn       bool   `json:"flowingIn"`
	FlowingOut      bool   `json:"flowingOut"`
	RecordedBytes   int64  `json:"recordedBytes,omitempty"`
	DroppedForLag   uint64 `json:"droppedForLag,omitempty"`
	Recording       bool   `json:"recording,omitempty"`
	LastError       string `json:"lastError,omitempty"`

	figures *metrics.Figures // per-media RTP counters, for metrics
}

// Pad is a source pad.
type Pad struct {
	Media   string `json:"media"`
	Name    string `json:"name"`
	Codec   string `json:"codec,omitempty"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	Flowing bool   `json:"flowing"`
}

// Link is a connection between two elements of the pipeline.
type Link struct {
	Source    string `json:"source"`
	Sink      string `json:"sink"`
	Media     string `json:"media"`
	SourcePad string `json:"sourcePad"`
	SinkPad   string `json:"sinkPad"`
	Codec     string `json:"codec,omitempty"`
}

// Transcoder is a transcoder converting one of the element's source pads.
type Transcoder struct {
	Media string `json:"media"`
	From  string `json:"from"`
	To    string `json:"to"`
	Bin   string `json:"bin"`
}

// Stream is one RTP stream between an endpoint and its peer, as getStats reports it.
type Stream struct {
	Direction   string  `json:"direction"` // "in" (from the peer) or "out"
	Media       string  `json:"media"`
	Codec       string  `json:"codec,omitempty"`
	Packets     uint64  `json:"packets"`
	Bytes       uint64  `json:"bytes"`
	PacketsLost int64   `json:"packetsLost"`
	NACKs       uint64  `json:"nacks"`
	PLIs        uint64  `json:"plis"`
	RTT         float64 `json:"rtt,omitempty"`    // seconds, outbound
	Jitter      float64 `json:"jitter,omitempty"` // seconds, inbound
	Retransmits uint64  `json:"retransmits,omitempty"`
}

// Pipelines reads every live pipeline.
func Pipelines(r *objects.Registry) []Pipeline {
	var out []Pipeline
	for _, p := range r.Pipelines() {
		out = append(out, ReadPipeline(r, p))
	}
	return out
}

// ReadPipeline reads one pipeline: its elements (hub ports included) and the links between them.
func ReadPipeline(r *objects.Registry, p objects.Object) Pipeline {
	out := Pipeline{ID: p.ID(), Sessions: r.SessionsOf(p), Elements: []Element{}, Links: []Link{}}
	if out.Sessions == nil {
		out.Sessions = []string{}
	}
	transcoders := transcodersBySource()
	var walk func(parent objects.Object)
	walk = func(parent objects.Object) {
		for _, o := range r.Children(parent) {
			if e := objects.AsElement(o); e != nil {
				el := readElement(o, e, transcoders)
				if parent != p {
					el.Parent = parent.ID()
				}
				out.Elements = append(out.Elements, el)
				out.Links = append(out.Links, links(e)...)
			}
			walk(o)
		}
	}
	walk(p)
	return out
}

func transcodersBySource() map[*media.Source][]media.TranscoderInfo {
	out := map[*media.Source][]media.TranscoderInfo{}
	for _, t := range media.Transcoders() {
		out[t.From] = append(out[t.From], t)
	}
	return out
}

func readElement(o objects.Object, e *objects.Element, transcoders map[*media.Source][]media.TranscoderInfo) Element {
	el := Element{ID: o.ID(), Class: e.Class().Name, Pads: []Pad{}, LastError: objects.LastError(o)}
	for _, s := range e.Media.Sources() {
		packets, bytes := s.Counters()
		pad := Pad{Media: mediaName(s.Type), Name: s.Pad, Packets: packets, Bytes: bytes, Flowing: s.Flowing()}
		if c := s.Codec(); c != nil {
			pad.Codec = media.CodecName(c.MimeType)
		}
		el.Pads = append(el.Pads, pad)
		el.BytesOut += bytes
		el.FlowingOut = el.FlowingOut || pad.Flowing
		for _, t := range transcoders[s] {
			el.Transcoders = append(el.Transcoders, Transcoder{Media: pad.Media, From: pad.Codec,
				To: media.CodecName(t.To), Bin: t.Bin})
		}
	}
	for _, c := range e.Media.SourceConnections(media.Filter{}) {
		if src := padOf(c.Source, c.Type, c.SourcePad); src != nil {
			_, bytes := src.Counters()
			el.BytesIn += bytes
			el.FlowingIn = el.FlowingIn || src.Flowing()
		}
	}
	el.ConnectionState, _ = e.Props.Get(o, "connectionState").(string)
	el.MediaState, _ = e.Props.Get(o, "mediaState").(string)
	if s, ok := o.(rtpStatser); ok {
		el.Streams, el.figures = rtpStreams(s.RTPStreams())
	}
	if s, ok := o.(recordingStatser); ok {
		el.RecordedBytes, el.DroppedForLag, el.Recording = s.RecordingStats()
	}
	return el
}

// padOf finds an existing source pad of an element, without creating it.
func padOf(e *media.Element, t media.Type, pad string) *media.Source {
	for _, s := range e.Sources() {
		if s.Type == t && s.Pad == pad {
			return s
		}
	}
	return nil
}

func links(e *objects.Element) []Link {
	var out []Link
	for _, c := range e.Media.SinkConnections(media.Filter{}) {
		src, ok1 := c.Source.Owner().(objects.Object)
		sink, ok2 := c.Sink.Owner().(objects.Object)
		if !ok1 || !ok2 {
			continue
		}
		l := Link{Source: src.ID(), Sink: sink.ID(), Media: mediaName(c.Type), SourcePad: c.SourcePad, SinkPad: c.SinkPad}
		if s := padOf(c.Source, c.Type, c.SourcePad); s != nil {
			if codec := s.Codec(); codec != nil {
				l.Codec = media.CodecName(codec.MimeType)
			}
		}
		out = append(out, l)
	}
	return out
}

func mediaName(t media.Type) string {
	switch t {
	case media.Audio:
		return "audio"
	case media.Video:
		return "video"
	}
	return "data"
}

func rtpStreams(inbound, outbound []endpoints.RTPStats) ([]Stream, *metrics.Figures) {
	f := &metrics.Figures{}
	var out []Stream
	for _, s := range inbound {
		out = append(out, Stream{Direction: "in", Media: s.Kind, Codec: media.CodecName(s.Codec), Packets: s.Packets,
			Bytes: s.Bytes, PacketsLost: s.PacketsLost, NACKs: s.NACKs, PLIs: s.PLIs, Jitter: s.Jitter,
			Retransmits: s.Retransmitted})
		addInbound(f, s)
	}
	for _, s := range outbound {
		out = append(out, Stream{Direction: "out", Media: s.Kind, Codec: media.CodecName(s.Codec), Packets: s.Packets,
			Bytes: s.Bytes, PacketsLost: s.PacketsLost, NACKs: s.NACKs, PLIs: s.PLIs + s.FIRs, RTT: s.RoundTripTime,
			Retransmits: s.Retransmitted})
		addOutbound(f, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Direction != out[j].Direction {
			return out[i].Direction < out[j].Direction
		}
		return out[i].Media < out[j].Media
	})
	return out, f
}
