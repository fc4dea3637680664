package elements

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/processing"
)

// routedTypes are the media types hubs route, as KMS's dispatchers do.
var routedTypes = []media.Type{media.Audio, media.Video}

// hub is a Dispatcher or a DispatcherOneToMany: it routes the media of its ports to one another on the
// forwarding path, without decoding.
type hub struct {
	*objects.Base
	oneToMany bool
	mixer     *processing.Mixer // a Composite's or AlphaBlending's: it mixes its ports instead of routing them
	blend     *blending         // an AlphaBlending's placement of its ports

	mu     sync.Mutex
	ports  map[*hubPort]struct{}
	routes map[*hubPort]*hubPort // Dispatcher: sink port -> its source port
	source *hubPort              // DispatcherOneToMany: the port everyone receives
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

func (h *hub) dot() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ids []string
	for p := range h.ports {
		ids = append(ids, p.ID())
	}
	sort.Strings(ids)
	var sb strings.Builder
	fmt.Fprintf(&sb, "digraph hub {\n  label=%q;\n", h.ID())
	for _, id := range ids {
		fmt.Fprintf(&sb, "  %q;\n", id)
	}
	sb.WriteString("}\n")
	return sb.String()
}

func (d *definer) defineHubs() {
	newHub := func(oneToMany bool) objects.Factory {
		return func(b *objects.Base, _ objects.Args) (objects.Object, error) {
			return &hub{Base: b, oneToMany: oneToMany, ports: map[*hubPort]struct{}{}, routes: map[*hubPort]*hubPort{}}, nil
		}
	}
	d.r.Define("Hub", objects.Class{Ops: map[string]objects.Handler{
		"getGstreamerDot":  func(o objects.Object, _ objects.Args) (any, error) { return o.(*hub).dot(), nil },
		"dumpGstreamerDot": func(objects.Object, objects.Args) (any, error) { return nil, nil },
	}})
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
		h.mixer = processing.NewMixer(cfg,
			func() media.EncoderBitrate { return media.EncoderBitrate{Target: media.DefaultEncoderBitrate} })
		return h, nil
	}})
	d.r.Define("AlphaBlending", objects.Class{New: func(b *objects.Base, _ objects.Args) (objects.Object, error) {
		h := &hub{Base: b, ports: map[*hubPort]struct{}{}, routes: map[*hubPort]*hubPort{},
			blend: &blending{props: map[*media.Element]portProps{}}}
		h.mixer = processing.NewMixer(processing.MixerConfig{Layout: h.blend.layout, Log: d.r.Logger().With("element", b.ID())},
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
