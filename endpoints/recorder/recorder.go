// Package recorder is the media side of RecorderEndpoint: it takes RTP from the graph on an AUDIO
// and a VIDEO sink pad, rebuilds frames, and muxes them in Go — WebM/Matroska with ebml-go,
// fragmented MP4 with mediacommon — into a file or a chunked HTTP POST. No GStreamer on this path.
//
// Threading: WriteRTP runs on the source's packet goroutine; it copies the packet into a pooled
// buffer and hands it to a bounded queue without blocking (a full queue drops and counts). One
// writer goroutine per recorder does everything else: frame assembly, timestamps, muxing and I/O,
// and it raises the state events, so Recording / Paused / Stopped come out in order.
//
// Timeline: every track is placed on the arrival clock of its first frame (so audio and video are
// aligned on arrival) and then follows its RTP timestamps, resynchronised when they drift from
// arrival by more than a second. Paused time is taken out of the timeline. Timestamps are strictly
// increasing per track.
//
// Missing tracks: with an audio+video profile the muxer starts when both tracks have their first
// usable frame (a keyframe with its parameters for video), or trackWait (2 s) after the first one
// did, with the tracks present then; a track whose sink pad has no source is not waited for, and one
// that our own transcoder is being made for is waited for longer (transcodeWait: a GStreamer worker
// takes seconds to start on a loaded machine, and the media is there). A track that arrives later
// is not recorded (the container header is written by then). KMS instead waits
// for both forever and leaves an empty file; we prefer a file with what was sent. Stopping before
// any media leaves no file at all.
package recorder

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// State is a UriEndpointState.
type State string

// The states of a UriEndpoint.
const (
	StateStop  State = "STOP"
	StateStart State = "START"
	StatePause State = "PAUSE"
)

// Events the recorder raises through its media element, in this order for each change: the state
// change, then Recording, Paused or Stopped.
type (
	// StateChanged is UriEndpointStateChanged.
	StateChanged struct{ State State }
	// Recording is raised when recording effectively starts (or resumes).
	Recording struct{}
	// Paused is raised when the recorder pauses.
	Paused struct{}
	// Stopped is raised when the file is finalized.
	Stopped struct{}
	// Error is a failure of the recording (Kurento's Error event).
	Error struct {
		Type        string
		Description string
		Code        int
	}
)

// StopTimeout is how long StopAndWait waits for the file to be finalized, as KMS.
const StopTimeout = 4 * time.Second

// Config is what a recorder is built with.
type Config struct {
	// URI is where to record: file:// or http(s):// (resolved already, see ResolveURI).
	URI     *url.URL
	Profile Profile
	// StopOnEndOfStream stops the recording when the media of every linked pad ended (a
	// PlayerEndpoint at the end of its file, an HttpPostEndpoint's upload done).
	StopOnEndOfStream bool
	Log               *slog.Logger
	// HTTPClient uploads http(s) recordings; nil means http.DefaultClient.
	HTTPClient *http.Client
	// TrackWait is how long an audio+video recording waits for its second track; 0 means 2 s.
	TrackWait time.Duration
	// QueueLen is the number of packets the writer may lag behind; 0 means 1024.
	QueueLen int
}

// Stats are the recorder's counters.
type Stats struct {
	Packets uint64 // packets queued to the writer
	Drops   uint64 // packets dropped because the writer lagged
	Frames  uint64 // frames written
	Bytes   int64  // bytes written to the destination
}

// Recorder records the media of its element's sink pads.
type Recorder struct {
	el    *media.Element
	cfg   Config
	log   *slog.Logger
	epoch time.Time

	inputs    [2]*input // by media.Audio, media.Video
	wants     [2]bool
	queue     chan *item
	cmds      chan command
	pool      sync.Pool
	accepting atomic.Bool
	packets   atomic.Uint64
	drops     atomic.Uint64
	frames    atomic.Uint64
	bytes     atomic.Int64

	mu        sync.Mutex
	want      State // what the application asked for last
	stopAsked bool  // single use: set by the first stop
	running   bool  // the writer goroutine was started
	finalized chan struct{}
	done      chan struct{}

	// smu guards state alone: the writer sets it while a control call may hold mu and wait for room
	// in cmds.
	smu   sync.Mutex
	state State // the state reached, as getState reports it
}

type command struct {
	to State
	at int64 // nanoseconds since epoch
}

