package egress

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

const (
	// Slots is how many datagrams a Conn queues at most: a full queue is sent at once. 128 makes
	// a fan-out to 100 viewers one system call (256 KB per socket, one socket per address).
	Slots = 128
	// SlotSize bounds a queued datagram; a larger one (the default MTU is 1200) goes out alone,
	// after what was queued before it.
	SlotSize = 2048
	// readSlots datagrams of up to readSlotSize bytes (pion's receive MTU) come in per recvmmsg;
	// a longer datagram is dropped, as pion would truncate it.
	readSlots    = 16
	readSlotSize = 8192
	// A GSO send carries at most maxGSOSegments datagrams (the kernel's UDP_MAX_SEGMENTS) and
	// maxGSOBytes in all (one UDP datagram's worth, headers excluded).
	maxGSOSegments = 64
	maxGSOBytes    = 65000
)

// Conn is a net.PacketConn over a UDP socket that batches writes made between Hold and Release
// and reads through recvmmsg. It also offers the allocation-free ReadFromAddrPort and
// WriteToAddrPort that pion's UDP mux looks for. One goroutine reads; any may write.
type Conn struct {
	udp    *net.UDPConn
	writer *batchWriter

	// The send queue and GSO state are guarded by hold's mutex: Release flushes every Conn.
	gso    bool
	queued int
	dirty  bool // listed in hold.dirty
	closed bool
	data   []byte   // Slots * SlotSize
	bufs   [][]byte // the queued datagrams, slices of data
	to     []netip.AddrPort
	first  []int // the first queued datagram of each message
	nbufs  []int // and how many it carries

	rmu    sync.Mutex
	reader *batchReader
	rnext  int
	rcount int
	filter func(b []byte, from netip.AddrPort) bool
}

// New wraps a UDP socket; the Conn owns it from now on.
func New(udp *net.UDPConn) (*Conn, error) {
	rc, err := udp.SyscallConn()
	if err != nil {
		return nil, err
	}
	hold.Lock()
	hold.conns++
	if cap(hold.dirty) < hold.conns {
		hold.dirty = slices.Grow(hold.dirty, hold.conns) // the packet path's append never grows it
	}
	hold.Unlock()
	a, _ := udp.LocalAddr().(*net.UDPAddr)
	v6 := a != nil && a.IP.To4() == nil && len(a.IP) == net.IPv6len
	return &Conn{
		reader: newBatchReader(rc),
		writer: newBatchWriter(rc, v6),
		udp:    udp,
		gso:    gsoSupported(udp),
		data:   make([]byte, Slots*SlotSize),
		bufs:   make([][]byte, Slots),
		to:     make([]netip.AddrPort, Slots),
		first:  make([]int, Slots),
		nbufs:  make([]int, Slots),
	}, nil
}

// WriteToAddrPort sends b to addr now, or queues a copy while a batching window is open.
func (c *Conn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	hold.Lock()
	if hold.count == 0 || c.closed {
		hold.Unlock()
		return c.writeNow(b, addr)
	}
	if len(b) > SlotSize {
		// Too long to queue: it goes out after what was queued, keeping the order.
		c.flushLocked()
		hold.Unlock()
		return c.writeNow(b, addr)
	}
	if c.queued == Slots {
		c.flushLocked()
	}
	slot := c.data[c.queued*SlotSize : c.queued*SlotSize+len(b)]
	copy(slot, b)
	c.bufs[c.queued] = slot
	c.to[c.queued] = addr
	c.queued++
	if !c.dirty {
		if len(hold.dirty) == 0 {
			hold.oldest = time.Now()
		}
		c.dirty = true
		hold.dirty = append(hold.dirty, c)
	} else if time.Since(hold.oldest) > maxDelay {
		flushAllLocked()
	}
	hold.Unlock()
	return len(b), nil
}

func (c *Conn) writeNow(b []byte, addr netip.AddrPort) (int, error) {
	sent.syscalls.Add(1)
	n, err := c.udp.WriteToUDPAddrPort(b, addr)
	if err == nil {
		sent.datagrams.Add(1)
	}
	return n, err
}

