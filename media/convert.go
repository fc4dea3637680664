package media

import (
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
)

// Converter lets an input that takes only some codecs (a recorder's container, a filter's decoder)
// be linked to any source: when the source's codec does not fit, the input is fed from a shared
// transcoder of that source (Source.Transcoded) instead. The input keeps the source it is linked to;
// the converted media comes on the side.
type Converter struct {
	// Accepts tells whether the input takes a codec as it is.
	Accepts func(*Codec) bool
	// Target is the codec to convert into for the source's media type.
	Target func(Type) Codec
	// Deliver takes the converted packets, on the transcoder's goroutine; src is the converted source.
	Deliver func(src *Source, p *rtp.Packet)
	// Failed is told, off the packet goroutine, when no transcoder can convert src (may be nil).
	Failed func(src *Source, err error)

	conv    atomic.Pointer[conversion]
	checked atomic.Pointer[Codec] // the last codec checked, and the verdict
	fits    atomic.Bool
	mu      sync.Mutex
	linked  *Source // the source the input is linked to; the conversion must be of it
	pending bool
	failed  *Source
}

// conversion is one use of a transcoded source.
type conversion struct {
	c       *Converter
	out     *Source
	release func()
}

func (cv *conversion) WriteRTP(src *Source, p *rtp.Packet) {
	if cv.c.conv.Load() == cv {
		cv.c.Deliver(src, p)
	}
}

func (cv *conversion) SetSource(*Source) {}

// Direct tells whether a packet of src is to be taken as it is. When src's codec does not fit, it
// asks for a conversion (once, off the packet goroutine) and answers false; the converted packets
// then come through Deliver. It answers true again for a source that cannot be converted, so that
// the input can report it.
func (c *Converter) Direct(src *Source) bool {
	if c.conv.Load() != nil {
		return false
	}
	codec := src.Codec()
	if codec == nil {
		return true
	}
	if c.checked.Load() != codec {
		c.fits.Store(c.Accepts(codec))
		c.checked.Store(codec)
	}
	if c.fits.Load() {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed == src || c.linked != src {
		return c.failed == src
	}
	if !c.pending {
		c.pending = true
		go c.start(src, c.Target(src.Type))
	}
	return false
}

func (c *Converter) start(src *Source, target Codec) {
	out, release, err := src.Transcoded(target)
	c.mu.Lock()
	c.pending = false
	if err != nil {
		c.failed = src
		c.mu.Unlock()
		if c.Failed != nil {
			c.Failed(src, err)
		}
		return
	}
	if c.linked != src || c.conv.Load() != nil {
		c.mu.Unlock()
		release()
		return
	}
	cv := &conversion{c: c, out: out, release: release}
	out.addSink(cv) // before it is published: Link must find it linked
	c.conv.Store(cv)
	c.mu.Unlock()
	if src.Type == Video {
		out.RequestKeyframe()
	}
}

// Link tells the converter the source the input is now linked to (nil: none); a conversion of the
// previous one stops. It does not block: call it from SetSource.
func (c *Converter) Link(src *Source) {
	c.mu.Lock()
	c.linked, c.failed = src, nil
	cv := c.conv.Swap(nil)
	c.mu.Unlock()
	if cv != nil {
		// Releasing takes the pipeline lock, which SetSource's caller may hold.
		go func() {
			cv.out.removeSink(cv)
			cv.release()
		}()
	}
}

// RequestKeyframe asks the conversion's encoder for a keyframe; false when no conversion feeds the
// input (ask the source then).
func (c *Converter) RequestKeyframe() bool {
	cv := c.conv.Load()
	if cv == nil {
		return false
	}
	cv.out.RequestKeyframe()
	return true
}

// Converting tells whether a conversion feeds the input.
func (c *Converter) Converting() bool { return c.conv.Load() != nil }
