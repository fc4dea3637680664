package recorder

import (
	"errors"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"
)

// fragmentDuration is how much media one MP4 fragment holds: a killed server loses at most this
// much (plus one held-back sample per track). Half a second rather than the usual second: a file
// killed after 5 s keeps at least 4.5 s; the cost is a ~100-byte moof twice a second.
const fragmentDuration = 500 * time.Millisecond

// mp4Muxer writes fragmented MP4 with mediacommon: ftyp+moov (no samples), then moof+mdat fragments
// of half a second. Every complete fragment is readable after a crash. A sample's duration is
// known when the next one arrives, so each track holds its latest sample back.
type mp4Muxer struct {
	out       *sink
	tracks    map[int]*mp4Track
	order     []*mp4Track
	seq       uint32
	partStart int64 // pts of the first sample of the fragment being built, -1 when empty
}

type mp4Track struct {
	id        int
	timeScale uint32
	video     bool
	pending   *fmp4.Sample
	pendDTS   uint64
	started   bool
	lastDur   uint32
	samples   []*fmp4.Sample
	base      uint64 // decode time of samples[0]
}

func newMP4Muxer(out *sink, tracks []*trackInfo) (*mp4Muxer, error) {
	m := &mp4Muxer{out: out, tracks: map[int]*mp4Track{}, partStart: -1}
	init := fmp4.Init{}
	for i, t := range tracks {
		it := &fmp4.InitTrack{ID: i + 1}
		mt := &mp4Track{id: i + 1}
		switch t.mime {
		case "audio/opus":
			it.TimeScale = 48000
			it.Codec = &mp4.CodecOpus{ChannelCount: max(t.channels, 1)}
		case "video/h264":
			it.TimeScale = 90000
			it.Codec = &mp4.CodecH264{SPS: t.sps, PPS: t.pps}
			mt.video = true
		default:
			return nil, errors.New("mp4: no mapping for " + t.mime)
		}
		mt.timeScale = it.TimeScale
		init.Tracks = append(init.Tracks, it)
		m.tracks[t.id] = mt
		m.order = append(m.order, mt)
	}
	var buf seekablebuffer.Buffer
	if err := init.Marshal(&buf); err != nil {
		return nil, err
	}
	out.Write(buf.Bytes())
	out.Flush()
	return m, nil
}

func (m *mp4Muxer) write(f *frame) error {
	t := m.tracks[f.track]
	if t == nil {
		return nil
	}
	dts := uint64(f.pts) * uint64(t.timeScale) / 1e9
	if !t.started {
		// Every track starts at 0; a track whose media came later holds its first sample from 0.
		// ffprobe (and players built on it) read a fragmented track starting later as lasting
		// that much longer than it does.
		t.started, dts = true, 0
	} else if dts <= t.pendDTS {
		dts = t.pendDTS + 1
	}
	// Video data is already AVCC (4-byte NAL lengths), as MP4 stores it.
	s := &fmp4.Sample{Payload: f.data, IsNonSyncSample: t.video && !f.key}
	if m.partStart >= 0 && f.pts-m.partStart >= int64(fragmentDuration) {
		if err := m.flushPart(); err != nil {
			return err
		}
	}
	if t.pending != nil {
		t.pending.Duration = uint32(dts - t.pendDTS)
		t.lastDur = t.pending.Duration
		m.queue(t, t.pending, t.pendDTS)
	}
	t.pending, t.pendDTS = s, dts
	if m.partStart < 0 {
		m.partStart = f.pts
	}
	return nil
}

func (m *mp4Muxer) queue(t *mp4Track, s *fmp4.Sample, dts uint64) {
	if len(t.samples) == 0 {
		t.base = dts
	}
	t.samples = append(t.samples, s)
}

// flushPart writes the samples of every track as one fragment.
func (m *mp4Muxer) flushPart() error {
	part := fmp4.Part{SequenceNumber: m.seq + 1}
	for _, t := range m.order {
		if len(t.samples) > 0 {
			part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: t.base, Samples: t.samples})
		}
	}
	m.partStart = -1
	if len(part.Tracks) == 0 {
		return nil
	}
	m.seq++
	var buf seekablebuffer.Buffer
	if err := part.Marshal(&buf); err != nil {
		return err
	}
	m.out.Write(buf.Bytes())
	for _, t := range m.order {
		t.samples = nil
	}
	return m.out.Flush()
}

// close writes the held-back samples (the last one of each track lasts as long as the one before)
// and the last fragment.
func (m *mp4Muxer) close() error {
	for _, t := range m.order {
		if t.pending == nil {
			continue
		}
		d := t.lastDur
		if d == 0 {
			d = t.timeScale / 50
		}
		t.pending.Duration = d
		m.queue(t, t.pending, t.pendDTS)
		t.pending = nil
	}
	return m.flushPart()
}
