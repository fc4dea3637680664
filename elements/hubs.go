package elements

import (
	"fmt"
	"sort"
	"sync"

	"github.com/kurento-go/kms/dotgraph"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/processing"
)

// routedTypes are the media types hubs route, as KMS's dispatchers do.
var routedTypes = []media.Type{media.Audio, media.Video}

// hub is a Dispatcher or a DispatcherOneToMany: it routes the media of its ports to one another on the
// forwarding path, without decoding.
// emitError raises an Error event of the hub's mixer on the hub.
func (h *hub) emitError(ev media.ErrorEvent) {
	h.Emit("Error", map[string]any{"description": ev.Description, "errorCode": ev.Code, "type": ev.Type})
}

type hub struct {
	*objects.Base
	oneToMany bool
	mixer     *processing.Mixer // a Composite's or AlphaBlending's: it mixes its ports instead of routing them
	blend     *blending         // an AlphaBlending's placement of its ports

	mu     sync.Mutex
	ports  map[*hubPort]struct{}
	routes map[*hubPort]*hubPort // Dispatcher: sink port -> its source port; Mixer: its video routes
	// Mixer: {sink, source} pairs connected for audio. Its own lock, not mu: the mixer asks while
	// the hub adds a port.
	hearsMu sync.Mutex
	hears   map[[2]*hubPort]bool
	source  *hubPort // DispatcherOneToMany: the port everyone receives
}

// hubPort is a HubPort: an element attached to a hub.
type hubPort struct {
	*objects.Element
	hub *hub
}

func (h *hub) route(from, to *hubPort) {
	for _, t := range routedTypes {
		media.Route(from.Media, to.Media, t)
	}
}

func (h *hub) unroute(from, to *hubPort) {
	for _, t := range routedTypes {
		media.Unroute(from.Media, to.Media, t)
	}
}

func (h *hub) added(p *hubPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ports[p] = struct{}{}
	if h.mixer != nil {
		h.mixer.AddPort(p.Media)
	}
	if h.oneToMany && h.source != nil {
		h.route(h.source, p)
	}
}

func (h *hub) removed(p *hubPort) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.ports, p)
	if h.blend != nil {
		h.blend.mu.Lock()
		delete(h.blend.props, p.Media)
		if h.blend.master == p.Media {
			h.blend.master = nil
		}
		h.blend.mu.Unlock()
	}
	if h.mixer != nil {
		h.mixer.RemovePort(p.Media)
	}
	if h.oneToMany && h.source == p {
		for q := range h.ports {
			h.unroute(p, q)
		}
		h.source = nil
	}
	h.hearsMu.Lock()
	for pair := range h.hears {
		if pair[0] == p || pair[1] == p {
			delete(h.hears, pair)
		}
	}
	h.hearsMu.Unlock()
	if from, ok := h.routes[p]; ok {
		h.unroute(from, p)
		delete(h.routes, p)
	}
	for sink, from := range h.routes {
		if from == p {
			h.unroute(p, sink)
			delete(h.routes, sink)
		}
	}
}

// portArg finds a port parameter and checks it belongs to this hub.
func (h *hub) portArg(a objects.Args, name string) (*hubPort, error) {
	p, ok := a.Object(name).(*hubPort)
	if !ok || p.hub != h {
		return nil, kerr.New(kerr.ConnectError, "'%s' is not a port of this hub", name)
	}
	return p, nil
}

// DotPorts are the hub's ports, for getGstreamerDot.
func (h *hub) DotPorts() []*media.Element {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*media.Element, 0, len(h.ports))
	for p := range h.ports {
		out = append(out, p.Media)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Owner().(*objects.Element).ID() < out[j].Owner().(*objects.Element).ID()
	})
	return out
}

// DotDescription says how the hub moves media between its ports.
func (h *hub) DotDescription() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.mixer != nil:
		return []string{"GStreamer mixing (below)"}
	case h.oneToMany && h.source != nil:
		return []string{"everyone receives " + h.source.ID()}
	}
	var lines []string
	for sink, from := range h.routes {
		lines = append(lines, fmt.Sprintf("%s -> %s", from.ID(), sink.ID()))
	}
	sort.Strings(lines)
	return lines
}

// GstPipelines is the running mixing pipeline of a Composite or AlphaBlending.
func (h *hub) GstPipelines() []dotgraph.NamedGst {
	if h.mixer == nil {
		return nil
	}
	return []dotgraph.NamedGst{{Label: "mixer", Pipe: h.mixer}}
}

