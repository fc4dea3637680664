package gst

import (
	"encoding/gob"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/gst/native"
	wp "github.com/kurento-go/kms/gst/workerproto"
	"golang.org/x/sys/unix"
)

// init turns this process into a GStreamer worker when the server started it as one.
func init() {
	v, ok := os.LookupEnv(workerEnv)
	if !ok {
		return
	}
	// Processes GStreamer starts (gst-plugin-scanner) must not become workers in turn.
	os.Unsetenv(workerEnv)
	if err := serve(v); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// served is the worker's state: the native objects under the handles the server numbered. Media
// never passes through it: C threads serve the media sockets (native.StartWireReader, ServeWire,
// SinkToWire).
type served struct {
	enc     *gob.Encoder
	encMu   sync.Mutex
	mediaFD int

	mu       sync.Mutex
	pipes    map[uint32]*native.Pipeline
	srcs     map[uint32]*native.AppSrc
	overlays map[uint32]*native.Overlay
	owner    map[uint32]uint32 // appsrc and overlay handle → pipeline
}

func serve(spec string) error {
	parts := strings.Split(spec, ",")
	if len(parts) != 3 {
		return fmt.Errorf("bad %s %q", workerEnv, spec)
	}
	ctlFD, err1 := strconv.Atoi(parts[0])
	mediaFD, err2 := strconv.Atoi(parts[1])
	limit, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return fmt.Errorf("bad %s %q", workerEnv, spec)
	}
	if limit > 0 {
		// RLIMIT_DATA, not RLIMIT_AS: Go and GStreamer reserve far more address space than they use.
		lim := &unix.Rlimit{Cur: uint64(limit), Max: uint64(limit)}
		if err := unix.Setrlimit(unix.RLIMIT_DATA, lim); err != nil {
			return fmt.Errorf("memory limit: %v", err)
		}
	}
	ctl, err := net.FileConn(os.NewFile(uintptr(ctlFD), "ctl"))
	if err != nil {
		return err
	}
	unix.CloseOnExec(mediaFD) // not for the processes GStreamer starts (gst-plugin-scanner)
	s := &served{enc: gob.NewEncoder(ctl), mediaFD: mediaFD, pipes: map[uint32]*native.Pipeline{},
		srcs: map[uint32]*native.AppSrc{}, overlays: map[uint32]*native.Overlay{}, owner: map[uint32]uint32{}}
	if err := native.Init(); err != nil {
		return err
	}
	if err := native.StartWireReader(mediaFD); err != nil {
		return err
	}
	s.send(wp.Frame{Reply: &wp.Reply{Hello: true, Str: native.Version()}})
	dec := gob.NewDecoder(ctl)
	for {
		var r wp.Request
		if err := dec.Decode(&r); err != nil {
			// The server closed the socket (or died): nothing is left to serve.
			return nil
		}
		go s.answer(r)
	}
}

func (s *served) send(f wp.Frame) {
	s.encMu.Lock()
	defer s.encMu.Unlock()
	if err := s.enc.Encode(&f); err != nil {
		os.Exit(0) // the server is gone
	}
}

func (s *served) answer(r wp.Request) {
	rep, err := s.do(r)
	rep.ID, rep.Err = r.ID, wp.EncodeError(err)
	s.send(wp.Frame{Reply: &rep})
}

func (s *served) pipe(id uint32) (*native.Pipeline, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pipes[id]; p != nil {
		return p, nil
	}
	return nil, native.ErrClosed
}

