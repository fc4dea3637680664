package objects

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/kurento-go/kms/dotgraph"
	"github.com/kurento-go/kms/media"
)

// GstOwner is implemented by objects that own GStreamer pipelines (filters, players, mixers): their
// graphs go into getGstreamerDot as GStreamer renders them.
type GstOwner interface {
	GstPipelines() []dotgraph.NamedGst
}

// DotDescriber is implemented by objects whose media is plain Go (WebRTC, RTP, recorder, routing):
// the lines describe it in getGstreamerDot.
type DotDescriber interface {
	DotDescription() []string
}

// HubDot is implemented by hubs: their ports, whose media they take and give.
type HubDot interface {
	DotPorts() []*media.Element
}

// GstreamerDot is the pipeline's whole graph: every element and hub in it (MediaPipeline.getGstreamerDot).
func (p *Pipeline) GstreamerDot(details dotgraph.Details) string {
	objs := p.descendants()
	g := dotgraph.New("MediaPipeline\n"+p.ID(), details)
	d := dotWriter{g: g, objs: objs}
	for _, o := range objs {
		d.object(o)
	}
	for _, o := range objs {
		d.links(o, false)
	}
	return g.String()
}

// ObjectDot is one element's or hub's part of the graph (MediaElement/Hub.getGstreamerDot): its
// pads, pipelines and transcoders, with the elements it is connected to drawn as stubs.
func ObjectDot(o Object, details dotgraph.Details) string {
	g := dotgraph.New(o.objectBase().class.Name+"\n"+o.ID(), details)
	var objs []Object
	if p, ok := o.objectBase().pipeline.(*Pipeline); ok {
		objs = p.descendants()
	}
	d := dotWriter{g: g, objs: objs}
	d.object(o)
	d.links(o, true)
	return g.String()
}

// descendants are the objects of the pipeline, by id.
func (p *Pipeline) descendants() []Object {
	var objs []Object
	p.reg.mu.Lock()
	var walk func(o Object)
	walk = func(o Object) {
		for _, c := range o.objectBase().children {
			objs = append(objs, c)
			walk(c)
		}
	}
	walk(p)
	p.reg.mu.Unlock()
	sort.Slice(objs, func(i, j int) bool { return objs[i].ID() < objs[j].ID() })
	return objs
}

type dotWriter struct {
	g    *dotgraph.Graph
	objs []Object
}

func padID(el *media.Element, dir string, t media.Type, pad string) string {
	return fmt.Sprintf("%p|%s|%s|%s", el, dir, t, pad)
}

func coreID(o Object) string { return o.ID() + "|core" }

func codecText(c *media.Codec) string {
	if c == nil {
		return "(no media yet)"
	}
	s := fmt.Sprintf("%s %d", c.MimeType, c.ClockRate)
	if c.Channels > 1 {
		s += fmt.Sprintf("/%d", c.Channels)
	}
	return s
}

// object draws o as a cluster: sink pads, what it does inside, source pads, transcoders.
func (d *dotWriter) object(o Object) {
	name := o.objectBase().class.Name
	d.g.Cluster(o.ID(), name+"\n"+o.ID(), "#f4f4f4", func() {
		core := []string{name}
		if dd, ok := o.(DotDescriber); ok {
			core = append(core, dd.DotDescription()...)
		}
		d.g.Node(coreID(o), strings.Join(core, "\n"), "fillcolor=\"#ffffcc\"")
		var ins, outs []string
		if og, ok := o.(GstOwner); ok {
			for _, p := range og.GstPipelines() {
				in, out := d.g.Gst(p.Label, p.Pipe)
				ins, outs = append(ins, in), append(outs, out)
			}
		}
		for _, in := range ins {
			d.g.Edge(coreID(o), in, "", "style=dotted")
		}
		h, ok := o.(elementHolder)
		if !ok {
			return
		}
		el := h.element().Media
		for _, c := range el.SourceConnections(media.Filter{}) {
			id := padID(el, "sink", c.Type, c.SinkPad)
			d.g.Node(id, fmt.Sprintf("sink %s %s", c.Type, c.SinkPad), "shape=cds", "fillcolor=\"#aaddff\"")
			d.g.Edge(id, coreID(o), "")
		}
		for _, p := range el.Sources() {
			id := padID(el, "src", p.Type, p.Pad)
			label := fmt.Sprintf("src %s %s\n%s", p.Type, p.Pad, codecText(p.Codec()))
			if p.ToHub() {
				label = fmt.Sprintf("to hub %s\n%s", p.Type, codecText(p.Codec()))
			}
			d.g.Node(id, label, "shape=cds", "fillcolor=\"#ffaaaa\"")
			d.g.Edge(coreID(o), id, "")
			for _, out := range outs {
				d.g.Edge(out, id, "", "style=dotted")
			}
		}
		for _, tr := range media.Transcoders() {
			if tr.From.Element() == el {
				d.transcoder(el, tr)
			}
		}
	})
}

