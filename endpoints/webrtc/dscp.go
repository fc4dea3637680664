package webrtc

import (
	"fmt"
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// dscpCodepoints maps KMS's DSCPValue names to the codepoints KMS 7.3 puts on the wire (its own
// table, including its choices for the AUDIO_/VIDEO_/DATA_/CHROME_ priority names). NO_VALUE and
// NO_DSCP are absent: they leave the sockets alone.
var dscpCodepoints = map[string]uint8{
	"AUDIO_VERYLOW": 1, "AUDIO_LOW": 0, "AUDIO_MEDIUM": 46, "AUDIO_HIGH": 46,
	"VIDEO_VERYLOW": 1, "VIDEO_LOW": 0, "VIDEO_MEDIUM": 36, "VIDEO_MEDIUM_THROUGHPUT": 38,
	"VIDEO_HIGH": 36, "VIDEO_HIGH_THROUGHPUT": 34,
	"DATA_VERYLOW": 1, "DATA_LOW": 0, "DATA_MEDIUM": 10, "DATA_HIGH": 18,
	"CHROME_HIGH": 56, "CHROME_MEDIUM": 56, "CHROME_LOW": 0, "CHROME_VERYLOW": 8,
	"CS0": 0, "CS1": 8, "CS2": 16, "CS3": 24, "CS4": 32, "CS5": 40, "CS6": 48, "CS7": 56,
	"AF11": 10, "AF12": 12, "AF13": 14, "AF21": 18, "AF22": 20, "AF23": 22,
	"AF31": 26, "AF32": 28, "AF33": 30, "AF41": 34, "AF42": 36, "AF43": 38,
	"EF": 46, "VOICEADMIT": 44, "LE": 1,
}

// DSCP is the codepoint of a DSCPValue name; ok is false for NO_VALUE, NO_DSCP and unknown names.
func DSCP(name string) (codepoint uint8, ok bool) {
	codepoint, ok = dscpCodepoints[name]
	return codepoint, ok
}

// dscpNet opens the endpoint's UDP sockets (ICE host and server-reflexive candidates, TURN
// allocations) with the DSCP in the IP header's TOS / traffic class byte, as KMS does for the
// sockets of an endpoint with qosDscp. The shared ICE-TCP listener belongs to no endpoint and is
// left unmarked.
type dscpNet struct {
	*stdnet.Net
	tos int // DSCP << 2: the low two bits are ECN
}

func newDSCPNet(codepoint uint8) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &dscpNet{Net: n, tos: int(codepoint) << 2}, nil
}

func (n *dscpNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	return marked(n, c, err)
}

func (n *dscpNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	return marked(n, c, err)
}

// marked marks a socket just opened, closing it when the mark cannot be set.
func marked[C net.PacketConn](n *dscpNet, c C, err error) (C, error) {
	if err != nil {
		return c, err
	}
	if err := n.mark(c); err != nil {
		c.Close()
		var none C
		return none, err
	}
	return c, nil
}

// mark sets the TOS byte for IPv4 and the traffic class for IPv6; a socket of one family refuses
// the other's option, so one of the two succeeding is enough.
func (n *dscpNet) mark(c net.PacketConn) error {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return fmt.Errorf("DSCP: %T is not a UDP socket", c)
	}
	err4 := ipv4.NewPacketConn(uc).SetTOS(n.tos)
	err6 := ipv6.NewPacketConn(uc).SetTrafficClass(n.tos)
	if err4 != nil && err6 != nil {
		return err4
	}
	return nil
}
