package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// targetsCommand is the run that gives every figure of targets.md but the allocations.
const targetsCommand = "bench/run.sh --targets"

// targetSpec is one of issue 11's targets: how to read it off a run, and its bound.
type targetSpec struct {
	on     []dep // the rows it is read from, whose trouble the caveats column reports
	name   string
	atMost bool // the figure must be <= bound (else >=)
	bound  float64
	prec   int
	get    func(res *Results) (float64, bool)
	// met, if set, judges the figure instead of the bound alone; how, if set, says in the caveats
	// which rows the figure came from.
	met func(res *Results, v float64) bool
	how func(res *Results) string
}

type dep struct {
	server, scenario string
	n                int
}

// caveats says what makes a figure doubtful: a row that did not keep up, or a load tool near its limit.
func (res *Results) caveats(on []dep) string {
	var out []string
	for _, d := range on {
		r, ok := res.find(d.server, d.scenario, d.n)
		if !ok {
			continue
		}
		what := fmt.Sprintf("%s %s N=%d", r.Server, r.Scenario, r.N)
		if !r.Pass && r.Scenario != "join" {
			out = append(out, fmt.Sprintf("%s did not keep up (loss %.1f %%, p99 %.0f ms, %d without media)", what, r.LossPct, r.LatencyP99ms, r.NoMedia))
		} else if !r.Pass {
			out = append(out, fmt.Sprintf("%s: %d joins without media", what, r.NoMedia))
		}
		if r.ToolCPUCore > toolBound {
			out = append(out, fmt.Sprintf("%s: the load tool used %.2f of its core", what, r.ToolCPUCore))
		}
	}
	return strings.Join(out, "; ")
}

// find returns the last row of a server, scenario and N (a ramp's second window wins over its first).
func (res *Results) find(server, scenario string, n int) (Row, bool) {
	for i := len(res.Rows) - 1; i >= 0; i-- {
		if r := res.Rows[i]; r.Server == server && r.Scenario == scenario && (n == 0 || r.N == n) {
			return r, true
		}
	}
	return Row{}, false
}

func field(server, scenario string, n int, f func(Row) float64) func(*Results) (float64, bool) {
	return func(res *Results) (float64, bool) {
		r, ok := res.find(server, scenario, n)
		if !ok {
			return 0, false
		}
		v := f(r)
		return v, v >= 0
	}
}

// positive is v, or -1 (no figure) when it is 0: a figure the run did not measure.
func positive(v float64) float64 {
	if v <= 0 {
		return -1
	}
	return v
}

func ratio(scenario string, n int) func(*Results) (float64, bool) {
	return func(res *Results) (float64, bool) {
		o, ok1 := res.find("ours", scenario, n)
		j, ok2 := res.find("janus", scenario, n)
		if !ok1 || !ok2 || o.CPUSecPerStreamMin <= 0 || j.CPUSecPerStreamMin <= 0 {
			return 0, false
		}
		return o.CPUSecPerStreamMin / j.CPUSecPerStreamMin, true
	}
}

// saturated is the CPU (of its one core) at which a server has no more to give.
const saturated = 0.95

// keptUp: the row passed (loss, p99, every receiver with media) with the load tool under toolBound.
func keptUp(r Row) bool { return r.Pass && r.ToolCPUCore <= toolBound }

// ratioMet is the rule for a CPU ratio against Janus: our server kept up, and either Janus kept up
// too and the ratio is within the bound, or Janus did not keep up and used its whole core (it
// needs more than the core it had, so the ratio measured is an upper bound of the true one) and
// ours used at most bound of a core: then ours/Janus ≤ bound whatever Janus would need.
func ratioMet(scenario string, n int, bound float64) func(*Results, float64) bool {
	return func(res *Results, v float64) bool {
		o, ok1 := res.find("ours", scenario, n)
		j, ok2 := res.find("janus", scenario, n)
		if !ok1 || !ok2 || !keptUp(o) {
			return false
		}
		if keptUp(j) {
			return v <= bound
		}
		return j.ServerCPUCore >= saturated && o.ServerCPUCore <= bound
	}
}

