package main

import (
	"encoding/binary"
	"github.com/kurento-go/kms/egress"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// stampConn is a client's UDP socket as pion reads it: datagrams come in batches of recvmmsg (one
// system call for what queued while the tool was busy), each with the kernel's receive time
// (SO_TIMESTAMPNS: when the datagram reached the host's stack, before it waited in the socket
// queue for the tool). The time of each RTP datagram is kept by its clear-text SSRC and sequence
// number, which SRTP does not encrypt, so that a receiver can measure latency up to its socket,
// without the tool's own queueing (arrivalsAt).
type stampConn struct {
	*net.UDPConn
	rc   syscall.RawConn
	port uint16

	mu          sync.Mutex // pion reads from one goroutine; this keeps a second reader safe
	hdrs        [stampSlots]egress.Mmsghdr
	iovs        [stampSlots]unix.Iovec
	names       [stampSlots]unix.RawSockaddrInet6 // room for either family
	oob         [stampSlots][stampOOB]byte
	bufs        [stampSlots][stampSlotSize]byte
	next, count int
	errno       syscall.Errno
	read        func(fd uintptr) bool // bound once: a method value allocates

	arrivals arrivals
	rx       atomic.Pointer[directRx] // the receiving peer's direct path, once connected
}

const (
	stampSlots    = 8
	stampSlotSize = 1600 // more than pion's receive MTU (1460)
	stampOOB      = 64   // one SCM_TIMESTAMPNS message (32 bytes), with room
)

// stampConns finds a client's socket by its local port, for the receivers (arrivalsAt).
var stampConns sync.Map // uint16 → *stampConn

func newStampConn(u *net.UDPConn) (*stampConn, error) {
	rc, err := u.SyscallConn()
	if err != nil {
		return nil, err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, os.NewSyscallError("setsockopt SO_TIMESTAMPNS", serr)
	}
	c := &stampConn{UDPConn: u, rc: rc}
	for i := range c.hdrs {
		c.iovs[i].Base = &c.bufs[i][0]
		c.iovs[i].SetLen(stampSlotSize)
		c.hdrs[i].Hdr.Iov = &c.iovs[i]
		c.hdrs[i].Hdr.SetIovlen(1)
		c.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&c.names[i]))
		c.hdrs[i].Hdr.Control = &c.oob[i][0]
	}
	c.read = c.recvmmsg
	if a, ok := u.LocalAddr().(*net.UDPAddr); ok {
		c.port = uint16(a.Port)
		stampConns.Store(c.port, c)
	}
	return c, nil
}

func (c *stampConn) recvmmsg(fd uintptr) bool {
	for i := range c.hdrs {
		c.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		c.hdrs[i].Hdr.SetControllen(stampOOB)
		c.hdrs[i].Hdr.Flags = 0
	}
	var done bool
	c.count, c.errno, done = egress.Mmsg(unix.SYS_RECVMMSG, fd, c.hdrs[:])
	return done
}

// ReadFromAddrPort returns the next datagram of the batch, reading a new batch when it is used up.
func (c *stampConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for c.next < c.count {
			i := c.next
			c.next++
			h := &c.hdrs[i]
			from, ok := sockaddr(&c.names[i])
			if !ok || h.Hdr.Flags&unix.MSG_TRUNC != 0 {
				continue
			}
			d := c.bufs[i][:h.Len]
			at, ok := stampOf(c.oob[i][:h.Hdr.Controllen])
			if rx := c.rx.Load(); rx != nil && rx.receive(d, from, at) {
				continue
			}
			if ok {
				c.arrivals.record(d, at)
			}
			return copy(b, d), from, nil
		}
		c.next, c.count, c.errno = 0, 0, 0
		if err := c.rc.Read(c.read); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if c.errno != 0 {
			return 0, netip.AddrPort{}, os.NewSyscallError("recvmmsg", c.errno)
		}
	}
}

