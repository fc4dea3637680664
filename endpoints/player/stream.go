// Package player is the media side of PlayerEndpoint (and, through Stream, of HttpPostEndpoint): a
// GStreamer pipeline decodes a URI or an upload and feeds the element's AUDIO and VIDEO source pads
// with RTP, at the media's natural pace.
//
// One Stream is one GStreamer pipeline run. Its description is a decoder (uridecodebin, or appsrc !
// decodebin) whose dynamic pads are linked by gst-launch's delayed links to candidate branches, one
// per kind of stream the decoder may expose: raw video re-encoded to VP8, raw audio re-encoded to
// Opus, and with useEncodedMedia VP8, H.264 and Opus passed through. Each branch ends in an appsink
// (sync=true: the sinks pace the media in real time, async=false: a branch that never gets linked
// does not hold the pipeline back). The first branch of a media type that produces feeds the source
// pad; the others stay idle.
//
// Outputs keeps what must survive across runs and seeks: the source pads, one SSRC and a continuous
// sequence-number and timestamp space per media type. RTP timestamps come from a timeline shared by
// audio and video: within a run they follow the buffers' PTS (so lip sync is kept), and at every
// discontinuity (new run, seek, resume) the timeline is re-anchored on the wall clock, so the peer
// sees timestamps advancing with real time, never going back.
package player

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// Codecs the player produces.
var (
	VP8  = &media.Codec{MimeType: "video/VP8", ClockRate: 90000}
	H264 = &media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	Opus = &media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
)

// DecoderName is the name of the decoding element of every stream description: its pads feed the
// branches.
const DecoderName = "kms_dec"

// encodedCaps are the formats the decoder stops at with useEncodedMedia: those passed through.
const encodedCaps = "video/x-raw;audio/x-raw;video/x-vp8;video/x-h264;audio/x-opus"

// branch is one candidate output of the decoder.
type branch struct {
	sink    string
	typ     media.Type
	codec   *media.Codec
	pt      uint8
	encoder bool   // made by an encoder: ForceKeyUnit gives a keyframe
	desc    string // from the decoder's pad to the appsink, exclusive
}

func branches(encoded bool, bitrate int) []*branch {
	if bitrate <= 0 {
		bitrate = 300000
	}
	raw := []*branch{
		{sink: "kms_video_raw", typ: media.Video, codec: VP8, pt: 96, encoder: true, desc: "video/x-raw ! " +
			"queue max-size-buffers=5 max-size-bytes=0 max-size-time=0 ! videoconvert ! " +
			"vp8enc name=kms_venc deadline=1 cpu-used=8 lag-in-frames=0 end-usage=cbr target-bitrate=" + strconv.Itoa(bitrate) +
			" keyframe-max-dist=150 error-resilient=default threads=2 ! rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit"},
		{sink: "kms_audio_raw", typ: media.Audio, codec: Opus, pt: 111, encoder: true, desc: "audio/x-raw ! " +
			"queue ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 ! opusenc bitrate=64000 ! " +
			"rtpopuspay pt=111 mtu=1200"},
	}
	if !encoded {
		return raw
	}
	return append([]*branch{
		{sink: "kms_video_vp8", typ: media.Video, codec: VP8, pt: 96, desc: "video/x-vp8 ! queue ! " +
			"rtpvp8pay pt=96 mtu=1200 picture-id-mode=15-bit"},
		{sink: "kms_video_h264", typ: media.Video, codec: H264, pt: 102, desc: "video/x-h264 ! queue ! " +
			"h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au ! " +
			"rtph264pay pt=102 mtu=1200 aggregate-mode=zero-latency"},
		{sink: "kms_audio_opus", typ: media.Audio, codec: Opus, pt: 111, desc: "audio/x-opus ! queue ! opusparse ! " +
			"rtpopuspay pt=111 mtu=1200"},
	}, raw...)
}

