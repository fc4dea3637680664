package recorder

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/media/codec"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

const (
	// keyframeRetry is how often a video track waiting for a keyframe asks again.
	keyframeRetry = time.Second
	// resyncLimit is how far a track's RTP clock may drift from arrival before it is re-anchored.
	resyncLimit = time.Second
	// flushPeriod bounds what a killed server loses of a Matroska recording.
	flushPeriod = 500 * time.Millisecond
	// maxPending bounds the frames kept while waiting for the second track.
	maxPending = 2000
	// transcodeWait is how long a recording waits for a track whose transcoder is being made (its
	// worker to start, its first keyframe); the frames kept meanwhile stay within maxPending.
	transcodeWait = 10 * time.Second
)

// frame is one access unit (video) or packet (audio) ready to mux. data belongs to the frame.
type frame struct {
	track int // media.Audio or media.Video
	pts   int64
	key   bool
	data  []byte
	ts    uint32
	at    int64
}

// trackInfo is what a muxer needs to know about a track to write its header.
type trackInfo struct {
	id            int
	mime          string
	channels      int
	width, height int
	sps, pps      []byte
}

// muxer is a container writer.
type muxer interface {
	write(f *frame) error
	close() error
}

// track is the writer's state for one sink pad.
type track struct {
	trackInfo
	kind     media.Type
	clock    uint32
	excluded bool // not recorded: not in the profile, or a codec the container does not take
	ready    bool // parameters known, first frame seen
	inMux    bool

	// assembly
	haveSeq bool
	lastSeq uint16
	inFrame bool
	broken  bool
	frameTS uint32
	frameAt int64
	key     bool
	buf     []byte
	depack  rtp.Depacketizer
	needKey bool
	askedAt int64

	// timing
	synced  bool
	base    int64
	ext     int64
	lastTS  uint32
	hasPTS  bool
	lastPTS int64
	step    int64 // the last distance between two frames
}

type writer struct {
	r           *Recorder
	state       State
	resumedAt   int64 // when the last Record took effect
	pausedAt    int64
	pausedTotal int64
	tracks      [2]*track
	out         *sink
	mux         muxer
	pending     []*frame
	firstReady  int64
	origin      int64
	failed      bool
	flushedAt   int64
}

func (r *Recorder) run() {
	defer close(r.done)
	w := &writer{r: r, state: StateStop, firstReady: -1}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c := <-r.cmds:
			if w.command(c) {
				return
			}
		case it := <-r.queue:
			w.packet(it)
			r.pool.Put(it)
		case <-tick.C:
			w.tick(r.now())
		}
	}
}

// command applies a state change; true when the recorder is finished.
func (w *writer) command(c command) bool {
	r := w.r
	switch c.to {
	case StateStart:
		first := w.state == StateStop
		if w.state == StatePause {
			w.pausedTotal += c.at - w.pausedAt
		}
		for _, t := range w.tracks {
			if t != nil {
				t.restart()
			}
		}
		w.state = StateStart
		w.resumedAt = c.at
		r.setState(StateStart)
		r.el.Emit(Recording{})
		if first {
			if err := checkDestination(r.cfg.URI); err != nil {
				w.failed = true
				r.fail(err.typ, err)
			}
		}
		if r.wants[media.Video] {
			r.requestKeyframe(media.Video)
		}
	case StatePause:
		w.state = StatePause
		w.pausedAt = c.at
		r.setState(StatePause)
		r.el.Emit(Paused{})
	case StateStop:
		w.drain()
		w.finish()
		w.state = StateStop
		r.setState(StateStop)
		r.el.Emit(Stopped{})
		close(r.finalized)
		return true
	}
	return false
}

// drain takes the packets queued before the stop.
func (w *writer) drain() {
	for {
		select {
		case it := <-w.r.queue:
			w.packet(it)
			w.r.pool.Put(it)
		default:
			return
		}
	}
}

// finish writes what is left and finalizes the destination.
func (w *writer) finish() {
	r := w.r
	if w.failed {
		if w.out != nil {
			w.out.finish()
		}
		return
	}
	if w.mux == nil && len(w.pending) > 0 {
		w.start()
	}
	if w.mux == nil {
		r.log.Info("recording stopped without media: no file written", "uri", r.cfg.URI.Redacted())
		return
	}
	err := w.mux.close()
	if serr := w.out.finish(); serr != nil {
		r.fail(serr.typ, serr)
	} else if err != nil {
		r.fail(ErrTypeWrite, err)
	}
	w.r.bytes.Store(w.out.n)
	st := r.Stats()
	r.log.Info("recording finished", "uri", r.cfg.URI.Redacted(), "frames", st.Frames, "bytes", st.Bytes,
		"packets", st.Packets, "drops", st.Drops)
}

