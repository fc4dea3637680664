// Package workerproto is the wire format between the server and a GStreamer worker process.
//
// Control travels over a Unix stream socket as gob values: the server sends Requests, the worker
// answers each with a Reply of the same ID and volunteers Events (bus messages). Media travels over
// a SOCK_SEQPACKET socket, one frame per packet: a 16-byte header (kind, fragment flags, handle,
// timestamp) and the payload. A buffer bigger than MaxPayload is cut into fragments that the
// receiver's Assembler puts back together.
package workerproto

import (
	"encoding/binary"
	"encoding/gob"
	"errors"

	"github.com/kurento-go/kms/gst/native"
)

func init() {
	// Values of Message.Fields and Reply.Val travel as interfaces.
	gob.Register([]any(nil))
	gob.Register(map[string]any(nil))
}

// Op is the operation a Request asks for.
type Op uint8

// Operations. Pipe names the pipeline, Handle the appsrc, sink or overlay the server numbered.
const (
	OpNewPipeline Op = iota + 1 // Desc → pipeline Pipe
	OpClose                     // Pipe
	OpStart
	OpInsert // Desc, Bin, Props, Name (after), Name2 (before) → Str (the element's name)
	OpSet    // Name (element), Name2 (property), Value
	OpGet    // Name, Name2 → Val
	OpForceKeyUnit
	OpAppSrc // Name → Handle
	OpWatchKeyUnit
	OpHandleSink // Name, Handle
	OpWatchSink
	OpSetState // Num
	OpPosition // → Num
	OpDuration
	OpSeeking // → Flag, Num, Num2
	OpSeek    // Num, Flag (accurate), Flag2 (playing)
	OpDot     // Num → Str
	OpRTSPSettings
	OpOverlay // Name, Handle
	OpOverlaySet
	OpFacesFrom
	OpDetections // → Num
	OpDrawn
	OpVersion    // → Str
	OpHasElement // Name → Flag
	OpParse      // Desc, Bin, Props, Name (a property to read, or "") → Str, Str2, Num (kind), Val
)

// Prop is a property set on an element made apart (replayed when it is built again).
type Prop struct{ Name, Value string }

// Request is one control operation sent to a worker.
type Request struct {
	ID           uint64
	Op           Op
	Pipe, Handle uint32
	Name, Name2  string
	Value, Desc  string
	Bin          bool
	Props        []Prop
	Num          int64
	Flag, Flag2  bool
	Images       []native.OverlayImage
}

// Reply answers the Request of the same ID.
type Reply struct {
	ID         uint64
	Err        *WireError
	Str, Str2  string
	Val        any
	Num, Num2  int64
	Flag       bool
	Hello, Bye bool // Hello: the worker is ready (Str = GStreamer version)
}

// Event is a bus message of a pipeline.
type Event struct {
	Pipe uint32
	Msg  native.Message
}

// Frame is what a worker writes on the control socket.
type Frame struct {
	Reply *Reply
	Event *Event
}

// WireError carries an error with the types callers test for (errors.As/Is) intact.
type WireError struct {
	Text     string
	Sentinel int // index+1 in sentinels, or 0
	Parse    *native.ParseError
	Property *native.PropertyError
}

var sentinels = []error{native.ErrNotFound, native.ErrClosed, native.ErrFlow, native.ErrNotSingle, native.ErrQuery}

// EncodeError turns an error into its wire form; nil stays nil.
func EncodeError(err error) *WireError {
	if err == nil {
		return nil
	}
	w := &WireError{Text: err.Error()}
	if errors.As(err, &w.Parse) || errors.As(err, &w.Property) {
		return w
	}
	for i, s := range sentinels {
		if errors.Is(err, s) {
			w.Sentinel = i + 1
			break
		}
	}
	return w
}

// Err is the error the wire form stands for.
func (w *WireError) Err() error {
	switch {
	case w == nil:
		return nil
	case w.Parse != nil:
		return w.Parse
	case w.Property != nil:
		return w.Property
	case w.Sentinel > 0 && w.Sentinel <= len(sentinels):
		return &wrapped{text: w.Text, base: sentinels[w.Sentinel-1]}
	}
	return errors.New(w.Text)
}

type wrapped struct {
	text string
	base error
}

func (e *wrapped) Error() string { return e.text }
func (e *wrapped) Unwrap() error { return e.base }

// Kind is the kind of a media frame.
type Kind uint8

// Media frame kinds.
const (
	KindPush    Kind = iota + 1 // server → worker on the appsrc's socket: a buffer for appsrc Handle
	KindSink                    // worker → server: a buffer of sink Handle
	KindSinkEnd                 // worker → server: sink Handle reached end of stream, every buffer sent
	KindEOS                     // server → worker on the appsrc's socket: its end of stream
	KindSocket                  // server → worker on the media socket: appsrc Handle's socket (SCM_RIGHTS)
)

