package egress

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mmsghdr is struct mmsghdr: a msghdr and the length the kernel sent or received with it.
type Mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
}

// Mmsg makes one sendmmsg or recvmmsg call (trap) over hdrs, from a syscall.RawConn's Read or Write
// callback: done is false when the socket is not ready (the runtime then waits for it and calls
// again); n is how many messages the kernel took or filled, 0 with an error.
func Mmsg(trap, fd uintptr, hdrs []Mmsghdr) (n int, errno syscall.Errno, done bool) {
	r, _, e := unix.Syscall6(trap, fd, uintptr(unsafe.Pointer(&hdrs[0])), uintptr(len(hdrs)), 0, 0, 0)
	switch {
	case e == unix.EAGAIN || e == unix.EINTR:
		return 0, 0, false
	case e != 0:
		return 0, e, true
	}
	return int(r), 0, true
}
