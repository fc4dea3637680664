package main

import (
	"bufio"
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// histogram of durations in nanoseconds, log-linear: 32 sub-buckets per power of two of
// microseconds (≈ 3% resolution), lock-free.
type histogram struct {
	counts [64 * 32]atomic.Uint64
}

// histograms of the current window's video latency: latency from the publisher's send to the
// kernel's receive time at the viewer's socket (what the server and the link add), client to the
// moment the viewer's reader got the packet (the clients' own receive path and queueing included).
type histograms struct {
	latency, client atomic.Pointer[histogram]
}

func newHistograms() *histograms {
	h := &histograms{}
	h.latency.Store(&histogram{})
	h.client.Store(&histogram{})
	return h
}

func bucketOf(us uint64) int {
	if us < 32 {
		return int(us)
	}
	e := bits.Len64(us) - 6 // us >> e is in [32, 64)
	return (e+1)*32 + int(us>>e) - 32
}

// lowerOf is the smallest value in bucket b, in microseconds.
func lowerOf(b int) uint64 {
	if b < 32 {
		return uint64(b)
	}
	e := b/32 - 1
	return uint64(b%32+32) << e
}

func (h *histogram) add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	b := bucketOf(uint64(ns / 1000))
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b].Add(1)
}

func (h *histogram) total() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// quantile returns the q-quantile in milliseconds (the middle of its bucket), -1 if empty.
func (h *histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return -1
	}
	want := uint64(q*float64(n-1)) + 1
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= want {
			lo, hi := lowerOf(i), lowerOf(i+1)
			return float64(lo+hi) / 2 / 1000
		}
	}
	return -1
}

// procStat is the CPU time (user+system, seconds) of a process and its RSS (bytes), from /proc.
type procStat struct {
	CPU float64
	RSS int64
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

func readProc(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	ps := procStat{CPU: float64(ut+st) / clockTicks}
	s, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	defer s.Close()
	sc := bufio.NewScanner(s)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			ps.RSS = kb << 10
		}
	}
	return ps, nil
}

// percentile of a sorted slice, -1 if empty.
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return -1
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}
