package isolation

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// threadStat is one thread's CPU ticks and context switches (voluntary and not): where a mode's CPU
// goes, and how often its threads wake.
type threadStat struct {
	ticks, switches int64
}

// threadSnapshot reads every thread of pid and its descendants; the key is "server/NAME" or
// "worker/NAME" (threads of the same name add up).
func threadSnapshot(pid int) map[string]map[int]threadStat {
	out := map[string]map[int]threadStat{}
	for _, p := range append(descendants(pid), pid) {
		role := "worker"
		if p == pid {
			role = "server"
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			dir := filepath.Join(fmt.Sprintf("/proc/%d/task", p), t.Name())
			comm, err1 := os.ReadFile(filepath.Join(dir, "comm"))
			stat, err2 := os.ReadFile(filepath.Join(dir, "stat"))
			status, err3 := os.ReadFile(filepath.Join(dir, "status"))
			if err1 != nil || err2 != nil || err3 != nil {
				continue
			}
			s := string(stat)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			var sw int64
			for _, line := range strings.Split(string(status), "\n") {
				if name, v, ok := strings.Cut(line, ":"); ok && strings.HasSuffix(name, "ctxt_switches") {
					n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
					sw += n
				}
			}
			key := role + "/" + strings.TrimSpace(string(comm))
			if out[key] == nil {
				out[key] = map[int]threadStat{}
			}
			tid, _ := strconv.Atoi(t.Name())
			out[key][tid] = threadStat{ut + st, sw}
		}
	}
	return out
}

// threadReport is the CPU (% of a core) and context switches per second of each thread name over
// a window, largest first.
func threadReport(before, after map[string]map[int]threadStat, seconds float64) string {
	type row struct {
		key       string
		cpu, swps float64
		threads   int
	}
	var rows []row
	for key, tids := range after {
		var r row
		r.key = key
		for tid, a := range tids {
			b := before[key][tid] // a thread born in the window counts from zero
			r.cpu += float64(a.ticks-b.ticks) / 100 / seconds * 100
			r.swps += float64(a.switches-b.switches) / seconds
			r.threads++
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int { return int(b.cpu*1000) - int(a.cpu*1000) })
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-32s %7s %9s %9s\n", "process/thread", "threads", "cpu %", "switch/s")
	for _, r := range rows {
		if r.cpu == 0 && r.swps < 1 {
			continue
		}
		fmt.Fprintf(&sb, "%-32s %7d %9.1f %9.0f\n", r.key, r.threads, r.cpu, r.swps)
	}
	return sb.String()
}

// perfRecord samples the server and its workers with perf over the window when ISOLATION_PERF names
// a directory (perf report -i DIR/PID-SCENARIO.data --sort comm,dso,sym); the returned function stops it.
func perfRecord(b *testing.B, pid int, scenario string) func() {
	dir := os.Getenv("ISOLATION_PERF")
	if dir == "" {
		return func() {}
	}
	var pids []string
	for _, p := range append(descendants(pid), pid) {
		pids = append(pids, strconv.Itoa(p))
	}
	out := filepath.Join(dir, fmt.Sprintf("%d-%s.data", pid, scenario))
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-o", out, "-p", strings.Join(pids, ","))
	if err := cmd.Start(); err != nil {
		b.Logf("perf: %v", err)
		return func() {}
	}
	b.Logf("perf samples of pids %s in %s", strings.Join(pids, ","), out)
	return func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
}