func (w *writer) tick(now int64) {
	if w.state != StateStart || w.failed {
		return
	}
	w.maybeStart(now)
	for _, t := range w.tracks {
		if t != nil && t.kind == media.Video && !t.excluded && t.needKey && now-t.askedAt >= int64(keyframeRetry) {
			t.askedAt = now
			w.r.requestKeyframe(media.Video)
		}
	}
	if w.out != nil && now-w.flushedAt >= int64(flushPeriod) {
		w.flushedAt = now
		w.out.Flush()
		w.r.bytes.Store(w.out.written()) // so that metrics see a recording grow
		w.checkSink()
	}
	if m, ok := w.mux.(*mkvMuxer); ok {
		if p := m.fatal.Load(); p != nil {
			w.failed = true
			w.r.accepting.Store(false)
			w.r.fail(ErrTypeWrite, *p)
		}
	}
}

func (w *writer) checkSink() {
	if w.out == nil || w.failed {
		return
	}
	if err := w.out.Err(); err != nil {
		w.failed = true
		w.r.accepting.Store(false)
		w.r.fail(err.typ, err)
	}
}

// recorded tells whether a packet that arrived at this time belongs to the recording. Commands and
// packets come through different channels, so a packet may be read after a command that came later:
// its arrival time, not the order of reading, says on which side of a pause it falls.
func (w *writer) recorded(at int64) bool {
	switch w.state {
	case StateStart:
		return at >= w.resumedAt
	case StatePause:
		return at >= w.resumedAt && at < w.pausedAt
	}
	return false
}

// packet runs one RTP packet through its track's frame assembly.
func (w *writer) packet(it *item) {
	if w.failed || it.codec == nil || !w.recorded(it.at) {
		return
	}
	t := w.tracks[it.kind]
	mime := strings.ToLower(it.codec.MimeType)
	if t == nil {
		t = w.newTrack(it.kind, it.codec)
		w.tracks[it.kind] = t
	} else if mime != t.mime {
		if !t.excluded {
			w.r.log.Warn("codec changed during the recording: packets dropped", "from", t.mime, "to", mime)
			t.excluded = true
		}
		return
	}
	if t.excluded {
		return
	}
	t.push(it, w.frame)
}

func (w *writer) newTrack(kind media.Type, c *media.Codec) *track {
	t := &track{kind: kind, clock: c.ClockRate}
	t.id = int(kind)
	t.mime = strings.ToLower(c.MimeType)
	t.channels = int(c.Channels)
	if t.clock == 0 {
		t.clock = 90000
	}
	prof := w.r.cfg.Profile
	switch {
	case !w.r.wants[kind]:
		t.excluded = true
	case !prof.Container.accepts(t.mime):
		t.excluded = true
		w.r.fail(ErrTypeUnsupported, fmt.Errorf("%s recording (profile %s) takes %s %s, but the source sends %s, and no transcoder could convert it: this track is not recorded",
			prof.Container, prof.Name, prof.Container.wants(kind == media.Video), strings.ToLower(kind.String()), c.MimeType))
	}
	switch t.mime {
	case "video/vp8":
		t.depack = &codecs.VP8Packet{}
	case "video/vp9":
		t.depack = &codecs.VP9Packet{}
	case "video/h264":
		t.depack = &codecs.H264Packet{}
	}
	t.needKey = kind == media.Video
	return t
}

// restart forgets the assembly state, after a pause or at the start: the next packets are not
// continuous with the last ones.
func (t *track) restart() {
	t.haveSeq, t.inFrame, t.synced = false, false, false
	if t.kind == media.Video {
		t.needKey = true
		t.askedAt = 0
	}
}

