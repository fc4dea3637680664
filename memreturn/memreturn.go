// Package memreturn gives memory back to the system after a burst. The Go runtime keeps the heap it
// grew to until the next collection lowers its goal; on an idle server that collection only comes
// with the two-minute forced GC, so a burst of big answers left a gigabyte resident for minutes.
package memreturn

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

const (
	// minRelease is how long at least separates two releases: a release is a full collection.
	minRelease = 20 * time.Second
	// slack is how much more than after the last release the runtime may hold before a release is
	// worth it.
	slack = 64 << 20
	// cgroupShare is the part of the cgroup's memory.max used as the soft memory limit.
	cgroupShare = 0.9
)

// GCPercent is the collector's goal when GOGC is not set: the heap may grow a quarter of its live
// size between collections instead of the runtime's default of all of it. A media server's live heap
// is mostly packet buffers and connection state, and the forwarding path allocates nothing, so
// collections stay rare whatever the number of sessions (at 300 loopback sessions: none in a 15 s
// window at 50, 0.9 % of the server's CPU at 25), while the headroom above the live heap, which is
// resident memory, shrinks: 0.62 MB per active session at 50, 0.51 at 25 (bench/results/rss-300).
const GCPercent = 25

// SetGCPercent applies GCPercent unless GOGC is set, which wins; it returns the percent in effect
// (-1: collection off).
func SetGCPercent(getenv func(string) string) int {
	if getenv("GOGC") != "" {
		percent := debug.SetGCPercent(100) // only reads it: the runtime parsed GOGC at start
		debug.SetGCPercent(percent)
		return percent
	}
	debug.SetGCPercent(GCPercent)
	return GCPercent
}

// LimitFromCgroup sets the runtime's soft memory limit to 90 % of the cgroup's memory.max, so that
// the collector works harder before the kernel kills the process. GOMEMLIMIT, when set, wins. It
// returns the limit set, 0 when none.
func LimitFromCgroup(getenv func(string) string, memoryMax string) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	b, err := os.ReadFile(memoryMax)
	if err != nil {
		return 0
	}
	max, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64) // "max" means none
	if err != nil || max <= 0 {
		return 0
	}
	limit := int64(float64(max) * cgroupShare)
	debug.SetMemoryLimit(limit)
	return limit
}

// Run checks every interval how much heap memory the runtime holds and, when it holds much more than
// after the last release and allocation has quietened (the burst is over), returns the free part to
// the system. It returns when ctx ends.
func Run(ctx context.Context, interval time.Duration, onRelease func(before, after uint64)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var r reader
	base, allocs := r.read()
	var last time.Time
	// again: the last release left much live (the burst's tail: connections closing, answers not yet
	// dropped), so one more is due once quiet, whatever the runtime holds. Without it the base would
	// stay at that tail and what it leaves behind, dead but uncollected, would wait for the forced GC.
	again := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		held, total := r.read()
		allocated := total - allocs
		allocs = total
		// A busy server reuses what it holds: release only when quiet, so steady state costs nothing.
		if (held < base+slack && !again) || allocated > held/4 || time.Since(last) < minRelease {
			continue
		}
		debug.FreeOSMemory()
		last = time.Now()
		after, total := r.read()
		if onRelease != nil {
			onRelease(held, after)
		}
		again = after >= base+slack
		// A burst that began during the release must not raise the base it will be measured from.
		base, allocs = min(held, after), total
	}
}

// reader reads the heap memory the runtime holds from the system (objects, free and unused spans,
// not yet released) and the bytes allocated so far.
type reader struct{ samples []metrics.Sample }

func (r *reader) read() (held, allocated uint64) {
	if r.samples == nil {
		r.samples = []metrics.Sample{
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/unused:bytes"},
			{Name: "/memory/classes/heap/free:bytes"},
			{Name: "/gc/heap/allocs:bytes"},
		}
	}
	metrics.Read(r.samples)
	for _, s := range r.samples[:3] {
		held += s.Value.Uint64()
	}
	return held, r.samples[3].Value.Uint64()
}
