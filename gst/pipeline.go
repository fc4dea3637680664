package gst

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kurento-go/kms/gst/native"
	wp "github.com/kurento-go/kms/gst/workerproto"
)

type reply = wp.Reply

// Pipeline is a running GStreamer pipeline built from a gst-launch description, in a worker process
// (or in this process in the comparison mode: nat is set).
//
// Use: NewPipeline, then AppSrc / HandleSink / OnMessage / Insert, then Start; Close at the end.
// Callbacks run on the pipeline's own goroutines and must not call Close.
type Pipeline struct {
	desc string
	nat  *native.Pipeline

	w         *worker
	id        uint32
	exclusive bool // the worker serves this pipeline only: it stops with it

	mu      sync.Mutex
	closed  bool
	started bool
	srcs    map[string]*AppSrc
	sinks   map[string]*sink

	cbMu  sync.RWMutex // held while a callback runs; Close takes it to end them
	onMsg func(Message)
}

var pipelines atomic.Int64

// errorCount counts the error messages delivered from workers, for metrics.
var errorCount atomic.Uint64

// Live is the number of pipelines created and not closed, for leak checks.
func Live() int64 { return pipelines.Load() }

// NewPipeline parses a gst-launch description into a pipeline (a single element or an unlinked
// set of chains is wrapped into one). Nothing runs until Start. A description GStreamer cannot
// build is a *ParseError.
func NewPipeline(desc string) (*Pipeline, error) {
	p := &Pipeline{desc: desc, srcs: map[string]*AppSrc{}, sinks: map[string]*sink{}}
	if inProcess() {
		n, err := native.NewPipeline(desc)
		if err != nil {
			return nil, err
		}
		p.nat = n
		pipelines.Add(1)
		return p, nil
	}
	w, exclusive, err := place()
	if err != nil {
		return nil, err
	}
	p.w, p.exclusive, p.id = w, exclusive, w.handle()
	w.mu.Lock()
	w.pipes[p.id] = p
	w.mu.Unlock()
	if _, err := w.call(wp.Request{Op: wp.OpNewPipeline, Pipe: p.id, Desc: desc}); err != nil {
		p.release()
		return nil, err
	}
	pipelines.Add(1)
	return p, nil
}

// release forgets the pipeline in its worker, and stops the worker if it was its own.
func (p *Pipeline) release() {
	p.w.mu.Lock()
	delete(p.w.pipes, p.id)
	for _, s := range p.sinks {
		delete(p.w.sinks, s.id)
	}
	p.w.mu.Unlock()
	if p.exclusive {
		p.w.stop()
	}
}

// WorkerPID is the process id of the worker running the pipeline (0 in-process).
func (p *Pipeline) WorkerPID() int {
	if p.w == nil {
		return 0
	}
	return p.w.pid
}

// call runs an operation of this pipeline in its worker.
func (p *Pipeline) call(r wp.Request) (reply, error) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return reply{}, ErrClosed
	}
	r.Pipe = p.id
	return p.w.call(r)
}

// deliver gives a bus message to the pipeline's callback (worker mode).
func (p *Pipeline) deliver(m Message) {
	if m.Type == MessageError {
		errorCount.Add(1)
	}
	p.cbMu.RLock()
	defer p.cbMu.RUnlock()
	if p.onMsg != nil {
		p.onMsg(m)
	}
}

// Description is the launch description the pipeline was built from.
func (p *Pipeline) Description() string { return p.desc }

// OnMessage installs the function that receives the pipeline's bus messages, on a goroutine of the
// pipeline. Set it before Start.
func (p *Pipeline) OnMessage(f func(Message)) {
	if p.nat != nil {
		p.nat.OnMessage(f)
		return
	}
	p.cbMu.Lock()
	p.onMsg = f
	p.cbMu.Unlock()
}

// Insert adds e to the pipeline and links it between the elements named after and before (either
// may be empty). The pipeline takes e over; e.Name is its name in the pipeline afterwards.
func (p *Pipeline) Insert(e *Element, after, before string) error {
	if p.nat != nil {
		return p.nat.Insert(e.nat, after, before)
	}
	if e.used {
		return fmt.Errorf("gst: element already used")
	}
	r, err := p.call(wp.Request{Op: wp.OpInsert, Desc: e.desc, Bin: e.bin, Props: e.props, Name: after, Name2: before})
	if err != nil {
		return err
	}
	e.name, e.used = r.Str, true
	return nil
}

