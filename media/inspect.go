package media

import (
	"sort"
	"strings"
)

// Read-only views of the graph for operations (metrics, the inspector). None of them is meant for
// the packet path.

// Sources lists the element's source pads, by media type then pad name.
func (e *Element) Sources() []*Source {
	e.pipeline.mu.Lock()
	out := make([]*Source, 0, len(e.sources))
	for _, s := range e.sources {
		out = append(out, s)
	}
	e.pipeline.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Type != out[j].Type {
			return out[i].Type < out[j].Type
		}
		return out[i].Pad < out[j].Pad
	})
	return out
}

// Flowing tells whether media left the pad recently (what MediaFlowOutStateChanged reports).
func (s *Source) Flowing() bool { return s.flow.Flowing() }

// Element is the element the source pad belongs to; nil for a transcoder's output.
func (s *Source) Element() *Element { return s.flow.element }

// TranscoderInfo is one running transcoder: the source pad it converts, the codec it converts to and
// the pad it writes.
type TranscoderInfo struct {
	From   *Source
	To     string // mime type, lower case ("video/h264")
	Output *Source
	Bin    string
	// Transcoder does the work (getGstreamerDot draws its GStreamer pipeline).
	Transcoder Transcoder
}

// Transcoders lists the transcoders running in the process.
func Transcoders() []TranscoderInfo {
	transcodeMu.Lock()
	defer transcodeMu.Unlock()
	var out []TranscoderInfo
	for k, t := range transcodings {
		select {
		case <-t.ready:
		default:
			continue // still starting: t's fields are not set yet
		}
		if t.err == nil && t.tr != nil {
			out = append(out, TranscoderInfo{From: k.src, To: k.mime, Output: t.out, Bin: t.bin, Transcoder: t.tr})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bin < out[j].Bin })
	return out
}

// CodecName is the codec part of a mime type ("video/VP8" -> "VP8"), upper case; "" when unknown.
func CodecName(mime string) string {
	_, name, _ := strings.Cut(mime, "/")
	return strings.ToUpper(name)
}
