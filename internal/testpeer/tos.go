package testpeer

import (
	"net"
	"sync/atomic"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"golang.org/x/sys/unix"
)

// TOSCounts counts the datagrams a peer received by the IPv4 TOS byte they carried, as a router
// classifying them by DSCP would see them (set Options.TOS; the peer then uses IPv4 only).
type TOSCounts struct{ n [256]atomic.Int64 }

// Count is how many datagrams arrived with this TOS byte (DSCP << 2 | ECN).
func (c *TOSCounts) Count(tos byte) int64 { return c.n[tos].Load() }

// tosNet opens UDP sockets that report the TOS byte of each datagram they receive (IP_RECVTOS).
type tosNet struct {
	*stdnet.Net
	counts *TOSCounts
}

func newTOSNet(counts *TOSCounts) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &tosNet{Net: n, counts: counts}, nil
}

func (n *tosNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	raw, ok := c.(*net.UDPConn)
	if !ok {
		return c, nil
	}
	var serr error
	rc, err := raw.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVTOS, 1) })
	}
	if err == nil {
		err = serr
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return &tosConn{UDPConn: c, raw: raw, counts: n.counts}, nil
}

// tosConn embeds the interface, not *net.UDPConn, so that ICE reads through ReadFrom and not
// through the socket's own ReadFromAddrPort.
type tosConn struct {
	transport.UDPConn
	raw    *net.UDPConn
	counts *TOSCounts
}

func (c *tosConn) ReadFrom(b []byte) (int, net.Addr, error) {
	oob := make([]byte, 64)
	n, oobn, _, addr, err := c.raw.ReadMsgUDP(b, oob)
	if err != nil {
		return n, nil, err
	}
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_TOS && len(m.Data) > 0 {
			c.counts.n[m.Data[0]].Add(1)
		}
	}
	return n, addr, nil
}
