package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// stepMarks are a target's counters when its last row ended: each row reports what its step (set-up
// and window) cost, which is where the signalling happens.
type stepMarks struct {
	requests  int64
	routerCPU float64
	routerIO  int64
	link      int64
}

func (r *runner) marks(t *target) stepMarks {
	m := stepMarks{link: linkBytes()}
	if t.kms != nil {
		m.requests = t.kms.requests()
	}
	if t.routerPID != 0 {
		ps, _ := readProc(t.routerPID)
		m.routerCPU = ps.CPU
		m.routerIO = ioBytes(t.routerPID)
	}
	return m
}

// signalling fills a Kurento row's request count and processOffer round trips and, through a router,
// the router's CPU and I/O against the bytes on the link: what shows that media bypasses the router.
func (r *runner) signalling(t *target, row *Row) {
	if t.kms == nil {
		return
	}
	now := r.marks(t)
	row.Requests = now.requests - t.last.requests
	rtts := t.kms.takeOfferRTTs()
	row.OfferP50ms, row.OfferP99ms = percentile(rtts, 0.5), percentile(rtts, 0.99)
	row.LinkMB = float64(now.link-t.last.link) / 1e6
	if t.routerPID != 0 {
		row.RouterCPUSec = now.routerCPU - t.last.routerCPU
		if row.Requests > 0 {
			row.RouterCPUmsPerRequest = 1000 * row.RouterCPUSec / float64(row.Requests)
		}
		row.RouterIOMB = float64(now.routerIO-t.last.routerIO) / 1e6
	}
	t.last = now
}

// ioBytes is what a process read and wrote through read/write system calls (/proc/PID/io rchar +
// wchar): for the router, all of its WebSocket and Redis traffic (Go reads and writes TCP sockets so).
func ioBytes(pid int) int64 {
	var n int64
	eachLine(fmt.Sprintf("/proc/%d/io", pid), func(l string) {
		k, v, _ := strings.Cut(l, ":")
		if k == "rchar" || k == "wchar" {
			b, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += b
		}
	})
	return n
}

// linkBytes is the bytes received and sent on this network namespace's interfaces but loopback: in
// bench/run.sh, the one veth to the servers, which carries all media and signalling.
func linkBytes() int64 {
	var n int64
	eachLine("/proc/net/dev", func(l string) {
		name, v, ok := strings.Cut(l, ":")
		f := strings.Fields(v)
		if !ok || strings.TrimSpace(name) == "lo" || len(f) < 9 {
			return
		}
		rx, _ := strconv.ParseInt(f[0], 10, 64)
		tx, _ := strconv.ParseInt(f[8], 10, 64)
		n += rx + tx
	})
	return n
}

// eachLine calls fn with each line of a file; a file that cannot be read has none.
func eachLine(path string, fn func(string)) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fn(sc.Text())
	}
}
