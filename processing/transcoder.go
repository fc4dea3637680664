package processing

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// The graph asks this package for transcoders: media knows nothing of GStreamer.
func init() { media.SetTranscoderFactory(NewTranscoder) }

// transcodePT is the payload type inside a transcoder's pipeline; the sinks rewrite it anyway.
const transcodePT = 96

// decodeChain is the caps of the appsrc and the depayloader and decoder for a codec.
func decodeChain(c *media.Codec) (string, error) {
	if c == nil {
		return "", fmt.Errorf("%w: unknown source codec", media.ErrNoTranscoder)
	}
	switch strings.ToLower(c.MimeType) {
	case "video/vp8":
		return rtpCaps("video", 90000, "VP8") + " ! rtpvp8depay request-keyframe=true wait-for-keyframe=true ! vp8dec", nil
	case "video/vp9":
		return rtpCaps("video", 90000, "VP9") + " ! rtpvp9depay ! vp9dec", nil
	case "video/h264":
		dec := "avdec_h264"
		if !gst.HasElement(dec) {
			dec = "openh264dec"
		}
		return rtpCaps("video", 90000, "H264") + " ! rtph264depay ! h264parse ! " + dec, nil
	case "audio/opus":
		return rtpCaps("audio", 48000, "OPUS") + " ! rtpopusdepay ! opusdec plc=true", nil
	case "audio/pcmu":
		return rtpCaps("audio", 8000, "PCMU") + " ! rtppcmudepay ! mulawdec", nil
	case "audio/pcma":
		return rtpCaps("audio", 8000, "PCMA") + " ! rtppcmadepay ! alawdec", nil
	}
	return "", fmt.Errorf("%w: cannot decode %s", media.ErrNoTranscoder, c.MimeType)
}

func rtpCaps(kind string, rate int, name string) string {
	return fmt.Sprintf("caps=\"application/x-rtp,media=%s,clock-rate=%d,encoding-name=%s,payload=%d\"", kind, rate, name, transcodePT)
}

// encodeChain is the encoder and payloader for a codec, from raw media.
func encodeChain(mime string, bitrate int) (string, error) {
	switch strings.ToLower(mime) {
	case "video/h264":
		return fmt.Sprintf("videoconvert ! x264enc name="+encName+" tune=zerolatency speed-preset=ultrafast key-int-max=300 aud=false "+
			"bitrate=%d threads=2 ! video/x-h264,profile=constrained-baseline ! "+
			"rtph264pay pt=%d mtu=1200 config-interval=-1 aggregate-mode=zero-latency", bitrate/1000, transcodePT), nil
	case "video/vp8":
		return fmt.Sprintf("videoconvert ! vp8enc name="+encName+" deadline=1 cpu-used=8 lag-in-frames=0 end-usage=cbr "+
			"target-bitrate=%d keyframe-max-dist=300 error-resilient=default threads=2 ! "+
			"rtpvp8pay pt=%d mtu=1200 picture-id-mode=15-bit", bitrate, transcodePT), nil
	case "video/vp9":
		return fmt.Sprintf("videoconvert ! vp9enc name="+encName+" deadline=1 cpu-used=8 lag-in-frames=0 end-usage=cbr "+
			"target-bitrate=%d keyframe-max-dist=300 error-resilient=default threads=2 ! "+
			"rtpvp9pay pt=%d mtu=1200 picture-id-mode=15-bit", bitrate, transcodePT), nil
	case "audio/opus":
		return fmt.Sprintf("audioconvert ! audioresample ! opusenc bitrate=%d ! rtpopuspay pt=%d mtu=1200", bitrate, transcodePT), nil
	case "audio/pcmu":
		return "audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay pt=0 mtu=1200", nil
	case "audio/pcma":
		return "audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay pt=8 mtu=1200", nil
	}
	return "", fmt.Errorf("%w: cannot encode %s", media.ErrNoTranscoder, mime)
}

// opusBitrate is what Opus is encoded at unless a forced format says otherwise.
const opusBitrate = 32000

// TranscoderDescription is the GStreamer pipeline converting RTP of from into RTP of to, at bitrate
// (video), following forced (an element's setAudioFormat/setVideoFormat; may be nil): its audio
// bitrate, its frame rate.
func TranscoderDescription(from *media.Codec, to string, bitrate int, forced *media.Format) (string, error) {
	dec, err := decodeChain(from)
	if err != nil {
		return "", err
	}
	fromVideo := strings.HasPrefix(strings.ToLower(from.MimeType), "video/")
	rate := ""
	if !fromVideo {
		bitrate = opusBitrate
		if forced != nil && forced.Bitrate > 0 {
			bitrate = min(max(forced.Bitrate, 6000), 510000) // opusenc's range
		}
	} else if forced != nil && forced.FramerateNum > 0 && forced.FramerateDen > 0 {
		rate = fmt.Sprintf("videorate ! video/x-raw,framerate=%d/%d ! ", forced.FramerateNum, forced.FramerateDen)
	}
	enc, err := encodeChain(to, bitrate)
	if err != nil {
		return "", err
	}
	if fromVideo != strings.HasPrefix(strings.ToLower(to), "video/") {
		return "", fmt.Errorf("%w: %s to %s", media.ErrNoTranscoder, from.MimeType, to)
	}
	queue := "queue leaky=downstream max-size-buffers=10 max-size-bytes=0 max-size-time=0"
	if fromVideo {
		queue = "queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0"
	}
	return fmt.Sprintf("appsrc name=%s is-live=true format=time max-bytes=4000000 leaky-type=downstream %s ! "+
		"%s ! %s%s ! appsink name=%s sync=false async=false max-buffers=200 drop=true",
		srcName, dec, queue, rate, enc, sinkName), nil
}

