package processing

import (
	"fmt"
	"sync"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// The restart budget of one element (--gst-worker-restart): at most MaxRestarts rebuilds within
// RestartWindow. A worker that keeps dying (a plugin that crashes on every stream, a poisoned input)
// then stays dead: the element raises WORKER_CRASHED only, as without the option, instead of
// spinning a new worker every second.
const (
	MaxRestarts   = 3
	RestartWindow = time.Minute
)

// Restarts decides, for one element, whether its GStreamer pipeline is rebuilt in a new worker after
// its worker died. The zero value is ready.
type Restarts struct {
	mu sync.Mutex
	at []time.Time // the restarts granted within the window
}

// Allow tells whether the element whose worker died with e is rebuilt, and if not, why ("" when the
// option is off, which needs no saying). Only crashes are restarted (errorCode 1): a kill above the
// memory or CPU limit (errorCode 2) would come again with the same input.
func (r *Restarts) Allow(e *gst.Error) (ok bool, why string) {
	return r.allow(gst.RestartWorkers(), e, time.Now())
}

func (r *Restarts) allow(enabled bool, e *gst.Error, now time.Time) (bool, string) {
	switch {
	case !enabled:
		return false, ""
	case e.Code != 1:
		return false, "a worker killed by its limit is not restarted"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.at[:0]
	for _, t := range r.at {
		if now.Sub(t) < RestartWindow {
			kept = append(kept, t)
		}
	}
	r.at = kept
	if len(r.at) >= MaxRestarts {
		return false, fmt.Sprintf("not restarted again: %d restarts within %v", len(r.at), RestartWindow)
	}
	r.at = append(r.at, now)
	return true, ""
}

// CrashedEvent is the WORKER_CRASHED Error event of what (the "filter", "mixer"...) after e; why,
// if set, tells that no restart follows.
func CrashedEvent(e *gst.Error, what, why string) media.ErrorEvent {
	desc := describeError(e, what)
	if why != "" {
		desc += " (" + why + ")"
	}
	return media.ErrorEvent{Type: WorkerCrashed, Code: e.Code, Description: desc}
}

// restarts counts the pipelines rebuilt in a new worker, by kind of element (kms_gst_worker_restarts_total).
var restarts struct {
	mu sync.Mutex
	n  map[string]uint64
}

// WorkerRestarts are the elements rebuilt in a new worker so far, by kind ("filter": GStreamerFilter,
// the overlays, ZBar, VideoSampler; "mixer": Composite, AlphaBlending; "player": PlayerEndpoint).
func WorkerRestarts() map[string]uint64 {
	restarts.mu.Lock()
	defer restarts.mu.Unlock()
	out := make(map[string]uint64, len(restarts.n))
	for k, v := range restarts.n {
		out[k] = v
	}
	return out
}

// RestartedEvent is the WORKER_RESTARTED Error event raised once what has been rebuilt in a new
// worker after e; errorCode is the crash's. Every rebuild raises it once, so the restart is counted
// here.
func RestartedEvent(e *gst.Error, what string) media.ErrorEvent {
	restarts.mu.Lock()
	if restarts.n == nil {
		restarts.n = map[string]uint64{}
	}
	restarts.n[what]++
	restarts.mu.Unlock()
	return media.ErrorEvent{Type: WorkerRestarted, Code: e.Code,
		Description: "the " + what + "'s GStreamer pipeline was rebuilt in a new worker after: " + e.Message}
}

// continuousOutput keeps an output one RTP stream across pipeline rebuilds: its own SSRC and
// sequence, and timestamps that go on from the last packet of the previous pipeline (a new encoder
// starts its own numbering, which a sender would take for late packets).
type continuousOutput struct {
	mu     sync.Mutex // the sink goroutines of the old and the new pipeline overlap in a rebuild
	src    *media.Source
	ssrc   uint32
	seq    uint16
	run    any // the pipeline run the last packet came from
	offset uint32
	lastTS uint32
	step   uint32
}

// write sends p, made by the pipeline run, on the output's source.
func (o *continuousOutput) write(run any, p *rtp.Packet) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.run != run {
		o.run = run
		o.offset = o.lastTS + o.step - p.Timestamp
	}
	p.Timestamp += o.offset
	if d := p.Timestamp - o.lastTS; d > 0 && d < 90000 {
		o.step = d
	}
	p.SSRC, p.SequenceNumber = o.ssrc, o.seq
	o.seq++
	o.lastTS = p.Timestamp
	o.src.WriteRTP(p)
}
