package media

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media/codec"
)

// maxVideo is the largest picture a source lets through, packed as width<<32 | height; see
// SetMaxVideoResolution.
var maxVideo atomic.Uint64

func init() { SetMaxVideoResolution(3840, 2160) }

// SetMaxVideoResolution bounds the picture size of the video sources carry. Keyframes announcing a
// larger picture (in either orientation: 3840x2160 lets 2160x3840 through) are dropped with the
// frames that follow them, before any decoder, filter or recorder allocates for them: a 200-byte
// packet can claim 16383x16383.
func SetMaxVideoResolution(width, height int) {
	if width < height {
		width, height = height, width
	}
	maxVideo.Store(uint64(width)<<32 | uint64(height))
}

// resolutionReportEvery bounds how often a source that keeps refusing pictures raises the event.
const resolutionReportEvery = 10 * time.Second

// ResolutionExceeded is raised (at most every resolutionReportEvery per source) when a source drops
// video whose keyframe announces a picture larger than the configured maximum.
type ResolutionExceeded struct {
	MimeType            string
	Width, Height       int
	MaxWidth, MaxHeight int
}

// refuses tells whether the video packet must be dropped: it belongs to a picture, or follows a
// keyframe, larger than allowed, up to the next keyframe of an allowed size. Only keyframe starts
// are read; the writer goroutine alone touches s.refusing.
func (s *Source) refuses(p []byte) bool {
	c := s.codec.Load()
	if c == nil {
		return false
	}
	w, h, ok := codec.PictureSize(c.MimeType, p)
	if !ok {
		// A VP8 keyframe states its size in its first packet, so one that does not is no bomb (a
		// decoder refuses it); an H.264 IDR takes the size of the SPS sent before it.
		if s.refusing && !strings.EqualFold(c.MimeType, "video/h264") && codec.IsKeyframeStart(c.MimeType, p) {
			s.refusing = false
		}
		return s.refusing
	}
	m := maxVideo.Load()
	maxW, maxH := int(m>>32), int(m&0xffffffff)
	long, short := w, h
	if long < short {
		long, short = short, long
	}
	s.refusing = long > maxW || short > maxH
	if !s.refusing {
		return false
	}
	s.RequestKeyframe() // the peer may recover with a picture of an allowed size
	now := time.Now().UnixNano()
	last := s.lastRefusal.Load()
	if now-last >= int64(resolutionReportEvery) && s.lastRefusal.CompareAndSwap(last, now) && s.flow.element != nil {
		s.flow.element.emit(ResolutionExceeded{MimeType: c.MimeType,
			Width: w, Height: h, MaxWidth: maxW, MaxHeight: maxH})
	}
	return true
}