// rssSlope is RSS per active loopback session: the slope of our server's RSS between the two
// largest loopback steps that kept up. RSS over all sessions at one step would count what the
// server held before (its start, the idle scenario's heap), and a step where the server or the
// tool did not keep up holds queues that a running service does not.
func rssSlope(res *Results) (float64, Row, Row, bool) {
	var ok []Row
	for _, r := range res.Rows {
		if r.Server == "ours" && r.Scenario == "loopback" && keptUp(r) && r.Note != "failed; measured again in the next row" {
			ok = append(ok, r)
		}
	}
	slices.SortStableFunc(ok, func(a, b Row) int { return a.N - b.N })
	if len(ok) < 2 || ok[len(ok)-1].N == ok[len(ok)-2].N {
		return 0, Row{}, Row{}, false
	}
	a, b := ok[len(ok)-2], ok[len(ok)-1]
	return (b.RSSMB - a.RSSMB) / float64(b.N-a.N), a, b, true
}

func targetSpecs() []targetSpec {
	cpu := func(r Row) float64 { return r.CPUSecPerStreamMin }
	return []targetSpec{
		{on: []dep{{"ours", "one2many", 300}}, name: "one2many 300 viewers: server CPU s per viewer-minute", atMost: true, bound: 0.05, prec: 3, get: field("ours", "one2many", 300, cpu)},
		{on: []dep{{"ours", "one2many", 300}}, name: "one2many 300 viewers: viewers per core", bound: 1200, prec: 0, get: field("ours", "one2many", 300, func(r Row) float64 {
			if r.ServerCPUCore <= 0 {
				return -1
			}
			return float64(r.N) / r.ServerCPUCore
		})},
		{on: []dep{{"ours", "one2many", 300}}, name: "one2many 300 viewers: loss %", atMost: true, bound: 1, prec: 2, get: field("ours", "one2many", 300, func(r Row) float64 { return r.LossPct })},
		{on: []dep{{"ours", "one2many", 300}}, name: "one2many 300 viewers: p99 latency ms, publisher's send to the viewer's socket (before: to the viewer's reader, clients included)", atMost: true, bound: 20, prec: 1, get: field("ours", "one2many", 300, func(r Row) float64 { return r.LatencyP99ms }),
			how: func(res *Results) string {
				r, ok := res.find("ours", "one2many", 300)
				if !ok || r.LatencyMethod == "socket" && r.ClientLatencyP99ms <= 0 {
					return ""
				}
				if r.LatencyMethod != "socket" {
					return "latency to the viewer's reader: the sockets gave no receive times"
				}
				return fmt.Sprintf("to the viewer's reader (clients included): %.1f ms", r.ClientLatencyP99ms)
			}},
		{on: []dep{{"ours", "one2many", 300}, {"janus", "one2many", 300}}, name: "one2many 300 viewers: CPU ratio ours/Janus VideoRoom", atMost: true, bound: 0.7, prec: 2, get: ratio("one2many", 300), met: ratioMet("one2many", 300, 0.7)},
		{on: []dep{{"ours", "loopback", 20}, {"janus", "loopback", 20}}, name: "loopback N=20: CPU ratio ours/Janus EchoTest", atMost: true, bound: 0.8, prec: 2, get: ratio("loopback", 20), met: ratioMet("loopback", 20, 0.8)},
		{on: []dep{{"ours", "loopback", 100}, {"janus", "loopback", 100}}, name: "loopback N=100: CPU ratio ours/Janus EchoTest", atMost: true, bound: 0.8, prec: 2, get: ratio("loopback", 100), met: ratioMet("loopback", 100, 0.8)},
		{on: []dep{{"ours", "loopback", 300}, {"janus", "loopback", 300}}, name: "loopback N=300: CPU ratio ours/Janus EchoTest", atMost: true, bound: 0.8, prec: 2, get: ratio("loopback", 300), met: ratioMet("loopback", 300, 0.8)},
		{name: "RSS per active loopback session, MB (slope of RSS between the two largest loopback steps that kept up)", atMost: true, bound: 0.6, prec: 2,
			get: func(res *Results) (float64, bool) { v, _, _, ok := rssSlope(res); return v, ok },
			how: func(res *Results) string {
				_, a, b, ok := rssSlope(res)
				if !ok {
					return "fewer than two loopback steps of ours kept up"
				}
				return fmt.Sprintf("N=%d → %d: RSS %.0f → %.0f MB", a.N, b.N, a.RSSMB, b.RSSMB)
			}},
		{on: []dep{{"ours", "idle", 0}}, name: "RSS per idle WebRtcEndpoint, KB", atMost: true, bound: 150, prec: 0, get: field("ours", "idle", 0, func(r Row) float64 { return r.RSSPerEndpointKB })},
		{on: []dep{{"ours", "join", 300}}, name: "first frame of a viewer joining one2many 300, p50 ms", atMost: true, bound: 150, prec: 0, get: field("ours", "join", 300, func(r Row) float64 { return positive(r.FirstFrameP50ms) })},
		{on: []dep{{"ours", "join", 300}}, name: "first frame of a viewer joining one2many 300, p99 ms", atMost: true, bound: 300, prec: 0, get: field("ours", "join", 300, func(r Row) float64 { return positive(r.FirstFrameP99ms) })},
		{on: []dep{{"ours", "one2many", 100}}, name: "system calls per forwarded packet, one2many 100 viewers", atMost: true, bound: 1.2, prec: 2, get: field("ours", "one2many", 100, func(r Row) float64 { return positive(r.SyscallsPerPacket) })},
		{on: []dep{{"ours", "one2many", 300}}, name: "validity: load tool CPU at one2many 300, of its core", atMost: true, bound: toolBound, prec: 2, get: field("ours", "one2many", 300, func(r Row) float64 { return r.ToolCPUCore })},
		{on: []dep{{"ours", "loopback", 300}}, name: "validity: load tool CPU at loopback 300, of its core", atMost: true, bound: toolBound, prec: 2, get: field("ours", "loopback", 300, func(r Row) float64 { return r.ToolCPUCore })},
	}
}