// StreamConfig describes one run.
type StreamConfig struct {
	// Head makes the part of the description before the branches, given the caps the decoder must
	// stop at ("" = raw only); it must contain an element named DecoderName (uridecodebin or
	// decodebin). See URIHead, AppSrcHead.
	Head    func(decoderCaps string) string
	Encoded bool // useEncodedMedia
	Bitrate int  // VP8 encoder target, bps
	// Live sources (RTSP) are not paced by the sinks: they come at their own pace.
	Live bool
	// Setup runs on the pipeline before it starts (RTSP settings...).
	Setup func(*gst.Pipeline) error
	// OnEnd is called once when every branch that carried media reached end of stream; OnError at
	// the first error of the pipeline. Both run on the pipeline's bus goroutine: they must not call
	// Close.
	OnEnd   func(*Stream)
	OnError func(*Stream, *gst.Error)
	Log     *slog.Logger
}

// URIHead is the head of a stream that reads a URI.
func URIHead(uri string) func(string) string {
	return func(caps string) string {
		s := "uridecodebin name=" + DecoderName + " uri=" + quote(uri)
		if caps != "" {
			s += " caps=" + quote(caps)
		}
		return s
	}
}

// AppSrcHead is the head of a stream fed with the bytes of a file through an appsrc named name.
func AppSrcHead(name string) func(string) string {
	return func(caps string) string {
		s := "appsrc name=" + name + " format=bytes block=true max-bytes=1048576 ! decodebin name=" + DecoderName
		if caps != "" {
			s += " caps=" + quote(caps)
		}
		return s
	}
}

// quote makes a gst-launch string value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Describe is the gst-launch description of a run.
func (c *StreamConfig) Describe() string {
	caps := ""
	if c.Encoded {
		caps = encodedCaps
	}
	var b strings.Builder
	b.WriteString(c.Head(caps))
	for _, br := range branches(c.Encoded, c.Bitrate) {
		fmt.Fprintf(&b, " %s. ! %s ! appsink name=%s sync=%t async=false qos=false max-buffers=64 drop=false enable-last-sample=false",
			DecoderName, br.desc, br.sink, !c.Live)
	}
	return b.String()
}

// Stream is one run of a pipeline feeding Outputs.
type Stream struct {
	cfg  StreamConfig
	out  *Outputs
	pipe *gst.Pipeline
	log  *slog.Logger

	active [2]atomic.Pointer[branch] // by media.Audio, media.Video: the branch feeding the pad

	mu      sync.Mutex
	linked  map[string]bool
	ended   map[string]bool
	done    bool // OnEnd called
	failed  atomic.Bool
	lastPTS atomic.Int64 // of the latest buffer out: where the run got to, when its worker is gone
	flowing atomic.Bool  // a buffer reached a sink: the demuxer streams, a seek holds
}

// NewStream builds a run (not started: see Start). A description GStreamer cannot build (a plugin is
// missing) is an error.
func NewStream(out *Outputs, cfg StreamConfig) (*Stream, error) {
	log := cfg.Log
	if log == nil {
		log = slog.Default()
	}
	pipe, err := gst.NewPipeline(cfg.Describe())
	if err != nil {
		return nil, err
	}
	s := &Stream{cfg: cfg, out: out, pipe: pipe, log: log, linked: map[string]bool{}, ended: map[string]bool{}}
	for _, br := range branches(cfg.Encoded, cfg.Bitrate) {
		if err := pipe.WatchSink(br.sink); err != nil {
			pipe.Close()
			return nil, err
		}
		if err := pipe.HandleSink(br.sink, s.sinkFunc(br)); err != nil {
			pipe.Close()
			return nil, err
		}
	}
	if cfg.Setup != nil {
		if err := cfg.Setup(pipe); err != nil {
			pipe.Close()
			return nil, err
		}
	}
	pipe.OnMessage(s.onMessage)
	return s, nil
}

// Pipeline is the run's GStreamer pipeline.
func (s *Stream) Pipeline() *gst.Pipeline { return s.pipe }

// Start makes the run the current one of its Outputs and sets it playing.
func (s *Stream) Start() error {
	s.out.attach(s)
	return s.pipe.Start()
}

// seekableWithin is how long a rebuilt run may take to become seekable before it plays from the start.
const seekableWithin = 5 * time.Second

