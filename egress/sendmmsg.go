package egress

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchWriter sends messages with sendmmsg from preallocated headers, iovecs, addresses and
// control messages. x/net's WriteBatch takes its scratch headers from a sync.Pool, which every
// garbage collection empties: the next fan-out would allocate them again.
type batchWriter struct {
	rc    syscall.RawConn
	v6    bool // the socket is IPv6: IPv4 destinations are v4-mapped
	hdrs  [Slots]Mmsghdr
	iovs  [Slots]unix.Iovec // one per datagram; a message takes a run of them
	names [Slots]unix.RawSockaddrInet6
	oob   [Slots][]byte
	count int                   // messages to send, from the first
	write func(fd uintptr) bool // bound once: a method value allocates
	n     int
	errno syscall.Errno
}

func newBatchWriter(rc syscall.RawConn, v6 bool) *batchWriter {
	w := &batchWriter{rc: rc, v6: v6}
	for i := range w.oob {
		w.oob[i] = make([]byte, segmentCmsgSpace)
	}
	w.write = w.sendmmsg
	return w
}

// setMessage makes message m the datagrams bufs (queued from slot firstIov on) to addr: with
// several, one UDP GSO send that the kernel cuts at the first one's size.
func (w *batchWriter) setMessage(m, firstIov int, bufs [][]byte, addr netip.AddrPort) {
	h := &w.hdrs[m].Hdr
	*h = unix.Msghdr{}
	for i, b := range bufs {
		iov := &w.iovs[firstIov+i]
		iov.Base = unsafe.SliceData(b)
		iov.SetLen(len(b))
	}
	h.Iov = &w.iovs[firstIov]
	h.SetIovlen(len(bufs))
	h.Name = (*byte)(unsafe.Pointer(&w.names[m]))
	h.Namelen = w.setAddr(m, addr)
	if len(bufs) > 1 {
		oob := appendSegmentSize(w.oob[m][:0], len(bufs[0]))
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// setAddr writes addr as message m's destination and returns its length.
func (w *batchWriter) setAddr(m int, addr netip.AddrPort) uint32 {
	sa := &w.names[m]
	ip := addr.Addr().Unmap()
	port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order, same offset in both families
	port[0], port[1] = byte(addr.Port()>>8), byte(addr.Port())
	if ip.Is4() && !w.v6 {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = ip.As4()
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Flowinfo, sa.Scope_id = 0, 0
	sa.Addr = ip.As16() // an IPv4 address v4-mapped
	return unix.SizeofSockaddrInet6
}

// send sends the first count messages set; it returns how many the kernel took.
func (w *batchWriter) send(count int) (int, error) {
	w.count, w.n, w.errno = count, 0, 0
	if err := w.rc.Write(w.write); err != nil {
		return 0, err
	}
	if w.errno != 0 {
		return 0, os.NewSyscallError("sendmmsg", w.errno)
	}
	return w.n, nil
}

func (w *batchWriter) sendmmsg(fd uintptr) bool {
	var done bool
	w.n, w.errno, done = Mmsg(unix.SYS_SENDMMSG, fd, w.hdrs[:w.count])
	return done
}
