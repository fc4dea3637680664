package recorder

import (
	"sync"
	"sync/atomic"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// transcodeState is how an input takes media its profile cannot hold: from a transcoder of its
// source into a codec the container takes (H264 for MP4, VP8 for WebM, Opus for audio).
type transcodeState struct {
	tc      atomic.Pointer[recTranscode]
	checked atomic.Pointer[media.Codec] // the last source codec checked, and the verdict
	ok      atomic.Bool
	mu      sync.Mutex
	pending bool
	failed  *media.Source
}

// recTranscode feeds an input from a transcoded source.
type recTranscode struct {
	in      *input
	out     *media.Source
	release func()
}

func (st *recTranscode) WriteRTP(src *media.Source, p *rtp.Packet) {
	if st.in.ts.tc.Load() == st {
		st.in.enqueue(src, p)
	}
}

func (st *recTranscode) SetSource(*media.Source) {}

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

// TranscodeInputs turns on transcoding of inputs the profile cannot hold (e.g. VP8 into MP4). Off:
// with it, an MP4 of VP8 gets an H264 track, but ffmpeg still reports non-monotonic DTS and the
// duration is ~1 s long in TestRecordVP8Opus, which also expects UNSUPPORTED_MEDIA_TYPE today.
var TranscodeInputs = false

// fits tells whether the profile takes src's codec; when not, a transcoder is asked for (off the
// packet goroutine) and the packet is not recorded.
func (in *input) fits(src *media.Source) bool {
	c := src.Codec()
	if c == nil || !TranscodeInputs {
		return true
	}
	if in.ts.checked.Load() != c {
		in.ts.ok.Store(in.r.cfg.Profile.Container.accepts(c.MimeType))
		in.ts.checked.Store(c)
	}
	if in.ts.ok.Load() {
		return true
	}
	in.ts.mu.Lock()
	if in.ts.failed == src {
		// No transcoder: the writer gets the packets and reports UNSUPPORTED_MEDIA_TYPE.
		in.ts.mu.Unlock()
		return true
	}
	if !in.ts.pending {
		in.ts.pending = true
		go in.startTranscode(src, targetCodec(in.r.cfg.Profile.Container, in.kind))
	}
	in.ts.mu.Unlock()
	return false
}

func (in *input) startTranscode(src *media.Source, target media.Codec) {
	out, release, err := src.Transcoded(target)
	in.ts.mu.Lock()
	in.ts.pending = false
	if err != nil {
		in.ts.failed = src
		in.ts.mu.Unlock()
		in.r.log.Warn("no transcoder for the recording", "err", err)
		return
	}
	if in.cur.Load() != src || in.ts.tc.Load() != nil {
		in.ts.mu.Unlock()
		release()
		return
	}
	st := &recTranscode{in: in, out: out, release: release}
	in.ts.tc.Store(st)
	in.ts.mu.Unlock()
	out.AddSink(st)
	if in.kind == media.Video {
		out.RequestKeyframe()
	}
}

// dropTranscode lets go of the transcoder, off the caller's goroutine (it may hold the pipeline lock).
func (in *input) dropTranscode() {
	in.ts.mu.Lock()
	in.ts.failed = nil
	in.ts.mu.Unlock()
	if st := in.ts.tc.Swap(nil); st != nil {
		go func() {
			st.out.RemoveSink(st)
			st.release()
		}()
	}
}