// Transcoder is a decode+encode GStreamer pipeline between a source and the transcoded source the
// graph gives to the sinks that need another codec.
type Transcoder struct {
	pipe   *gst.Pipeline
	from   *media.Source
	feed   *rtpFeed
	out    *media.Source
	video  bool
	cur    atomic.Pointer[media.Source]
	outPkt rtp.Packet   // the sink goroutine's
	rate   *rateControl // the sink goroutine's
	closed atomic.Bool
}

// Dot is the GStreamer graph of the transcoder's pipeline.
func (t *Transcoder) Dot(details uint) string { return t.pipe.Dot(details) }

// NewTranscoder is the media.TranscoderFactory of the server: from's media in to's codec, to out.
func NewTranscoder(from *media.Source, to media.Codec, out *media.Source) (media.Transcoder, error) {
	// KMS's transcoders belong to the source's element: its encoder bitrate applies.
	desc, err := TranscoderDescription(from.Codec(), to.MimeType, from.EncoderBitrate().For(0), from.Format())
	if err != nil {
		return nil, err
	}
	pipe, err := gst.NewPipeline(desc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", media.ErrNoTranscoder, err)
	}
	t := &Transcoder{pipe: pipe, from: from, out: out, video: from.Type == media.Video}
	appsrc, err := pipe.AppSrc(srcName)
	if err != nil {
		pipe.Close()
		return nil, err
	}
	appsrc.WatchKeyUnit()
	t.feed = newRTPFeed(appsrc, transcodePT, from.Codec().ClockRate)
	t.rate = newRateControl(pipe, to.MimeType, out.SinkBitrate, from.EncoderBitrate)
	if err := pipe.HandleSink(sinkName, t.onSample); err != nil {
		pipe.Close()
		return nil, err
	}
	pipe.OnMessage(t.onMessage)
	out.SetKeyframeRequester(t.requestKeyframe)
	if err := pipe.Start(); err != nil {
		out.SetKeyframeRequester(nil)
		pipe.Close()
		return nil, err
	}
	return t, nil
}

// WriteRTP implements media.Input: the source's packets go to the pipeline.
func (t *Transcoder) WriteRTP(src *media.Source, p *rtp.Packet) {
	if t.cur.Load() == src {
		t.feed.push(src, p)
	}
}

// SetSource implements media.Input.
func (t *Transcoder) SetSource(src *media.Source) {
	t.cur.Store(src)
	if src != nil && t.video {
		src.RequestKeyframe() // the decoder starts on a keyframe
	}
}

// Close stops the pipeline.
func (t *Transcoder) Close() {
	if t.closed.Swap(true) {
		return
	}
	t.cur.Store(nil)
	t.pipe.Close()
}

// TargetBitrate tells the source what the transcoder's sinks take: no need to send it more.
func (t *Transcoder) TargetBitrate() uint64 { return t.out.SinkBitrate() }

// Dropped is the number of input packets the pipeline did not take.
func (t *Transcoder) Dropped() uint64 { return t.feed.dropped.Load() }

// requestKeyframe serves the sinks' keyframe requests: the encoder makes one.
func (t *Transcoder) requestKeyframe() {
	if !t.video || t.closed.Load() {
		return
	}
	_ = t.pipe.ForceKeyUnit(sinkName)
}

func (t *Transcoder) onSample(data []byte, _ time.Duration) {
	if err := t.outPkt.Unmarshal(data); err != nil || t.closed.Load() {
		return
	}
	t.out.WriteRTP(&t.outPkt)
	t.rate.check(time.Now())
}

func (t *Transcoder) onMessage(m gst.Message) {
	switch m.Type {
	case gst.MessageKeyUnitRequest:
		// The depayloader lost packets or the decoder needs a keyframe: ask the producer.
		if src := t.cur.Load(); src != nil {
			src.RequestKeyframe()
		}
	case gst.MessageError:
		if !errors.Is(m.Err, gst.ErrClosed) {
			t.feed.dropped.Add(1)
		}
		// A dead worker is raised on the element whose source the transcoder serves, as KMS raises
		// its transcoding bins' errors.
		if errors.Is(m.Err, gst.ErrWorkerCrashed) && !t.closed.Load() {
			if el := t.from.Element(); el != nil {
				el.Emit(CrashedEvent(m.Err, "transcoder to "+t.out.Codec().MimeType, ""))
			}
		}
	}
}