func (d *definer) defineHubs() {
	newHub := func(oneToMany bool) objects.Factory {
		return func(b *objects.Base, _ objects.Args) (objects.Object, error) {
			return &hub{Base: b, oneToMany: oneToMany, ports: map[*hubPort]struct{}{}, routes: map[*hubPort]*hubPort{}}, nil
		}
	}
	d.r.Define("Hub", objects.Class{Ops: objects.ObjectDotOps})
	d.r.Define("HubPort", objects.Class{New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
		h, ok := a.Object("hub").(*hub)
		if !ok {
			return nil, kerr.New(kerr.NotImplemented, "Ports of %s are not available in this server yet", a.Object("hub").ID())
		}
		p := &hubPort{Element: objects.NewElement(b, nil), hub: h}
		p.Media.HubPort()
		h.added(p)
		return p, nil
	}})
	// Composite: the grid of the ports' video and, for each port, the mix of the others' audio, at the
	// constructor's size and rate (800x600, 15 fps) and KMS's default encoder bitrate.
	d.r.Define("Composite", objects.Class{New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
		h := &hub{Base: b, ports: map[*hubPort]struct{}{}, routes: map[*hubPort]*hubPort{}}
		cfg := processing.MixerConfig{Width: 800, Height: 600, Framerate: 15, Log: d.r.Logger().With("element", b.ID())}
		comp := d.cfg.Modules.Composite
		// As KMS: the constructor's defaults apply; the configuration only when 0 is passed.
		for _, p := range []struct {
			name string
			dst  *int
			conf int
		}{{"width", &cfg.Width, comp.Width}, {"height", &cfg.Height, comp.Height}, {"framerate", &cfg.Framerate, comp.Framerate}} {
			if !a.Has(p.name) {
				continue
			}
			switch v := a.Int(p.name); {
			case v < 0:
				return nil, kerr.New(kerr.MarshallError, "'%s' must not be negative", p.name)
			case v == 0:
				*p.dst = p.conf
			default:
				*p.dst = v
			}
		}
		cfg.OnError = h.emitError
		h.mixer = processing.NewMixer(cfg,
			func() media.EncoderBitrate { return media.EncoderBitrate{Target: media.DefaultEncoderBitrate} })
		return h, nil
	}})
	d.r.Define("AlphaBlending", objects.Class{New: func(b *objects.Base, _ objects.Args) (objects.Object, error) {
		h := &hub{Base: b, ports: map[*hubPort]struct{}{}, routes: map[*hubPort]*hubPort{},
			blend: &blending{props: map[*media.Element]portProps{}}}
		h.mixer = processing.NewMixer(processing.MixerConfig{Layout: h.blend.layout, Log: d.r.Logger().With("element", b.ID()),
			OnError: h.emitError},
			func() media.EncoderBitrate { return media.EncoderBitrate{Target: media.DefaultEncoderBitrate} })
		return h, nil
	}, Ops: map[string]objects.Handler{
		"setMaster": func(o objects.Object, a objects.Args) (any, error) {
			h := o.(*hub)
			p, err := h.portArg(a, "source")
			if err != nil {
				return nil, err
			}
			h.blend.mu.Lock()
			h.blend.master, h.blend.masterZ = p.Media, a.Int("zOrder")
			h.blend.mu.Unlock()
			h.mixer.Relayout()
			return nil, nil
		},
		"setPortProperties": func(o objects.Object, a objects.Args) (any, error) {
			h := o.(*hub)
			p, err := h.portArg(a, "port")
			if err != nil {
				return nil, err
			}
			pp := portProps{x: a.Float("relativeX"), y: a.Float("relativeY"), w: a.Float("relativeWidth"),
				h: a.Float("relativeHeight"), z: a.Int("zOrder")}
			if pp.w < 0 || pp.h < 0 {
				return nil, kerr.New(kerr.MarshallError, "relativeWidth and relativeHeight must not be negative")
			}
			h.blend.mu.Lock()
			h.blend.props[p.Media] = pp
			h.blend.mu.Unlock()
			h.mixer.Relayout()
			return nil, nil
		},
	}})
	d.defineMixer()
	d.r.Define("Dispatcher", objects.Class{New: newHub(false), Ops: map[string]objects.Handler{
		"connect": func(o objects.Object, a objects.Args) (any, error) {
			h := o.(*hub)
			from, err := h.portArg(a, "source")
			if err != nil {
				return nil, err
			}
			to, err := h.portArg(a, "sink")
			if err != nil {
				return nil, err
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			h.routes[to] = from
			h.route(from, to)
			return nil, nil
		},
	}})
	d.r.Define("DispatcherOneToMany", objects.Class{New: newHub(true), Ops: map[string]objects.Handler{
		"setSource": func(o objects.Object, a objects.Args) (any, error) {
			h := o.(*hub)
			src, err := h.portArg(a, "source")
			if err != nil {
				return nil, err
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			h.source = src
			for p := range h.ports {
				h.route(src, p)
			}
			return nil, nil
		},
		"removeSource": func(o objects.Object, _ objects.Args) (any, error) {
			h := o.(*hub)
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.source != nil {
				for p := range h.ports {
					h.unroute(h.source, p)
				}
				h.source = nil
			}
			return nil, nil
		},
	}})
}

// blending is where an AlphaBlending puts its ports: the master under everything at full size, the
// others where setPortProperties said (fractions of the output), the rest not shown (as KMS).
type blending struct {
	mu      sync.Mutex // not h.mu: the mixer asks for the layout while the hub adds a port
	master  *media.Element
	masterZ int
	props   map[*media.Element]portProps
}

type portProps struct {
	x, y, w, h float64
	z          int
}

func (b *blending) layout(width, height int, ports []*media.Element) []processing.Tile {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]processing.Tile, len(ports))
	for i, el := range ports {
		if el == b.master {
			out[i] = processing.Tile{W: width, H: height, Z: b.masterZ}
		} else if p, ok := b.props[el]; ok {
			out[i] = processing.Tile{X: int(p.x * float64(width)), Y: int(p.y * float64(height)),
				W: int(p.w * float64(width)), H: int(p.h * float64(height)), Z: p.z}
		}
	}
	return out
}

