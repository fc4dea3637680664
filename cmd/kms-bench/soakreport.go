package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
)

// write saves soak.json, soak.csv, summary.txt and the chart soak.png in dir.
func (res *SoakResults) write(dir string) error {
	if err := writeJSON(dir, "soak.json", res); err != nil {
		return err
	}
	var c strings.Builder
	w := csv.NewWriter(&c)
	w.Write([]string{"t_s", "sessions", "receivers", "joins", "leaves", "server_cpu_core", "tool_cpu_core", "rss_mb", "heap_mb",
		"fds", "threads", "child_processes", "frames_sent", "frames_decoded", "delivered_pct", "video_packets_expected", "video_packets_missing",
		"video_packets_recovered", "video_packets_lost", "video_packets_nacked", "video_residual_loss_pct", "audio_loss_pct",
		"publisher_retransmissions"})
	g := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	for _, s := range res.Samples {
		w.Write([]string{g(s.T), strconv.Itoa(s.Sessions), strconv.Itoa(s.Receivers), strconv.Itoa(s.Joins), strconv.Itoa(s.Leaves),
			g(s.ServerCPUCore), g(s.ToolCPUCore), g(s.RSSMB), g(s.HeapMB), strconv.Itoa(s.FDs), strconv.Itoa(s.Threads),
			strconv.Itoa(s.Children), i(s.FramesSent), i(s.FramesDecoded), g(s.DeliveredPct), i(s.VideoExpected), i(s.VideoMissing), i(s.VideoRecovered),
			i(s.VideoLost), i(s.NACKed), g(s.ResidualPct), g(s.AudioLossPct), i(s.Retransmitted)})
	}
	w.Flush()
	if err := os.WriteFile(filepath.Join(dir, "soak.csv"), []byte(c.String()), 0o644); err != nil {
		return err
	}
	var sum strings.Builder
	res.print(&sum)
	if err := os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(sum.String()), 0o644); err != nil {
		return err
	}
	return res.chart(filepath.Join(dir, "soak.png"))
}

// print writes the summary as text.
func (res *SoakResults) print(w io.Writer) {
	s := res.Summary
	fmt.Fprintf(w, "\n%s soak, %s; %s\n", res.Label, res.Date, res.Machine)
	if res.Note != "" {
		fmt.Fprintln(w, res.Note)
	}
	fmt.Fprintf(w, "%d sessions (%d loopbacks, %d one-to-many rooms of 1+%d) for %.0f s, one viewer or loopback replaced every %s\n",
		s.Sessions, res.Config.Loopbacks, res.Config.Rooms, res.Config.Viewers, s.DurationS, res.Config.Churn)
	fmt.Fprintf(w, "joins %d, leaves %d, failed joins %d, joins without video after 10 s %d; first frame of a join p50 %.0f ms, p99 %.0f ms\n",
		s.Joins, s.Leaves, s.SetupErrors, s.JoinNoMedia, s.FirstFrameP50, s.FirstFrameP99)
	fmt.Fprintf(w, "frames delivered (decodable): %d of %d sent = %.2f %% (worst interval %.2f %%)\n",
		s.FramesDecoded, s.FramesSent, s.DeliveredPct, s.MinDeliveredPct)
	fmt.Fprintf(w, "video packets: %d expected, %d missing on arrival (lost or reordered), %d NACKed (each try), %d recovered (%.1f %%), %d lost: residual loss %.3f %%; audio loss %.2f %% (not repaired)\n",
		s.VideoExpected, s.VideoMissing, s.NACKed, s.VideoRecovered, s.RecoveredPct, s.VideoLost, s.ResidualPct, s.AudioLossPct)
	fmt.Fprintf(w, "server CPU %.2f core (mean), tool %.2f core\n", s.ServerCPUMean, s.ToolCPUMean)
	released := func(v float64, unit string) string {
		if v < 0 {
			return "- (still running)"
		}
		return fmt.Sprintf("%.0f%s", v, unit)
	}
	fmt.Fprintf(w, "server RSS: %.0f MB before, %.0f MB after warm-up (%.0f s), %.0f MB at the end, %.0f MB max, %s after release\n",
		s.RSSBeforeMB, s.RSSSteadyMB, s.WarmupS, s.RSSEndMB, s.RSSMaxMB, released(s.RSSAfterMB, " MB"))
	after := "no collection since the release"
	if s.HeapAfterMB >= 0 {
		after = fmt.Sprintf("%.0f MB after release", s.HeapAfterMB)
	}
	fmt.Fprintf(w, "server Go heap (live after GC): %.0f MB after warm-up, %.0f MB at the end, %s\n",
		s.HeapSteadyMB, s.HeapEndMB, after)
	fmt.Fprintf(w, "server descriptors: %d before, %d at the end, %s after release\n", s.FDsBefore, s.FDsEnd, released(float64(s.FDsAfter), ""))
	fmt.Fprintf(w, "drift per hour (after warm-up): RSS %+.1f MB, heap %+.1f MB, CPU %+.3f core, descriptors %+.1f, delivered %+.2f points\n",
		s.RSSDriftMBh, s.HeapDriftMBh, s.CPUDriftCoreh, s.FDDriftPerh, s.DeliveredDriftPerh)
}

