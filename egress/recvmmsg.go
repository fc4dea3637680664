package egress

import (
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchReader reads datagrams with recvmmsg into preallocated buffers and source addresses.
// x/net's ReadBatch would allocate a net.UDPAddr and its IP per datagram; this keeps the receive
// side of forwarding free of allocation.
type batchReader struct {
	rc    syscall.RawConn
	hdrs  [readSlots]Mmsghdr
	iovs  [readSlots]unix.Iovec
	names [readSlots]unix.RawSockaddrInet6 // room for either family
	bufs  [readSlots][]byte
	read  func(fd uintptr) bool // bound once: a method value allocates
	n     int
	errno syscall.Errno
}

func newBatchReader(rc syscall.RawConn) *batchReader {
	r := &batchReader{rc: rc}
	data := make([]byte, readSlots*readSlotSize)
	for i := range r.hdrs {
		r.bufs[i] = data[i*readSlotSize : (i+1)*readSlotSize]
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(readSlotSize)
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.read = r.recvmmsg
	return r
}

// fill reads the next batch, waiting for one; it returns how many datagrams came.
func (r *batchReader) fill() (int, error) {
	r.n, r.errno = 0, 0
	if err := r.rc.Read(r.read); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", r.errno)
	}
	return r.n, nil
}

func (r *batchReader) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		r.hdrs[i].Hdr.Flags = 0
	}
	var done bool
	r.n, r.errno, done = Mmsg(unix.SYS_RECVMMSG, fd, r.hdrs[:])
	return done
}

// datagram i of the last batch: its bytes and source, ok false when truncated or of an unknown
// address family.
func (r *batchReader) datagram(i int) ([]byte, netip.AddrPort, bool) {
	h := &r.hdrs[i]
	if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
		return nil, netip.AddrPort{}, false
	}
	sa := &r.names[i]
	var ip netip.Addr
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		ip = netip.AddrFrom4(sa4.Addr)
	case unix.AF_INET6:
		ip = netip.AddrFrom16(sa.Addr).Unmap()
	default:
		return nil, netip.AddrPort{}, false
	}
	port := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order, same offset in both families
	return r.bufs[i][:h.Len], netip.AddrPortFrom(ip, uint16(port[0])<<8|uint16(port[1])), true
}