// item is one packet on its way to the writer, in a pooled buffer.
type item struct {
	kind    media.Type
	codec   *media.Codec
	seq     uint16
	ts      uint32
	marker  bool
	at      int64
	payload []byte
}

// New makes the recorder of el and gives el its sink pads: AUDIO and VIDEO, pad "default".
func New(el *media.Element, cfg Config) *Recorder {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.TrackWait <= 0 {
		cfg.TrackWait = 2 * time.Second
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 1024
	}
	r := &Recorder{
		el: el, cfg: cfg, log: cfg.Log, epoch: time.Now(),
		queue:     make(chan *item, cfg.QueueLen),
		cmds:      make(chan command, 64),
		want:      StateStop,
		state:     StateStop,
		finalized: make(chan struct{}),
		done:      make(chan struct{}),
	}
	r.pool.New = func() any { return &item{payload: make([]byte, 0, 1500)} }
	r.wants[media.Audio], r.wants[media.Video] = cfg.Profile.Audio, cfg.Profile.Video
	for _, t := range []media.Type{media.Audio, media.Video} {
		r.inputs[t] = newInput(r, t, el.NewInputMeter(t, media.DefaultPad))
	}
	el.SetInputs(r)
	return r
}

// Input gives the sink pads: AUDIO and VIDEO with the default description.
func (r *Recorder) Input(t media.Type, pad string) media.Input {
	if pad != media.DefaultPad || (t != media.Audio && t != media.Video) {
		return nil
	}
	return r.inputs[t]
}

func (r *Recorder) now() int64 { return int64(time.Since(r.epoch)) }

// Record starts or resumes recording. As in KMS, an impossible transition is only logged.
func (r *Recorder) Record() {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.stopAsked:
		r.log.Warn("record ignored: a RecorderEndpoint records once, and it was stopped")
		return
	case r.want == StateStart:
		r.log.Info("record ignored: already recording")
		return
	}
	r.want = StateStart
	if !r.running {
		r.running = true
		go r.run()
	}
	r.accepting.Store(true)
	r.cmds <- command{StateStart, r.now()}
}

// Pause stops writing until the next Record; the paused time is not in the file.
func (r *Recorder) Pause() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.want != StateStart {
		r.log.Info("pause ignored: not recording", "state", r.want)
		return
	}
	r.want = StatePause
	r.accepting.Store(false)
	r.cmds <- command{StatePause, r.now()}
}

// Stop ends the recording and finalizes the file in the background; Stopped tells when it is done.
func (r *Recorder) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopAsked || !r.running {
		r.log.Info("stop ignored: not recording", "state", r.want)
		return
	}
	r.stopAsked = true
	r.want = StateStop
	r.accepting.Store(false)
	r.cmds <- command{StateStop, r.now()}
}

// StopAndWait stops and waits until the file is finalized, at most timeout; false if it timed out.
func (r *Recorder) StopAndWait(timeout time.Duration) bool {
	r.Stop()
	r.mu.Lock()
	running := r.running
	r.mu.Unlock()
	if !running {
		return true
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-r.finalized:
		return true
	case <-t.C:
		r.log.Error("recorder did not reach STOP in time", "timeout", timeout)
		return false
	}
}

// State is the state reached (UriEndpoint.getState).
func (r *Recorder) State() State {
	r.smu.Lock()
	defer r.smu.Unlock()
	return r.state
}

// Stats returns the recorder's counters.
func (r *Recorder) Stats() Stats {
	return Stats{Packets: r.packets.Load(), Drops: r.drops.Load(), Frames: r.frames.Load(), Bytes: r.bytes.Load()}
}

// Close finalizes a recording in progress (as KMS's release does with stopAndWait) and waits for the
// writer to end, at most StopTimeout.
func (r *Recorder) Close() {
	r.mu.Lock()
	running, stopAsked := r.running, r.stopAsked
	r.mu.Unlock()
	r.accepting.Store(false)
	if !running {
		return
	}
	if !stopAsked {
		r.Stop()
	}
	t := time.NewTimer(StopTimeout)
	defer t.Stop()
	select {
	case <-r.done:
	case <-t.C:
		r.log.Error("recorder did not finish in time; it goes on in the background", "timeout", StopTimeout)
	}
}

func (r *Recorder) setState(s State) {
	r.smu.Lock()
	r.state = s
	r.smu.Unlock()
	r.el.Emit(StateChanged{s})
}

