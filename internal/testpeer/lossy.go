package testpeer

import (
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// Impairment is what a poor link does to the packets of a peer, both ways, as netem on both ends of a
// link would: loss of RTP and RTCP (handshakes, STUN and DTLS, are not dropped, so that set-up stays
// quick), and a delay of Delay ± Jitter (uniform) on every packet, which reorders them, plus a
// fraction Reorder sent at once, ahead of the delayed ones.
type Impairment struct {
	Loss    float64 // 0..1
	Delay   time.Duration
	Jitter  time.Duration
	Reorder float64 // 0..1
}

// ImpairedNet is the host network with the impairment applied below SRTP in the UDP sockets it opens
// (dropping after decryption would leave the sequence number in SRTP's replay window and make
// retransmissions fail). Use it where the kernel has no netem (SettingEngine.SetNet).
func ImpairedNet(im Impairment) (transport.Net, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &impairedNet{Net: n, im: im}, nil
}

type impairedNet struct {
	*stdnet.Net
	im Impairment
}

func (n *impairedNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	ic := &impairedConn{UDPConn: c, im: n.im}
	if n.im.Delay > 0 || n.im.Jitter > 0 {
		ic.in, ic.closed = make(chan datagram, 1024), make(chan struct{})
		go ic.receive()
	}
	return ic, nil
}

type impairedConn struct {
	transport.UDPConn
	im Impairment
	// With a delay, a goroutine reads the socket and hands each datagram to in when its delay is over.
	in        chan datagram
	closed    chan struct{}
	closeOnce sync.Once
}

type datagram struct {
	b    []byte
	addr net.Addr
}

// isMedia tells RTP and RTCP apart from STUN and DTLS (RFC 7983): first byte 128..191.
func isMedia(b []byte) bool { return len(b) > 0 && b[0] >= 128 && b[0] <= 191 }

func (c *impairedConn) drop(b []byte) bool { return isMedia(b) && rand.Float64() < c.im.Loss }

// delay is how long this packet is held: Delay ± Jitter, or nothing for the reordered fraction.
func (c *impairedConn) delay() time.Duration {
	if c.im.Reorder > 0 && rand.Float64() < c.im.Reorder {
		return 0
	}
	d := c.im.Delay
	if c.im.Jitter > 0 {
		d += time.Duration(rand.Int64N(int64(2*c.im.Jitter))) - c.im.Jitter
	}
	return max(d, 0)
}

func (c *impairedConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.drop(b) {
		return len(b), nil
	}
	if c.in == nil {
		return c.UDPConn.WriteTo(b, addr)
	}
	d := c.delay()
	if d == 0 {
		return c.UDPConn.WriteTo(b, addr)
	}
	cp := append([]byte(nil), b...)
	time.AfterFunc(d, func() { c.UDPConn.WriteTo(cp, addr) })
	return len(b), nil
}

func (c *impairedConn) receive() {
	buf := make([]byte, 1<<16)
	for {
		n, addr, err := c.UDPConn.ReadFrom(buf)
		if err != nil {
			c.Close()
			return
		}
		if c.drop(buf[:n]) {
			continue
		}
		dg := datagram{append([]byte(nil), buf[:n]...), addr}
		time.AfterFunc(c.delay(), func() {
			select {
			case c.in <- dg:
			case <-c.closed:
			default: // the reader is far behind: a full queue drops, as a router's does
			}
		})
	}
}

func (c *impairedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.in == nil {
		for {
			n, addr, err := c.UDPConn.ReadFrom(b)
			if err != nil || !c.drop(b[:n]) {
				return n, addr, err
			}
		}
	}
	select {
	case dg := <-c.in:
		return copy(b, dg.b), dg.addr, nil
	case <-c.closed:
		return 0, nil, net.ErrClosed
	}
}

func (c *impairedConn) Close() error {
	err := c.UDPConn.Close()
	if c.closed != nil {
		c.closeOnce.Do(func() { close(c.closed) })
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
