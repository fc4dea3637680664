package recorder

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/kurento-go/kms/uriguard"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Error types of the Error event, as KMS names them.
const (
	ErrTypeOpen        = "RESOURCE_ERROR_OPEN"
	ErrTypeWrite       = "RESOURCE_ERROR_WRITE"
	ErrTypeNoSpace     = "RESOURCE_ERROR_NO_SPACE_LEFT"
	ErrTypeUnsupported = "UNSUPPORTED_MEDIA_TYPE"
	ErrTypeInvalidURI  = "INVALID_URI"
	// ErrTypeWorkerCrashed: the GStreamer worker muxing FLV or JPEG died (processing.WorkerCrashed).
	ErrTypeWorkerCrashed = "WORKER_CRASHED"
)

// errorCodes are GStreamer's GstResourceError codes, which KMS puts in errorCode.
var errorCodes = map[string]int{
	ErrTypeOpen:          6, // GST_RESOURCE_ERROR_OPEN_WRITE
	ErrTypeWrite:         10,
	ErrTypeNoSpace:       14,
	ErrTypeUnsupported:   40005, // kerr.UnsupportedMediaType: no GStreamer code stands for it
	ErrTypeInvalidURI:    3,     // GST_RESOURCE_ERROR_NOT_FOUND
	ErrTypeWorkerCrashed: 1,     // as the worker's Error: 1, a crash
}

// sinkError is a failure of the destination, with the Error event type it maps to.
type sinkError struct {
	typ string
	err error
}

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

func writeError(err error) *sinkError {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &sinkError{ErrTypeNoSpace, err}
	}
	return &sinkError{ErrTypeWrite, err}
}

// headKeep is how many of the first bytes a sink remembers, for the muxer to patch its header.
const headKeep = 4096

// sink is where a recording goes: a file, or an HTTP upload by chunked POST. Writes are buffered
// and never fail: the first error is kept (see Err) and later writes are dropped, so that a muxer
// library never sees an I/O error mid-structure. The writer goroutine flushes it periodically.
type sink struct {
	mu   sync.Mutex
	bw   *bufio.Writer
	file *os.File
	pipe *io.PipeWriter
	resp chan error // HTTP: the result of the request
	err  *sinkError
	n    int64
	head []byte
}

// checkDestination tells early whether a recording can be written there: KMS reports a bad path when
// the recording starts, not when the first media arrives.
func checkDestination(u *url.URL) *sinkError {
	switch u.Scheme {
	case "file":
		dir := filepath.Dir(u.Path)
		st, err := os.Stat(dir)
		if err != nil {
			return &sinkError{ErrTypeOpen, fmt.Errorf("cannot open %s for writing: %w", u.Path, err)}
		}
		if !st.IsDir() {
			return &sinkError{ErrTypeOpen, fmt.Errorf("cannot open %s for writing: %s is not a directory", u.Path, dir)}
		}
		if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
			return &sinkError{ErrTypeOpen, fmt.Errorf("cannot open %s for writing: %w", u.Path, err)}
		}
		if err := uriguard.CheckWritable(u.Path); err != nil {
			return &sinkError{ErrTypeOpen, err}
		}
	case "http", "https":
	default:
		return &sinkError{ErrTypeInvalidURI, fmt.Errorf("cannot record to %q: only file://, http:// and https:// URIs are supported", u.String())}
	}
	return nil
}

// openSink creates the file (truncating an old one) or starts the upload.
func openSink(u *url.URL, client *http.Client) (*sink, error) {
	s := &sink{head: make([]byte, 0, headKeep)}
	switch u.Scheme {
	case "file":
		f, err := uriguard.OpenRegular(u.Path)
		if err != nil {
			return nil, &sinkError{ErrTypeOpen, err}
		}
		s.file = f
		s.bw = bufio.NewWriterSize(f, 64<<10)
	case "http", "https":
		pr, pw := io.Pipe()
		req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, u.String(), pr)
		if err != nil {
			return nil, &sinkError{ErrTypeOpen, err}
		}
		req.ContentLength = -1 // chunked transfer encoding
		req.Header.Set("Content-Type", "application/octet-stream")
		s.pipe = pw
		s.resp = make(chan error, 1)
		s.bw = bufio.NewWriterSize(pw, 32<<10)
		go func() {
			resp, err := client.Do(req)
			if err == nil {
				io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
				resp.Body.Close()
				if resp.StatusCode >= 300 {
					err = fmt.Errorf("upload to %s: HTTP %s", u.Redacted(), resp.Status)
				}
			}
			if err != nil {
				pr.CloseWithError(err) // unblocks a pending write
			}
			s.resp <- err
		}()
	default:
		return nil, &sinkError{ErrTypeInvalidURI, fmt.Errorf("unsupported URI scheme %q", u.Scheme)}
	}
	return s, nil
}

// Write buffers p; it always reports success (see Err).
func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return len(p), nil
	}
	if room := headKeep - len(s.head); room > 0 {
		s.head = append(s.head, p[:min(room, len(p))]...)
	}
	if _, err := s.bw.Write(p); err != nil {
		s.err = writeError(err)
	}
	s.n += int64(len(p))
	return len(p), nil
}

// written is the number of bytes written so far.
func (s *sink) written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Close is what the muxer library calls when it is done: it only flushes; the recorder closes the
// destination with finish once the header is patched.
func (s *sink) Close() error { return s.Flush() }

// Flush writes the buffered bytes out.
func (s *sink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		if err := s.bw.Flush(); err != nil {
			s.err = writeError(err)
		}
	}
	if s.err != nil {
		return s.err
	}
	return nil
}

// Err is the first write error, nil while all is well.
func (s *sink) Err() *sinkError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Head returns the first bytes written (at most headKeep).
func (s *sink) Head() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head
}

// Seekable tells whether PatchAt can rewrite bytes already written.
func (s *sink) Seekable() bool { return s.file != nil }

// PatchAt rewrites bytes at an offset of a file; the buffer is flushed first.
func (s *sink) PatchAt(off int64, b []byte) error {
	if err := s.Flush(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.file.WriteAt(b, off); err != nil {
		s.err = writeError(err)
		return s.err
	}
	return nil
}

// WriteAt is PatchAt as io.WriterAt, for the muxer library's index written at the end.
func (s *sink) WriteAt(b []byte, off int64) (int, error) {
	if err := s.PatchAt(off, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// uploadWait bounds how long finishing an upload waits for the server's answer.
const uploadWait = 10 * time.Second

// finish flushes and closes the destination: fsync and close for a file; end of the chunked body and
// the server's answer for an upload.
func (s *sink) finish() *sinkError {
	s.Flush()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file != nil {
		if err := s.file.Sync(); err != nil && s.err == nil {
			s.err = writeError(err)
		}
		if err := s.file.Close(); err != nil && s.err == nil {
			s.err = writeError(err)
		}
		return s.err
	}
	s.pipe.Close()
	select {
	case err := <-s.resp:
		if err != nil && s.err == nil {
			s.err = &sinkError{ErrTypeWrite, err}
		}
	case <-time.After(uploadWait):
		if s.err == nil {
			s.err = &sinkError{ErrTypeWrite, errors.New("upload: no answer from the server")}
		}
	}
	return s.err
}