// transcoder draws a shared transcoder of one of el's source pads, between that pad and the
// transcoded output its sinks read.
func (d *dotWriter) transcoder(el *media.Element, tr media.TranscoderInfo) {
	from := padID(el, "src", tr.From.Type, tr.From.Pad)
	outID := from + "|" + tr.To
	label := fmt.Sprintf("%s: %s -> %s", tr.Bin, codecText(tr.From.Codec()), codecText(tr.Output.Codec()))
	if gp, ok := tr.Transcoder.(dotgraph.Gst); ok {
		in, out := d.g.Gst(label, gp)
		d.g.Edge(from, in, "")
		d.g.Node(outID, "transcoded\n"+codecText(tr.Output.Codec()), "shape=cds", "fillcolor=\"#ffaaaa\"")
		d.g.Edge(out, outID, "")
		return
	}
	d.g.Node(outID, label, "shape=cds", "fillcolor=\"#ffaaaa\"")
	d.g.Edge(from, outID, "transcoding")
}

// links draws o's connections to other elements and, for hubs, to their ports. With stubs, the
// other ends (not drawn as clusters) are drawn as dashed nodes.
func (d *dotWriter) links(o Object, stubs bool) {
	owner := func(el *media.Element) Object {
		if e, ok := el.Owner().(*Element); ok {
			for _, x := range d.objs {
				if h, ok := x.(elementHolder); ok && h.element() == e {
					return x
				}
			}
		}
		return nil
	}
	stub := func(id string, el *media.Element, text string) {
		if !stubs {
			return
		}
		label := text
		if x := owner(el); x != nil {
			label = x.objectBase().class.Name + " " + x.ID() + "\n" + text
		}
		d.g.Node(id, label, "style=dashed")
	}
	if hd, ok := o.(HubDot); ok {
		for _, port := range hd.DotPorts() {
			for _, p := range port.Sources() {
				id := padID(port, "src", p.Type, p.Pad)
				if p.ToHub() {
					stub(id, port, "to hub "+p.Type.String())
					d.g.Edge(id, coreID(o), "")
				} else {
					stub(id, port, "src "+p.Type.String()+" "+p.Pad)
					d.g.Edge(coreID(o), id, "")
				}
			}
		}
	}
	h, ok := o.(elementHolder)
	if !ok {
		return
	}
	el := h.element().Media
	for _, c := range el.SinkConnections(media.Filter{}) {
		to := padID(c.Sink, "sink", c.Type, c.SinkPad)
		stub(to, c.Sink, fmt.Sprintf("sink %s %s", c.Type, c.SinkPad))
		d.g.Edge(padID(el, "src", c.Type, c.SourcePad), to, c.Type.String())
	}
	if stubs {
		for _, c := range el.SourceConnections(media.Filter{}) {
			from := padID(c.Source, "src", c.Type, c.SourcePad)
			stub(from, c.Source, fmt.Sprintf("src %s %s", c.Type, c.SourcePad))
			d.g.Edge(from, padID(el, "sink", c.Type, c.SinkPad), c.Type.String())
		}
	}
}

// dotStart stands for GStreamer's start time in the names of dumped files.
var dotStart = time.Now()

// DumpDot writes a graph where GStreamer's GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS would: into
// GST_DEBUG_DUMP_DOT_DIR (nothing when unset), named by the time since start and the object's id.
func DumpDot(id, dot string) error {
	dir := os.Getenv("GST_DEBUG_DUMP_DOT_DIR")
	if dir == "" {
		return nil
	}
	el := time.Since(dotStart)
	ts := fmt.Sprintf("%d:%02d:%02d.%09d", int(el.Hours()), int(el.Minutes())%60, int(el.Seconds())%60, el.Nanoseconds()%1e9)
	name := ts + "-" + strings.NewReplacer("/", "_").Replace(id) + ".dot"
	return os.WriteFile(filepath.Join(dir, name), []byte(dot), 0o644)
}

// dotOps are getGstreamerDot and dumpGstreamerDot of an object, rendered by graph.
func dotOps(graph func(Object, dotgraph.Details) string) map[string]Handler {
	return map[string]Handler{
		"getGstreamerDot": func(o Object, a Args) (any, error) {
			return graph(o, dotgraph.ParseDetails(a.String("details"))), nil
		},
		"dumpGstreamerDot": func(o Object, a Args) (any, error) {
			return nil, DumpDot(o.ID(), graph(o, dotgraph.ParseDetails(a.String("details"))))
		},
	}
}

// ObjectDotOps are the DOT operations of an element or hub: its own part of the graph.
var ObjectDotOps = dotOps(ObjectDot)
