package player

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/processing"
)

// State is a UriEndpointState.
type State string

// The states of a UriEndpoint.
const (
	StateStop  State = "STOP"
	StateStart State = "START"
	StatePause State = "PAUSE"
)

// Events a player raises through its media element.
type (
	// StateChanged is UriEndpointStateChanged.
	StateChanged struct{ State State }
	// EndOfStream is raised when the media ended (every stream of it).
	EndOfStream struct{}
	// Error is Kurento's Error event: INVALID_URI, INVALID_MEDIA, or a GStreamer error type.
	Error struct {
		Type        string
		Description string
		Code        int
	}
)

// ErrSeek is returned by SetPosition when the media cannot be seeked there (40700 "Seek fails").
var ErrSeek = errors.New("Seek fails")

// VideoInfo is the media information of getVideoInfo.
type VideoInfo struct {
	Seekable                  bool
	SeekableInit, SeekableEnd time.Duration
	Duration                  time.Duration
}

// Config is what a player is built with.
type Config struct {
	// URI is the GStreamer URI to play (file://, http(s)://, rtsp://...). Invalid, when set, is why
	// the URI given cannot be played: play then raises an INVALID_URI Error.
	URI     string
	Invalid error
	// Name is the URI as the application gave it, for error messages ("" = URI).
	Name            string
	UseEncodedMedia bool
	// NetworkCache is the RTSP jitter buffer (rtspsrc latency).
	NetworkCache time.Duration
	// PortRange is the RTSP client UDP port range ("min-max", "" = any).
	PortRange string
	// Bitrate is the VP8 encoder's target (bps).
	Bitrate int
	Log     *slog.Logger
}

// Player is the media side of a PlayerEndpoint.
type Player struct {
	el  *media.Element
	cfg Config
	log *slog.Logger
	out *Outputs

	ctl sync.Mutex // serialises the control operations (they may close a stream: never under mu)

	mu     sync.Mutex // what the bus callbacks read
	state  State
	stream *Stream
	closed bool

	restarts processing.Restarts
}

// New makes the player of e; nothing is read before Play.
func New(e *media.Element, cfg Config) *Player {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Name == "" {
		cfg.Name = cfg.URI
	}
	if cfg.NetworkCache <= 0 {
		cfg.NetworkCache = 2 * time.Second
	}
	return &Player{el: e, cfg: cfg, log: log, out: NewOutputs(e), state: StateStop}
}

func (p *Player) live() bool { return strings.HasPrefix(strings.ToLower(p.cfg.URI), "rtsp") }

func (p *Player) streamConfig() StreamConfig {
	return StreamConfig{
		Head:    URIHead(p.cfg.URI),
		Encoded: p.cfg.UseEncodedMedia,
		Bitrate: p.cfg.Bitrate,
		Live:    p.live(),
		Setup: func(pipe *gst.Pipeline) error {
			if !p.live() {
				return nil
			}
			return pipe.RTSPSettings(DecoderName, p.cfg.NetworkCache, p.cfg.PortRange)
		},
		OnEnd:   p.onEnd,
		OnError: p.onError,
		Log:     p.log,
	}
}

// State is the UriEndpoint state.
func (p *Player) State() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// setState changes the state and raises StateChanged; the caller holds mu.
func (p *Player) setState(s State) {
	if p.state == s {
		return
	}
	p.state = s
	p.el.Emit(StateChanged{State: s})
}

// Play starts (or resumes) playing. Problems reading the URI arrive as Error events, never as a
// failure of the call. After the end of the media or a stop, play starts from the beginning.
func (p *Player) Play() {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	s := p.stream
	switch {
	case s != nil && !s.Failed() && p.state == StateStart:
		p.mu.Unlock()
		return
	case s != nil && !s.Failed() && p.state == StatePause:
		if err := s.Resume(); err != nil {
			p.log.Warn("player resume", "err", err)
		}
		p.setState(StateStart)
		p.mu.Unlock()
		return
	}
	p.stream = nil
	p.mu.Unlock()
	if s != nil {
		s.Close()
	}

	var err error
	if p.cfg.Invalid != nil {
		err = p.cfg.Invalid
	} else if s, err = NewStream(p.out, p.streamConfig()); err == nil {
		p.mu.Lock()
		p.stream = s
		p.mu.Unlock()
		err = s.Start()
	}
	p.mu.Lock()
	p.setState(StateStart)
	p.mu.Unlock()
	if err != nil {
		p.failedStart(s, err)
	}
}

