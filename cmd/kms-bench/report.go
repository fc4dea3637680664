package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Results is everything a run writes.
type Results struct {
	Label       string       `json:"label"`
	Date        string       `json:"date"`
	Note        string       `json:"note,omitempty"`
	Machine     string       `json:"machine"`
	DurationS   float64      `json:"duration_s"`
	ClipKbps    float64      `json:"clip_video_kbps"`
	Window      string       `json:"window"`
	Ramp        bool         `json:"ramp"`
	MaxLossPct  float64      `json:"ramp_max_loss_pct"`
	MaxP99ms    float64      `json:"ramp_max_p99_ms"`
	Rows        []Row        `json:"rows"`
	RampResults []RampResult `json:"ramp_results,omitempty"`
	// From a Go benchmark of the forwarding path (-allocs-bench): the most allocations per packet of
	// its sub-benchmarks, and the command.
	AllocsPerPacket *float64 `json:"allocs_per_packet,omitempty"`
	AllocsCommand   string   `json:"allocs_command,omitempty"`
}

func machine() string {
	model, cores := "", 0
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok && model == "" {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
			}
			if strings.HasPrefix(l, "processor") {
				cores++
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return fmt.Sprintf("%d cores (%d usable by this process), %s, Linux %s, %s", cores, runtime.NumCPU(), model, strings.TrimSpace(string(kernel)), runtime.Version())
}

// writeJSON creates dir if needed and saves v, indented, as dir/name.
func writeJSON(dir, name string, v any) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
}

func (res *Results) write(dir string) error {
	if err := writeJSON(dir, "results.json", res); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "results.csv"))
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"server", "scenario", "n", "streams", "endpoints", "window_s", "server_cpu_core",
		"cpu_s_per_stream_minute", "rss_mb", "rss_per_endpoint_kb", "packets_expected", "packets_lost", "loss_pct",
		"latency_p50_ms", "latency_p99_ms", "latency_samples", "latency_method", "client_latency_p50_ms",
		"client_latency_p99_ms", "first_frame_p50_ms", "first_frame_p99_ms",
		"first_frame_max_ms", "no_media", "send_kbps_per_publisher", "tool_cpu_core", "pass", "note"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'f', 4, 64) }
	for _, r := range res.Rows {
		w.Write([]string{r.Server, r.Scenario, strconv.Itoa(r.N), strconv.Itoa(r.Streams), strconv.Itoa(r.Endpoints),
			g(r.WindowS), g(r.ServerCPUCore), g(r.CPUSecPerStreamMin), g(r.RSSMB), g(r.RSSPerEndpointKB),
			strconv.FormatInt(r.PacketsExpected, 10), strconv.FormatInt(r.PacketsLost, 10), g(r.LossPct),
			g(r.LatencyP50ms), g(r.LatencyP99ms), strconv.FormatUint(r.LatencySamples, 10), r.LatencyMethod,
			g(r.ClientLatencyP50ms), g(r.ClientLatencyP99ms), g(r.FirstFrameP50ms),
			g(r.FirstFrameP99ms), g(r.FirstFrameMaxms), strconv.Itoa(r.NoMedia), g(r.SendKbps), g(r.ToolCPUCore),
			strconv.FormatBool(r.Pass), r.Note})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	var table strings.Builder
	res.table(&table)
	if err := os.WriteFile(filepath.Join(dir, "table.txt"), []byte(table.String()), 0o644); err != nil {
		return err
	}
	for _, s := range []string{"loopback", "one2many", "group"} {
		if err := res.chart(s, filepath.Join(dir, s+".png")); err != nil {
			return err
		}
	}
	return nil
}

