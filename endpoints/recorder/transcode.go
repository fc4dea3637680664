package recorder

import (
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// targetCodec is the codec a container takes for a kind of media, when transcoding into it.
func targetCodec(c Container, kind media.Type) media.Codec {
	if kind != media.Video {
		return media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	}
	if c == WebM {
		return media.Codec{MimeType: "video/VP8", ClockRate: 90000}
	}
	return media.Codec{MimeType: "video/H264", ClockRate: 90000}
}

// newInput makes a sink pad; media the profile cannot hold (VP8 into MP4) comes from a transcoder
// of the source. When none can be made, the writer gets the source's packets and reports
// UNSUPPORTED_MEDIA_TYPE.
func newInput(r *Recorder, kind media.Type, meter *media.FlowMeter) *input {
	in := &input{r: r, kind: kind, meter: meter}
	container := r.cfg.Profile.Container
	in.conv = media.Converter{
		Accepts: func(c *media.Codec) bool { return container.accepts(c.MimeType) },
		Target:  func(t media.Type) media.Codec { return targetCodec(container, t) },
		Deliver: func(src *media.Source, p *rtp.Packet) { in.enqueue(src, p) },
		Failed: func(_ *media.Source, err error) {
			in.transcoding.Store(false)
			r.log.Warn("no transcoder for the recording", "err", err)
		},
	}
	return in
}
