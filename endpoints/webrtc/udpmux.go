package webrtc

import (
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/kurento-go/kms/internal/sockbuf"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/kurento-go/kms/egress"
	"github.com/pion/ice/v4"
)

// The shared UDP port: by default every endpoint of a port range puts its host candidates on one
// UDP port, the first of the range free on every interface address (one socket per address, as
// KMS offers candidates per address), through pion's UDP mux. Each socket is an egress.Conn, so a
// fan-out's datagrams to many viewers leave in one sendmmsg. Opened with the first endpoint that
// wants it, kept until CloseSharedSockets. An endpoint with qosDscp keeps sockets of its own:
// DSCP is a property of the socket, and marking the shared one would mark everybody's media.
var sharedUDP struct {
	sync.Mutex
	byKey map[portKey]*udpMux
}

type udpMux struct {
	mux ice.UDPMux
	err error
}

// sharedUfrags are the ICE username fragments of the endpoints on the shared port. Two endpoints
// of this server negotiating with each other (one's offer given to the other, as applications
// chaining servers do) would each see the other at an address of the shared port itself, which
// the mux cannot tell from its own; the one that processes the offer then opens sockets of its own.
var sharedUfrags sync.Map

// sharedCredentials makes and records the ICE credentials of an endpoint on the shared port.
func sharedCredentials() (ufrag, pwd string) {
	ufrag, pwd = rand.Text()[:16], rand.Text() // base32: ICE characters, 130 random bits each
	sharedUfrags.Store(ufrag, true)
	return ufrag, pwd
}

// offeredBySharedPort tells whether an offer comes from an endpoint of this server on the shared
// port.
func offeredBySharedPort(offer string) bool {
	for _, line := range strings.Split(offer, "\n") {
		if ufrag, ok := strings.CutPrefix(strings.TrimSpace(line), "a=ice-ufrag:"); ok {
			if _, ours := sharedUfrags.Load(ufrag); ours {
				return true
			}
		}
	}
	return false
}

// sharedUDPMux returns the UDP mux of a port range (0-0: any port) and interface list (empty: all
// but loopback, unless includeLoopback), opening its sockets on first use.
func sharedUDPMux(minPort, maxPort uint16, interfaces []string, includeLoopback bool) (ice.UDPMux, error) {
	sharedUDP.Lock()
	defer sharedUDP.Unlock()
	if len(interfaces) == 0 && includeLoopback {
		interfaces = interfaceNames()
	}
	addrs := bindableAddresses(interfaces)
	key := portKey{minPort, maxPort, fmt.Sprint(addrs)}
	if m := sharedUDP.byKey[key]; m != nil {
		return m.mux, m.err
	}
	if sharedUDP.byKey == nil {
		sharedUDP.byKey = map[portKey]*udpMux{}
	}
	m := &udpMux{}
	sharedUDP.byKey[key] = m
	if len(addrs) == 0 {
		m.err = errors.New("no interface address to listen on")
		return nil, m.err
	}
	var conns []*net.UDPConn
	var err error
	for p := int(minPort); p <= int(maxPort) && conns == nil; p++ {
		conns, err = listenAll(addrs, p, listenUDP)
	}
	if conns == nil {
		m.err = fmt.Errorf("no UDP port free on %v in %d-%d: %v", addrs, minPort, maxPort, err)
		return nil, m.err
	}
	logs := newPionLogs(slog.Default().With("component", "udpmux"))
	muxes := make([]ice.UDPMux, len(conns))
	for i, c := range conns {
		ec, err := egress.New(c)
		if err != nil {
			for _, c := range conns[i:] {
				c.Close()
			}
			for _, opened := range muxes[:i] {
				opened.Close()
			}
			m.err = err
			return nil, err
		}
		filterDirectRx(ec) // before pion reads it: the direct SRTP path reads from it (directrx.go)
		muxes[i] = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: ec, Logger: logs.NewLogger("udpmux")})
		registerSharedConn(ec) // the direct SRTP path writes to it (direct.go)
	}
	m.mux = ice.NewMultiUDPMuxDefault(muxes...)
	return m.mux, nil
}

// HasSharedPort tells whether the shared UDP port of a port range is open (on some interfaces).
func HasSharedPort(minPort, maxPort uint16) bool {
	sharedUDP.Lock()
	defer sharedUDP.Unlock()
	for key, m := range sharedUDP.byKey {
		if key.minPort == minPort && key.maxPort == maxPort && m.mux != nil {
			return true
		}
	}
	return false
}

// CloseSharedSockets closes the shared UDP sockets, at shutdown once every endpoint is released.
func CloseSharedSockets() {
	sharedUDP.Lock()
	defer sharedUDP.Unlock()
	for key, m := range sharedUDP.byKey {
		if m.mux != nil {
			m.mux.Close()
		}
		delete(sharedUDP.byKey, key)
	}
	sharedConns.Clear()
	rxTables.Clear()
}

func interfaceNames() []string {
	ifaces, _ := net.Interfaces()
	names := make([]string, len(ifaces))
	for i, ifc := range ifaces {
		names[i] = ifc.Name
	}
	return names
}

// listenUDP binds ip and port (0: any), returning the port it got.
func listenUDP(ip netip.Addr, port int) (*net.UDPConn, int, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip.AsSlice(), Port: port})
	if err != nil {
		return nil, 0, err
	}
	// The shared port takes every session's media on one socket: the default buffer (≈ 100
	// datagrams) overflowed under 300 loopback sessions' bursts (kms-bench, issue 11).
	sockbuf.Set(c, 4<<20, 0)
	return c, c.LocalAddr().(*net.UDPAddr).Port, nil
}

// listenAll opens a socket on port on every address, or none if one of them fails. Port 0 takes
// the port the first address gets for all.
func listenAll[L io.Closer](addrs []netip.Addr, port int, listen func(netip.Addr, int) (L, int, error)) ([]L, error) {
	var out []L
	for _, ip := range addrs {
		l, got, err := listen(ip, port)
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		port = got
		out = append(out, l)
	}
	return out, nil
}
