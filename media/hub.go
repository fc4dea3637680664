package media

import (
	"sync/atomic"

	"github.com/pion/rtp"
)

// hubPad names the hidden source pad of a hub port that carries what was connected into the port,
// for the hub to route; clients never see it.
const hubPad = "\x00hub"

// HubPort makes e a port of a hub: media connected into its sink pads is offered to the hub, and
// what the hub routes to it comes out of its source pads. The routing is the hub's, with Route.
func (e *Element) HubPort() {
	e.SetInputs(&portInputs{e: e, pads: map[padKey]*relay{}})
}

// portInputs are the sink pads of a hub port: relays onto the hidden hub pad.
type portInputs struct {
	e    *Element
	pads map[padKey]*relay // guarded by the pipeline lock
}

func (pi *portInputs) Input(t Type, pad string) Input {
	if pad != DefaultPad {
		return nil
	}
	k := padKey{t, pad}
	r := pi.pads[k]
	if r == nil {
		r = &relay{out: pi.e.source(t, hubPad), meter: pi.e.newInputMeterLocked(t, pad)}
		pi.pads[k] = r
	}
	return r
}

// Route sends what is connected into port from, of type t, out of port to (from may equal to). A
// port takes one routed source per type: routing another replaces it.
func Route(from, to *Element, t Type) {
	p := from.pipeline
	p.mu.Lock()
	defer p.mu.Unlock()
	if from.released || to.released {
		return
	}
	in := to.routeInput(t)
	src := from.source(t, hubPad)
	if in.from == src {
		return
	}
	if in.from != nil {
		in.from.unlink(in)
	}
	in.from = src
	src.link(in)
}

// Unroute stops what Route started, if from still feeds to.
func Unroute(from, to *Element, t Type) {
	p := from.pipeline
	p.mu.Lock()
	defer p.mu.Unlock()
	in := to.routeInput(t)
	if src := from.source(t, hubPad); in.from == src {
		src.unlink(in)
		in.from = nil
	}
}

// routeInput is the hidden sink pad of a port that feeds its source pad; the caller holds the lock.
func (e *Element) routeInput(t Type) *routed {
	if e.routed == nil {
		e.routed = map[Type]*routed{}
	}
	r := e.routed[t]
	if r == nil {
		r = &routed{out: e.source(t, DefaultPad)}
		e.routed[t] = r
	}
	return r
}

// routed forwards the routed source to the port's source pad.
type routed struct {
	out  *Source
	from *Source // guarded by the pipeline lock
	cur  atomic.Pointer[Source]
}

func (r *routed) WriteRTP(src *Source, p *rtp.Packet) {
	if r.cur.Load() != src {
		return
	}
	if c := src.Codec(); r.out.producedCodec() != c {
		r.out.SetCodec(c)
	}
	r.out.WriteRTP(p)
}

func (r *routed) SetSource(src *Source) {
	r.cur.Store(src)
	r.out.upstream.Store(src) // NACKs on the port's output are served from the routed source's cache
	if src == nil {
		r.out.SetKeyframeRequester(nil)
		return
	}
	r.out.SetKeyframeRequester(src.RequestKeyframe)
	if r.out.Sinks() > 0 {
		src.RequestKeyframe()
	}
}

// Tap links in to what is connected into port p, of type t (what a hub takes from the port), as a
// Route to another port does; a mixing hub reads its ports this way. Untap undoes it.
func Tap(p *Element, t Type, in Input) {
	pl := p.pipeline
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if !p.released {
		p.source(t, hubPad).link(in)
	}
}

// Untap stops what Tap started.
func Untap(p *Element, t Type, in Input) {
	pl := p.pipeline
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if src := p.sources[padKey{t, hubPad}]; src != nil {
		src.unlink(in)
	}
}
