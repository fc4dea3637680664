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
	f, err := os.Open(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == "rchar" || k == "wchar" {
			b, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			n += b
		}
	}
	return n
}

// linkBytes is the bytes received and sent on this network namespace's interfaces but loopback: in
// bench/run.sh, the one veth to the servers, which carries all media and signalling.
func linkBytes() int64 {
	f, err := os.Open("/proc/net/dev")
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 9 {
			continue
		}
		rx, _ := strconv.ParseInt(f[0], 10, 64)
		tx, _ := strconv.ParseInt(f[8], 10, 64)
		n += rx + tx
	}
	return n
}
