// Package gst is the server's one bridge to GStreamer, for the media work the pure-Go layers cannot
// do — decoding, filtering and encoding. The GStreamer work itself runs in worker processes, so that
// a crashing or runaway element ends one worker, never the server.
//
// A Pipeline is built from a gst-launch description. Its appsrc elements take RTP packets from Go
// (AppSrc.Push), its appsink elements hand every buffer to a callback (HandleSink), and its bus
// messages arrive as Message values (OnMessage). Close stops everything.
//
// Workers. A worker is this same executable started again with KMS_GST_WORKER set: the package's
// init runs the worker loop and exits before main (test binaries work as workers too). Control
// crosses a Unix stream socket (package workerproto), media a SOCK_SEQPACKET socket. Push never
// blocks: when the worker's socket is full the packet is dropped and counted (Dropped). Placement
// follows workerconf.Settings (Configure; without it, the KMS_GST_* variables): one worker per
// pipeline (the default), a pool of N, or in-process (only to compare costs). HasElement, Version and
// the checks of ParseElement/ParseBin use one long-lived utility worker; the Element they return is a
// validated description, built in the pipeline's worker by Insert.
//
// Supervision. When a worker dies (a crash, or a kill above its memory or CPU limit), each of its
// pipelines gets a MessageError whose Err has Domain DomainWorker and satisfies
// errors.Is(err, ErrWorkerCrashed), its SinkEnded channels close, later calls fail with errors
// wrapping ErrClosed and Push fails with ErrFlow. Its stderr goes to the log, prefixed with its pid.
//
// For tests and tools: Workers counts live worker processes, WorkerPIDs lists them, and
// Pipeline.WorkerPID tells the process running a pipeline (0 in-process).
package gst

import (
	"log/slog"
	"sync"

	"github.com/kurento-go/kms/gst/native"
	"github.com/kurento-go/kms/gst/workerconf"
)

// Value types, shared with the worker protocol.
type (
	Message         = native.Message
	MessageType     = native.MessageType
	Error           = native.Error
	ParseError      = native.ParseError
	PropertyError   = native.PropertyError
	PropertyFailure = native.PropertyFailure
	MediaKind       = native.MediaKind
	State           = native.State
	OverlayImage    = native.OverlayImage
)

// Message types, error domains and codes, states, kinds: see package native.
const (
	MessageError          = native.MessageError
	MessageWarning        = native.MessageWarning
	MessageEOS            = native.MessageEOS
	MessageElement        = native.MessageElement
	MessageKeyUnitRequest = native.MessageKeyUnitRequest

	DomainCore     = native.DomainCore
	DomainLibrary  = native.DomainLibrary
	DomainResource = native.DomainResource
	DomainStream   = native.DomainStream
	DomainWorker   = native.DomainWorker

	StreamErrorFailed          = native.StreamErrorFailed
	StreamErrorDecode          = native.StreamErrorDecode
	StreamErrorTypeNotFound    = native.StreamErrorTypeNotFound
	StreamErrorWrongType       = native.StreamErrorWrongType
	StreamErrorCodecNotFound   = native.StreamErrorCodecNotFound
	StreamErrorDemux           = native.StreamErrorDemux
	StreamErrorFormat          = native.StreamErrorFormat
	ResourceErrorNotFound      = native.ResourceErrorNotFound
	ResourceErrorRead          = native.ResourceErrorRead
	ResourceErrorOpenRead      = native.ResourceErrorOpenRead
	ResourceErrorOpenWrite     = native.ResourceErrorOpenWrite
	ResourceErrorOpenReadWrite = native.ResourceErrorOpenReadWrite
	ResourceErrorWrite         = native.ResourceErrorWrite
	ResourceErrorNoSpaceLeft   = native.ResourceErrorNoSpaceLeft

	NoSuchProperty = native.NoSuchProperty
	BadValue       = native.BadValue
	NotWritable    = native.NotWritable

	KindInvalid = native.KindInvalid
	KindNone    = native.KindNone
	KindAudio   = native.KindAudio
	KindVideo   = native.KindVideo

	StateNull    = native.StateNull
	StateReady   = native.StateReady
	StatePaused  = native.StatePaused
	StatePlaying = native.StatePlaying

	MessageSinkCaps = native.MessageSinkCaps
	MessageSinkEOS  = native.MessageSinkEOS
)

// Errors callers test for.
var (
	ErrNotFound      = native.ErrNotFound
	ErrClosed        = native.ErrClosed
	ErrFlow          = native.ErrFlow
	ErrNotSingle     = native.ErrNotSingle
	ErrQuery         = native.ErrQuery
	ErrWorkerCrashed = native.ErrWorkerCrashed
)

var (
	confMu     sync.Mutex
	conf       workerconf.Settings
	configured bool
	logger     = slog.Default()
)

// Configure sets how pipelines are placed in processes and the workers' limits, and the log their
// stderr and deaths go to (nil: slog.Default). Call it before the first pipeline.
func Configure(s workerconf.Settings, log *slog.Logger) {
	confMu.Lock()
	defer confMu.Unlock()
	conf, configured = s, true
	if log != nil {
		logger = log
	}
}

// settings is what Configure set, else what the KMS_GST_* variables say (tests), else the defaults.
func settings() workerconf.Settings {
	confMu.Lock()
	defer confMu.Unlock()
	if !configured {
		s, err := workerconf.FromEnv()
		if err != nil {
			logger.Warn("GStreamer workers: ignoring a bad setting", "err", err)
			s = workerconf.Default()
		}
		conf, configured = s, true
	}
	return conf
}

func inProcess() bool { return settings().Mode == workerconf.InProcess }

func log() *slog.Logger {
	confMu.Lock()
	defer confMu.Unlock()
	return logger
}

// Init makes GStreamer usable: in-process it initialises it, otherwise it starts the utility worker.
// An error means GStreamer is unavailable.
func Init() error {
	if inProcess() {
		return native.Init()
	}
	_, err := utility()
	return err
}

var (
	versionOnce sync.Once
	version     string
	hasMu       sync.Mutex
	hasCache    = map[string]bool{}
)

// Version is the GStreamer version in use ("" when unavailable).
func Version() string {
	if inProcess() {
		return native.Version()
	}
	versionOnce.Do(func() {
		if w, err := utility(); err == nil {
			version = w.version
		}
	})
	return version
}

// HasElement reports whether an element factory (a plugin feature such as "zbar") is installed.
// Answers are cached: plugins do not come and go while the server runs.
func HasElement(factory string) bool {
	if inProcess() {
		return native.HasElement(factory)
	}
	hasMu.Lock()
	has, ok := hasCache[factory]
	hasMu.Unlock()
	if ok {
		return has
	}
	r, err := utilityCall(request{Op: opHasElement, Name: factory})
	if err != nil {
		return false
	}
	hasMu.Lock()
	hasCache[factory] = r.Flag
	hasMu.Unlock()
	return r.Flag
}

// Errors is the number of error messages GStreamer pipelines have posted since the process started.
func Errors() uint64 { return errorCount.Load() + native.Errors() }

// RestartWorkers tells whether elements rebuild their pipeline in a new worker after a crash
// (--gst-worker-restart).
func RestartWorkers() bool { return settings().Restart }
