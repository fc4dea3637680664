package processing

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// maxTimestampJump is the largest RTP timestamp step read as media time; a bigger one is a new
// stream (another source linked, a restarted sender) and the timeline goes on by wall time.
const maxTimestampJump = 10 * time.Second

// rtpFeed pushes RTP packets into a pipeline's appsrc, timestamped from their RTP timestamps rather
// than their arrival: what the pipeline makes keeps the source's timing, without the network's
// jitter (which a recorder would write down, and a decoder's loss concealment would misread).
type rtpFeed struct {
	appsrc  *gst.AppSrc
	pt      uint8
	clock   int64
	dropped atomic.Uint64

	mu     sync.Mutex // two sources may overlap for a packet during a switch
	buf    [1600]byte
	stream *media.Source // the source and SSRC of the last packet: another one is a new stream
	ssrc   uint32
	lastTS uint32
	lastAt time.Time
	ext    int64 // clock ticks since the first packet
}

func newRTPFeed(appsrc *gst.AppSrc, pt uint8, clockRate uint32) *rtpFeed {
	return &rtpFeed{appsrc: appsrc, pt: pt, clock: int64(max(clockRate, 1))}
}

// use makes the feed push into appsrc (a rebuilt pipeline's) from now on, on a timeline that starts
// again at 0 as a new pipeline's does.
func (f *rtpFeed) use(appsrc *gst.AppSrc) {
	f.mu.Lock()
	f.appsrc, f.stream, f.lastAt, f.ext = appsrc, nil, time.Time{}, 0
	f.mu.Unlock()
}

// push queues one packet of src, with the payload type the pipeline's caps name. It never blocks.
func (f *rtpFeed) push(src *media.Source, p *rtp.Packet) {
	f.mu.Lock()
	n, err := p.MarshalTo(f.buf[:])
	if err == nil && f.appsrc == nil {
		err = gst.ErrFlow // the filter's pipeline is being built
	}
	if err == nil && n > 1 {
		f.buf[1] = f.buf[1]&0x80 | f.pt
		newStream := src != f.stream || p.SSRC != f.ssrc
		f.stream, f.ssrc = src, p.SSRC
		pts := f.timestamp(p.Timestamp, time.Now(), newStream)
		if src.Type == media.Video && !p.Marker {
			err = f.appsrc.PushPartAt(f.buf[:n], pts) // sent with the frame's last packet
		} else {
			err = f.appsrc.PushAt(f.buf[:n], pts)
		}
	}
	f.mu.Unlock()
	if err != nil {
		f.dropped.Add(1)
	}
}

// timestamp places a packet on the pipeline's timeline, which starts at 0 with the first packet.
func (f *rtpFeed) timestamp(ts uint32, now time.Time, newStream bool) time.Duration {
	if f.lastAt.IsZero() {
		f.lastTS, f.lastAt = ts, now
		return 0
	}
	d := int64(int32(ts - f.lastTS)) // in clock ticks
	limit := int64(maxTimestampJump/time.Second) * f.clock
	switch {
	case newStream || d > limit || d < -limit:
		d = int64(now.Sub(f.lastAt)) * f.clock / int64(time.Second) // a new stream: go on by wall time
	case d < 0:
		return f.at(max(f.ext+d, 0)) // a late packet: back in time; the timeline stays where it was
	}
	f.ext += d
	f.lastTS, f.lastAt = ts, now
	return f.at(f.ext)
}

func (f *rtpFeed) at(ticks int64) time.Duration {
	// Whole seconds apart, so that months of ticks do not overflow.
	return time.Duration(ticks/f.clock)*time.Second + time.Duration(ticks%f.clock*int64(time.Second)/f.clock)
}

// acceptable tells whether src's packets can go to a pipeline as they are: a codec the converter
// accepts, or one not known (taken as it comes).
func acceptable(conv *media.Converter, src *media.Source) bool {
	c := src.Codec()
	return c == nil || conv.Accepts(c)
}
