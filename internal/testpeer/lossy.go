package testpeer

import (
	"math/rand/v2"
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// lossyNet is the host network, except that the UDP sockets it opens drop a fraction of the SRTP and
// SRTCP packets they send and receive: loss below SRTP, as a lossy link causes (dropping after
// decryption would leave the sequence number in SRTP's replay window and make retransmissions fail).
type lossyNet struct {
	*stdnet.Net
	loss float64
}

func newLossyNet(loss float64) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &lossyNet{Net: n, loss: loss}, nil
}

func (n *lossyNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &lossyConn{UDPConn: c, loss: n.loss}, nil
}

type lossyConn struct {
	transport.UDPConn
	loss float64
}

// isMedia tells RTP and RTCP apart from STUN and DTLS (RFC 7983): first byte 128..191.
func isMedia(b []byte) bool { return len(b) > 0 && b[0] >= 128 && b[0] <= 191 }

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if isMedia(b) && rand.Float64() < c.loss {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, addr)
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !isMedia(b[:n]) || rand.Float64() >= c.loss {
			return n, addr, err
		}
	}
}
