// Package dotgraph writes what getGstreamerDot returns: one Graphviz DOT document holding the GStreamer
// pipelines an object owns, as gst_debug_bin_to_dot_data renders them (one cluster each), and the parts
// of the media graph that are plain Go (WebRTC, RTP, recorder, routing) as nodes and edges beside them.
package dotgraph

import (
	"fmt"
	"regexp"
	"strings"
)

// Details are GStreamer's GstDebugGraphDetails flags.
type Details uint

// The flags of GstDebugGraphDetails.
const (
	ShowMediaType Details = 1 << iota
	ShowCapsDetails
	ShowNonDefaultParams
	ShowStates
	ShowFullParams
	ShowAll = ShowMediaType | ShowCapsDetails | ShowNonDefaultParams | ShowStates
)

// ParseDetails maps a GstreamerDotDetails value of the Kurento API to GStreamer's flags. As KMS,
// SHOW_VERBOSE (the default, "") is SHOW_ALL.
func ParseDetails(name string) Details {
	switch name {
	case "SHOW_MEDIA_TYPE":
		return ShowMediaType
	case "SHOW_CAPS_DETAILS":
		return ShowCapsDetails
	case "SHOW_NON_DEFAULT_PARAMS":
		return ShowNonDefaultParams
	case "SHOW_STATES":
		return ShowStates
	case "SHOW_FULL_PARAMS":
		return ShowFullParams
	}
	return ShowAll
}

// Gst is a GStreamer pipeline that renders itself in DOT (gst.Pipeline does).
type Gst interface {
	Dot(details uint) string
}

// NamedGst is a GStreamer pipeline an object owns, with what it is for.
type NamedGst struct {
	Label string
	Pipe  Gst
}

// Graph is a DOT document being written.
type Graph struct {
	details Details
	b       strings.Builder
	gstN    int
	depth   int
}

// New starts a document titled label; details is the level of detail of the GStreamer parts.
func New(label string, details Details) *Graph {
	g := &Graph{details: details}
	fmt.Fprintf(&g.b, "digraph pipeline {\n  compound=true;\n  rankdir=LR;\n  fontname=\"sans\";\n  fontsize=\"10\";\n"+
		"  labelloc=t;\n  label=%s;\n  node [shape=box, style=\"filled,rounded\", fillcolor=\"#ffffff\", fontname=\"sans\", fontsize=\"9\"];\n"+
		"  edge [fontname=\"monospace\", fontsize=\"8\"];\n", Quote(label))
	g.depth = 1
	return g
}

// Details is the level of detail the document was asked for.
func (g *Graph) Details() Details { return g.details }

func (g *Graph) line(format string, args ...any) {
	g.b.WriteString(strings.Repeat("  ", g.depth))
	fmt.Fprintf(&g.b, format, args...)
	g.b.WriteByte('\n')
}

// Cluster draws a box labelled label around what body adds.
func (g *Graph) Cluster(id, label, fill string, body func()) {
	g.line("subgraph %s {", Quote("cluster_"+id))
	g.depth++
	g.line("label=%s;", Quote(label))
	g.line("style=\"filled,rounded\";")
	g.line("fillcolor=%s;", Quote(fill))
	body()
	g.depth--
	g.line("}")
}

// Node adds a node; attrs are extra DOT attributes ("shape=cds").
func (g *Graph) Node(id, label string, attrs ...string) {
	a := append([]string{"label=" + Quote(label)}, attrs...)
	g.line("%s [%s];", Quote(id), strings.Join(a, ", "))
}

// Edge links two nodes, with a label ("" for none); attrs are extra DOT attributes.
func (g *Graph) Edge(from, to, label string, attrs ...string) {
	a := attrs
	if label != "" {
		a = append([]string{"label=" + Quote(label)}, attrs...)
	}
	if len(a) == 0 {
		g.line("%s -> %s;", Quote(from), Quote(to))
		return
	}
	g.line("%s -> %s [%s];", Quote(from), Quote(to), strings.Join(a, ", "))
}

// legend is the one node GStreamer names without an address; pipelines embedded side by side would
// share it.
var (
	legendRE = regexp.MustCompile(`(?m)^(\s*)legend \[`)
	labelRE  = regexp.MustCompile(`(?m)^  label="(.*)";$`)
)

// Gst embeds a GStreamer pipeline's own graph as a cluster labelled label (above GStreamer's label)
// and returns the ids of two anchor nodes inside it, where edges from and to the rest of the graph
// end: media enters the pipeline at in and leaves it at out. A closed pipeline is a plain node.
func (g *Graph) Gst(label string, p Gst) (in, out string) {
	g.gstN++
	id := fmt.Sprintf("gst%d", g.gstN)
	in, out = id+"_in", id+"_out"
	body := gstBody(p.Dot(uint(g.details)))
	if body == "" {
		g.Node(in, label+"\n(not running)", "style=dashed")
		return in, in
	}
	gstLabel := ""
	if m := labelRE.FindStringSubmatch(body); m != nil {
		gstLabel = m[1]
		body = strings.Replace(body, m[0], "", 1)
	}
	body = legendRE.ReplaceAllString(body, "${1}legend_"+id+" [")
	g.line("subgraph %s {", Quote("cluster_"+id))
	g.depth++
	// GStreamer's label is already escaped for DOT: it is kept as it is, after ours.
	g.line("label=\"%s\\n%s\";", escape(label), gstLabel)
	g.line("style=\"filled,rounded\";")
	g.line("fillcolor=\"#eeeeff\";")
	g.Node(in, "RTP in", "shape=point")
	g.Node(out, "RTP out", "shape=point")
	g.b.WriteString(body)
	g.depth--
	g.line("}")
	return in, out
}

// gstBody is what is between the braces of GStreamer's "digraph pipeline { ... }".
func gstBody(dot string) string {
	open := strings.IndexByte(dot, '{')
	end := strings.LastIndexByte(dot, '}')
	if open < 0 || end <= open {
		return ""
	}
	return strings.TrimLeft(dot[open+1:end], "\n") + "\n"
}

// String ends the document and returns it.
func (g *Graph) String() string { return g.b.String() + "}\n" }

// Quote makes s a DOT quoted string.
func Quote(s string) string { return `"` + escape(s) + `"` }

func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\x00", "").Replace(s)
}