// chart draws server CPU (cores), loss (%) and p99 latency (ms) against N, one line per server.
func (res *Results) chart(scenario, file string) error {
	series := map[string][3]plotter.XYs{}
	var servers []string
	for _, r := range res.Rows {
		if r.Scenario != scenario {
			continue
		}
		s, ok := series[r.Server]
		if !ok {
			servers = append(servers, r.Server)
		}
		s[0] = append(s[0], plotter.XY{X: float64(r.N), Y: r.ServerCPUCore})
		s[1] = append(s[1], plotter.XY{X: float64(r.N), Y: r.LossPct})
		s[2] = append(s[2], plotter.XY{X: float64(r.N), Y: max(r.LatencyP99ms, 0)})
		series[r.Server] = s
	}
	if len(servers) == 0 {
		return nil
	}
	unit := map[string]string{"loopback": "sessions", "one2many": "subscribers", "group": "rooms"}[scenario]
	var plots [][]*plot.Plot
	for i, ylabel := range []string{"server CPU (cores)", "packet loss (%)", "latency p99 (ms)"} {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s: %s", scenario, ylabel)
		p.X.Label.Text = "N (" + unit + ")"
		p.Y.Label.Text = ylabel
		p.Y.Min = 0
		p.Add(plotter.NewGrid())
		var args []any
		for _, s := range servers {
			args = append(args, s, series[s][i])
		}
		if err := plotutil.AddLinePoints(p, args...); err != nil {
			return err
		}
		p.Y.Min, p.Y.Max = 0, max(p.Y.Max, 1)
		plots = append(plots, []*plot.Plot{p})
	}
	return writePNG(plots, 640, 960, file)
}

