package rtp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
)

// ErrNoPorts is returned when every port of the configured range is taken.
var ErrNoPorts = errors.New("no free UDP port")

// listen binds the sockets of one m-line inside [minPort, maxPort], as KMS does: RTP on an even
// port and, unless RTCP is multiplexed, RTCP on the next odd one. The search starts at a random
// even port so that endpoints created together do not race for the same one.
func listen(minPort, maxPort int, mux bool) (rtpConn, rtcpConn *net.UDPConn, err error) {
	if minPort <= 0 {
		minPort = 1024
	}
	if maxPort <= 0 || maxPort > 65535 {
		maxPort = 65535
	}
	first := minPort + minPort%2
	last := maxPort
	if !mux {
		last = maxPort - 1
	}
	if last < first {
		return nil, nil, fmt.Errorf("%w: range %d-%d holds no even port%s", ErrNoPorts, minPort, maxPort, pairText(mux))
	}
	n := (last-first)/2 + 1
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		port := first + 2*((start+i)%n)
		a, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
		if err != nil {
			continue
		}
		if mux {
			tune(a)
			return a, nil, nil
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{Port: port + 1})
		if err != nil {
			a.Close()
			continue
		}
		tune(a)
		tune(b)
		return a, b, nil
	}
	return nil, nil, fmt.Errorf("%w in range %d-%d%s", ErrNoPorts, minPort, maxPort, pairText(mux))
}

func pairText(mux bool) string {
	if mux {
		return ""
	}
	return " (RTP needs an even port and RTCP the next odd one)"
}

// tune gives a socket room for a video keyframe burst.
func tune(c *net.UDPConn) {
	_ = c.SetReadBuffer(1 << 20)
	_ = c.SetWriteBuffer(1 << 20)
}

func localPort(c *net.UDPConn) int {
	if c == nil {
		return 0
	}
	return c.LocalAddr().(*net.UDPAddr).Port
}

// localAddress is the address written in our SDP: the first address of the wanted family on an
// interface that is up (KMS takes the first address the host lists), loopback when there is none.
func localAddress(ipv6 bool) netip.Addr {
	for _, ip := range hostAddresses() {
		if ip.Is4() == !ipv6 && ip.IsGlobalUnicast() {
			return ip
		}
	}
	if ipv6 {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// hostAddresses are the addresses of this machine's interfaces that are up, loopback excluded.
func hostAddresses() []netip.Addr {
	var out []netip.Addr
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
					out = append(out, ip.Unmap())
				}
			}
		}
	}
	return out
}
