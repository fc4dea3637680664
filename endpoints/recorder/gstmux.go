package recorder

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
)

// videoTrack is the track id of video frames (tracks are numbered by media type).
const videoTrack = int(media.Video)

// gstMuxer writes the containers that need encoding on the way, through a GStreamer pipeline:
// FLV (H.264 and AAC, as KMS's FLV profile; the Opus audio is encoded to AAC) and JPEG_VIDEO_ONLY
// (each video frame as a JPEG image, one after the other, as KMS's jpeg profile writes them).
// Frames go in through one appsrc per track, timestamped; what the pipeline makes comes out of an
// appsink and is handed to the sink on the writer's goroutine.
type gstMuxer struct {
	pipe   *gst.Pipeline
	out    *sink
	srcs   map[int]*gst.AppSrc // by track id
	tracks map[int]*trackInfo

	flv     bool
	sawMeta bool // the appsink's goroutine's

	mu      sync.Mutex // the appsink's goroutine adds, the writer's takes
	pending []byte
	failed  error
}

// closeTimeout bounds how long close waits for the pipeline to drain after the end of stream.
const closeTimeout = 5 * time.Second

// aacEncoder is the AAC encoder GStreamer has: voaacenc (plugins-bad) or avenc_aac (libav).
func aacEncoder() string {
	if gst.HasElement("voaacenc") {
		return "voaacenc bitrate=64000"
	}
	return "avenc_aac bitrate=64000"
}

// videoIn is the appsrc and parsing of a video track's frames (H.264 frames come as Annex B).
func videoIn(t *trackInfo) (string, error) {
	switch t.mime {
	case "video/h264":
		return "appsrc name=v format=time caps=video/x-h264,stream-format=byte-stream,alignment=au ! h264parse", nil
	case "video/vp8":
		return "appsrc name=v format=time caps=video/x-vp8", nil
	case "video/vp9":
		return "appsrc name=v format=time caps=video/x-vp9", nil
	}
	return "", fmt.Errorf("no GStreamer input for %s", t.mime)
}

func decoderFor(mime string) string {
	switch mime {
	case "video/vp8":
		return "vp8dec"
	case "video/vp9":
		return "vp9dec"
	}
	return "avdec_h264"
}

// describeGst is the pipeline of a container for the tracks being recorded.
func describeGst(c Container, tracks []*trackInfo) (string, error) {
	const out = "appsink name=out sync=false async=false"
	var parts []string
	switch c {
	case FLV:
		parts = append(parts, "flvmux name=mux streamable=true ! "+out)
		for _, t := range tracks {
			if t.id == videoTrack {
				in, err := videoIn(t)
				if err != nil {
					return "", err
				}
				parts = append(parts, in+" ! queue ! mux.video")
			} else {
				parts = append(parts, fmt.Sprintf("appsrc name=a format=time caps=audio/x-opus,channel-mapping-family=0,channels=%d,rate=48000 ! "+
					"opusdec ! audioconvert ! audioresample ! %s ! aacparse ! queue ! mux.audio", max(t.channels, 1), aacEncoder()))
			}
		}
	case JPEG:
		for _, t := range tracks {
			if t.id != videoTrack {
				continue
			}
			in, err := videoIn(t)
			if err != nil {
				return "", err
			}
			parts = append(parts, in+" ! "+decoderFor(t.mime)+" ! videoconvert ! jpegenc ! "+out)
		}
	default:
		return "", fmt.Errorf("%s is muxed in Go", c)
	}
	return strings.Join(parts, "  "), nil
}

func newGstMuxer(out *sink, c Container, tracks []*trackInfo) (*gstMuxer, error) {
	desc, err := describeGst(c, tracks)
	if err != nil {
		return nil, err
	}
	pipe, err := gst.NewPipeline(desc)
	if err != nil {
		return nil, err
	}
	m := &gstMuxer{pipe: pipe, out: out, flv: c == FLV, srcs: map[int]*gst.AppSrc{}, tracks: map[int]*trackInfo{}}
	for _, t := range tracks {
		name := "a"
		if t.id == videoTrack {
			name = "v"
		}
		if c == JPEG && t.id != videoTrack {
			continue
		}
		src, err := pipe.AppSrc(name)
		if err != nil {
			pipe.Close()
			return nil, err
		}
		src.SetBlocking() // muxed frames must all arrive
		m.srcs[t.id], m.tracks[t.id] = src, t
	}
	if err := pipe.HandleSink("out", m.onOutput); err != nil {
		pipe.Close()
		return nil, err
	}
	pipe.OnMessage(m.onMessage)
	if err := pipe.Start(); err != nil {
		pipe.Close()
		return nil, err
	}
	return m, nil
}

// flvScriptTag is the type of FLV's script data tags (onMetaData).
const flvScriptTag = 18

func (m *gstMuxer) onOutput(data []byte, _ time.Duration) {
	if m.flv && len(data) > 0 && data[0] == flvScriptTag {
		// flvmux pushes one tag per buffer and repeats onMetaData whenever a tag of the stream
		// changes; players read the repeats as a stream of text. The first one is enough.
		if m.sawMeta {
			return
		}
		m.sawMeta = true
	}
	m.mu.Lock()
	m.pending = append(m.pending, data...)
	m.mu.Unlock()
}

func (m *gstMuxer) onMessage(msg gst.Message) {
	if msg.Type == gst.MessageError && !errors.Is(msg.Err, gst.ErrClosed) {
		m.mu.Lock()
		if m.failed == nil {
			m.failed = msg.Err
		}
		m.mu.Unlock()
	}
}

// drain hands what the pipeline made to the sink; the pipeline's error if it failed.
func (m *gstMuxer) drain() error {
	m.mu.Lock()
	data, err := m.pending, m.failed
	m.pending = nil
	m.mu.Unlock()
	if len(data) > 0 {
		m.out.Write(data)
	}
	return err
}

func (m *gstMuxer) write(f *frame) error {
	src := m.srcs[f.track]
	if src == nil {
		return nil
	}
	data := f.data
	if t := m.tracks[f.track]; t.mime == "video/h264" {
		data = annexB(t, f)
	}
	if err := src.PushAt(data, time.Duration(f.pts)); err != nil {
		return fmt.Errorf("recording pipeline: %w", err)
	}
	return m.drain()
}

// annexB turns a frame of length-prefixed NAL units back into a byte stream, with the parameter
// sets before a keyframe that lacks them, so that the stream can be parsed from there. (A second
// SPS in a frame would start another access unit.)
func annexB(t *trackInfo, f *frame) []byte {
	start := []byte{0, 0, 0, 1}
	var b []byte
	hasSPS := false
	for d := f.data; len(d) > 4; {
		n := int(d[0])<<24 | int(d[1])<<16 | int(d[2])<<8 | int(d[3])
		if n <= 0 || n > len(d)-4 {
			break
		}
		hasSPS = hasSPS || d[4]&0x1f == 7
		b = append(append(b, start...), d[4:4+n]...)
		d = d[4+n:]
	}
	if f.key && !hasSPS && len(t.sps) > 0 && len(t.pps) > 0 {
		params := append(append(append(append([]byte(nil), start...), t.sps...), start...), t.pps...)
		b = append(params, b...)
	}
	return b
}

// close ends the streams, waits for the pipeline to write everything, and stops it.
func (m *gstMuxer) close() error {
	for _, src := range m.srcs {
		_ = src.EndOfStream()
	}
	select {
	case <-m.pipe.SinkEnded("out"):
	case <-time.After(closeTimeout):
	}
	m.pipe.Close()
	return m.drain()
}