// writePNG draws plots stacked in one column on a canvas of w×h points and saves it as a PNG.
func writePNG(plots [][]*plot.Plot, w, h float64, file string) error {
	img := vgimg.New(vg.Points(w), vg.Points(h))
	dc := draw.New(img)
	pad := vg.Points(10)
	canvases := plot.Align(plots, draw.Tiles{Rows: len(plots), Cols: 1, PadY: pad, PadX: pad,
		PadTop: pad, PadBottom: pad, PadLeft: pad, PadRight: pad}, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// table prints the figures with both servers side by side for the scenarios they share, and the ratio
// ours/Janus of CPU per session.
func (res *Results) table(w io.Writer) {
	fmt.Fprintf(w, "\n%s run, %s; %s\n", res.Label, res.Date, res.Machine)
	if res.Note != "" {
		fmt.Fprintln(w, res.Note)
	}
	fmt.Fprintln(w, "\nlat: publisher's send to the kernel's receive time at the viewer's socket (* where the sockets gave none:\n"+
		"to the viewer's reader); cl p99: to the viewer's reader, the clients' own receive path included")
	fmt.Fprintf(w, "\n%-6s %-9s %5s %7s %6s %9s %7s %8s %7s %8s %8s %8s %9s %9s %6s %7s %5s\n", "server", "scenario", "N", "streams",
		"cpu", "cpu-s/", "RSS", "RSS/ep", "loss", "lat p50", "lat p99", "cl p99", "1st frame", "1st frame", "tool", "syscall", "pass")
	fmt.Fprintf(w, "%-6s %-9s %5s %7s %6s %9s %7s %8s %7s %8s %8s %8s %9s %9s %6s %7s %5s\n", "", "", "", "", "cores",
		"strm-min", "MB", "KB", "%", "ms", "ms", "ms", "p50 ms", "p99 ms", "cores", "/packet", "")
	f := func(v float64, prec int) string {
		if v < 0 {
			return "-"
		}
		return strconv.FormatFloat(v, 'f', prec, 64)
	}
	for _, r := range res.Rows {
		sys := "-"
		if r.SyscallsPerPacket > 0 {
			sys = f(r.SyscallsPerPacket, 2)
		}
		tool := f(r.ToolCPUCore, 2)
		if r.Scenario == "join" || r.Scenario == "idle" {
			tool = "-"
		}
		p99, cl := f(r.LatencyP99ms, 2), "-"
		if r.LatencyMethod != "socket" && r.LatencyP99ms >= 0 {
			p99 += "*"
		}
		if r.ClientLatencyP99ms > 0 {
			cl = f(r.ClientLatencyP99ms, 2)
		}
		fmt.Fprintf(w, "%-6s %-9s %5d %7d %6s %9s %7s %8s %7s %8s %8s %8s %9s %9s %6s %7s %5v\n", r.Server, r.Scenario, r.N, r.Streams,
			f(r.ServerCPUCore, 2), f(r.CPUSecPerStreamMin, 3), f(r.RSSMB, 0), f(r.RSSPerEndpointKB, 0), f(r.LossPct, 2),
			f(r.LatencyP50ms, 2), p99, cl, f(r.FirstFrameP50ms, 0), f(r.FirstFrameP99ms, 0), tool, sys, r.Pass)
	}
	// Side by side: every scenario at the N both servers ran.
	type key struct {
		s string
		n int
	}
	jan := map[key]Row{}
	for _, r := range res.Rows {
		if r.Server == "janus" && r.Note != "failed; measured again in the next row" {
			jan[key{r.Scenario, r.N}] = r
		}
	}
	header := false
	pair := func(a, b string) string { return a + " | " + b }
	for _, o := range res.Rows {
		j, ok := jan[key{o.Scenario, o.N}]
		if o.Server != "ours" || !ok || o.Note == "failed; measured again in the next row" {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nours vs Janus (same clients, same media; EchoTest for loopback and idle, VideoRoom for one2many, group, join)\n"+
				"%-9s %5s %20s %10s %14s %16s %18s %16s %18s\n", "scenario", "N", "cpu-s/stream-min", "ours/Janus",
				"loss %", "p99 ms", "1st frame p50 ms", "syscall/packet", "RSS/ep KB")
			header = true
		}
		ratio := "-"
		if j.CPUSecPerStreamMin > 0 && o.CPUSecPerStreamMin > 0 && o.Scenario != "idle" {
			ratio = fmt.Sprintf("%.2f", o.CPUSecPerStreamMin/j.CPUSecPerStreamMin)
		}
		if o.Scenario == "idle" && j.RSSPerEndpointKB > 0 {
			ratio = fmt.Sprintf("RSS %.2f", o.RSSPerEndpointKB/j.RSSPerEndpointKB)
		}
		sys := func(r Row) string {
			if r.SyscallsPerPacket <= 0 {
				return "-"
			}
			return f(r.SyscallsPerPacket, 2)
		}
		fmt.Fprintf(w, "%-9s %5d %20s %10s %14s %16s %18s %16s %18s\n", o.Scenario, o.N,
			pair(f(o.CPUSecPerStreamMin, 3), f(j.CPUSecPerStreamMin, 3)), ratio, pair(f(o.LossPct, 2), f(j.LossPct, 2)),
			pair(f(o.LatencyP99ms, 1), f(j.LatencyP99ms, 1)), pair(f(o.FirstFrameP50ms, 0), f(j.FirstFrameP50ms, 0)),
			pair(sys(o), sys(j)), pair(f(o.RSSPerEndpointKB, 0), f(j.RSSPerEndpointKB, 0)))
	}
	res.signallingTable(w, f)
	for _, rr := range res.RampResults {
		if rr.Scenario == "" {
			continue
		}
		fmt.Fprintf(w, "ramp %-6s %-9s reached N=%d (%d streams per core), stopped by: %s\n", rr.Server, rr.Scenario,
			rr.ReachedN, rr.PerCore, rr.StoppedBy)
	}
}

// signallingTable prints, for our server straight and through a router, what each step's signalling
// cost: requests, processOffer round trips, the router's CPU and I/O against the bytes on the link.
func (res *Results) signallingTable(w io.Writer, f func(float64, int) string) {
	header := false
	for _, r := range res.Rows {
		if r.Requests == 0 {
			continue
		}
		if !header {
			fmt.Fprintf(w, "\nsignalling per step (set-up + window); node = the server holding the media\n%-6s %-9s %5s %8s %9s %9s %10s %11s %9s %9s %9s\n",
				"via", "scenario", "N", "requests", "offer p50", "offer p99", "router cpu", "router cpu", "router io", "link", "node cpu")
			fmt.Fprintf(w, "%-6s %-9s %5s %8s %9s %9s %10s %11s %9s %9s %9s\n", "", "", "", "", "ms", "ms", "s", "ms/request", "MB", "MB", "cores")
			header = true
		}
		via, rcpu, rreq, rio := "node", "-", "-", "-"
		if r.Server == "router" {
			via, rcpu, rreq, rio = "router", f(r.RouterCPUSec, 2), f(r.RouterCPUmsPerRequest, 3), f(r.RouterIOMB, 2)
		}
		fmt.Fprintf(w, "%-6s %-9s %5d %8d %9s %9s %10s %11s %9s %9s %9s\n", via, r.Scenario, r.N, r.Requests, f(r.OfferP50ms, 2),
			f(r.OfferP99ms, 2), rcpu, rreq, rio, f(r.LinkMB, 1), f(r.ServerCPUCore, 2))
	}
}