// push adds a packet; complete frames go to out.
func (t *track) push(it *item, out func(*track, *frame)) {
	if t.haveSeq {
		d := it.seq - t.lastSeq
		if d == 0 || d >= 0x8000 {
			return // duplicate or late (a retransmission after we moved on)
		}
		if d > 1 && t.kind == media.Video {
			// Lost packets: the frame they belonged to is damaged and so is everything that refers
			// to it; wait for the next keyframe.
			t.broken = true
			t.needKey = true
			if h, ok := t.depack.(*codecs.H264Packet); ok {
				*h = codecs.H264Packet{}
			}
		}
	}
	t.haveSeq, t.lastSeq = true, it.seq
	if t.kind == media.Audio {
		out(t, &frame{track: t.id, data: append([]byte(nil), it.payload...), ts: it.ts, at: it.at, key: true})
		return
	}
	if t.inFrame && it.ts != t.frameTS {
		t.finishFrame(out) // the previous frame lost its marker packet
	}
	if !t.inFrame {
		t.inFrame, t.frameTS, t.frameAt = true, it.ts, it.at
		t.buf = t.buf[:0]
		t.broken = t.depack == nil || !t.depack.IsPartitionHead(it.payload)
		t.key = t.mime != "video/h264" && codec.IsKeyframeStart(t.mime, it.payload)
	}
	if !t.broken {
		data, err := t.depack.Unmarshal(it.payload)
		if err != nil {
			t.broken = true
		} else {
			t.buf = append(t.buf, data...)
		}
	}
	if it.marker {
		t.finishFrame(out)
	}
}

func (t *track) finishFrame(out func(*track, *frame)) {
	t.inFrame = false
	if t.broken || len(t.buf) == 0 {
		return
	}
	f := &frame{track: t.id, ts: t.frameTS, at: t.frameAt, key: t.key}
	if t.mime == "video/h264" {
		var au h264.AnnexB
		if au.Unmarshal(t.buf) != nil {
			return
		}
		kept := au[:0]
		var haveSPS, havePPS bool
		for _, n := range au {
			if len(n) == 0 {
				continue
			}
			// A payloader repeating the parameter sets before each slice of a keyframe repeats
			// them inside the frame; once is enough (a second SPS reads as another frame).
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				if haveSPS {
					continue
				}
				haveSPS = true
				t.sps = append([]byte(nil), n...)
			case h264.NALUTypePPS:
				if havePPS {
					continue
				}
				havePPS = true
				t.pps = append([]byte(nil), n...)
			case h264.NALUTypeIDR:
				f.key = true
			case h264.NALUTypeAccessUnitDelimiter:
				continue
			}
			kept = append(kept, n)
		}
		b, err := h264.AVCC(kept).Marshal()
		if err != nil {
			return
		}
		f.data = b
	} else {
		f.data = append([]byte(nil), t.buf...)
	}
	out(t, f)
}

// frame places a complete frame on the timeline and writes it, or keeps it until the muxer starts.
func (w *writer) frame(t *track, f *frame) {
	if t.kind == media.Video {
		if t.needKey {
			if !f.key {
				return
			}
			t.needKey = false
		}
		if !t.ready && !t.videoParams(f) {
			t.needKey = true
			return
		}
	}
	t.ready = true
	f.pts = w.timestamp(t, f)
	if w.mux == nil {
		if len(w.pending) >= maxPending {
			return
		}
		w.pending = append(w.pending, f)
		if w.firstReady < 0 {
			w.firstReady = f.at
		}
		w.maybeStart(w.r.now())
		return
	}
	if t.inMux {
		w.write(f)
	}
}

// videoParams reads what the container header needs from the first keyframe.
func (t *track) videoParams(f *frame) bool {
	switch t.mime {
	case "video/vp8":
		// Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height (RFC 6386 §9.1).
		d := f.data
		if len(d) >= 10 && d[3] == 0x9d && d[4] == 0x01 && d[5] == 0x2a {
			t.width = int(d[6]) | int(d[7]&0x3f)<<8
			t.height = int(d[8]) | int(d[9]&0x3f)<<8
		}
	case "video/h264":
		if len(t.sps) == 0 || len(t.pps) == 0 {
			return false
		}
		var sps h264.SPS
		if sps.Unmarshal(t.sps) == nil {
			t.width, t.height = sps.Width(), sps.Height()
		}
	}
	return true
}

