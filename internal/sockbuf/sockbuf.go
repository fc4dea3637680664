// Package sockbuf sizes sockets' kernel buffers for media bursts.
//
// SO_RCVBUF and SO_SNDBUF are capped by net.core.rmem_max and wmem_max, about 212 KB on a default
// install: a shared media port or a keyframe burst overflows that. A server running with
// CAP_NET_ADMIN (root, as in the official image) may go past the cap with the FORCE variants;
// otherwise the plain options give what the system allows.
package sockbuf

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Set asks for read and write buffers of the given sizes on c; 0 leaves one as it is. The sizes
// are a wish: the kernel may give less, and media then drops in bursts as it would anyway.
func Set(c syscall.Conn, read, write int) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) { SetFD(int(fd), read, write) })
}

// SetFD is Set on a file descriptor.
func SetFD(fd, read, write int) {
	for _, o := range []struct{ force, plain, size int }{
		{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, read},
		{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, write},
	} {
		if o.size > 0 && unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.force, o.size) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o.plain, o.size)
		}
	}
}
