package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sync/atomic"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// mkvInfo is the Segment Info we write. Void reserves the 11 bytes of a Duration element: a file
// cut short (a killed server) has no Duration, which readers take as "unknown" and find from the
// clusters, and a finished file gets the real one written over the Void. (ebml-go's own WithCues
// writes a placeholder Duration of ~0 instead, which a crash would leave behind.)
type mkvInfo struct {
	TimecodeScale uint64 `ebml:"TimecodeScale"`
	MuxingApp     string `ebml:"MuxingApp,omitempty"`
	WritingApp    string `ebml:"WritingApp,omitempty"`
	Void          []byte `ebml:"Void"`
}

// durationVoid is the Void element as ebml-go writes it: ID 0xEC, size 9, nine zero bytes.
var durationVoid = []byte{0xEC, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// mkvMuxer writes WebM or Matroska with ebml-go: a Segment and Clusters of unknown size, so that
// everything written before a crash is readable. ebml-go muxes on its own goroutine; frames are
// handed to it sorted by its multi-track sorter.
type mkvMuxer struct {
	out     *sink
	writers []webm.BlockWriteCloser // by track index
	index   map[int]int             // our track id -> writers index
	fatal   atomic.Pointer[error]
	lastMs  int64
	written bool
}

func newMKVMuxer(out *sink, c Container, tracks []*trackInfo) (*mkvMuxer, error) {
	m := &mkvMuxer{out: out, index: map[int]int{}}
	header := *webm.DefaultEBMLHeader
	if c == Matroska {
		header.DocType = "matroska"
	}
	info := &mkvInfo{TimecodeScale: 1000000, MuxingApp: "kurento-go", WritingApp: "kurento-go RecorderEndpoint",
		Void: make([]byte, 9)}
	var entries []webm.TrackEntry
	for i, t := range tracks {
		e := webm.TrackEntry{TrackNumber: uint64(i + 1), TrackUID: uint64(i + 1)}
		switch t.mime {
		case "audio/opus":
			e.Name, e.CodecID, e.TrackType = "Audio", "A_OPUS", 2
			e.CodecPrivate = opusHead(t.channels)
			e.SeekPreRoll = 80000000
			e.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: uint64(t.channels)}
		case "video/vp8", "video/vp9", "video/h264":
			e.Name, e.TrackType = "Video", 1
			e.Video = &webm.Video{PixelWidth: uint64(t.width), PixelHeight: uint64(t.height)}
			switch t.mime {
			case "video/vp8":
				e.CodecID = "V_VP8"
			case "video/vp9":
				e.CodecID = "V_VP9"
			default:
				e.CodecID = "V_MPEG4/ISO/AVC"
				e.CodecPrivate = avcDecoderConfig(t.sps, t.pps)
			}
		default:
			return nil, errors.New("matroska: no mapping for " + t.mime)
		}
		m.index[t.id] = i
		entries = append(entries, e)
	}
	opts := []mkvcore.BlockWriterOption{
		mkvcore.WithEBMLHeader(&header),
		mkvcore.WithSegmentInfo(info),
		mkvcore.WithBlockInterceptor(webm.DefaultBlockInterceptor),
		// ebml-go's default fatal handler panics: a failure becomes an Error event instead.
		mkvcore.WithOnFatalHandler(func(err error) { m.fatal.Store(&err) }),
		mkvcore.WithOnErrorHandler(func(error) {}), // a frame too old for its cluster: dropped
		// Clusters start at a video keyframe when one comes after clusterMinMs, and at the latest
		// after clusterMaxMs: the places a player can seek to.
		mkvcore.WithMinMaxClusterDuration(mainTrack(entries), clusterMinMs, clusterMaxMs),
	}
	if out.Seekable() {
		// A SeekHead and the Cues (the seek index) in a Void reserved after the header, written when
		// the recording ends; a file cut short keeps the Void and stays readable, without index.
		opts = append(opts, mkvcore.WithSeekHead(true), mkvcore.WithCues(cuesReserved))
	}
	ws, err := webm.NewSimpleBlockWriter(out, entries, opts...)
	if err != nil {
		return nil, err
	}
	m.writers = ws
	return m, nil
}

// Cluster lengths, and the room for the Cues: about 20 bytes a cluster, so an hour at one cluster
// every 2 s; a longer recording gets every other cue point (ebml-go thins them to fit).
const (
	clusterMinMs = 2000
	clusterMaxMs = 5000
	cuesReserved = 64 << 10
)

// mainTrack is the track whose keyframes start clusters: the video track, else the first.
func mainTrack(entries []webm.TrackEntry) uint64 {
	for _, e := range entries {
		if e.TrackType == 1 {
			return e.TrackNumber
		}
	}
	return 1
}

// write hands a frame to ebml-go, which keeps data: the caller must not reuse it.
func (m *mkvMuxer) write(f *frame) error {
	if p := m.fatal.Load(); p != nil {
		return *p
	}
	ms := f.pts / 1e6
	m.lastMs = max(m.lastMs, ms)
	m.written = true
	_, err := m.writers[m.index[f.track]].Write(f.key, ms, f.data)
	return err
}

// close ends the tracks, waits for ebml-go to write the last cluster, then writes the Duration over
// the reserved Void when the destination can be rewritten.
func (m *mkvMuxer) close() error {
	for _, w := range m.writers {
		w.Close()
	}
	if p := m.fatal.Load(); p != nil {
		return *p
	}
	if !m.out.Seekable() || !m.written {
		return nil
	}
	head := m.out.Head()
	i := bytes.Index(head, durationVoid)
	if i < 0 {
		return nil
	}
	// A Duration element (ID 0x4489, size 8, float64 in TimecodeScale units) is also 11 bytes.
	b := []byte{0x44, 0x89, 0x88, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(b[3:], math.Float64bits(float64(m.lastMs+m.lastFrameMs())))
	return m.out.PatchAt(int64(i), b)
}

// lastFrameMs is the duration given to the last frame: Matroska has no per-block duration in
// SimpleBlocks, and readers end the file at the last timestamp plus the frame's length.
func (m *mkvMuxer) lastFrameMs() int64 { return 20 }

// opusHead is the Opus identification header that Matroska's A_OPUS CodecPrivate carries
// (RFC 7845 §5.1): version 1, channels, no pre-skip (the stream did not start at the encoder's
// first packet), 48 kHz, no gain, mapping family 0.
func opusHead(channels int) []byte {
	if channels <= 0 {
		channels = 2
	}
	b := []byte("OpusHead\x01\x00\x00\x00\x80\xbb\x00\x00\x00\x00\x00")
	b[9] = byte(channels)
	return b
}

// avcDecoderConfig is an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1) with one SPS and
// one PPS, 4-byte NAL lengths.
func avcDecoderConfig(sps, pps []byte) []byte {
	if len(sps) < 4 {
		return nil
	}
	b := []byte{1, sps[1], sps[2], sps[3], 0xFF, 0xE1, byte(len(sps) >> 8), byte(len(sps))}
	b = append(b, sps...)
	b = append(b, 1, byte(len(pps)>>8), byte(len(pps)))
	return append(b, pps...)
}
