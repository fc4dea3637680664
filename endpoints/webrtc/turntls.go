package webrtc

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// TURN over TLS (turnURL ...?transport=tls) is spoken as KMS's libnice speaks it: the server's
// certificate is not checked. A turnURL names an IP address, which TURN servers' certificates rarely
// carry, and pion would refuse them. So pion is given the server as turn:...?transport=tcp, and its
// TCP connection to that address comes back wrapped in TLS by the endpoint's network.

// turnsOverTCP rewrites the turns: servers among servers to TCP ones and returns their host:port.
func turnsOverTCP(servers []webrtc.ICEServer) (tlsAddrs []string) {
	for i := range servers {
		for j, u := range servers[i].URLs {
			if rest, ok := strings.CutPrefix(u, "turns:"); ok {
				hostPort, _, _ := strings.Cut(rest, "?")
				servers[i].URLs[j] = "turn:" + hostPort + "?transport=tcp"
				tlsAddrs = append(tlsAddrs, hostPort)
			}
		}
	}
	return tlsAddrs
}

// turnTLSNet wraps the TCP connections to the TURN servers in tlsAddrs in TLS.
type turnTLSNet struct {
	transport.Net
	tlsAddrs []string
}

func withTURNTLS(base transport.Net, tlsAddrs []string) (transport.Net, error) {
	if base == nil {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		base = n
	}
	return &turnTLSNet{Net: base, tlsAddrs: tlsAddrs}, nil
}

func (n *turnTLSNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (transport.TCPConn, error) {
	c, err := n.Net.DialTCP(network, laddr, raddr)
	if err != nil || raddr == nil || !n.isTURN(raddr) {
		return c, err
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // as libnice: see above
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return &tlsTCPConn{TCPConn: c, tls: tc}, nil
}

func (n *turnTLSNet) isTURN(addr *net.TCPAddr) bool {
	for _, a := range n.tlsAddrs {
		if ap, err := net.ResolveTCPAddr("tcp", a); err == nil && ap.IP.Equal(addr.IP) && ap.Port == addr.Port {
			return true
		}
	}
	return false
}

// tlsTCPConn is a TCP connection whose reads and writes go through TLS; the rest (addresses,
// deadlines) is the socket's.
type tlsTCPConn struct {
	transport.TCPConn
	tls *tls.Conn
}

func (c *tlsTCPConn) Read(b []byte) (int, error)  { return c.tls.Read(b) }
func (c *tlsTCPConn) Write(b []byte) (int, error) { return c.tls.Write(b) }
func (c *tlsTCPConn) Close() error                { return c.tls.Close() }