// StartAt starts a run rebuilt after its worker died at pos: nothing goes out until the pipeline has
// sought there, once media flows (a seek before the demuxer streams can be lost). A live source, or
// media that cannot be sought (or not soon enough), plays from where its pipeline starts.
func (s *Stream) StartAt(pos time.Duration) error {
	s.out.attach(s)
	s.out.tl.hold()
	if err := s.pipe.Start(); err != nil || pos <= 0 || s.cfg.Live {
		s.out.tl.discontinuity()
		return err
	}
	for deadline := time.Now().Add(seekableWithin); ; time.Sleep(20 * time.Millisecond) {
		if ok, _, _, err := s.pipe.Seeking(); err == nil && ok && s.flowing.Load() {
			break
		}
		if s.Failed() || time.Now().After(deadline) {
			s.log.Info("rebuilt player pipeline not seekable: playing from the start", "position", pos)
			s.out.tl.discontinuity()
			return nil
		}
	}
	if err := s.Seek(pos, true); err != nil {
		s.log.Info("rebuilt player pipeline not sought: playing from the start", "position", pos, "err", err)
		return nil
	}
	// Until the new segment's buffers reach the sinks the position is not answered (getPosition
	// would say 0): the run counts as started once it is.
	for deadline := time.Now().Add(seekableWithin); time.Now().Before(deadline) && !s.Failed(); time.Sleep(20 * time.Millisecond) {
		if _, err := s.pipe.Position(); err == nil {
			break
		}
	}
	return nil
}

// Reached is the timestamp of the latest buffer the run put out (its position, as far as it got).
func (s *Stream) Reached() time.Duration { return time.Duration(s.lastPTS.Load()) }

// Pause pauses the run; Resume plays it again, the timeline re-anchored on the wall clock.
func (s *Stream) Pause() error { return s.pipe.SetState(gst.StatePaused) }

// Resume continues a paused run.
func (s *Stream) Resume() error {
	s.out.tl.discontinuity()
	return s.pipe.SetState(gst.StatePlaying)
}

// Seek moves the run to pos; playing tells whether it is playing (else it stays paused).
func (s *Stream) Seek(pos time.Duration, playing bool) error {
	s.out.tl.hold()
	err := s.pipe.Seek(pos, !s.cfg.Encoded, playing)
	s.out.tl.discontinuity()
	if err == nil {
		s.requestKeyframe()
	}
	return err
}

// Failed tells whether the pipeline reported an error.
func (s *Stream) Failed() bool { return s.failed.Load() }

// Close stops the run; no callback runs after it returns. Not from OnEnd/OnError.
func (s *Stream) Close() {
	s.pipe.Close()
	s.out.detach(s)
}

func (s *Stream) requestKeyframe() {
	if br := s.active[media.Video].Load(); br != nil && br.encoder {
		if err := s.pipe.ForceKeyUnit(br.sink); err != nil {
			s.log.Debug("force-key-unit", "err", err)
		}
	}
}

func (s *Stream) sinkFunc(br *branch) gst.SinkFunc {
	var pkt rtp.Packet
	return func(data []byte, pts time.Duration) {
		a := &s.active[br.typ]
		if cur := a.Load(); cur != br && (cur != nil || !a.CompareAndSwap(nil, br)) {
			return // another branch feeds this media type
		}
		if pkt.Unmarshal(data) != nil {
			return
		}
		if pts >= 0 {
			s.lastPTS.Store(int64(pts))
		}
		s.flowing.Store(true)
		s.out.write(br, &pkt, pts)
	}
}

func (s *Stream) onMessage(m gst.Message) {
	switch m.Type {
	case gst.MessageElement:
		s.mu.Lock()
		switch m.Name {
		case gst.MessageSinkCaps:
			s.linked[m.Source] = true
		case gst.MessageSinkEOS:
			s.ended[m.Source] = true
			s.linked[m.Source] = true
		}
		end := false
		if m.Name == gst.MessageSinkEOS && !s.done {
			end = true
			for name := range s.linked {
				end = end && s.ended[name]
			}
			s.done = end
		}
		s.mu.Unlock()
		if end {
			s.out.endOfStream(s)
			if s.cfg.OnEnd != nil {
				s.cfg.OnEnd(s)
			}
		}
	case gst.MessageError:
		if s.failed.CompareAndSwap(false, true) && s.cfg.OnError != nil {
			s.cfg.OnError(s, m.Err)
		} else {
			s.log.Debug("pipeline error", "err", m.Err)
		}
	case gst.MessageWarning:
		if m.Source == DecoderName && strings.Contains(m.Err.Message, "Delayed linking failed") {
			// A candidate branch no stream of the media needed: expected.
			s.log.Debug("unused branch", "err", m.Err)
			return
		}
		s.log.Warn("pipeline warning", "err", m.Err)
	}
}

