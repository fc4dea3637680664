package egress

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func listen(t *testing.T) *net.UDPConn {
	t.Helper()
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u
}

func newConn(t *testing.T) *Conn {
	t.Helper()
	c, err := New(listen(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(u interface{ LocalAddr() net.Addr }) netip.AddrPort {
	return u.LocalAddr().(*net.UDPAddr).AddrPort()
}

// datagram is the i-th test payload for a destination: its index in the first bytes, then a
// pattern, so that a reordered, cut or mixed-up datagram shows.
func datagram(dest, i, size int) []byte {
	b := make([]byte, size)
	for k := range b {
		b[k] = byte(dest*31 + i + k)
	}
	copy(b, fmt.Sprintf("%03d:%04d", dest, i))
	return b
}

// receive reads n datagrams from u, failing on a timeout.
func receive(t *testing.T, u *net.UDPConn, n int) [][]byte {
	t.Helper()
	var out [][]byte
	buf := make([]byte, 70000)
	for len(out) < n {
		u.SetReadDeadline(time.Now().Add(10 * time.Second))
		m, err := u.Read(buf)
		if err != nil {
			t.Fatalf("after %d of %d datagrams: %v", len(out), n, err)
		}
		out = append(out, append([]byte(nil), buf[:m]...))
	}
	return out
}

func checkInOrder(t *testing.T, got [][]byte, dest int, sizes []int) {
	t.Helper()
	if len(got) != len(sizes) {
		t.Fatalf("destination %d: %d datagrams, want %d", dest, len(got), len(sizes))
	}
	for i, g := range got {
		if want := datagram(dest, i, sizes[i]); !bytes.Equal(g, want) {
			t.Fatalf("destination %d datagram %d: %d bytes %q..., want %d bytes %q...", dest, i, len(g), g[:min(8, len(g))], len(want), want[:8])
		}
	}
}

// Writes in a batching window leave in ⌈N/Slots⌉ sendmmsg calls, and every destination gets its
// datagrams whole and in order.
func TestBatchedWritesUseOneCallPerQueue(t *testing.T) {
	c := newConn(t)
	c.gso = false // interleaved destinations give GSO nothing to merge anyway
	exactBatches(t)
	const dests, perDest = 3, 50
	rx := []*net.UDPConn{listen(t), listen(t), listen(t)}
	before := Sent()
	Hold()
	for i := range perDest {
		for d := range dests {
			if _, err := c.WriteToAddrPort(datagram(d, i, 1000+d), addrOf(rx[d])); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := Sent(); s.Syscalls-before.Syscalls != uint64(dests*perDest/Slots) {
		t.Errorf("%d system calls while held, want %d (one per full queue)", s.Syscalls-before.Syscalls, dests*perDest/Slots)
	}
	Release()
	after := Sent()
	want := uint64((dests*perDest + Slots - 1) / Slots)
	if got := after.Syscalls - before.Syscalls; got != want {
		t.Errorf("%d datagrams took %d system calls, want %d", dests*perDest, got, want)
	}
	if got := after.Datagrams - before.Datagrams; got != dests*perDest {
		t.Errorf("%d datagrams counted, want %d", got, dests*perDest)
	}
	for d := range dests {
		sizes := make([]int, perDest)
		for i := range sizes {
			sizes[i] = 1000 + d
		}
		checkInOrder(t, receive(t, rx[d], perDest), d, sizes)
	}
}

// exactBatches lifts the delay bound for a test that counts system calls, which a loaded machine
// could otherwise split.
func exactBatches(t *testing.T) {
	saved := maxDelay
	maxDelay = time.Hour
	t.Cleanup(func() { maxDelay = saved })
}

// Nested holders: only the last Release sends; a write outside any window goes out at once.
func TestReleaseOfLastHolderSends(t *testing.T) {
	c := newConn(t)
	exactBatches(t)
	rx := listen(t)
	c.WriteToAddrPort(datagram(0, 0, 100), addrOf(rx))
	checkInOrder(t, receive(t, rx, 1), 0, []int{100})

	Hold()
	Hold()
	c.WriteToAddrPort(datagram(0, 0, 100), addrOf(rx))
	Release()
	rx.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := rx.Read(make([]byte, 2000)); err == nil {
		t.Fatal("a datagram left before the last holder released")
	}
	Release()
	checkInOrder(t, receive(t, rx, 1), 0, []int{100})
	Release() // unbalanced: ignored
	Hold()
	Release()
}

// A holder that does not let go (a fan-out blocked on a slow viewer) delays others' datagrams by
// maxDelay at most: the next Release or write past it sends them.
func TestOverlappingWindowsBoundTheDelay(t *testing.T) {
	c := newConn(t)
	rx := listen(t)
	Hold() // the holder that stays
	defer Release()
	c.WriteToAddrPort(datagram(0, 0, 100), addrOf(rx))
	time.Sleep(3 * maxDelay)
	Hold()
	Release()
	checkInOrder(t, receive(t, rx, 1), 0, []int{100})

	c.WriteToAddrPort(datagram(0, 0, 100), addrOf(rx))
	time.Sleep(3 * maxDelay)
	c.WriteToAddrPort(datagram(0, 1, 100), addrOf(rx))
	checkInOrder(t, receive(t, rx, 2), 0, []int{100, 100})
}

// Consecutive equal datagrams to one address leave as one GSO message; the receiver still gets
// each datagram on its own, the shorter last one included.
func TestGSORunArrivesAsSeparateDatagrams(t *testing.T) {
	c := newConn(t)
	if !c.gso {
		t.Skip("this kernel has no UDP GSO")
	}
	exactBatches(t)
	rx := listen(t)
	sizes := make([]int, 40)
	for i := range sizes {
		sizes[i] = 1200
	}
	sizes[len(sizes)-1] = 300
	before := Sent()
	Hold()
	for i, s := range sizes {
		c.WriteToAddrPort(datagram(0, i, s), addrOf(rx))
	}
	hold.Lock()
	msgs := c.pack(0)
	hold.Unlock()
	if msgs != 1 {
		t.Errorf("40 datagrams to one address packed in %d messages, want 1", msgs)
	}
	Release()
	if got := Sent().Syscalls - before.Syscalls; got != 1 {
		t.Errorf("%d system calls, want 1", got)
	}
	checkInOrder(t, receive(t, rx, len(sizes)), 0, sizes)
}

// Without GSO (a kernel without it, or a socket that refuses it) the same datagrams arrive the
// same way. SO_NO_CHECK makes the kernel refuse segmentation for real (EINVAL).
func TestGSOFallback(t *testing.T) {
	for _, tc := range []string{"off", "refused"} {
		t.Run(tc, func(t *testing.T) {
			c := newConn(t)
			if tc == "off" {
				c.gso = false
			} else {
				if !c.gso {
					t.Skip("this kernel has no UDP GSO")
				}
				rc, _ := c.udp.SyscallConn()
				rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_NO_CHECK, 1) })
			}
			rx := listen(t)
			sizes := []int{900, 900, 900, 900, 500, 700, 700}
			Hold()
			for i, s := range sizes {
				c.WriteToAddrPort(datagram(0, i, s), addrOf(rx))
			}
			Release()
			checkInOrder(t, receive(t, rx, len(sizes)), 0, sizes)
			if tc == "refused" && c.gso {
				t.Error("GSO still on after the kernel refused it")
			}
		})
	}
}

// ReadFrom serves every datagram of a recvmmsg batch with the address it came from.
func TestReadBatchKeepsSources(t *testing.T) {
	c := newConn(t)
	senders := []*net.UDPConn{listen(t), listen(t), listen(t)}
	const per = 30
	for i := range per {
		for d, s := range senders {
			if _, err := s.WriteToUDPAddrPort(datagram(d, i, 200+i), addrOf(c)); err != nil {
				t.Fatal(err)
			}
		}
	}
	next := make([]int, len(senders))
	buf := make([]byte, 2000)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range per * len(senders) {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		d := -1
		for k, s := range senders {
			if addrOf(s) == from.(*net.UDPAddr).AddrPort() {
				d = k
			}
		}
		if d < 0 {
			t.Fatalf("datagram from unknown %v", from)
		}
		if want := datagram(d, next[d], 200+next[d]); !bytes.Equal(buf[:n], want) {
			t.Fatalf("from sender %d: datagram %q..., want %q...", d, buf[:8], want[:8])
		}
		next[d]++
	}
}

// What a peer or a caller could make the Conn hold is bounded: a write too long to queue goes out
// alone after the queued ones, one too long for UDP is an error, a datagram longer than a read
// slot is dropped, and a short read buffer gets the datagram's beginning.
func TestHostileSizes(t *testing.T) {
	c := newConn(t)
	rx := listen(t)
	Hold()
	c.WriteToAddrPort(datagram(0, 0, 100), addrOf(rx))
	c.WriteToAddrPort(datagram(0, 1, 10000), addrOf(rx))
	if _, err := c.WriteToAddrPort(make([]byte, 70000), addrOf(rx)); err == nil {
		t.Error("a 70000-byte datagram was accepted")
	}
	c.WriteToAddrPort(datagram(0, 2, 100), addrOf(rx))
	Release()
	checkInOrder(t, receive(t, rx, 3), 0, []int{100, 10000, 100})

	tx := listen(t)
	tx.WriteToUDPAddrPort(make([]byte, readSlotSize+1), addrOf(c))
	tx.WriteToUDPAddrPort(datagram(0, 0, 1000), addrOf(c))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	small := make([]byte, 10)
	n, _, err := c.ReadFromAddrPort(small)
	if err != nil || n != 10 || !bytes.Equal(small, datagram(0, 0, 1000)[:10]) {
		t.Errorf("read %d bytes %q, %v: want the 1000-byte datagram's first 10 bytes (the oversized one dropped)", n, small[:n], err)
	}
}

// Holding, queueing and sending a fan-out allocates nothing, garbage collections in between
// included (they empty sync.Pools: x/net's WriteBatch took its headers from one).
func TestBatchingAllocatesNothing(t *testing.T) {
	c := newConn(t)
	rx := listen(t)
	go func() {
		buf := make([]byte, 2000)
		for {
			if _, err := rx.Read(buf); err != nil {
				return
			}
		}
	}()
	to := addrOf(rx)
	b := make([]byte, 1100)
	allocs := testing.AllocsPerRun(100, func() {
		Hold()
		for range 100 {
			c.WriteToAddrPort(b, to)
		}
		Release()
		runtime.GC()
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per fan-out of 100", allocs)
	}
}

// Reading datagrams (recvmmsg, the source address) allocates nothing either.
func TestReadingAllocatesNothing(t *testing.T) {
	c := newConn(t)
	tx := listen(t)
	b := make([]byte, 2000)
	payload := make([]byte, 1000)
	allocs := testing.AllocsPerRun(100, func() {
		for range 20 {
			tx.WriteToUDPAddrPort(payload, addrOf(c))
		}
		for range 20 {
			if _, _, err := c.ReadFromAddrPort(b); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 20 datagrams read", allocs)
	}
}

func TestClosedConnRefusesReads(t *testing.T) {
	c := newConn(t)
	c.Close()
	if _, _, err := c.ReadFrom(make([]byte, 10)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on a closed Conn: %v", err)
	}
}

// IPv6 sockets batch and read the same way, with IPv6 source addresses.
func TestIPv6(t *testing.T) {
	listen6 := func() *net.UDPConn {
		u, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
		if err != nil {
			t.Skip("no IPv6 loopback:", err)
		}
		t.Cleanup(func() { u.Close() })
		return u
	}
	c, err := New(listen6())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	peer := listen6()
	Hold()
	for i := range 5 {
		c.WriteToAddrPort(datagram(0, i, 500), addrOf(peer))
	}
	Release()
	checkInOrder(t, receive(t, peer, 5), 0, []int{500, 500, 500, 500, 500})
	peer.WriteToUDPAddrPort(datagram(1, 0, 300), addrOf(c))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2000)
	n, from, err := c.ReadFromAddrPort(b)
	if err != nil || from != addrOf(peer) || !bytes.Equal(b[:n], datagram(1, 0, 300)) {
		t.Errorf("read %d bytes from %v (%v), want 300 from %v", n, from, err, addrOf(peer))
	}
}
