// Package egress is batched UDP I/O on a shared socket: the datagrams written during a fan-out are
// queued and leave together in one sendmmsg (with UDP GSO when consecutive ones go to the same
// address), and reads are served from recvmmsg batches. One socket carries every WebRtcEndpoint of
// a port, so one system call carries a packet to many viewers instead of one per viewer.
package egress

import (
	"sync"
	"sync/atomic"
	"time"
)

// hold is the one batching window of the process: while a goroutine holds it, writes on every Conn
// are queued; the last Release sends what was queued. A single window (not one per goroutine)
// keeps Hold and Release free of allocation and bookkeeping; overlapping fan-outs only make the
// batches larger. Windows of many goroutines may overlap without a gap for long (busy publishers,
// a holder blocked on a slow TCP viewer), so a full queue is sent at once and queued datagrams
// never wait more than maxDelay: the next write or Release past it sends them.
var hold struct {
	sync.Mutex
	count  int
	dirty  []*Conn   // conns with queued datagrams, room for every Conn made
	conns  int       // Conns made (New)
	oldest time.Time // when the oldest queued datagram was queued
}

// maxDelay bounds how long a datagram waits in a queue while windows overlap: long enough for a
// fan-out to a few hundred viewers on a loaded core to stay one batch. A variable for the tests
// that count system calls exactly.
var maxDelay = 2 * time.Millisecond

// Hold opens a batching window (or joins the one open): writes are queued until the matching
// Release of the last holder.
func Hold() {
	hold.Lock()
	hold.count++
	hold.Unlock()
}

// Release closes a window opened by Hold; the last one out sends every queued datagram.
func Release() {
	hold.Lock()
	if hold.count > 0 {
		hold.count--
	}
	if hold.count == 0 || len(hold.dirty) > 0 && time.Since(hold.oldest) > maxDelay {
		flushAllLocked()
	}
	hold.Unlock()
}

// flushAllLocked sends every queued datagram; the caller holds hold's mutex.
func flushAllLocked() {
	for i, c := range hold.dirty {
		c.flushLocked()
		hold.dirty[i] = nil
	}
	hold.dirty = hold.dirty[:0]
}

var sent struct {
	syscalls, datagrams, dropped, reads, readDatagrams atomic.Uint64
}

// Counts are the process's totals since start on its Conns, for metrics and benchmarks.
type Counts struct {
	Syscalls      uint64 // send system calls (sendmmsg, sendto)
	Datagrams     uint64 // datagrams handed to the kernel
	Dropped       uint64 // datagrams the kernel refused (unreachable address and the like)
	Reads         uint64 // recvmmsg calls
	ReadDatagrams uint64 // datagrams they returned
}

// Sent returns the totals.
func Sent() Counts {
	return Counts{Syscalls: sent.syscalls.Load(), Datagrams: sent.datagrams.Load(), Dropped: sent.dropped.Load(),
		Reads: sent.reads.Load(), ReadDatagrams: sent.readDatagrams.Load()}
}
