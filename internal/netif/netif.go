// Package netif lists the addresses of this host's network interfaces, limited to the interfaces
// the configuration names (WebRtcEndpoint networkInterfaces, KMS_NETWORK_INTERFACES).
package netif

import (
	"net"
	"net/netip"
	"slices"
)

// Addresses are the addresses of the interfaces that are up: the named ones (loopback included
// when named), or every interface but loopback when names is empty.
func Addresses(names []string) []netip.Addr {
	var out []netip.Addr
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		if len(names) == 0 && ifc.Flags&net.FlagLoopback != 0 || len(names) > 0 && !slices.Contains(names, ifc.Name) {
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