// failedStart reports a run that could not be built or started: as the pipeline's own error when it
// posts one soon (it usually does, with the details), else from err.
func (p *Player) failedStart(s *Stream, err error) {
	if s == nil {
		var pe *gst.ParseError
		typ := "INVALID_URI"
		if errors.As(err, &pe) && !strings.Contains(pe.Message, "uri") {
			typ = "UNEXPECTED_PIPELINE_ERROR"
		}
		p.el.Emit(Error{Type: typ, Description: fmt.Sprintf("Invalid URI %q: %v", p.cfg.Name, err)})
		return
	}
	time.AfterFunc(500*time.Millisecond, func() {
		if s.failed.CompareAndSwap(false, true) {
			p.el.Emit(Error{Type: "INVALID_URI", Description: fmt.Sprintf("Invalid URI %q: %v", p.cfg.Name, err)})
		}
	})
}

// Pause pauses playing; from STOP it only changes the state.
func (p *Player) Pause() {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.state == StatePause {
		return
	}
	if p.stream != nil && p.state == StateStart && !p.stream.Failed() {
		if err := p.stream.Pause(); err != nil {
			p.log.Warn("player pause", "err", err)
		}
	}
	p.setState(StatePause)
}

// Stop stops playing; the next Play starts from the beginning.
func (p *Player) Stop() {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	s := p.stream
	p.stream = nil
	if !p.closed {
		p.setState(StateStop)
	}
	p.mu.Unlock()
	if s != nil {
		s.Close()
	}
}

// Close releases the player's pipeline; the player does nothing afterwards.
func (p *Player) Close() {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	s := p.stream
	p.stream, p.closed = nil, true
	p.mu.Unlock()
	if s != nil {
		s.Close()
	}
	p.out.Close()
}

func (p *Player) current() *Stream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == StateStop {
		return nil
	}
	return p.stream
}

// Position is the playing position (0 when stopped or unknown).
func (p *Player) Position() time.Duration {
	s := p.current()
	if s == nil {
		return 0
	}
	pos, err := s.pipe.Position()
	if err != nil {
		return 0
	}
	return pos
}

// SetPosition seeks to pos; ErrSeek when not playing or paused, or when the media is not seekable.
func (p *Player) SetPosition(pos time.Duration) error {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	s := p.current()
	if s == nil || s.Failed() || pos < 0 {
		return ErrSeek
	}
	if ok, _, _, err := s.pipe.Seeking(); err != nil || !ok {
		return ErrSeek
	}
	if err := s.Seek(pos, p.State() == StateStart); err != nil {
		p.log.Debug("seek", "err", err)
		return ErrSeek
	}
	return nil
}

// VideoInfo reports the media's duration and seekability (zero values while unknown).
func (p *Player) VideoInfo() VideoInfo {
	s := p.current()
	if s == nil {
		return VideoInfo{}
	}
	var vi VideoInfo
	if ok, a, b, err := s.pipe.Seeking(); err == nil {
		vi.Seekable, vi.SeekableInit = ok, a
		if b > 0 {
			vi.SeekableEnd = b
		}
	}
	if d, err := s.pipe.Duration(); err == nil {
		vi.Duration = d
	}
	return vi
}

// Dot is the GStreamer graph of the player's pipeline (of one not started yet when stopped), at
// the given GstDebugGraphDetails flags.
func (p *Player) Dot(details uint) string {
	p.mu.Lock()
	s := p.stream
	p.mu.Unlock()
	if s != nil {
		return s.pipe.Dot(details)
	}
	if p.cfg.Invalid != nil {
		return ""
	}
	cfg := p.streamConfig()
	pipe, err := gst.NewPipeline(cfg.Describe())
	if err != nil {
		return ""
	}
	defer pipe.Close()
	return pipe.Dot(details)
}

func (p *Player) onEnd(s *Stream) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stream != s || p.closed {
		return
	}
	// As KMS: the endpoint stops, then reports the end; play starts over.
	p.setState(StateStop)
	p.el.Emit(EndOfStream{})
}