func (s *served) do(r wp.Request) (rep wp.Reply, err error) {
	switch r.Op {
	case wp.OpVersion:
		rep.Str = native.Version()
		return rep, nil
	case wp.OpHasElement:
		rep.Flag = native.HasElement(r.Name)
		return rep, nil
	case wp.OpParse:
		return parseCheck(r)
	case wp.OpNewPipeline:
		p, err := native.NewPipeline(r.Desc)
		if err != nil {
			return rep, err
		}
		p.OnMessage(func(m native.Message) { s.send(wp.Frame{Event: &wp.Event{Pipe: r.Pipe, Msg: m}}) })
		s.mu.Lock()
		s.pipes[r.Pipe] = p
		s.mu.Unlock()
		return rep, nil
	}
	p, err := s.pipe(r.Pipe)
	if err != nil {
		return rep, err
	}
	switch r.Op {
	case wp.OpClose:
		s.forget(r.Pipe)
		p.Close()
	case wp.OpStart:
		err = p.Start()
	case wp.OpInsert:
		var e *native.Element
		if e, err = build(r); err == nil {
			rep.Str = e.Name()
			if err = p.Insert(e, r.Name, r.Name2); err != nil {
				e.Close()
			}
		}
	case wp.OpSet:
		err = p.Set(r.Name, r.Name2, r.Value)
	case wp.OpGet:
		rep.Val, err = p.Get(r.Name, r.Name2)
	case wp.OpForceKeyUnit:
		err = p.ForceKeyUnit(r.Name)
	case wp.OpAppSrc:
		var src *native.AppSrc
		if src, err = p.AppSrc(r.Name); err == nil {
			err = src.ServeWire(r.Handle)
		}
		if err != nil {
			native.ForgetWire(r.Handle) // the socket, if it came
			break
		}
		s.mu.Lock()
		s.srcs[r.Handle], s.owner[r.Handle] = src, r.Pipe
		s.mu.Unlock()
	case wp.OpWatchKeyUnit:
		s.mu.Lock()
		src := s.srcs[r.Handle]
		s.mu.Unlock()
		if src == nil {
			return rep, native.ErrClosed
		}
		src.WatchKeyUnit()
	case wp.OpHandleSink:
		err = p.SinkToWire(r.Name, s.mediaFD, r.Handle)
	case wp.OpWatchSink:
		err = p.WatchSink(r.Name)
	case wp.OpSetState:
		err = p.SetState(native.State(r.Num))
	case wp.OpPosition:
		var d time.Duration
		d, err = p.Position()
		rep.Num = int64(d)
	case wp.OpDuration:
		var d time.Duration
		d, err = p.Duration()
		rep.Num = int64(d)
	case wp.OpSeeking:
		var a, b time.Duration
		rep.Flag, a, b, err = p.Seeking()
		rep.Num, rep.Num2 = int64(a), int64(b)
	case wp.OpSeek:
		err = p.Seek(time.Duration(r.Num), r.Flag, r.Flag2)
	case wp.OpDot:
		rep.Str = p.Dot(uint(r.Num))
	case wp.OpRTSPSettings:
		err = p.RTSPSettings(r.Name, time.Duration(r.Num), r.Value)
	case wp.OpOverlay:
		var o *native.Overlay
		if o, err = p.Overlay(r.Name); err == nil {
			s.mu.Lock()
			s.overlays[r.Handle], s.owner[r.Handle] = o, r.Pipe
			s.mu.Unlock()
		}
	case wp.OpOverlaySet, wp.OpFacesFrom, wp.OpDetections, wp.OpDrawn:
		s.mu.Lock()
		o := s.overlays[r.Handle]
		s.mu.Unlock()
		if o == nil {
			return rep, native.ErrClosed
		}
		switch r.Op {
		case wp.OpOverlaySet:
			err = o.Set(r.Images)
		case wp.OpFacesFrom:
			err = o.FacesFrom(r.Name)
		case wp.OpDetections:
			rep.Num = int64(o.Detections())
		default:
			rep.Num = int64(o.Drawn())
		}
	default:
		err = fmt.Errorf("gst worker: unknown operation %d", r.Op)
	}
	return rep, err
}

// forget drops a closing pipeline and the handles of its parts.
func (s *served) forget(pipe uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pipes, pipe)
	for h, owner := range s.owner {
		if owner == pipe {
			if s.srcs[h] != nil {
				native.ForgetWire(h)
			}
			delete(s.srcs, h)
			delete(s.overlays, h)
			delete(s.owner, h)
		}
	}
}

// build makes an element apart from its description and replays the properties set on it.
func build(r wp.Request) (*native.Element, error) {
	parse := native.ParseElement
	if r.Bin {
		parse = native.ParseBin
	}
	e, err := parse(r.Desc)
	if err != nil {
		return nil, err
	}
	for _, pr := range r.Props {
		if err := e.Set(pr.Name, pr.Value); err != nil {
			e.Close()
			return nil, err
		}
	}
	return e, nil
}

// parseCheck answers OpParse: the element's name, factory and kind, or a property's value.
func parseCheck(r wp.Request) (rep wp.Reply, err error) {
	e, err := build(r)
	if err != nil {
		return rep, err
	}
	defer e.Close()
	rep.Str, rep.Str2, rep.Num = e.Name(), e.Factory(), int64(e.Kind())
	if r.Name != "" {
		rep.Val, err = e.Get(r.Name)
	}
	return rep, err
}
