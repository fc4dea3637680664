package processing

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
)

// TestFeedTimestamps: the pipeline's timeline follows the RTP timestamps (across their wrap), a late
// packet goes back in time without moving the timeline, and a new stream or a wild jump goes on by
// wall time.
func TestFeedTimestamps(t *testing.T) {
	f := newRTPFeed(nil, 96, 90000)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name      string
		ts        uint32
		after     time.Duration // wall time since t0
		newStream bool
		want      time.Duration
	}{
		{"first", 0xffff_0000, 0, false, 0},
		{"next frame, with jitter", 0xffff_0000 + 3000, 40 * time.Millisecond, false, 33333333},
		{"across the wrap", 0xffff_0000 + 9000, 70 * time.Millisecond, false, 100 * time.Millisecond},
		{"late packet", 0xffff_0000 + 6000, 71 * time.Millisecond, false, 66666666},
		{"on time again", 0xffff_0000 + 12000, 100 * time.Millisecond, false, 133333333},
		{"another source", 42, 150 * time.Millisecond, true, 183333333},
		{"a jump of an hour", 42 + 90000*3600, 200 * time.Millisecond, false, 233333333},
	}
	for _, s := range steps {
		if got := f.timestamp(s.ts, t0.Add(s.after), s.newStream); got != s.want {
			t.Errorf("%s: pts %v, want %v", s.name, got, s.want)
		}
	}
}

// TestAcceptableUnknownCodec: a source that has not said its codec is taken as it comes, without
// asking the converter (whose Accepts reads the codec).
func TestAcceptableUnknownCodec(t *testing.T) {
	pl := media.NewPipeline()
	defer pl.Close()
	src := pl.NewElement(nil, nil).Source(media.Video, media.DefaultPad)
	conv := &media.Converter{Accepts: func(c *media.Codec) bool { return c.MimeType == "video/VP8" }}
	if !acceptable(conv, src) {
		t.Error("a source without a codec is refused")
	}
	src.SetCodec(&media.Codec{MimeType: "video/H264"})
	if acceptable(conv, src) {
		t.Error("H.264 accepted by a VP8 input")
	}
}