// flushLocked sends the queue with as few sendmmsg calls as the queue needs (one, but for
// refused datagrams); the caller holds hold's mutex. A datagram the kernel refuses is dropped
// and counted, as UDP would lose it anyway.
func (c *Conn) flushLocked() {
	for next := 0; next < c.queued; {
		nmsgs := c.pack(next)
		sent.syscalls.Add(1)
		n, err := c.writer.send(nmsgs)
		if n > 0 {
			done := c.first[n-1] + c.nbufs[n-1]
			sent.datagrams.Add(uint64(done - next))
			next = done
			continue
		}
		if err == nil {
			break // sent nothing and said nothing: leave it rather than spin
		}
		if c.gso && c.nbufs[0] > 1 && gsoRefused(err) {
			c.gso = false // retried one datagram per message
			continue
		}
		sent.dropped.Add(uint64(c.nbufs[0]))
		next += c.nbufs[0]
	}
	c.queued = 0
	c.dirty = false
	clear(c.bufs)
}

// pack sets the writer's messages from the queued datagrams from first on and returns how many it
// made: with GSO, a run of datagrams to one address, all of one size but the last which may be
// shorter, is one message.
func (c *Conn) pack(from int) int {
	m := 0
	for i := from; i < c.queued; m++ {
		j := i + 1
		if c.gso {
			size, total := len(c.bufs[i]), len(c.bufs[i])
			for j < c.queued && j-i < maxGSOSegments && c.to[j] == c.to[i] &&
				len(c.bufs[j]) <= size && total+len(c.bufs[j]) <= maxGSOBytes {
				total += len(c.bufs[j])
				j++
				if len(c.bufs[j-1]) < size {
					break // a shorter datagram ends a GSO run
				}
			}
		}
		c.writer.setMessage(m, i, c.bufs[i:j], c.to[i])
		c.first[m], c.nbufs[m] = i, j-i
		i = j
	}
	return m
}

// ReadFromAddrPort returns the next datagram, reading a new batch with recvmmsg when the last one
// is used up. b shorter than the datagram gets its beginning, as with a UDP socket.
func (c *Conn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		for c.rnext < c.rcount {
			d, from, ok := c.reader.datagram(c.rnext)
			c.rnext++
			if ok && (c.filter == nil || !c.filter(d, from)) {
				return copy(b, d), from, nil
			}
		}
		n, err := c.reader.fill()
		c.rnext, c.rcount = 0, n
		sent.reads.Add(1)
		sent.readDatagrams.Add(uint64(n))
		if err != nil {
			return 0, netip.AddrPort{}, err
		}
	}
}

// SetReadFilter shows each datagram read to filter first; a datagram it returns true for is its
// own (the direct SRTP receive path, endpoints/webrtc/directrx.go) and ReadFromAddrPort goes on
// to the next. Set before the Conn is read; filter runs on the reading goroutine, must not block
// and must not keep b.
func (c *Conn) SetReadFilter(filter func(b []byte, from netip.AddrPort) bool) {
	c.rmu.Lock()
	c.filter = filter
	c.rmu.Unlock()
}

// ReadFrom implements net.PacketConn.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), nil
}

var errNotUDP = errors.New("egress: not a UDP address")

// WriteTo implements net.PacketConn.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errNotUDP
	}
	return c.WriteToAddrPort(b, ua.AddrPort())
}

// Close drops what is queued and closes the socket.
func (c *Conn) Close() error {
	hold.Lock()
	if !c.closed {
		hold.conns--
	}
	c.closed = true
	c.queued = 0
	clear(c.bufs)
	hold.Unlock()
	return c.udp.Close()
}

func (c *Conn) LocalAddr() net.Addr                { return c.udp.LocalAddr() }
func (c *Conn) SetDeadline(t time.Time) error      { return c.udp.SetDeadline(t) }
func (c *Conn) SetReadDeadline(t time.Time) error  { return c.udp.SetReadDeadline(t) }
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.udp.SetWriteDeadline(t) }