func (r *Recorder) fail(typ string, err error) {
	r.log.Error("recording failed", "type", typ, "err", err)
	r.el.Emit(Error{Type: typ, Description: err.Error(), Code: errorCodes[typ]})
}

// input is one sink pad.
type input struct {
	r     *Recorder
	kind  media.Type
	cur   atomic.Pointer[media.Source]
	meter *media.FlowMeter
	conv  media.Converter
	ended atomic.Bool // the source said its media ended, and sent nothing since
	// transcoding: the linked source's media comes, but through a transcoder (being made or running)
	transcoding atomic.Bool
}

// SetSource is called under the pipeline lock when the pad is linked or unlinked.
func (in *input) SetSource(src *media.Source) {
	in.cur.Store(src)
	in.transcoding.Store(false)
	in.conv.Link(src)
	if src != nil && in.kind == media.Video && in.r.accepting.Load() {
		src.RequestKeyframe()
	}
}

// WriteRTP copies the packet into a pooled buffer and queues it without blocking.
func (in *input) WriteRTP(src *media.Source, p *rtp.Packet) {
	if in.cur.Load() != src {
		return
	}
	in.meter.MarkFrom(src)
	if in.ended.Load() {
		in.ended.Store(false)
	}
	if !in.conv.Direct(src) {
		in.transcoding.Store(true)
		return // a transcoder feeds the pad, or is being made
	}
	in.enqueue(src, p)
}

// EndOfStream stops the recording, with stopOnEndOfStream, once the media of every linked pad ended.
func (in *input) EndOfStream(src *media.Source) {
	r := in.r
	if !r.cfg.StopOnEndOfStream || in.cur.Load() != src {
		return
	}
	in.ended.Store(true)
	for _, other := range r.inputs {
		if other != nil && r.wants[other.kind] && other.cur.Load() != nil && !other.ended.Load() {
			return
		}
	}
	r.log.Info("end of stream: the recording stops")
	go r.Stop() // not on the producer's goroutine: Stop may wait for the writer
}

// enqueue queues a packet of src (the linked source, or a transcoder of it) for the writer.
func (in *input) enqueue(src *media.Source, p *rtp.Packet) {
	r := in.r
	if !r.wants[in.kind] || !r.accepting.Load() {
		return
	}
	it := r.pool.Get().(*item)
	it.kind, it.codec = in.kind, src.Codec()
	it.seq, it.ts, it.marker = p.SequenceNumber, p.Timestamp, p.Marker
	it.at = r.now()
	it.payload = append(it.payload[:0], p.Payload...)
	select {
	case r.queue <- it:
		r.packets.Add(1)
	default:
		r.drops.Add(1)
		r.pool.Put(it)
	}
}

// requestKeyframe asks the source of a pad, or the transcoder feeding it, for a keyframe
// (rate-limited by the source).
func (r *Recorder) requestKeyframe(t media.Type) {
	in := r.inputs[t]
	if in.conv.RequestKeyframe() {
		return
	}
	if src := in.cur.Load(); src != nil {
		src.RequestKeyframe()
	}
}

func (r *Recorder) linked(t media.Type) bool { return r.inputs[t].cur.Load() != nil }

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)

// ResolveURI turns a RecorderEndpoint uri into an absolute URL as KMS does: "%2F" reads as "/", and
// a uri without a scheme is a path under defaultPath (UriEndpoint.conf defaultPath).
func ResolveURI(uri, defaultPath string) (*url.URL, error) {
	uri = strings.ReplaceAll(uri, "%2F", "/")
	abs := uri
	if !schemeRE.MatchString(uri) {
		abs = strings.TrimSuffix(defaultPath, "/") + "/" + strings.TrimPrefix(uri, "/")
	}
	u, err := url.Parse(abs)
	if err != nil {
		return nil, fmt.Errorf("invalid uri %q: %w", uri, err)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("invalid uri %q: a file uri has no host (file:///path)", uri)
		}
		if u.Path == "" && u.Opaque != "" {
			u.Path, u.Opaque = u.Opaque, ""
		}
		if !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("invalid uri %q: the path must be absolute", uri)
		}
	}
	return u, nil
}

// DecodeSlashes reads "%2F" as "/", as KMS does with every UriEndpoint uri.
func DecodeSlashes(uri string) string { return strings.ReplaceAll(uri, "%2F", "/") }
