package native

/*
#include <stdlib.h>
#include "bridge.h"
#include "playback.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"
)

// State is a GStreamer element state, for pipelines driven beyond Start (players).
type State int

// The states a playing pipeline moves between.
const (
	StateNull    State = State(C.GST_STATE_NULL)
	StateReady   State = State(C.GST_STATE_READY)
	StatePaused  State = State(C.GST_STATE_PAUSED)
	StatePlaying State = State(C.GST_STATE_PLAYING)
)

// Names of the element messages a watched sink posts (see WatchSink).
const (
	MessageSinkCaps = "kms-sink-caps" // Fields["caps"] holds the caps as text
	MessageSinkEOS  = "kms-sink-eos"
)

// ErrQuery is returned when the pipeline cannot answer a query (not prerolled, no such information).
var ErrQuery = errors.New("gst: query not answered")

// SetState changes the state of a started pipeline (pause, resume). A change GStreamer refuses is an
// error; asynchronous failures arrive as Error messages.
func (p *Pipeline) SetState(s State) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if C.kbp_set_state(p.ptr, C.GstState(s)) == C.GST_STATE_CHANGE_FAILURE {
		return fmt.Errorf("gst: pipeline refused state %d", int(s))
	}
	return nil
}

// Position is the playback position (stream time) of the pipeline.
func (p *Pipeline) Position() (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	var pos C.gint64
	if C.kbp_query_position(p.ptr, &pos) == 0 || pos < 0 {
		return 0, ErrQuery
	}
	return time.Duration(pos), nil
}

// Duration is the duration of the media played, when known.
func (p *Pipeline) Duration() (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	var d C.gint64
	if C.kbp_query_duration(p.ptr, &d) == 0 || d < 0 {
		return 0, ErrQuery
	}
	return time.Duration(d), nil
}

// Seeking tells whether the media can be seeked in time, and the seekable range (end is -1 when
// unknown).
func (p *Pipeline) Seeking() (seekable bool, start, end time.Duration, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false, 0, 0, ErrClosed
	}
	var s C.int
	var a, b C.gint64
	if C.kbp_query_seeking(p.ptr, &s, &a, &b) == 0 {
		return false, 0, 0, ErrQuery
	}
	return s != 0, time.Duration(a), time.Duration(b), nil
}

// Seek makes a flushing seek to pos: accurate (decoders drop what comes before pos) or to the
// keyframe before it. playing tells whether the pipeline is PLAYING: it is paused around the seek and
// its running time restarts, so that the sinks pace the media from the new position.
func (p *Pipeline) Seek(pos time.Duration, accurate, playing bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if C.kbp_seek(p.ptr, C.gint64(pos), playFlag(accurate), playFlag(playing)) == 0 {
		return fmt.Errorf("gst: seek to %v refused", pos)
	}
	return nil
}

func playFlag(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Dot is the pipeline's graph in Graphviz DOT (gst_debug_bin_to_dot_data) at the given
// GstDebugGraphDetails flags; "" once closed.
func (p *Pipeline) Dot(details uint) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ""
	}
	s := C.kbp_dot(p.ptr, C.guint(details))
	if s == nil {
		return ""
	}
	defer C.g_free(C.gpointer(s))
	return C.GoString(s)
}

// WatchSink makes the named sink report the stream events reaching it as element messages from it:
// MessageSinkCaps when its caps are set (its branch is linked and negotiated) and MessageSinkEOS at
// end of stream. A pipeline whose branches are linked dynamically uses them to know which branches
// carry media and when all of them ended (the pipeline's own EOS never comes while a branch is
// unlinked). Call it before Start.
func (p *Pipeline) WatchSink(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.element(name)
	if err != nil {
		return err
	}
	defer C.gst_object_unref(C.gpointer(e))
	if C.kbp_watch_sink(e) == 0 {
		return fmt.Errorf("gst: %s has no sink pad", name)
	}
	return nil
}

// RTSPSettings configures the rtspsrc the named uridecodebin creates for an rtsp:// URI: jitter
// buffer latency, drop-on-latency, and the client UDP port range ("min-max", "" for any).
func (p *Pipeline) RTSPSettings(uridecodebin string, latency time.Duration, portRange string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.element(uridecodebin)
	if err != nil {
		return err
	}
	defer C.gst_object_unref(C.gpointer(e))
	cr := C.CString(portRange)
	defer C.free(unsafe.Pointer(cr))
	if C.kbp_rtsp_settings(e, C.guint(latency/time.Millisecond), cr) == 0 {
		return fmt.Errorf("gst: %s has no source-setup signal", uridecodebin)
	}
	return nil
}

// EndOfStream tells the appsrc that no more data comes.
func (s *AppSrc) EndOfStream() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return ErrClosed
	}
	if C.kbp_appsrc_eos(s.ptr) == 0 {
		return ErrFlow
	}
	return nil
}

// Codes of the stream and resource domains that tell a bad medium or URI apart.
const (
	StreamErrorTypeNotFound  = int(C.GST_STREAM_ERROR_TYPE_NOT_FOUND)
	StreamErrorWrongType     = int(C.GST_STREAM_ERROR_WRONG_TYPE)
	StreamErrorCodecNotFound = int(C.GST_STREAM_ERROR_CODEC_NOT_FOUND)
	StreamErrorDemux         = int(C.GST_STREAM_ERROR_DEMUX)
	StreamErrorFormat        = int(C.GST_STREAM_ERROR_FORMAT)
	ResourceErrorNotFound    = int(C.GST_RESOURCE_ERROR_NOT_FOUND)
	ResourceErrorRead        = int(C.GST_RESOURCE_ERROR_READ)
)
