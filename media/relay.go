package media

import (
	"sync/atomic"

	"github.com/pion/rtp"
)

// relay is a sink pad that re-emits what it receives on the source pad of the same type and
// description of its element, as a PassThrough does. Keyframe requests go back the same way.
type relay struct {
	out   *Source
	cur   atomic.Pointer[Source]
	meter *FlowMeter
}

func (r *relay) WriteRTP(src *Source, p *rtp.Packet) {
	if r.cur.Load() != src {
		return
	}
	r.meter.MarkFrom(src)
	if c := src.Codec(); r.out.producedCodec() != c {
		r.out.SetCodec(c)
	}
	r.out.WriteRTP(p)
}

// EndOfStream passes the end of the media on.
func (r *relay) EndOfStream(src *Source) {
	if r.cur.Load() == src {
		r.out.EndOfStream()
	}
}

// TargetBitrate passes the opinion of what the pass-through feeds back to its source.
func (r *relay) TargetBitrate() uint64 { return r.out.SinkBitrate() }

func (r *relay) SetSource(src *Source) {
	r.cur.Store(src)
	r.out.upstream.Store(src)
	if src == nil {
		r.out.SetKeyframeRequester(nil)
		return
	}
	r.out.SetKeyframeRequester(src.RequestKeyframe)
	if r.out.Sinks() > 0 {
		src.RequestKeyframe()
	}
}

// relays are the sink pads of a pass-through element, made on demand.
type relays struct {
	e    *Element
	pads map[padKey]*relay // guarded by the pipeline lock
}

// Input is called under the pipeline lock.
func (rs *relays) Input(t Type, pad string) Input {
	k := padKey{t, pad}
	r := rs.pads[k]
	if r == nil {
		r = &relay{out: rs.e.source(t, pad), meter: rs.e.newInputMeterLocked(t, pad)}
		rs.pads[k] = r
	}
	return r
}

// PassThrough makes e forward the media of each sink pad to its source pad of the same type and
// description.
func (e *Element) PassThrough() {
	e.SetInputs(&relays{e: e, pads: map[padKey]*relay{}})
}
