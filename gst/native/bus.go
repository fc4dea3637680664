package native

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"
)

// MessageType is the kind of a bus message.
type MessageType int

// The bus messages a Pipeline reports.
const (
	MessageError          MessageType = iota + 1 // Err is set; the pipeline stopped streaming
	MessageWarning                               // Err is set
	MessageEOS                                   // end of stream
	MessageElement                               // Name and Fields are set (facedetect, barcode, ...)
	MessageKeyUnitRequest                        // an appsrc watched with WatchKeyUnit was asked for a keyframe
)

func (t MessageType) String() string {
	switch t {
	case MessageError:
		return "ERROR"
	case MessageWarning:
		return "WARNING"
	case MessageEOS:
		return "EOS"
	case MessageElement:
		return "ELEMENT"
	case MessageKeyUnitRequest:
		return "KEY_UNIT_REQUEST"
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// Message is a bus message turned into Go values.
type Message struct {
	Type   MessageType
	Source string // name of the element (or pipeline) that posted it
	Err    *Error // ERROR and WARNING
	Name   string // structure name of an element message ("barcode", "facedetect", ...)
	Fields map[string]any
}

// Error domains of GStreamer errors (GQuark names).
const (
	DomainCore     = "gst-core-error-quark"
	DomainLibrary  = "gst-library-error-quark"
	DomainResource = "gst-resource-error-quark"
	DomainStream   = "gst-stream-error-quark"
	// DomainWorker is not GStreamer's: the worker process running the pipeline died (see
	// ErrWorkerCrashed). Code is 1 for a crash, 2 for a kill by a limit.
	DomainWorker = "kms-gst-worker"
)

// ErrWorkerCrashed is what errors.Is finds in the Error of a pipeline whose worker process died.
var ErrWorkerCrashed = errors.New("gst: GStreamer worker crashed")

// Is makes errors.Is(err, ErrWorkerCrashed) true for a worker's death.
func (e *Error) Is(target error) bool { return target == ErrWorkerCrashed && e.Domain == DomainWorker }

// Codes of the stream and resource domains that callers tell apart.
const (
	StreamErrorFailed          = int(C.GST_STREAM_ERROR_FAILED)
	StreamErrorDecode          = int(C.GST_STREAM_ERROR_DECODE)
	ResourceErrorOpenRead      = int(C.GST_RESOURCE_ERROR_OPEN_READ)
	ResourceErrorOpenWrite     = int(C.GST_RESOURCE_ERROR_OPEN_WRITE)
	ResourceErrorOpenReadWrite = int(C.GST_RESOURCE_ERROR_OPEN_READ_WRITE)
	ResourceErrorWrite         = int(C.GST_RESOURCE_ERROR_WRITE)
	ResourceErrorNoSpaceLeft   = int(C.GST_RESOURCE_ERROR_NO_SPACE_LEFT)
)

// Error is a GStreamer error or warning.
type Error struct {
	Domain  string // one of the Domain constants (or another GQuark name)
	Code    int
	Message string
	Debug   string
	Source  string // element that posted it
	Warning bool
}

func (e *Error) Error() string {
	s := fmt.Sprintf("Error code %d: %s, source: %s", e.Code, e.Message, e.Source)
	if e.Debug != "" {
		s += ", debug info: " + e.Debug
	}
	return s
}

// errorCount counts the error messages of every pipeline, for metrics.
var errorCount atomic.Uint64

// Errors is the number of error messages GStreamer pipelines have posted since the process started.
func Errors() uint64 { return errorCount.Load() }

func (p *Pipeline) readBus() {
	defer close(p.busDone)
	for {
		m := C.kb_bus_pop(p.bus)
		if m == nil {
			continue
		}
		msg, stop := convert(m)
		C.gst_mini_object_unref((*C.GstMiniObject)(unsafe.Pointer(m)))
		if stop {
			return
		}
		if msg == nil {
			continue
		}
		if msg.Type == MessageError {
			errorCount.Add(1)
		}
		p.mu.Lock()
		f := p.onMsg
		p.mu.Unlock()
		if f != nil {
			f(*msg)
		}
	}
}

// convert turns a C message into a Message; stop is true for the bridge's own stop message.
func convert(m *C.GstMessage) (msg *Message, stop bool) {
	out := &Message{Source: C.GoString(C.kb_msg_src_name(m))}
	switch C.kb_msg_type(m) {
	case C.GST_MESSAGE_ERROR, C.GST_MESSAGE_WARNING:
		out.Type = MessageError
		if C.kb_msg_type(m) == C.GST_MESSAGE_WARNING {
			out.Type = MessageWarning
		}
		var domain *C.char
		var code C.int
		var text, debug *C.char
		C.kb_msg_parse_error(m, &domain, &code, &text, &debug)
		out.Err = &Error{Domain: C.GoString(domain), Code: int(code), Message: C.GoString(text), Debug: C.GoString(debug),
			Source: out.Source, Warning: out.Type == MessageWarning}
		C.g_free(C.gpointer(text))
		C.g_free(C.gpointer(debug))
	case C.GST_MESSAGE_EOS:
		out.Type = MessageEOS
	case C.GST_MESSAGE_APPLICATION:
		st := C.kb_msg_structure(m)
		if st == nil {
			return nil, false
		}
		switch C.GoString(C.gst_structure_get_name(st)) {
		case "kms-stop":
			return nil, true
		case "kms-force-key-unit":
			out.Type = MessageKeyUnitRequest
		default:
			return nil, false
		}
	case C.GST_MESSAGE_ELEMENT:
		st := C.kb_msg_structure(m)
		if st == nil {
			return nil, false
		}
		out.Type = MessageElement
		out.Name = C.GoString(C.gst_structure_get_name(st))
		out.Fields = structFields(st)
	default:
		return nil, false
	}
	return out, false
}

func structFields(st *C.GstStructure) map[string]any {
	n := int(C.gst_structure_n_fields(st))
	out := make(map[string]any, n)
	for i := 0; i < n; i++ {
		name := C.gst_structure_nth_field_name(st, C.guint(i))
		v := C.gst_structure_get_value(st, name)
		out[C.GoString(name)] = goValue(v)
	}
	return out
}

// goValue converts a GValue: strings, booleans, int64, uint64, float64, lists as []any, structures
// as map[string]any (with "$name" holding the structure's name); anything else in textual form.
func goValue(v *C.GValue) any {
	switch C.kb_value_kind(v) {
	case 1:
		return C.GoString(C.g_value_get_string(v))
	case 2:
		return C.g_value_get_boolean(v) != 0
	case 3:
		var t C.GValue
		C.g_value_init(&t, C.G_TYPE_INT64)
		C.g_value_transform(v, &t)
		return int64(C.g_value_get_int64(&t))
	case 4:
		var t C.GValue
		C.g_value_init(&t, C.G_TYPE_UINT64)
		C.g_value_transform(v, &t)
		return uint64(C.g_value_get_uint64(&t))
	case 5:
		var t C.GValue
		C.g_value_init(&t, C.G_TYPE_DOUBLE)
		C.g_value_transform(v, &t)
		return float64(C.g_value_get_double(&t))
	case 6:
		n := int(C.kb_list_size(v))
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			out = append(out, goValue(C.kb_list_get(v, C.guint(i))))
		}
		return out
	case 7:
		st := C.gst_value_get_structure(v)
		m := structFields(st)
		m["$name"] = C.GoString(C.gst_structure_get_name(st))
		return m
	}
	s := C.gst_value_serialize(v)
	if s == nil {
		return nil
	}
	defer C.g_free(C.gpointer(s))
	return C.GoString(s)
}
