package media

import (
	"sync"
	"sync/atomic"
	"time"
)

// FlowCheckPeriod is how often the pipeline looks for pads whose media stopped, as KMS does: a pad is
// NOT_FLOWING when no packet crossed it during a whole period, so 2 to 4 s after the media stops.
var FlowCheckPeriod = 2 * time.Second

// FlowMeter detects whether media crosses a pad. Mark is called per packet and costs one atomic load
// in the steady state; the FLOWING event is raised on the first packet, NOT_FLOWING by the pipeline's
// periodic check.
type FlowMeter struct {
	element *Element
	in      bool
	typ     Type
	pad     string
	seen    atomic.Bool // a packet passed since the last check
	flowing atomic.Bool
	// mu orders the transitions with their events: a NOT_FLOWING raced by the next packet's
	// FLOWING must not reach the application after it. Taken on transitions only.
	mu sync.Mutex
	// the latency averages of a sink pad (latency.go)
	input, e2e latencyAvg
}

// NewInputMeter makes the meter of a sink pad of e (media arriving at the element from the pipeline);
// source pads have theirs built in.
func (e *Element) NewInputMeter(t Type, pad string) *FlowMeter {
	e.pipeline.mu.Lock()
	defer e.pipeline.mu.Unlock()
	return e.newInputMeterLocked(t, pad)
}

func (e *Element) newInputMeterLocked(t Type, pad string) *FlowMeter {
	f := &FlowMeter{element: e, in: true, typ: t, pad: pad}
	e.pipeline.meters = append(e.pipeline.meters, f)
	e.pipeline.startChecker()
	return f
}

// Mark records that a packet crossed the pad.
func (f *FlowMeter) Mark() {
	if f.seen.Load() {
		return
	}
	f.seen.Store(true)
	if f.typ == Data || f.flowing.Load() {
		return
	}
	f.mu.Lock()
	if f.flowing.CompareAndSwap(false, true) {
		f.element.emit(FlowChanged{In: f.in, Type: f.typ, Pad: f.pad, Flowing: true})
	}
	f.mu.Unlock()
}

// Flowing tells whether media crossed the pad recently.
func (f *FlowMeter) Flowing() bool { return f.flowing.Load() }

// check is the periodic test: a flowing pad that saw nothing since the last check stops flowing.
func (f *FlowMeter) check() {
	if f.seen.Swap(false) || !f.flowing.Load() {
		return
	}
	f.mu.Lock()
	if !f.seen.Load() && f.flowing.CompareAndSwap(true, false) {
		f.element.emit(FlowChanged{In: f.in, Type: f.typ, Pad: f.pad, Flowing: false})
	}
	f.mu.Unlock()
}

// startChecker arms the periodic check with the first meter; the caller holds p.mu. A timer, not a
// goroutine: a pipeline that only waits holds no stack.
func (p *Pipeline) startChecker() {
	if p.checker == nil && !p.closed {
		p.checker = time.AfterFunc(FlowCheckPeriod, p.checkFlows)
	}
}

// checkFlows is one periodic check; it re-arms the timer until the pipeline closes.
func (p *Pipeline) checkFlows() {
	p.checking.Lock()
	defer p.checking.Unlock()
	p.mu.Lock()
	meters, closed := p.meters, p.closed
	p.mu.Unlock()
	if closed {
		return
	}
	for _, f := range meters {
		f.check()
	}
	p.mu.Lock()
	if !p.closed {
		p.checker.Reset(FlowCheckPeriod)
	}
	p.mu.Unlock()
}

// dropMeters forgets the meters of a released element; the caller holds p.mu.
func (p *Pipeline) dropMeters(e *Element) {
	kept := make([]*FlowMeter, 0, len(p.meters))
	for _, f := range p.meters {
		if f.element != e {
			kept = append(kept, f)
		}
	}
	p.meters = kept
}
