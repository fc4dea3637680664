package rtp

import (
	"errors"
	"fmt"
	"github.com/kurento-go/kms/internal/sockbuf"
	"math/rand/v2"
	"net"
	"net/netip"

	"github.com/kurento-go/kms/internal/netif"
)

// ErrNoPorts is returned when every port of the configured range is taken.
var ErrNoPorts = errors.New("no free UDP port")

// listen binds the sockets of one m-line inside [minPort, maxPort], as KMS does: RTP on an even
// port and, unless RTCP is multiplexed, RTCP on the next odd one, on ip (invalid: the wildcard
// address). The search starts at a random even port so that endpoints created together do not
// race for the same one.
func listen(ip netip.Addr, minPort, maxPort int, mux bool) (rtpConn, rtcpConn *net.UDPConn, err error) {
	var bindIP net.IP
	if ip.IsValid() {
		bindIP = ip.AsSlice()
	}
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
		a, err := net.ListenUDP("udp", &net.UDPAddr{IP: bindIP, Port: port})
		if err != nil {
			continue
		}
		if mux {
			tune(a)
			return a, nil, nil
		}
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: bindIP, Port: port + 1})
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
	sockbuf.Set(c, 1<<20, 1<<20)
}

func localPort(c *net.UDPConn) int {
	if c == nil {
		return 0
	}
	return c.LocalAddr().(*net.UDPAddr).Port
}

// localAddress is the address written in our SDP: the first address of the wanted family on an
// interface that is up, among the configured interfaces if any (KMS takes the first address the
// host lists), loopback when there is none.
func localAddress(ipv6 bool, interfaces []string) netip.Addr {
	for _, ip := range netif.Addresses(interfaces) {
		if ip.Is4() == !ipv6 && (ip.IsGlobalUnicast() || len(interfaces) > 0 && ip.IsLoopback()) {
			return ip
		}
	}
	if ipv6 {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}