// Close stops a Composite's mixing.
func (h *hub) Close() {
	if h.mixer != nil {
		h.mixer.Close()
	}
}

// Close detaches the port from its hub, then takes it out of the graph.
func (p *hubPort) Close() {
	p.hub.removed(p)
	p.Element.Close()
}

// defineMixer installs the Mixer: as KMS's selectable mixer, each port's audio is the mix of the
// ports connected to it for AUDIO (decoded and mixed), and its video is the one port connected to it
// for VIDEO (routed without decoding, the last connect wins).
func (d *definer) defineMixer() {
	portsArg := func(h *hub, a objects.Args) (from, to *hubPort, err error) {
		if from, err = h.portArg(a, "source"); err == nil {
			to, err = h.portArg(a, "sink")
		}
		return from, to, err
	}
	d.r.Define("Mixer", objects.Class{New: func(b *objects.Base, _ objects.Args) (objects.Object, error) {
		h := &hub{Base: b, ports: map[*hubPort]struct{}{}, routes: map[*hubPort]*hubPort{}, hears: map[[2]*hubPort]bool{}}
		h.mixer = processing.NewMixer(processing.MixerConfig{AudioOnly: true, Hears: h.mixerHears, OnError: h.emitError,
			Log: d.r.Logger().With("element", b.ID())},
			func() media.EncoderBitrate { return media.EncoderBitrate{Target: media.DefaultEncoderBitrate} })
		return h, nil
	}, Ops: map[string]objects.Handler{
		"connect": func(o objects.Object, a objects.Args) (any, error) {
			h := o.(*hub)
			from, to, err := portsArg(h, a)
			if err != nil {
				return nil, err
			}
			switch a.String("media") {
			case "AUDIO":
				h.hearsMu.Lock()
				h.hears[[2]*hubPort{to, from}] = true
				h.hearsMu.Unlock()
				h.mixer.Relayout()
			case "VIDEO":
				h.mu.Lock()
				h.routes[to] = from
				media.Route(from.Media, to.Media, media.Video)
				h.mu.Unlock()
			default:
				return nil, kerr.New(kerr.UnsupportedMediaType, "Invalid media type")
			}
			return nil, nil
		},
		"disconnect": func(o objects.Object, a objects.Args) (any, error) {
			h := o.(*hub)
			from, to, err := portsArg(h, a)
			if err != nil {
				return nil, err
			}
			switch a.String("media") {
			case "AUDIO":
				h.hearsMu.Lock()
				delete(h.hears, [2]*hubPort{to, from})
				h.hearsMu.Unlock()
				h.mixer.Relayout()
			case "VIDEO":
				return nil, kerr.New(kerr.UnsupportedMediaType, "Video disconnection is not implemented yet")
			default:
				return nil, kerr.New(kerr.UnsupportedMediaType, "Invalid media type")
			}
			return nil, nil
		},
	}})
}

// mixerHears tells the Mixer's audio mixing which ports were connected to which.
func (h *hub) mixerHears(sink, source *media.Element) bool {
	h.hearsMu.Lock()
	defer h.hearsMu.Unlock()
	for pair := range h.hears {
		if pair[0].Media == sink && pair[1].Media == source {
			return true
		}
	}
	return false
}
