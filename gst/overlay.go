package gst

import (
	"time"

	"github.com/kurento-go/kms/gst/native"
	wp "github.com/kurento-go/kms/gst/workerproto"
)

// Overlay draws images into the video frames leaving an element of a pipeline. The frames must be
// packed 8-bit RGB (RGB, BGR, RGBx, BGRA...): put the element after a capsfilter or an element that
// only takes such formats (facedetect). Drawing happens on the streaming thread, in C.
type Overlay struct {
	nat *native.Overlay
	p   *Pipeline
	id  uint32
}

// Overlay starts drawing into the frames leaving the named element's src pad (none until Set).
// It lives until the pipeline is closed.
func (p *Pipeline) Overlay(element string) (*Overlay, error) {
	if p.nat != nil {
		o, err := p.nat.Overlay(element)
		if err != nil {
			return nil, err
		}
		return &Overlay{nat: o}, nil
	}
	id := p.w.handle()
	if _, err := p.call(wp.Request{Op: wp.OpOverlay, Name: element, Handle: id}); err != nil {
		return nil, err
	}
	return &Overlay{p: p, id: id}, nil
}

// Set replaces the images drawn, in drawing order (later ones on top). An image with a zero width
// or height is not drawn, as in KMS.
func (o *Overlay) Set(images []OverlayImage) error {
	if o.nat != nil {
		return o.nat.Set(images)
	}
	_, err := o.p.call(wp.Request{Op: wp.OpOverlaySet, Handle: o.id, Images: images})
	return err
}

// FacesFrom makes face images follow the faces the named detector element found (see native).
func (o *Overlay) FacesFrom(element string) error {
	if o.nat != nil {
		return o.nat.FacesFrom(element)
	}
	_, err := o.p.call(wp.Request{Op: wp.OpFacesFrom, Handle: o.id, Name: element})
	return err
}

// Detections is how many frames the FacesFrom detector has looked at.
func (o *Overlay) Detections() uint64 {
	if o.nat != nil {
		return o.nat.Detections()
	}
	r, _ := o.p.call(wp.Request{Op: wp.OpDetections, Handle: o.id})
	return uint64(r.Num)
}

// Drawn is how many times an image has been drawn into a frame so far.
func (o *Overlay) Drawn() uint64 {
	if o.nat != nil {
		return o.nat.Drawn()
	}
	r, _ := o.p.call(wp.Request{Op: wp.OpDrawn, Handle: o.id})
	return uint64(r.Num)
}

// SetState changes the state of a started pipeline (pause, resume). A change GStreamer refuses is an
// error; asynchronous failures arrive as Error messages.
func (p *Pipeline) SetState(s State) error {
	if p.nat != nil {
		return p.nat.SetState(s)
	}
	_, err := p.call(wp.Request{Op: wp.OpSetState, Num: int64(s)})
	return err
}

// Position is the playback position (stream time) of the pipeline.
func (p *Pipeline) Position() (time.Duration, error) {
	if p.nat != nil {
		return p.nat.Position()
	}
	r, err := p.call(wp.Request{Op: wp.OpPosition})
	return time.Duration(r.Num), err
}

// Duration is the duration of the media played, when known.
func (p *Pipeline) Duration() (time.Duration, error) {
	if p.nat != nil {
		return p.nat.Duration()
	}
	r, err := p.call(wp.Request{Op: wp.OpDuration})
	return time.Duration(r.Num), err
}

// Seeking tells whether the media can be seeked in time, and the seekable range (end is -1 when
// unknown).
func (p *Pipeline) Seeking() (seekable bool, start, end time.Duration, err error) {
	if p.nat != nil {
		return p.nat.Seeking()
	}
	r, err := p.call(wp.Request{Op: wp.OpSeeking})
	return r.Flag, time.Duration(r.Num), time.Duration(r.Num2), err
}

// Seek makes a flushing seek to pos: accurate (decoders drop what comes before pos) or to the
// keyframe before it; playing tells whether the pipeline is PLAYING (see native).
func (p *Pipeline) Seek(pos time.Duration, accurate, playing bool) error {
	if p.nat != nil {
		return p.nat.Seek(pos, accurate, playing)
	}
	_, err := p.call(wp.Request{Op: wp.OpSeek, Num: int64(pos), Flag: accurate, Flag2: playing})
	return err
}

// Dot is the pipeline's graph in Graphviz DOT at the given GstDebugGraphDetails flags; "" once
// closed.
func (p *Pipeline) Dot(details uint) string {
	if p.nat != nil {
		return p.nat.Dot(details)
	}
	r, _ := p.call(wp.Request{Op: wp.OpDot, Num: int64(details)})
	return r.Str
}

// WatchSink makes the named sink report the stream events reaching it as element messages from it:
// MessageSinkCaps when its caps are set and MessageSinkEOS at end of stream. Call it before Start.
func (p *Pipeline) WatchSink(name string) error {
	if p.nat != nil {
		return p.nat.WatchSink(name)
	}
	_, err := p.call(wp.Request{Op: wp.OpWatchSink, Name: name})
	return err
}

// RTSPSettings configures the rtspsrc the named uridecodebin creates for an rtsp:// URI: jitter
// buffer latency, drop-on-latency, and the client UDP port range ("min-max", "" for any).
func (p *Pipeline) RTSPSettings(uridecodebin string, latency time.Duration, portRange string) error {
	if p.nat != nil {
		return p.nat.RTSPSettings(uridecodebin, latency, portRange)
	}
	_, err := p.call(wp.Request{Op: wp.OpRTSPSettings, Name: uridecodebin, Num: int64(latency), Value: portRange})
	return err
}
