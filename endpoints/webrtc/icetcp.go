package webrtc

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/kurento-go/kms/internal/netif"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// The ICE-TCP listener (RFC 6544 passive candidates, for peers whose UDP is blocked) is one TCP port
// per port range, shared by every endpoint of that range through pion's TCP mux: the first free
// port of the range, opened with the first endpoint that wants ICE-TCP and kept open. With
// networkInterfaces set it listens on those interfaces' addresses only (the same port on each),
// as KMS offers candidates on them only; otherwise on the wildcard address. A server has one
// range; tests run servers with several.
var iceTCP struct {
	sync.Mutex
	byKey map[portKey]*tcpMux
}

// portKey names a socket set by the addresses it binds, not by the interface names, so that an
// endpoint's networkInterfaces spelt another way ("lo,lo") shares it instead of opening more.
type portKey struct {
	minPort, maxPort uint16
	addresses        string
}

type tcpMux struct {
	mux ice.TCPMux
	err error
}

// sharedTCPMux returns the ICE-TCP mux of a port range (0-0: any port) and interface list (empty:
// all), opening its listeners on first use.
func sharedTCPMux(minPort, maxPort uint16, interfaces []string) (ice.TCPMux, error) {
	iceTCP.Lock()
	defer iceTCP.Unlock()
	addrs := []netip.Addr{{}} // the wildcard address
	if len(interfaces) > 0 {
		if addrs = bindableAddresses(interfaces); len(addrs) == 0 {
			return nil, fmt.Errorf("no address to listen on for ICE-TCP on interfaces %s", strings.Join(interfaces, ","))
		}
	}
	key := portKey{minPort, maxPort, fmt.Sprint(addrs)}
	if m := iceTCP.byKey[key]; m != nil {
		return m.mux, m.err
	}
	if iceTCP.byKey == nil {
		iceTCP.byKey = map[portKey]*tcpMux{}
	}
	m := &tcpMux{}
	iceTCP.byKey[key] = m
	var lns []*net.TCPListener
	var err error
	for p := int(minPort); p <= int(maxPort) && lns == nil; p++ {
		lns, err = listenAll(addrs, p, listenTCP)
	}
	if lns == nil {
		m.err = fmt.Errorf("no TCP port free for ICE-TCP in %d-%d: %v", minPort, maxPort, err)
		return nil, m.err
	}
	muxes := make([]ice.TCPMux, len(lns))
	for i, ln := range lns {
		muxes[i] = newICETCPMux(ln)
	}
	if len(muxes) == 1 {
		m.mux = muxes[0]
	} else {
		m.mux = ice.NewMultiTCPMuxDefault(muxes...)
	}
	return m.mux, nil
}

// bindableAddresses are the interfaces' addresses a listener can bind without a zone: link-local
// IPv6 addresses are left out (ICE-TCP toward them is of no use to a peer).
func bindableAddresses(interfaces []string) []netip.Addr {
	var out []netip.Addr
	for _, ip := range netif.Addresses(interfaces) {
		if !ip.IsLinkLocalUnicast() {
			out = append(out, ip)
		}
	}
	return out
}

// listenTCP listens on ip (the wildcard when invalid) and port (0: any), returning the port it got.
func listenTCP(ip netip.Addr, port int) (*net.TCPListener, int, error) {
	a := &net.TCPAddr{Port: port}
	if ip.IsValid() {
		a.IP = ip.AsSlice()
	}
	ln, err := net.ListenTCP("tcp", a)
	if err != nil {
		return nil, 0, err
	}
	return ln, ln.Addr().(*net.TCPAddr).Port, nil
}

// allNetworks are the candidate networks when ICE-TCP is on; pion's default is UDP only.
var allNetworks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6}
