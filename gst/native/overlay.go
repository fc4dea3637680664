package native

/*
#include <stdlib.h>
#include "bridge.h"
#include "overlay.h"
*/
import "C"

import (
	"fmt"
	"image"
	"runtime"
	"unsafe"
)

// ParseBin builds a bin from a gst-launch chain such as "videoconvert ! facedetect", with ghost
// pads for its unlinked sink and src pads, so that it can be used where one element is (Insert).
func ParseBin(desc string) (*Element, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	e, err := parseWith(desc, func(d *C.char, gerr **C.GError) *C.GstElement { return C.kb_parse_bin(d, gerr) })
	if err != nil {
		return nil, err
	}
	el := &Element{ptr: e, name: C.GoString(C.kb_name(e))}
	runtime.SetFinalizer(el, (*Element).Close)
	return el, nil
}

// OverlayImage is an image an Overlay draws on every frame.
type OverlayImage struct {
	Image *image.NRGBA
	// Faces places the image around each face found upstream (region-of-interest metadata of type
	// "face", as facedetect attaches): X, Y, Width and Height are fractions of the face's width and
	// height, the offsets counted from its top-left corner. Otherwise they are fractions of the
	// frame, and KeepAspectRatio fits the image into that box (Center centres it there).
	Faces                   bool
	X, Y, Width, Height     float64
	KeepAspectRatio, Center bool
}

// Overlay draws images into the video frames leaving an element of a pipeline. The frames must be
// packed 8-bit RGB (RGB, BGR, RGBx, BGRA...): put the element after a capsfilter or an element that
// only takes such formats (facedetect). Drawing happens on the streaming thread, in C.
type Overlay struct {
	p   *Pipeline
	ptr *C.kb_overlay
}

// Overlay starts drawing into the frames leaving the named element's src pad (none until Set).
// It lives until the pipeline is closed.
func (p *Pipeline) Overlay(element string) (*Overlay, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e, err := p.element(element)
	if err != nil {
		return nil, err
	}
	defer C.gst_object_unref(C.gpointer(e))
	ptr := C.kb_overlay_new(e)
	if ptr == nil {
		return nil, fmt.Errorf("gst: %s has no src pad", element)
	}
	o := &Overlay{p: p, ptr: ptr}
	p.ovls = append(p.ovls, o)
	return o, nil
}

// Set replaces the images drawn, in drawing order (later ones on top). An image with a zero width
// or height is not drawn, as in KMS.
func (o *Overlay) Set(images []OverlayImage) error {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	if o.p.closed {
		return ErrClosed
	}
	var arr *C.kb_image
	n := 0
	for _, im := range images {
		if im.Image != nil && im.Image.Rect.Dx() > 0 && im.Image.Rect.Dy() > 0 {
			n++
		}
	}
	if n > 0 {
		arr = (*C.kb_image)(C.g_malloc0(C.gsize(n) * C.gsize(unsafe.Sizeof(C.kb_image{}))))
		out := unsafe.Slice(arr, n)
		i := 0
		for _, im := range images {
			b := im.Image.Rect
			w, h := b.Dx(), b.Dy()
			if w <= 0 || h <= 0 {
				continue
			}
			px := C.kb_image_alloc(C.int(w * h * 4))
			dst := unsafe.Slice((*byte)(unsafe.Pointer(px)), w*h*4)
			for y := 0; y < h; y++ {
				off := im.Image.PixOffset(b.Min.X, b.Min.Y+y)
				copy(dst[y*w*4:(y+1)*w*4], im.Image.Pix[off:off+w*4])
			}
			out[i] = C.kb_image{rgba: px, w: C.int(w), h: C.int(h), faces: ovBool(im.Faces),
				x: C.double(im.X), y: C.double(im.Y), width: C.double(im.Width), height: C.double(im.Height),
				keep_aspect: ovBool(im.KeepAspectRatio), center: ovBool(im.Center)}
			i++
		}
	}
	C.kb_overlay_set(o.ptr, arr, C.int(n))
	return nil
}

// FacesFrom makes face images follow the faces the named detector element (facedetect, possibly
// on a downscaled copy of the video in another branch) found in the latest frame it looked at,
// in proportion to the frame, instead of the faces attached to each drawn frame. The overlay then
// runs at the video's rate while detection runs at its own, as KMS's face detector does when it is
// slower than the video.
func (o *Overlay) FacesFrom(element string) error {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	e, err := o.p.element(element)
	if err != nil {
		return err
	}
	defer C.gst_object_unref(C.gpointer(e))
	if C.kb_overlay_watch(o.ptr, e) == 0 {
		return fmt.Errorf("gst: cannot watch the faces of %s", element)
	}
	return nil
}

// Detections is how many frames the FacesFrom detector has looked at.
func (o *Overlay) Detections() uint64 {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	if o.p.closed {
		return 0
	}
	return uint64(C.kb_overlay_detections(o.ptr))
}

// Drawn is how many times an image has been drawn into a frame so far.
func (o *Overlay) Drawn() uint64 {
	o.p.mu.Lock()
	defer o.p.mu.Unlock()
	if o.p.closed {
		return 0
	}
	return uint64(C.kb_overlay_drawn(o.ptr))
}

// free runs in Pipeline.Close, once the pipeline is stopped.
func (o *Overlay) free() {
	C.kb_overlay_free(o.ptr)
	o.ptr = nil
}

func ovBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}