func (p *Player) onError(s *Stream, e *gst.Error) {
	p.mu.Lock()
	current := p.stream == s && !p.closed
	p.mu.Unlock()
	if !current {
		return
	}
	p.log.Warn("player error", "uri", p.cfg.Name, "err", e)
	ev := Classify(e, p.cfg.Name)
	if !errors.Is(e, gst.ErrWorkerCrashed) {
		p.el.Emit(ev)
		return
	}
	restart, why := p.restarts.Allow(e)
	if why != "" {
		ev.Description += " (" + why + ")"
	}
	p.el.Emit(ev)
	if restart {
		go p.restart(s, e)
	}
}

// restart plays again in a new worker after the worker of s died (--gst-worker-restart): from the
// position s had reached when the media can be sought, else from the start; paused if it was.
// WORKER_RESTARTED tells the application.
func (p *Player) restart(old *Stream, e *gst.Error) {
	p.ctl.Lock()
	defer p.ctl.Unlock()
	p.mu.Lock()
	if p.closed || p.stream != old {
		p.mu.Unlock()
		return // stopped, played again or released meanwhile
	}
	paused := p.state == StatePause
	p.stream = nil
	p.mu.Unlock()
	old.Close()
	s, err := NewStream(p.out, p.streamConfig())
	if err != nil {
		p.log.Error("player not rebuilt after its worker died", "err", err)
		return
	}
	p.mu.Lock()
	p.stream = s
	p.mu.Unlock()
	pos := old.Reached()
	if err := s.StartAt(pos); err != nil {
		p.log.Error("player not rebuilt after its worker died", "err", err)
		return
	}
	if paused {
		if err := s.Pause(); err != nil {
			p.log.Warn("player pause", "err", err)
		}
	}
	p.log.Info("player rebuilt in a new worker", "workerPid", s.pipe.WorkerPID(), "position", pos)
	p.el.Emit(processing.RestartedEvent(e, "player"))
}

// Classify words a GStreamer error of a player's pipeline as KMS's PlayerEndpoint does: errors of
// the source element are INVALID_URI, errors of the decoding (no known format, no decoder, a broken
// container) INVALID_MEDIA; anything else keeps its GStreamer type. The description names the URI.
func Classify(e *gst.Error, uri string) Error {
	typ := ""
	switch {
	case e.Domain == gst.DomainStream && (e.Code == gst.StreamErrorTypeNotFound || e.Code == gst.StreamErrorWrongType ||
		e.Code == gst.StreamErrorCodecNotFound || e.Code == gst.StreamErrorDemux || e.Code == gst.StreamErrorFormat ||
		e.Code == gst.StreamErrorDecode),
		strings.HasPrefix(e.Source, "decodebin"), strings.HasPrefix(e.Source, "typefind"):
		typ = "INVALID_MEDIA"
	case e.Source == "source", e.Source == DecoderName, e.Domain == gst.DomainResource:
		typ = "INVALID_URI"
	}
	if typ != "" {
		what := "URI"
		if typ == "INVALID_MEDIA" {
			what = "media at"
		}
		return Error{Type: typ, Description: fmt.Sprintf("Invalid %s %q: %s (source: %s)", what, uri, e.Message, e.Source)}
	}
	desc := fmt.Sprintf("Error code %d: %s, source: %s, uri: %s", e.Code, e.Message, e.Source, uri)
	return Error{Type: gstErrorType(e), Description: desc, Code: e.Code}
}

func gstErrorType(e *gst.Error) string {
	switch e.Domain {
	case gst.DomainWorker:
		return processing.WorkerCrashed
	case gst.DomainResource:
		switch e.Code {
		case gst.ResourceErrorOpenRead, gst.ResourceErrorOpenWrite, gst.ResourceErrorOpenReadWrite:
			return "RESOURCE_ERROR_OPEN"
		}
	case gst.DomainStream:
		switch e.Code {
		case gst.StreamErrorFailed:
			return "STREAM_ERROR_FAILED"
		case gst.StreamErrorDecode:
			return "STREAM_ERROR_DECODE"
		}
	}
	return "UNEXPECTED_PIPELINE_ERROR"
}