// chart draws the soak over time: frames delivered, packet repair, memory, CPU, and the
// population with the server's descriptors.
func (res *SoakResults) chart(file string) error {
	var delivered, residual, missing, recovered, lost, rss, heap, cpu, tool, sessions, fds plotter.XYs
	prevT := 0.0
	for _, s := range res.Samples {
		x := s.T / 60
		dt := max(s.T-prevT, 1e-9)
		prevT = s.T
		if s.FramesSent > 0 {
			delivered = append(delivered, plotter.XY{X: x, Y: s.DeliveredPct})
		}
		residual = append(residual, plotter.XY{X: x, Y: s.ResidualPct})
		missing = append(missing, plotter.XY{X: x, Y: float64(s.VideoMissing) / dt})
		recovered = append(recovered, plotter.XY{X: x, Y: float64(s.VideoRecovered) / dt})
		lost = append(lost, plotter.XY{X: x, Y: float64(s.VideoLost) / dt})
		rss = append(rss, plotter.XY{X: x, Y: s.RSSMB})
		if s.HeapMB >= 0 {
			heap = append(heap, plotter.XY{X: x, Y: s.HeapMB})
		}
		cpu = append(cpu, plotter.XY{X: x, Y: s.ServerCPUCore})
		tool = append(tool, plotter.XY{X: x, Y: s.ToolCPUCore})
		sessions = append(sessions, plotter.XY{X: x, Y: float64(s.Sessions)})
		fds = append(fds, plotter.XY{X: x, Y: float64(s.FDs)})
	}
	sum := res.Summary
	panels := []struct {
		title, ylabel string
		lines         []any
	}{
		{fmt.Sprintf("frames delivered %.2f %%, residual video loss %.3f %% (5 %% loss each way)", sum.DeliveredPct, sum.ResidualPct),
			"% per interval", []any{"frames delivered (decodable)", delivered, "video loss after NACK", residual}},
		{fmt.Sprintf("NACK repair: %.1f %% of missing video packets recovered", sum.RecoveredPct),
			"video packets / s", []any{"missing on arrival", missing, "recovered", recovered, "lost", lost}},
		{fmt.Sprintf("server memory: RSS drift %+.1f MB/h, heap drift %+.1f MB/h", sum.RSSDriftMBh, sum.HeapDriftMBh),
			"MB", []any{"RSS", rss, "Go heap (live after GC)", heap}},
		{fmt.Sprintf("CPU: server %.2f core mean, drift %+.3f core/h", sum.ServerCPUMean, sum.CPUDriftCoreh),
			"cores", []any{"server", cpu, "load tool", tool}},
		{fmt.Sprintf("population: %d joins, %d leaves; server descriptors drift %+.1f/h", sum.Joins, sum.Leaves, sum.FDDriftPerh),
			"count", []any{"client sessions", sessions, "server descriptors", fds}},
	}
	var plots [][]*plot.Plot
	for _, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = pn.ylabel
		p.Add(plotter.NewGrid())
		if err := plotutil.AddLines(p, pn.lines...); err != nil {
			return err
		}
		p.Legend.Top = true
		p.Y.Min = 0
		p.Y.Max = max(p.Y.Max*1.15, 1)
		plots = append(plots, []*plot.Plot{p})
	}
	return writePNG(plots, 720, 1250, file)
}