// timestamp maps a frame to the recording's timeline (nanoseconds, before the origin is removed).
func (w *writer) timestamp(t *track, f *frame) int64 {
	arrival := f.at - w.pausedTotal
	continuous := t.synced
	if !t.synced {
		base := arrival
		if t.hasPTS {
			// After a pause the first frame comes whenever its keyframe does: it keeps at least the
			// usual distance from the frame before the pause, or players read two frames at once.
			base = max(base, t.lastPTS+t.step)
		}
		t.synced, t.base, t.ext, t.lastTS = true, base, 0, f.ts
	} else {
		t.ext += int64(int32(f.ts - t.lastTS))
		t.lastTS = f.ts
	}
	pts := t.base + t.ext*int64(time.Second)/int64(t.clock)
	if d := pts - arrival; d > int64(resyncLimit) || d < -int64(resyncLimit) {
		t.base, t.ext = arrival, 0
		pts = arrival
	}
	// Containers count in milliseconds: a frame must move on by a whole millisecond, or two frames
	// of a track would share a timestamp (which players read as a non-monotonic stream).
	if ms := int64(time.Millisecond); t.hasPTS && pts/ms <= t.lastPTS/ms {
		pts = (t.lastPTS/ms + 1) * ms
	}
	if d := pts - t.lastPTS; continuous && d < int64(resyncLimit) {
		t.step = d
	}
	t.hasPTS, t.lastPTS = true, pts
	return pts
}

// maybeStart starts the muxer once every expected track is ready, or trackWait (transcodeWait for a
// track being transcoded) after the first was.
func (w *writer) maybeStart(now int64) {
	if w.mux != nil || w.failed || len(w.pending) == 0 {
		return
	}
	all, wait := true, w.r.cfg.TrackWait
	for _, k := range []media.Type{media.Audio, media.Video} {
		if !w.r.wants[k] {
			continue
		}
		t := w.tracks[k]
		if t != nil && (t.excluded || t.ready) {
			continue
		}
		if w.r.linked(k) {
			all = false
			if w.r.inputs[k].transcoding.Load() {
				wait = max(wait, transcodeWait)
			}
		}
	}
	if all || now-w.firstReady >= int64(wait) {
		w.start()
	}
}

// start opens the destination, writes the header with the tracks ready now, then the kept frames.
func (w *writer) start() {
	r := w.r
	var infos []*trackInfo
	for _, k := range []media.Type{media.Audio, media.Video} { // audio first, as WebM advises
		if t := w.tracks[k]; t != nil && t.ready && !t.excluded {
			t.inMux = true
			infos = append(infos, &t.trackInfo)
		}
	}
	if len(infos) == 0 {
		return
	}
	out, err := openSink(r.cfg.URI, r.cfg.HTTPClient)
	if err != nil {
		w.failed = true
		r.accepting.Store(false)
		var se *sinkError
		if errors.As(err, &se) {
			r.fail(se.typ, se)
		} else {
			r.fail(ErrTypeOpen, err)
		}
		return
	}
	w.out = out
	switch c := r.cfg.Profile.Container; c {
	case MP4:
		w.mux, err = newMP4Muxer(out, infos)
	case FLV, JPEG:
		w.mux, err = newGstMuxer(out, c, infos)
	default:
		w.mux, err = newMKVMuxer(out, c, infos)
	}
	if err != nil {
		w.failed = true
		r.accepting.Store(false)
		r.fail(ErrTypeWrite, err)
		return
	}
	var names []string
	for _, t := range infos {
		names = append(names, t.mime)
	}
	r.log.Info("recording", "uri", r.cfg.URI.Redacted(), "profile", r.cfg.Profile.Name, "tracks", names)
	sort.SliceStable(w.pending, func(i, j int) bool { return w.pending[i].pts < w.pending[j].pts })
	w.origin = w.pending[0].pts
	pending := w.pending
	w.pending = nil
	for _, f := range pending {
		if w.tracks[f.track].inMux {
			w.write(f)
		}
	}
}

func (w *writer) write(f *frame) {
	if w.failed {
		return
	}
	f.pts = max(f.pts-w.origin, 0)
	if err := w.mux.write(f); err != nil {
		w.failed = true
		w.r.accepting.Store(false)
		typ := ErrTypeWrite
		if errors.Is(err, gst.ErrWorkerCrashed) {
			typ = ErrTypeWorkerCrashed
		}
		w.r.fail(typ, err)
		return
	}
	w.r.frames.Add(1)
	w.checkSink()
}
