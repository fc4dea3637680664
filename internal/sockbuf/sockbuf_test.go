package sockbuf

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The buffer a socket gets: past the system's cap when the process may force it, else up to it.
func TestSetGoesPastTheCapWhenAllowed(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Past twice the cap: the plain options, which the kernel caps and then doubles, cannot give it.
	capped := max(sysctl(t, "rmem_max"), sysctl(t, "wmem_max"))
	want := 4 * capped
	Set(c, want, want)
	raw, _ := c.SyscallConn()
	var rcv, snd int
	raw.Control(func(fd uintptr) {
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	floor := want // Linux reports twice what was set, for its bookkeeping
	if os.Geteuid() != 0 {
		floor = min(sysctl(t, "rmem_max"), sysctl(t, "wmem_max"))
	}
	t.Logf("asked %d, got receive %d, send %d (euid %d)", want, rcv, snd, os.Geteuid())
	if rcv < floor || snd < floor {
		t.Errorf("buffers %d/%d, want at least %d", rcv, snd, floor)
	}
}

func sysctl(t *testing.T, name string) int {
	b, err := os.ReadFile("/proc/sys/net/core/" + name)
	if err != nil {
		t.Skip(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
