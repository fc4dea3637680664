package egress

import (
	"errors"
	"net"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// segmentCmsgSpace is the room a UDP_SEGMENT control message takes.
var segmentCmsgSpace = unix.CmsgSpace(2)

var gsoOnce struct {
	sync.Once
	ok bool
}

// gsoSupported tells whether the kernel segments UDP (UDP_SEGMENT, Linux 4.18), asked once per
// process on the first socket: a kernel without it refuses the socket option.
func gsoSupported(udp *net.UDPConn) bool {
	gsoOnce.Do(func() {
		rc, err := udp.SyscallConn()
		if err != nil {
			return
		}
		rc.Control(func(fd uintptr) {
			_, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
			gsoOnce.ok = err == nil
		})
	})
	return gsoOnce.ok
}

// appendSegmentSize appends the control message that makes the kernel cut a send into datagrams
// of size bytes.
func appendSegmentSize(oob []byte, size int) []byte {
	oob = oob[:segmentCmsgSpace]
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&oob[unix.CmsgLen(0)])) = uint16(size)
	return oob
}

// gsoRefused tells the errors of a device or path that cannot segment (no checksum offload:
// EIO; a route that does not take it: EINVAL, EOPNOTSUPP): such sends are retried one datagram
// per message and GSO stays off for the socket.
func gsoRefused(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)
}