// Fragment flags: a whole buffer has both. Next marks a whole buffer that another frame follows in
// the same datagram: its payload is Len bytes (else a frame's payload runs to the datagram's end).
// The server sends a video frame's RTP packets as one datagram of such frames (AppSrc.PushPartAt),
// so that the appsrc's streaming thread wakes once per frame, not once per packet; a worker sends a
// sink's buffer list (a payloader's packets of a frame) so.
const (
	First uint8 = 1
	Last  uint8 = 2
	Next  uint8 = 4
)

// HeaderSize is the size of a media frame's header; MaxPacket the largest frame sent.
const (
	HeaderSize = 16
	MaxPacket  = 64 << 10
	MaxPayload = MaxPacket - HeaderSize
	// NoPTS is the timestamp of a buffer without one.
	NoPTS = -1
)

// Header is the decoded header of a media frame.
type Header struct {
	Kind   Kind
	Flags  uint8
	Handle uint32
	PTS    int64
	Len    uint16 // the payload's length, with Next
}

// Put writes h into the first HeaderSize bytes of b.
func (h Header) Put(b []byte) {
	b[0], b[1] = byte(h.Kind), h.Flags
	binary.LittleEndian.PutUint16(b[2:], h.Len)
	binary.LittleEndian.PutUint32(b[4:], h.Handle)
	binary.LittleEndian.PutUint64(b[8:], uint64(h.PTS))
}

// ParseHeader decodes a frame's header; ok is false for a frame too short to have one.
func ParseHeader(b []byte) (h Header, payload []byte, ok bool) {
	if len(b) < HeaderSize {
		return h, nil, false
	}
	h = Header{Kind: Kind(b[0]), Flags: b[1], Len: binary.LittleEndian.Uint16(b[2:]), Handle: binary.LittleEndian.Uint32(b[4:]),
		PTS: int64(binary.LittleEndian.Uint64(b[8:]))}
	return h, b[HeaderSize:], true
}

// Split calls fn for each frame of a datagram: one, or several joined by Next.
func Split(datagram []byte, fn func(h Header, payload []byte)) {
	for {
		h, payload, ok := ParseHeader(datagram)
		if !ok {
			return
		}
		if h.Flags&Next == 0 {
			fn(h, payload)
			return
		}
		if int(h.Len) > len(payload) {
			return
		}
		fn(h, payload[:h.Len])
		datagram = payload[h.Len:]
	}
}

// Batch is one datagram of whole buffers for one appsrc (or of a sink's buffer list), joined by Next.
type Batch struct {
	buf    []byte
	last   int // offset of the last frame's header
	frames int
}

// Add appends a whole buffer; false when the datagram has no room for it (send it first).
func (b *Batch) Add(h Header, data []byte) bool {
	if len(b.buf)+HeaderSize+len(data) > MaxPacket {
		return false
	}
	if b.buf == nil {
		b.buf = make([]byte, 0, MaxPacket)
	}
	if b.frames > 0 { // the frame before now has one after it
		prev, _, _ := ParseHeader(b.buf[b.last:])
		prev.Flags |= Next
		prev.Len = uint16(len(b.buf) - b.last - HeaderSize)
		prev.Put(b.buf[b.last:])
	}
	h.Flags = First | Last
	b.last = len(b.buf)
	b.buf = b.buf[:b.last+HeaderSize]
	h.Put(b.buf[b.last:])
	b.buf = append(b.buf, data...)
	b.frames++
	return true
}

// Bytes is the datagram; Frames the number of buffers in it.
func (b *Batch) Bytes() []byte { return b.buf }
func (b *Batch) Frames() int   { return b.frames }

// Reset empties the batch, keeping its memory.
func (b *Batch) Reset() { b.buf, b.frames = b.buf[:0], 0 }

// Fragments calls send for each frame of a buffer (one, or several of MaxPayload bytes), with buf as
// scratch space of MaxPacket bytes; it stops at the first error.
func Fragments(buf []byte, h Header, data []byte, send func(frame []byte) error) error {
	h.Flags = First
	for {
		n := min(len(data), MaxPayload)
		if n == len(data) {
			h.Flags |= Last
		}
		h.Put(buf)
		copy(buf[HeaderSize:], data[:n])
		if err := send(buf[:HeaderSize+n]); err != nil {
			return err
		}
		data = data[n:]
		if len(data) == 0 {
			return nil
		}
		h.Flags = 0
	}
}

// Assembler puts a fragmented buffer back together. A buffer whose fragments were lost in part (a
// sender that dropped the rest) is discarded at the next first fragment.
type Assembler struct {
	Max    int // the largest buffer kept; bigger ones are dropped
	buf    []byte
	active bool
}

// Add takes one frame's payload and returns the whole buffer once its last fragment arrived; the
// slice is valid until the next call.
func (a *Assembler) Add(flags uint8, payload []byte) ([]byte, bool) {
	if flags&First != 0 {
		if flags&Last != 0 {
			a.active = false
			return payload, true
		}
		a.buf, a.active = append(a.buf[:0], payload...), true
		return nil, false
	}
	if !a.active {
		return nil, false
	}
	if len(a.buf)+len(payload) > a.Max {
		a.active = false
		return nil, false
	}
	a.buf = append(a.buf, payload...)
	if flags&Last != 0 {
		a.active = false
		return a.buf, true
	}
	return nil, false
}
