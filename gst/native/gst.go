// Package native is the cgo half of package gst: the in-process bridge over go-gst (GStreamer 1.22)
// that a GStreamer worker process runs (and the server itself only in the in-process comparison mode).
// It also holds the value types (Message, Error, ParseError...) that package gst re-exports and the
// worker protocol carries.
//
// A Pipeline is built from a gst-launch description. Its appsrc elements take RTP packets from Go
// (AppSrc.Push copies the packet into a GstBuffer: no Go allocation per packet), its appsink
// elements are drained by one goroutine each that hands every buffer to a callback (again without
// allocating), and its bus is read by one goroutine that turns ERROR, WARNING, EOS and element
// messages into Message values. Close stops everything: state NULL, goroutines joined, references
// dropped. A GStreamer failure is always a Go error value or an Error message, never a crash.
//
// go-gst provides initialisation and the object model; the calls on the packet path and the ones
// where go-gst v1.4.0 loses details (parse errors, error domains, typed property conversion) are
// made here directly against the C API (bridge.c).
package native

/*
#cgo pkg-config: gstreamer-1.0 gstreamer-app-1.0 gstreamer-video-1.0
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"

	gogst "github.com/go-gst/go-gst/gst"
)

var (
	initOnce sync.Once
	initErr  error
)

// Init initialises GStreamer once per process; later calls return the first result.
func Init() error {
	initOnce.Do(func() {
		// OpenCV (facedetect of FaceOverlayFilter) writes raw lines to stderr, one per optional
		// cascade it cannot load; our own code reports a missing face model. Silent unless the
		// operator asks for its logs.
		if _, set := os.LookupEnv("OPENCV_LOG_LEVEL"); !set {
			os.Setenv("OPENCV_LOG_LEVEL", "SILENT")
		}
		gogst.Init(nil)
		if C.gst_is_initialized() == 0 {
			initErr = errors.New("gst: GStreamer could not be initialised")
			return
		}
		// souphttpsrc of GStreamer 1.22.0 with libsoup 3 can crash the process from its session
		// thread when a failed source is torn down (SIGSEGV in g_input_stream_close, seen once in
		// a few dozen players of a 404): http(s) URIs are read with curlhttpsrc when it is there.
		avoid, instead := C.CString("souphttpsrc"), C.CString("curlhttpsrc")
		C.kb_demote(avoid, instead)
		C.free(unsafe.Pointer(avoid))
		C.free(unsafe.Pointer(instead))
	})
	return initErr
}

// Version is the GStreamer version in use.
func Version() string {
	if err := Init(); err != nil {
		return ""
	}
	var major, minor, micro, nano C.guint
	C.gst_version(&major, &minor, &micro, &nano)
	return fmt.Sprintf("%d.%d.%d", major, minor, micro)
}

// HasElement reports whether an element factory (a plugin feature such as "zbar") is installed.
func HasElement(factory string) bool {
	if Init() != nil {
		return false
	}
	f := gogst.Find(factory)
	return f != nil
}

// ErrNotFound is returned (wrapped) when a named element does not exist in a pipeline.
var ErrNotFound = errors.New("gst: no such element")

// ErrClosed is returned by operations on a closed pipeline.
var ErrClosed = errors.New("gst: pipeline closed")

// ErrFlow is returned by AppSrc.Push when the pipeline no longer takes data (it is stopping, or a
// streaming error ended it).
var ErrFlow = errors.New("gst: pipeline does not take data")

// ParseError is a gst-launch description GStreamer could not build.
type ParseError struct {
	Description string
	Message     string // GStreamer's own message, e.g. "no element \"foo\""
}

func (e *ParseError) Error() string {
	return "gst: cannot parse " + fmt.Sprintf("%q", e.Description) + ": " + e.Message
}

// PropertyError is a property that does not exist or cannot take the given value.
type PropertyError struct {
	Element  string
	Property string
	Value    string
	Type     string // the property's GType name, when it exists
	Reason   PropertyFailure
}

// PropertyFailure says why a property could not be set.
type PropertyFailure int

// Reasons of a PropertyError.
const (
	NoSuchProperty PropertyFailure = iota + 1
	BadValue
	NotWritable
)

func (e *PropertyError) Error() string {
	switch e.Reason {
	case NoSuchProperty:
		return fmt.Sprintf("No property named '%s' in object '%s'", e.Property, e.Element)
	case NotWritable:
		return fmt.Sprintf("Property '%s' of object '%s' is not writable", e.Property, e.Element)
	}
	return fmt.Sprintf("Cannot convert '%s' to %s", e.Value, e.Type)
}