// Start sets the pipeline PLAYING and starts draining its sinks. A state change GStreamer refuses
// is an error; asynchronous failures arrive as Error messages.
func (p *Pipeline) Start() error {
	if p.nat != nil {
		return p.nat.Start()
	}
	if _, err := p.call(wp.Request{Op: wp.OpStart}); err != nil {
		return err
	}
	p.mu.Lock()
	p.started = true
	p.mu.Unlock()
	return nil
}

// Close stops the pipeline: no callback runs after it returns. It must not be called from a callback
// of the pipeline.
func (p *Pipeline) Close() {
	if p.nat != nil {
		if !p.nat.Closed() {
			p.nat.Close()
			pipelines.Add(-1)
		}
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.w.call(wp.Request{Op: wp.OpClose, Pipe: p.id}) // a dead worker has nothing left to close
	p.mu.Lock()
	p.closed = true
	srcs, sinks := p.srcs, p.sinks
	p.mu.Unlock()
	for _, s := range srcs {
		s.closed.Store(true)
		s.conn.Close()
	}
	for _, s := range sinks {
		s.mu.Lock()
		s.fn = nil
		s.mu.Unlock()
	}
	p.cbMu.Lock()
	p.onMsg = nil
	p.cbMu.Unlock()
	p.release()
	pipelines.Add(-1)
}

// Set sets a property of a named element from its textual form, converted to the property's type
// as gst-launch does (numbers, booleans, enum nicks, flags, caps...).
func (p *Pipeline) Set(element, property, value string) error {
	if p.nat != nil {
		return p.nat.Set(element, property, value)
	}
	_, err := p.call(wp.Request{Op: wp.OpSet, Name: element, Name2: property, Value: value})
	return err
}

// SetValue sets a property from a Go value (formatted, then converted as Set does).
func (p *Pipeline) SetValue(element, property string, value any) error {
	return p.Set(element, property, fmt.Sprint(value))
}

// Get reads a property of a named element: strings, booleans, int64, uint64, float64; other types
// (enums, caps, ...) in their textual form.
func (p *Pipeline) Get(element, property string) (any, error) {
	if p.nat != nil {
		return p.nat.Get(element, property)
	}
	r, err := p.call(wp.Request{Op: wp.OpGet, Name: element, Name2: property})
	return r.Val, err
}

// ForceKeyUnit sends an upstream force-key-unit event from the named element (usually the appsink
// after an encoder): the encoder makes its next frame a keyframe.
func (p *Pipeline) ForceKeyUnit(element string) error {
	if p.nat != nil {
		return p.nat.ForceKeyUnit(element)
	}
	_, err := p.call(wp.Request{Op: wp.OpForceKeyUnit, Name: element})
	return err
}

// AppSrc is an appsrc element of a pipeline, to push data (RTP packets) into it.
type AppSrc struct {
	nat *native.AppSrc
	p   *Pipeline
	id  uint32

	closed  atomic.Bool
	dropped atomic.Uint64

	mu         sync.Mutex // one push at a time uses buf, batch and the bound send function
	buf        []byte
	batch      wp.Batch // packets held by PushPartAt, all of timestamp batchPTS
	batchPTS   int64
	frame      []byte                // what send writes
	werr       error                 // what it got
	send       func(fd uintptr) bool // bound once: a push allocates nothing
	sendWait   func(fd uintptr) bool
	blocking   atomic.Bool
	writeFrame func([]byte) error
	conn       *net.UnixConn // the appsrc's socket, which its streaming thread in the worker reads
	raw        syscall.RawConn
}

// AppSrc returns the appsrc element of that name. It must be looked up before Start.
func (p *Pipeline) AppSrc(name string) (*AppSrc, error) {
	if p.nat != nil {
		s, err := p.nat.AppSrc(name)
		if err != nil {
			return nil, err
		}
		return &AppSrc{nat: s}, nil
	}
	p.mu.Lock()
	s := p.srcs[name]
	p.mu.Unlock()
	if s != nil {
		return s, nil
	}
	id := p.w.handle()
	conn, err := p.w.streamSocket(id)
	if err != nil {
		return nil, err
	}
	if _, err := p.call(wp.Request{Op: wp.OpAppSrc, Name: name, Handle: id}); err != nil {
		conn.Close()
		return nil, err
	}
	s = &AppSrc{p: p, id: id, buf: make([]byte, wp.MaxPacket), conn: conn}
	s.raw, _ = conn.SyscallConn()
	s.send = func(fd uintptr) bool {
		_, s.werr = syscall.Write(int(fd), s.frame)
		return true // never wait: a full socket drops the packet
	}
	s.sendWait = func(fd uintptr) bool {
		_, s.werr = syscall.Write(int(fd), s.frame)
		return s.werr != syscall.EAGAIN // wait for room
	}
	s.writeFrame = s.write
	p.mu.Lock()
	p.srcs[name] = s
	p.mu.Unlock()
	return s, nil
}

// WatchKeyUnit makes upstream force-key-unit requests reaching the appsrc (from a depayloader that
// lost packets, a decoder that needs a keyframe) arrive as KeyUnitRequest messages.
func (s *AppSrc) WatchKeyUnit() {
	if s.nat != nil {
		s.nat.WatchKeyUnit()
		return
	}
	s.p.call(wp.Request{Op: wp.OpWatchKeyUnit, Handle: s.id})
}

// Push queues a copy of data on the appsrc. It never blocks: with a worker whose socket is full the
// packet is dropped (and counted, see Dropped). The timestamp comes from the appsrc (do-timestamp)
// when the description asks.
func (s *AppSrc) Push(data []byte) error { return s.push(data, wp.NoPTS) }

// PushAt is Push with the buffer's timestamp given (for an appsrc without do-timestamp).
func (s *AppSrc) PushAt(data []byte, pts time.Duration) error {
	if s.nat != nil {
		return s.nat.PushAt(data, pts)
	}
	return s.push(data, int64(pts))
}

// PushPartAt is PushAt for a packet that more packets of the same timestamp follow (a video frame's
// RTP packets before the one with the marker bit). With a worker it is held and sent with the next
// PushAt of that timestamp, the frame in one datagram: the appsrc's thread in the worker then wakes once per frame,
// not once per packet (on a virtual machine a wake-up costs more than the packet's work), and the
// depayloader waits for the frame's last packet anyway. A push of another timestamp sends what is
// held first.
func (s *AppSrc) PushPartAt(data []byte, pts time.Duration) error {
	if s.nat != nil {
		return s.nat.PushAt(data, pts)
	}
	return s.queue(data, int64(pts), true)
}

// SetBlocking makes Push wait for room instead of dropping, for data that must arrive whole (an
// upload, muxed frames) pushed from a goroutine that may wait. A dead worker ends the wait (ErrFlow).
func (s *AppSrc) SetBlocking() { s.blocking.Store(true) }

// Dropped is the number of buffers Push dropped because the worker was not reading fast enough.
func (s *AppSrc) Dropped() uint64 { return s.dropped.Load() }

func (s *AppSrc) push(data []byte, pts int64) error {
	if s.nat != nil {
		return s.nat.Push(data)
	}
	return s.queue(data, pts, false)
}

// queue sends data to the worker, or holds it (part) to go with the rest of its frame.
func (s *AppSrc) queue(data []byte, pts int64, part bool) error {
	if len(data) == 0 {
		return nil
	}
	if s.closed.Load() {
		return ErrFlow
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if part {
		return s.holdLocked(data, pts)
	}
	if s.batch.Frames() > 0 {
		if s.batchPTS == pts && s.batch.Add(wp.Header{Kind: wp.KindPush, Handle: s.id, PTS: pts}, data) {
			return s.sendBatch() // the frame's last packet, with those held
		}
		if err := s.sendBatch(); err != nil {
			return err
		}
	}
	return s.pushLocked(data, pts)
}

// holdLocked adds a packet to the frame held for one datagram.
func (s *AppSrc) holdLocked(data []byte, pts int64) error {
	if s.batch.Frames() > 0 && s.batchPTS != pts {
		if err := s.sendBatch(); err != nil {
			return err
		}
	}
	h := wp.Header{Kind: wp.KindPush, Handle: s.id, PTS: pts}
	if !s.batch.Add(h, data) { // no room: what is held goes first
		if err := s.sendBatch(); err != nil {
			return err
		}
		if !s.batch.Add(h, data) {
			return s.pushLocked(data, pts) // bigger than a datagram: fragments
		}
	}
	s.batchPTS = pts
	return nil
}

func (s *AppSrc) pushLocked(data []byte, pts int64) error {
	err := wp.Fragments(s.buf, wp.Header{Kind: wp.KindPush, Handle: s.id, PTS: pts}, data, s.writeFrame)
	return s.sent(err, 1)
}

// sendBatch writes the held packets as one datagram.
func (s *AppSrc) sendBatch() error {
	n := s.batch.Frames()
	if n == 0 {
		return nil
	}
	err := s.write(s.batch.Bytes())
	s.batch.Reset()
	return s.sent(err, n)
}

// sent maps a write's outcome: a full socket drops the buffers (counted), anything else ends the
// appsrc (the worker is gone).
func (s *AppSrc) sent(err error, buffers int) error {
	switch err {
	case nil:
		return nil
	case syscall.EAGAIN:
		s.dropped.Add(uint64(buffers))
		return nil
	}
	s.closed.Store(true)
	return ErrFlow
}

func (s *AppSrc) write(frame []byte) error {
	s.frame = frame
	send := s.send
	if s.blocking.Load() {
		send = s.sendWait
	}
	if err := s.raw.Write(send); err != nil {
		return err
	}
	return s.werr
}

// EndOfStream tells the appsrc that no more data comes.
func (s *AppSrc) EndOfStream() error {
	if s.nat != nil {
		return s.nat.EndOfStream()
	}
	if s.closed.Load() {
		return ErrFlow
	}
	// In band, behind the buffers pushed before it (over the control socket it could overtake them),
	// and waiting for room: an end of stream is never dropped.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sendBatch() != nil {
		return ErrFlow
	}
	wp.Header{Kind: wp.KindEOS, Flags: wp.First | wp.Last, Handle: s.id, PTS: wp.NoPTS}.Put(s.buf)
	s.frame = s.buf[:wp.HeaderSize]
	if err := s.raw.Write(s.sendWait); err != nil || s.werr != nil {
		s.closed.Store(true)
		return ErrFlow
	}
	return nil
}

// SinkFunc receives a buffer of an appsink; data is valid only during the call.
type SinkFunc = native.SinkFunc

// sink is the server's side of an appsink handled in a worker.
type sink struct {
	id    uint32
	asm   wp.Assembler
	mu    sync.RWMutex // held while fn runs; Close takes it to end the calls
	fn    SinkFunc
	once  sync.Once
	ended chan struct{}
}

// maxBuffer is the largest buffer a sink delivers whole (see native).
const maxBuffer = 4 << 20

func (s *sink) deliver(h wp.Header, payload []byte) {
	data, ok := s.asm.Add(h.Flags, payload)
	if !ok {
		return
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.fn != nil {
		s.fn(data, time.Duration(h.PTS))
	}
}

func (s *sink) end() { s.once.Do(func() { close(s.ended) }) }

// HandleSink makes the pipeline give every buffer of the named appsink to fn, from Start to Close.
func (p *Pipeline) HandleSink(name string, fn SinkFunc) error {
	if p.nat != nil {
		return p.nat.HandleSink(name, fn)
	}
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if started {
		return fmt.Errorf("gst: HandleSink after Start")
	}
	s := &sink{id: p.w.handle(), asm: wp.Assembler{Max: maxBuffer}, fn: fn, ended: make(chan struct{})}
	p.w.mu.Lock()
	p.w.sinks[s.id] = s
	p.w.mu.Unlock()
	if _, err := p.call(wp.Request{Op: wp.OpHandleSink, Name: name, Handle: s.id}); err != nil {
		p.w.mu.Lock()
		delete(p.w.sinks, s.id)
		p.w.mu.Unlock()
		return err
	}
	p.mu.Lock()
	p.sinks[name] = s
	p.mu.Unlock()
	return nil
}

// SinkEnded is closed when the named sink (of HandleSink) reached end of stream and fn has had every
// buffer before it (or its worker died); nil for an unknown sink.
func (p *Pipeline) SinkEnded(name string) <-chan struct{} {
	if p.nat != nil {
		return p.nat.SinkEnded(name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.sinks[name]; s != nil {
		return s.ended
	}
	return nil
}

// Element is a GStreamer element made on its own (ParseElement, ParseBin), before it joins a
// pipeline. With workers it is a description checked by the utility worker, with the properties set
// on it so far; Insert builds it in the pipeline's worker.
type Element struct {
	nat *native.Element

	desc    string
	bin     bool
	props   []wp.Prop
	name    string
	factory string
	kind    MediaKind
	used    bool
}

// ParseElement builds exactly one element from a gst-launch description such as
// "videoflip method=horizontal-flip".
func ParseElement(desc string) (*Element, error) { return parseElement(desc, false) }

// ParseBin builds a bin from a gst-launch chain such as "videoconvert ! facedetect", with ghost
// pads for its unlinked sink and src pads, so that it can be used where one element is (Insert).
func ParseBin(desc string) (*Element, error) { return parseElement(desc, true) }

func parseElement(desc string, bin bool) (*Element, error) {
	if inProcess() {
		parse := native.ParseElement
		if bin {
			parse = native.ParseBin
		}
		n, err := parse(desc)
		if err != nil {
			return nil, err
		}
		return &Element{nat: n}, nil
	}
	e := &Element{desc: desc, bin: bin}
	r, err := e.check("")
	if err != nil {
		return nil, err
	}
	e.name, e.factory, e.kind = r.Str, r.Str2, MediaKind(r.Num)
	return e, nil
}

// check builds the element in the utility worker with its properties, reading property get if set.
func (e *Element) check(get string) (reply, error) {
	return utilityCall(wp.Request{Op: wp.OpParse, Desc: e.desc, Bin: e.bin, Props: e.props, Name: get})
}

// Name is the element's name in its pipeline (known once inserted, with workers).
func (e *Element) Name() string {
	if e.nat != nil {
		return e.nat.Name()
	}
	return e.name
}

// Factory is the name of the element's factory ("videoflip").
func (e *Element) Factory() string {
	if e.nat != nil {
		return e.nat.Factory()
	}
	return e.factory
}

// Kind is what raw media the element can filter, decided as KMS's filter element does for
// AUTODETECT: audio if both of its pads accept raw audio, else video if both accept raw video.
func (e *Element) Kind() MediaKind {
	if e.nat != nil {
		return e.nat.Kind()
	}
	if e.used {
		return KindInvalid
	}
	return e.kind
}

// Set sets a property of the element before it joins a pipeline.
func (e *Element) Set(property, value string) error {
	if e.nat != nil {
		return e.nat.Set(property, value)
	}
	if e.used {
		return ErrClosed
	}
	e.props = append(e.props, wp.Prop{Name: property, Value: value})
	if _, err := e.check(""); err != nil {
		e.props = e.props[:len(e.props)-1]
		return err
	}
	return nil
}

// Get reads a property of the element before it joins a pipeline (see Pipeline.Get).
func (e *Element) Get(property string) (any, error) {
	if e.nat != nil {
		return e.nat.Get(property)
	}
	if e.used {
		return nil, ErrClosed
	}
	r, err := e.check(property)
	return r.Val, err
}

// Copy is an unused element of the same description and properties, to build the element again in
// another pipeline (after its worker died); nil in-process, where no worker dies alone.
func (e *Element) Copy() *Element {
	if e.nat != nil {
		return nil
	}
	c := *e
	c.props, c.used = slices.Clone(e.props), false
	return &c
}

// Close drops the element if it never joined a pipeline.
func (e *Element) Close() {
	if e.nat != nil {
		e.nat.Close()
		return
	}
	e.used = true
}