// ReadFrom implements net.PacketConn (pion prefers ReadFromAddrPort).
func (c *stampConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

func (c *stampConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}

func (c *stampConn) Close() error {
	stampConns.CompareAndDelete(c.port, c)
	return c.UDPConn.Close()
}

func sockaddr(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	var ip netip.Addr
	switch sa.Family {
	case unix.AF_INET:
		ip = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	case unix.AF_INET6:
		ip = netip.AddrFrom16(sa.Addr).Unmap()
	default:
		return netip.AddrPort{}, false
	}
	port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order, same offset in both families
	return netip.AddrPortFrom(ip, uint16(port[0])<<8|uint16(port[1])), true
}

// stampOf finds SCM_TIMESTAMPNS among a datagram's control messages: Unix nanoseconds.
func stampOf(oob []byte) (int64, bool) {
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		if h.Len < unix.SizeofCmsghdr || int(h.Len) > len(oob) {
			return 0, false
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && int(h.Len) >= unix.CmsgLen(16) {
			ts := (*unix.Timespec)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
			return ts.Nano(), true
		}
		oob = oob[min(len(oob), unix.CmsgSpace(int(h.Len)-unix.CmsgLen(0))):]
	}
	return 0, false
}

// arrivals keeps the receive time of the last arrivalSlots RTP packets of each of the first
// arrivalStreams SSRCs a socket receives (audio, video, a retransmission stream). Written by the
// socket's reader, read by the track readers.
type arrivals struct {
	streams [arrivalStreams]arrivalRing
}

const (
	arrivalStreams = 4
	arrivalSlots   = 256 // ≈ 5 s of video: a receiver looks its packet up a moment after it arrived
)

type arrivalRing struct {
	used  atomic.Bool
	ssrc  atomic.Uint32
	slots [arrivalSlots]struct {
		key atomic.Uint32 // 1<<16 | sequence number, 0 while written
		at  atomic.Int64
	}
}

// record keeps the arrival of d if it is RTP (RFC 7983: first byte 128-191; RFC 5761: payload types
// 64-95 with the marker bit are RTCP).
func (a *arrivals) record(d []byte, at int64) {
	if len(d) < 12 || d[0]>>6 != 2 || d[1] >= 192 && d[1] <= 223 {
		return
	}
	ssrc, seq := binary.BigEndian.Uint32(d[8:12]), binary.BigEndian.Uint16(d[2:4])
	r := a.ring(ssrc)
	if r == nil {
		for i := range a.streams {
			if r = &a.streams[i]; !r.used.Load() {
				r.ssrc.Store(ssrc)
				r.used.Store(true)
				break
			}
			r = nil
		}
		if r == nil {
			return
		}
	}
	s := &r.slots[seq%arrivalSlots]
	s.key.Store(0)
	s.at.Store(at)
	s.key.Store(1<<16 | uint32(seq))
}

func (a *arrivals) ring(ssrc uint32) *arrivalRing {
	for i := range a.streams {
		if r := &a.streams[i]; r.used.Load() && r.ssrc.Load() == ssrc {
			return r
		}
	}
	return nil
}

// at returns when the packet ssrc/seq reached the socket (Unix nanoseconds), if it is still known.
func (a *arrivals) at(ssrc uint32, seq uint16) (int64, bool) {
	r := a.ring(ssrc)
	if r == nil {
		return 0, false
	}
	s := &r.slots[seq%arrivalSlots]
	key := 1<<16 | uint32(seq)
	if s.key.Load() != key {
		return 0, false
	}
	at := s.at.Load()
	return at, s.key.Load() == key
}

// arrivalsAt returns the arrivals of the client socket on local port port, nil if there is none.
func arrivalsAt(port uint16) *arrivals {
	if c, ok := stampConns.Load(port); ok {
		return &c.(*stampConn).arrivals
	}
	return nil
}

// sendBatch is a batch of datagrams to one address, sent with one sendmmsg (the pacer's: a
// publisher's due packets).
type sendBatch struct {
	hdrs  [sendSlots]egress.Mmsghdr
	iovs  [sendSlots]unix.Iovec
	bufs  [sendSlots][stampSlotSize]byte
	name  unix.RawSockaddrInet6 // room for either family
	n     int                   // datagrams in the batch
	from  int                   // the first not sent yet
	sent  int                   // of them, sent by the last sendmmsg
	errno syscall.Errno
	send  func(fd uintptr) bool // bound once: a method value allocates
}

const sendSlots = 64 // more than a keyframe's packets

func newSendBatch() *sendBatch {
	b := &sendBatch{}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.hdrs[i].Hdr.Iov = &b.iovs[i]
		b.hdrs[i].Hdr.SetIovlen(1)
		b.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.name))
	}
	b.send = b.sendmmsg
	return b
}

// slot is the buffer of the next datagram; full when there is none.
func (b *sendBatch) slot() (buf []byte, full bool) {
	if b.n == sendSlots {
		return nil, true
	}
	return b.bufs[b.n][:], false
}

// add takes the datagram written into slot()'s buffer, n bytes long.
func (b *sendBatch) add(n int) {
	b.iovs[b.n].SetLen(n)
	b.n++
}

// flush sends the batch on c to addr, and empties it.
func (b *sendBatch) flush(c *stampConn, addr netip.AddrPort) error {
	defer func() { b.n = 0 }()
	if b.n == 0 {
		return nil
	}
	namelen := b.setName(addr)
	for i := range b.n {
		b.hdrs[i].Hdr.Namelen = namelen
	}
	for b.from = 0; b.from < b.n; b.from += b.sent {
		b.sent, b.errno = 0, 0
		if err := c.rc.Write(b.send); err != nil {
			return err
		}
		if b.errno != 0 {
			return os.NewSyscallError("sendmmsg", b.errno)
		}
	}
	return nil
}

func (b *sendBatch) sendmmsg(fd uintptr) bool {
	var done bool
	b.sent, b.errno, done = egress.Mmsg(unix.SYS_SENDMMSG, fd, b.hdrs[b.from:b.n])
	if done && b.errno == 0 && b.sent == 0 {
		b.errno = unix.EIO // sendmmsg sent nothing and said nothing: do not spin
	}
	return done
}

// setName writes addr as the batch's destination, returning its length.
func (b *sendBatch) setName(addr netip.AddrPort) uint32 {
	port := addr.Port()
	if a := addr.Addr(); a.Is4() {
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&b.name))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		return unix.SizeofSockaddrInet4
	}
	b.name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: addr.Addr().As16()}
	p := (*[2]byte)(unsafe.Pointer(&b.name.Port))
	p[0], p[1] = byte(port>>8), byte(port)
	return unix.SizeofSockaddrInet6
}