// beforeValue reads a target off the runs before, the first that has it; for the joins, which the
// old full run did not measure apart, its ramp's step to 300 viewers stands in.
func beforeValue(spec targetSpec, before []*Results) (float64, bool) {
	for _, b := range before {
		if v, ok := spec.get(b); ok {
			return v, true
		}
	}
	if len(before) == 0 || !strings.HasPrefix(spec.name, "first frame of a viewer joining") {
		return 0, false
	}
	r, ok := before[0].find("ours", "one2many", 300)
	if !ok {
		return 0, false
	}
	if strings.HasSuffix(spec.name, "p50 ms") {
		return r.FirstFrameP50ms, r.FirstFrameP50ms > 0
	}
	return r.FirstFrameP99ms, r.FirstFrameP99ms > 0
}

// writeTargets writes targets.md in the output folder: one line per target of issue 11, before (the
// -before run) and now, and prints it.
func writeTargets(beforeFiles, out string, res *Results, stdout io.Writer) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "# Issue 11 targets\n\n%s run, %s; %s\n\n%s\n\n", res.Label, res.Date, res.Machine, res.Note)
	var before []*Results
	for _, file := range strings.Split(beforeFiles, ",") {
		b, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		r := &Results{}
		if err := json.Unmarshal(b, r); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		before = append(before, r)
		fmt.Fprintf(&sb, "Before: %s (%s, %s).\n\n", file, r.Date, r.Note)
	}
	fmt.Fprintf(&sb, "| target | before | now | bound | met? | caveats (now) | command |\n|---|---|---|---|---|---|---|\n")
	show := func(v float64, ok bool, prec int) string {
		if !ok {
			return "–"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	for _, t := range targetSpecs() {
		bv, bok := beforeValue(t, before)
		v, ok := t.get(res)
		met := "–"
		if ok {
			met = "no"
			if t.met != nil && t.met(res, v) || t.met == nil && (t.atMost && v <= t.bound || !t.atMost && v >= t.bound) {
				met = "yes"
			}
		}
		caveats := res.caveats(t.on)
		if t.how != nil {
			if h := t.how(res); h != "" && caveats != "" {
				caveats = h + "; " + caveats
			} else if h != "" {
				caveats = h
			}
		}
		op := "≥"
		if t.atMost {
			op = "≤"
		}
		name := t.name
		fmt.Fprintf(&sb, "| %s | %s | %s | %s %s | %s | %s | `%s` |\n", name, show(bv, bok, t.prec), show(v, ok, t.prec), op,
			strconv.FormatFloat(t.bound, 'f', -1, 64), met, caveats, targetsCommand)
	}
	allocs, ok := 0.0, res.AllocsPerPacket != nil
	if ok {
		allocs = *res.AllocsPerPacket
	}
	met := "–"
	if ok {
		met = "no"
		if allocs == 0 {
			met = "yes"
		}
	}
	fmt.Fprintf(&sb, "| allocations per forwarded packet (server, socket read to batched write) | – | %s | ≤ 0 | %s | | `%s` |\n",
		show(allocs, ok, 2), met, res.AllocsCommand)
	fmt.Fprintf(&sb, "\nA figure before is from the first of the runs before that has it (a run without joins: its ramp's step\n"+
		"to 300 viewers, 100 joining at once, stands in for the joins).\n\n"+
		"Rules: a row kept up when it passed (loss ≤ %g %%, p99 ≤ %g ms, every receiver with media) and the load tool\n"+
		"used at most %g of its core (the validity rows). A CPU ratio against Janus is met when ours kept up and either\n"+
		"Janus kept up and the ratio is within the bound, or Janus did not keep up with its core saturated (≥ %g: the\n"+
		"ratio is then an upper bound, Janus would need more than the core it had) and ours used at most the bound of\n"+
		"a core. RSS per active loopback session is the slope of our server's RSS between the two largest loopback\n"+
		"steps that kept up.\n"+
		"Latency is from the publisher's send to the kernel's receive time at the viewer's socket (SO_TIMESTAMPNS,\n"+
		"matched by the clear-text SSRC and sequence number of the SRTP packet): the tool's own queueing and receive\n"+
		"path are not in it; runs before measured to the viewer's reader.\n", res.MaxLossPct, res.MaxP99ms, toolBound, saturated)
	if d, ok := res.find("none", "direct", 0); ok {
		fmt.Fprintf(&sb, "\nThe clients alone (direct, no server): latency to the socket p50 %.2f ms, p99 %.2f ms; to the reader p50 %.2f ms, p99 %.2f ms.\n",
			d.LatencyP50ms, d.LatencyP99ms, d.ClientLatencyP50ms, d.ClientLatencyP99ms)
	}
	fmt.Fprintln(stdout, "\n"+sb.String())
	return os.WriteFile(filepath.Join(out, "targets.md"), []byte(sb.String()), 0o644)
}

// maxAllocs reads `go test -bench -benchmem` output and returns the most allocations per packet of
// any line: allocs/op, or a benchmark's own allocs/datagram (a fraction, where allocs/op rounds down).
func maxAllocs(file string) (float64, bool) {
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	most, found := 0.0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		for i := 1; i < len(fs); i++ {
			if fs[i] == "allocs/op" || fs[i] == "allocs/datagram" {
				if v, err := strconv.ParseFloat(fs[i-1], 64); err == nil {
					most, found = max(most, v), true
				}
			}
		}
	}
	return most, found
}