// Outputs are the source pads a player feeds, with the RTP numbering that continues across runs.
type Outputs struct {
	tracks [2]*track // by media.Audio, media.Video
	tl     timeline
	cur    atomic.Pointer[Stream]
}

type track struct {
	src    *media.Source
	ssrc   uint32
	seq    uint16
	tsBase uint32
	codec  *media.Codec
}

// NewOutputs makes the AUDIO and VIDEO default source pads of e.
func NewOutputs(e *media.Element) *Outputs {
	o := &Outputs{}
	o.tl.start = time.Now()
	for _, t := range []media.Type{media.Audio, media.Video} {
		o.tracks[t] = &track{src: e.Source(t, media.DefaultPad), ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), tsBase: rand.Uint32()}
	}
	v := o.tracks[media.Video].src
	v.EnableCache()
	v.SetKeyframeRequester(o.requestKeyframe)
	return o
}

// Close detaches the outputs from the graph's keyframe requests.
func (o *Outputs) Close() { o.tracks[media.Video].src.SetKeyframeRequester(nil) }

func (o *Outputs) attach(s *Stream) {
	o.tl.discontinuity()
	o.cur.Store(s)
}

func (o *Outputs) detach(s *Stream) { o.cur.CompareAndSwap(s, nil) }

// endOfStream tells the sinks of the pads that carried media that the current run ended.
func (o *Outputs) endOfStream(s *Stream) {
	if o.cur.Load() != s {
		return
	}
	for _, t := range o.tracks {
		if t.src.Codec() != nil {
			t.src.EndOfStream()
		}
	}
}

func (o *Outputs) requestKeyframe() {
	if s := o.cur.Load(); s != nil {
		s.requestKeyframe()
	}
}

// write sends a packet of a branch on its media type's pad, renumbered. One goroutine at a time
// writes a media type: the sink goroutine of the active branch of the current run.
func (o *Outputs) write(br *branch, p *rtp.Packet, pts time.Duration) {
	at, ok := o.tl.at(pts)
	if !ok {
		return
	}
	t := o.tracks[br.typ]
	if t.codec != br.codec {
		t.codec = br.codec
		t.src.SetCodec(br.codec)
	}
	p.SSRC = t.ssrc
	p.SequenceNumber = t.seq
	t.seq++
	p.PayloadType = br.pt
	p.Timestamp = t.tsBase + uint32(int64(at)*int64(br.codec.ClockRate)/int64(time.Second))
	p.Extension = false
	p.Extensions = nil
	t.src.WriteRTP(p)
}

// timeline maps the PTS of the buffers of a run onto the output time (since the outputs were made):
// output = anchorWall + (pts - anchorPTS), anchored on the first buffer after each discontinuity.
type timeline struct {
	mu         sync.Mutex
	start      time.Time
	holding    bool // a seek is under way: drop what comes
	anchored   bool
	anchorWall time.Duration
	anchorPTS  time.Duration
}

func (t *timeline) discontinuity() {
	t.mu.Lock()
	t.anchored, t.holding = false, false
	t.mu.Unlock()
}

func (t *timeline) hold() {
	t.mu.Lock()
	t.holding = true
	t.mu.Unlock()
}

func (t *timeline) at(pts time.Duration) (time.Duration, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.holding {
		return 0, false
	}
	if pts < 0 {
		return time.Since(t.start), true
	}
	if !t.anchored {
		t.anchored, t.anchorWall, t.anchorPTS = true, time.Since(t.start), pts
	}
	return t.anchorWall + pts - t.anchorPTS, true
}
