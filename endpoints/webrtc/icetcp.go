package webrtc

import (
	"fmt"
	"net"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// The ICE-TCP listener (RFC 6544 passive candidates, for peers whose UDP is blocked) is one TCP port
// per port range, shared by every endpoint of that range through pion's TCP mux: the first free
// port of the range, opened with the first endpoint that wants ICE-TCP and kept open. A server has
// one range; tests run servers with several.
var iceTCP struct {
	sync.Mutex
	byRange map[[2]uint16]*tcpMux
}

type tcpMux struct {
	mux ice.TCPMux
	err error
}

// sharedTCPMux returns the ICE-TCP mux of a port range (0-0: any port), opening its listener on
// first use.
func sharedTCPMux(minPort, maxPort uint16) (ice.TCPMux, error) {
	iceTCP.Lock()
	defer iceTCP.Unlock()
	key := [2]uint16{minPort, maxPort}
	if m := iceTCP.byRange[key]; m != nil {
		return m.mux, m.err
	}
	if iceTCP.byRange == nil {
		iceTCP.byRange = map[[2]uint16]*tcpMux{}
	}
	m := &tcpMux{}
	iceTCP.byRange[key] = m
	var ln *net.TCPListener
	var err error
	for p := int(minPort); p <= int(maxPort); p++ {
		if ln, err = net.ListenTCP("tcp", &net.TCPAddr{Port: p}); err == nil {
			break
		}
	}
	if ln == nil {
		m.err = fmt.Errorf("no TCP port free for ICE-TCP in %d-%d: %v", minPort, maxPort, err)
		return nil, m.err
	}
	m.mux = webrtc.NewICETCPMux(nil, ln, 8)
	return m.mux, nil
}

// allNetworks are the candidate networks when ICE-TCP is on; pion's default is UDP only.
var allNetworks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6}
