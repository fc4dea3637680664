package native

/*
#include "bridge.h"
#include "wire.h"
*/
import "C"

import "errors"

// The media sockets of a worker process are served by C threads (wire.c), for the cost of isolation:
// a goroutine per direction would wake the worker's Go scheduler for every packet, and an appsink
// pulled from a goroutine keeps that goroutine in a cgo call between buffers, which makes the Go
// runtime's monitor thread poll every 20 µs. With these, the worker's Go runtime sleeps while media
// flows. An appsrc's streaming thread reads a socket of its own (not a reader thread that hands each
// frame over, one more wake-up per frame): a frame costs one system call on each side and nothing else.

// Frame layout the C side writes (gst/workerproto defines it; a test checks that both agree).
const (
	WireHeader    = C.KB_WIRE_HEADER
	WireMaxPacket = C.KB_WIRE_MAX_PACKET
	WireKindPush  = C.KB_WIRE_PUSH
	WireKindSink  = C.KB_WIRE_SINK
	WireKindEnd   = C.KB_WIRE_SINK_END
	WireKindEOS   = C.KB_WIRE_EOS
	WireKindSock  = C.KB_WIRE_SOCKET
	WireFirst     = C.KB_WIRE_FIRST
	WireLast      = C.KB_WIRE_LAST
	WireNext      = C.KB_WIRE_NEXT
	WireMaxBuffer = maxBuffer
)

// StartWireReader receives the appsrcs' sockets (ServeWire) on the media socket fd on a thread of its
// own, for the life of the process: when the server closes the socket the process exits.
func StartWireReader(fd int) error {
	if C.kb_wire_reader_start(C.int(fd), C.gsize(maxBuffer)) == 0 {
		return errors.New("gst: cannot start the media reader thread")
	}
	return nil
}

// ServeWire makes the frames on handle's socket (sent by the server on the media socket) go into the
// appsrc, until ForgetWire.
func (s *AppSrc) ServeWire(handle uint32) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.ptr == nil {
		return ErrClosed
	}
	if C.kb_wire_src_add(C.guint32(handle), s.ptr) == 0 {
		return errors.New("gst: the appsrc's socket did not arrive")
	}
	return nil
}

// ForgetWire stops the reading of handle's socket (before its pipeline stops) and drops it.
func ForgetWire(handle uint32) { C.kb_wire_src_remove(C.guint32(handle)) }

// SinkToWire sends every buffer of the named appsink to the media socket fd as frames of handle,
// from the streaming thread that made it, and a sink-end frame at its end of stream. Like
// HandleSink, it is set up before Start.
func (p *Pipeline) SinkToWire(name string, fd int, handle uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.appsinkBeforeStart(name, "SinkToWire")
	if err != nil {
		return err
	}
	link := C.kb_wire_sink_attach(e, C.int(fd), C.guint32(handle), C.gsize(maxBuffer))
	p.sinks = append(p.sinks, &appSink{name: name, ptr: e, wire: link}) // SinkEnded: nil, the end goes as a frame
	return nil
}
