package main

import (
	"math"
	"testing"
)

// TestTargetRules: a CPU ratio against Janus counts only when ours kept up, and against a Janus that
// did not keep up only if Janus had used its whole core and ours at most the bound of a core; RSS
// per active session is the slope between the two largest loopback steps that kept up.
func TestTargetRules(t *testing.T) {
	row := func(server string, n int, cpu, perMin, rss, tool float64, pass bool) Row {
		return Row{Server: server, Scenario: "loopback", N: n, ServerCPUCore: cpu, CPUSecPerStreamMin: perMin,
			RSSMB: rss, ToolCPUCore: tool, Pass: pass}
	}
	res := &Results{Rows: []Row{
		row("ours", 20, 0.1, 0.3, 60, 0.2, true), row("janus", 20, 0.2, 0.5, 60, 0.2, true),
		row("ours", 100, 0.4, 0.24, 100, 0.4, true), row("janus", 100, 1.0, 0.6, 70, 0.5, false),
		row("ours", 200, 0.6, 0.18, 150, 0.6, true), row("janus", 200, 0.9, 0.27, 80, 0.9, false),
		row("ours", 300, 0.9, 0.18, 260, 0.95, false), row("janus", 300, 1.0, 0.2, 90, 0.7, false),
	}}
	for _, c := range []struct {
		n    int
		want bool
	}{
		{20, true},   // both kept up, 0.6 ≤ 0.8
		{100, true},  // Janus saturated, ours at 0.4 of a core
		{200, false}, // Janus failed below its core (the tool's limit): nothing to say
		{300, false}, // ours did not keep up
	} {
		v, ok := ratio("loopback", c.n)(res)
		if got := ok && ratioMet("loopback", c.n, 0.8)(res, v); got != c.want {
			t.Errorf("loopback N=%d: met %v, want %v", c.n, got, c.want)
		}
	}
	v, a, b, ok := rssSlope(res)
	if !ok || a.N != 100 || b.N != 200 || math.Abs(v-0.5) > 1e-9 {
		t.Errorf("RSS slope: %v MB per session between N=%d and %d (%v), want 0.5 between 100 and 200", v, a.N, b.N, ok)
	}
}
