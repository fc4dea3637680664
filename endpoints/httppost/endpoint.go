package httppost

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/endpoints/player"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
)

// Config is what an endpoint is built with.
type Config struct {
	// DisconnectionTimeout is how long the session outlives the end of an upload waiting for another
	// one, before MediaSessionTerminated.
	DisconnectionTimeout time.Duration
	UseEncodedMedia      bool
	Bitrate              int // VP8 encoder target, bps
	Log                  *slog.Logger
}

// Endpoint is the media side of an HttpPostEndpoint. It raises player.EndOfStream when the media of
// an upload has been played out, player.Error for a bad upload, and endpoints.MediaSessionStarted /
// MediaSessionTerminated around the uploads.
type Endpoint struct {
	el    *media.Element
	cfg   Config
	log   *slog.Logger
	out   *player.Outputs
	srv   *Server
	path  string
	unreg func()

	mu      sync.Mutex
	stream  *player.Stream
	busy    bool
	session bool
	timer   *time.Timer
	closed  bool
}

// appsrcName is the appsrc that takes the uploaded bytes.
const appsrcName = "kms_upload"

// New makes the endpoint of e and serves its URL on srv.
func New(e *media.Element, srv *Server, cfg Config) *Endpoint {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	ep := &Endpoint{el: e, cfg: cfg, log: log, out: player.NewOutputs(e), srv: srv}
	ep.path, ep.unreg = srv.Register(ep)
	return ep
}

// URL is where the media must be POSTed.
func (ep *Endpoint) URL() string { return ep.srv.URL(ep.path) }

// Close stops serving the URL and tears down the pipeline of the last upload.
func (ep *Endpoint) Close() {
	ep.unreg()
	ep.mu.Lock()
	s := ep.stream
	ep.stream, ep.closed = nil, true
	if ep.timer != nil {
		ep.timer.Stop()
	}
	ep.mu.Unlock()
	if s != nil {
		s.Close()
	}
	ep.out.Close()
}

// ServeHTTP takes an upload: a raw body, or the first file of a multipart/form-data body.
func (ep *Endpoint) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		http.Error(w, "only POST uploads media here", http.StatusMethodNotAllowed)
		return
	}
	body, err := mediaBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	ep.mu.Lock()
	if ep.closed || ep.busy {
		ep.mu.Unlock()
		http.Error(w, ErrBusy.Error(), http.StatusConflict)
		return
	}
	ep.busy = true
	old := ep.stream
	ep.stream = nil
	if ep.timer != nil {
		ep.timer.Stop()
	}
	started := !ep.session
	ep.session = true
	ep.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if started {
		ep.el.Emit(endpoints.MediaSessionStarted{})
	}
	defer ep.uploadEnded()

	s, src, err := ep.start()
	if err != nil {
		ep.log.Error("http post pipeline", "err", err)
		http.Error(w, "cannot play the upload", http.StatusInternalServerError)
		return
	}
	n, err := feed(src, body)
	if err != nil && !errors.Is(err, gst.ErrFlow) && !errors.Is(err, gst.ErrClosed) {
		ep.log.Debug("upload interrupted", "err", err, "bytes", n)
	}
	src.EndOfStream()
	if s.Failed() {
		http.Error(w, "the upload is not playable media", http.StatusUnsupportedMediaType)
		return
	}
	if err != nil && !errors.Is(err, gst.ErrFlow) {
		http.Error(w, "upload interrupted", http.StatusBadRequest)
		return
	}
	fmt.Fprintf(w, "%d bytes received\n", n)
}

// start builds and starts the pipeline of a new upload, made current.
func (ep *Endpoint) start() (*player.Stream, *gst.AppSrc, error) {
	s, err := player.NewStream(ep.out, player.StreamConfig{
		Head:    player.AppSrcHead(appsrcName),
		Encoded: ep.cfg.UseEncodedMedia,
		Bitrate: ep.cfg.Bitrate,
		OnEnd: func(s *player.Stream) {
			if ep.current(s) {
				ep.el.Emit(player.EndOfStream{})
			}
		},
		OnError: func(s *player.Stream, e *gst.Error) {
			if ep.current(s) {
				ep.log.Warn("http post error", "err", e)
				ep.el.Emit(player.Classify(e, ep.URL()))
			}
		},
		Log: ep.log,
	})
	if err != nil {
		return nil, nil, err
	}
	src, err := s.Pipeline().AppSrc(appsrcName)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	src.SetBlocking() // the upload waits for the worker, as it waits for the client
	ep.mu.Lock()
	if ep.closed {
		ep.mu.Unlock()
		s.Close()
		return nil, nil, gst.ErrClosed
	}
	ep.stream = s
	ep.mu.Unlock()
	if err := s.Start(); err != nil {
		return nil, nil, err
	}
	return s, src, nil
}

func (ep *Endpoint) current(s *player.Stream) bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.stream == s && !ep.closed
}

// uploadEnded arms the disconnection timeout: without a new upload by then, the session ends.
func (ep *Endpoint) uploadEnded() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.busy = false
	if ep.closed {
		return
	}
	d := ep.cfg.DisconnectionTimeout
	ep.timer = time.AfterFunc(d, func() {
		ep.mu.Lock()
		end := ep.session && !ep.busy && !ep.closed
		ep.session = false
		ep.mu.Unlock()
		if end {
			ep.el.Emit(endpoints.MediaSessionTerminated{})
		}
	})
}

// feed pushes the body into the appsrc, which blocks when its queue is full: the upload goes at the
// pace the media is played.
func feed(src *gst.AppSrc, body io.Reader) (int64, error) {
	buf := make([]byte, 64<<10)
	var total int64
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if perr := src.Push(buf[:n]); perr != nil {
				return total, perr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// mediaBody is the media of a request: the body, or its first file part for multipart/form-data.
func mediaBody(r *http.Request) (io.Reader, error) {
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(ct, "multipart/") {
		return r.Body, nil
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var field []byte // the first form field, in case no part is a file
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bad multipart body: %w", err)
		}
		if p.FileName() != "" {
			return p, nil
		}
		if data, _ := io.ReadAll(io.LimitReader(p, 64<<20)); field == nil && len(data) > 0 {
			field = data
		}
	}
	if field != nil {
		return bytes.NewReader(field), nil
	}
	return nil, errors.New("no file in the multipart body")
}
