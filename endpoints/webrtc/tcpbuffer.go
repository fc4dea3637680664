package webrtc

import (
	"net"

	"github.com/pion/ice/v4"
)

// What a peer over ICE-TCP that stops reading can make the server hold: the kernel's send buffer of
// its connection (left to autotuning it grows to megabytes) and pion's write buffer in front of it
// (4 MB by default). Beyond, writes to it fail at once and its sender counts the packets as dropped.
// 128 KB each (the kernel doubles its figure) carry 10 Mbit/s at 100 ms of round trip.
const (
	iceTCPSendBuffer  = 128 << 10
	iceTCPWriteBuffer = 128 << 10
)

// newICETCPMux serves the passive ICE-TCP candidates of one listener.
func newICETCPMux(ln *net.TCPListener) ice.TCPMux {
	return ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: boundedListener{ln}, ReadBufferSize: 8,
		WriteBufferSize: iceTCPWriteBuffer})
}

// boundedListener gives each accepted ICE-TCP connection the bounded send buffer.
type boundedListener struct{ *net.TCPListener }

func (l boundedListener) Accept() (net.Conn, error) {
	c, err := l.TCPListener.AcceptTCP()
	if err != nil {
		return nil, err
	}
	c.SetWriteBuffer(iceTCPSendBuffer)
	return c, nil
}
