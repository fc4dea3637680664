package recorder

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/kurento-go/kms/internal/fuzzseed"
	"github.com/kurento-go/kms/media"
)

// fuzzProfiles are the profiles muxed in Go (FLV and JPEG go through GStreamer).
var fuzzProfiles = []string{"WEBM", "WEBM_AUDIO_ONLY", "WEBM_VIDEO_ONLY", "MKV", "MKV_AUDIO_ONLY",
	"MKV_VIDEO_ONLY", "MP4", "MP4_AUDIO_ONLY", "MP4_VIDEO_ONLY"}

// fuzzCodecs are what a source may send on each pad: the first the containers take, the second
// a change of codec mid-recording (or one the container refuses).
var fuzzCodecs = [2][2]*media.Codec{
	media.Audio: {{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}, {MimeType: "audio/PCMU", ClockRate: 8000, Channels: 1}},
	media.Video: {{MimeType: "video/VP8", ClockRate: 90000}, {MimeType: "video/H264", ClockRate: 90000}},
}

// fuzzPacket is one packet of a fuzzed sequence, as it is encoded in the fuzzer's bytes: a flags
// byte (bit 0 video, bit 1 marker, bit 2 the other codec, bit 3 VP9 instead of VP8, bit 4 a
// timestamp jump of 65536 steps), the sequence step (int8), the timestamp step (int16), the
// arrival step in milliseconds, the payload length, then the payload.
type fuzzPacket struct {
	flags             byte
	seqStep           int8
	tsStep            int16
	atStepMs, payload byte
	data              []byte
}

func encodePackets(pkts []fuzzPacket) []byte {
	var b []byte
	for _, p := range pkts {
		b = append(b, p.flags, byte(p.seqStep))
		b = binary.BigEndian.AppendUint16(b, uint16(p.tsStep))
		b = append(b, p.atStepMs, byte(len(p.data)))
		b = append(b, p.data...)
	}
	return b
}

// Payloads as browsers and ffmpeg packetize them.
var (
	vp8Key   = []byte{0x10, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01, 0x00, 0x47, 0x08}
	vp8Delta = []byte{0x10, 0x31, 0x02, 0x00, 0x12, 0x34}
	opus20ms = []byte{0xfc, 0xff, 0xfe, 0x01, 0x02}
	h264Key  = append(append([]byte{0x78, 0x00, 0x0d}, 0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x06, 0xd0, 0xa1, 0x35),
		0x00, 0x04, 0x68, 0xce, 0x3c, 0x80)
	h264IDR   = []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	h264Slice = []byte{0x41, 0x9a, 0x02, 0x04}
)

// muxerSeeds are packet sequences: audio and video interleaved, a loss, a timestamp going back, a
// jump of minutes, a codec change, H.264 with its parameter sets in a STAP-A.
func muxerSeeds() [][]byte {
	av := func(video []byte, delta []byte, videoFlags byte) []fuzzPacket {
		pkts := []fuzzPacket{{flags: videoFlags | 3, seqStep: 1, tsStep: 3000, data: video}}
		for i := range 30 {
			pkts = append(pkts, fuzzPacket{flags: 0, seqStep: 1, tsStep: 960, atStepMs: 20, data: opus20ms})
			if i%2 == 0 {
				pkts = append(pkts, fuzzPacket{flags: videoFlags | 3, seqStep: 1, tsStep: 3600, data: delta})
			}
		}
		return pkts
	}
	vp8 := av(vp8Key, vp8Delta, 0)
	h264 := append([]fuzzPacket{{flags: 5, seqStep: 1, tsStep: 3000, data: h264Key}}, av(h264IDR, h264Slice, 4)...)
	lossy := append(append([]fuzzPacket{}, vp8...), fuzzPacket{flags: 3, seqStep: 5, tsStep: -3000, atStepMs: 200, data: vp8Delta},
		fuzzPacket{flags: 3 | 16, seqStep: 1, tsStep: 30000, data: vp8Key}, fuzzPacket{flags: 1 | 4, seqStep: -2, tsStep: 1, data: h264IDR},
		fuzzPacket{flags: 4, seqStep: 1, tsStep: 160, atStepMs: 250, data: []byte{0xff, 0x7f}})
	return [][]byte{encodePackets(vp8), encodePackets(h264), encodePackets(lossy)}
}

// FuzzMuxers runs fuzzed RTP packet sequences (codecs, sequence numbers, timestamps jumping or going
// back, arrival gaps, payloads, markers) through a recorder's frame assembly, timeline and muxer
// into a file, for each Go-muxed profile. Nothing panics, and the file, when one is written, reads
// back: WebM/Matroska with ebml-go (the tracks declared, every block of a declared track, block
// times never going back within a track), fragmented MP4 with mediacommon (the tracks declared,
// every fragment of a declared track, decode times never going back within a track).
func FuzzMuxers(f *testing.F) {
	for _, s := range muxerSeeds() {
		for p := range fuzzProfiles {
			f.Add(uint8(p), s)
		}
	}
	log := slog.New(slog.DiscardHandler)
	file := filepath.Join(fuzzseed.Dir(f), "rec")
	f.Fuzz(func(t *testing.T, profile uint8, data []byte) {
		prof, err := ParseProfile(fuzzProfiles[int(profile)%len(fuzzProfiles)])
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(file)
		u := &url.URL{Scheme: "file", Path: file}
		p := media.NewPipeline()
		defer p.Close()
		recEl, srcEl := p.NewElement(nil, func(media.Event) {}), p.NewElement(nil, nil)
		r := New(recEl, Config{URI: u, Profile: prof, Log: log})
		for _, kind := range []media.Type{media.Audio, media.Video} {
			// Linked pads: the muxer waits for both tracks, as with a WebRtcEndpoint connected.
			if err := media.Connect(srcEl, recEl, kind, media.DefaultPad, media.DefaultPad); err != nil {
				t.Fatal(err)
			}
		}
		w := &writer{r: r, state: StateStop, firstReady: -1}
		w.command(command{to: StateStart})
		var seq [2]uint16
		var ts [2]uint32
		var at int64
		for len(data) >= 6 {
			flags, n := data[0], int(data[5])
			kind := media.Type(flags & 1)
			seq[kind] += uint16(int8(data[1]))
			step := uint32(int16(binary.BigEndian.Uint16(data[2:])))
			if flags&16 != 0 {
				step <<= 16
			}
			ts[kind] += step
			at += int64(data[4]) * 1e6
			payload := data[6:min(6+n, len(data))]
			data = data[6+len(payload):]
			codec := fuzzCodecs[kind][flags>>2&1]
			if kind == media.Video && flags&8 != 0 {
				codec = &media.Codec{MimeType: "video/VP9", ClockRate: 90000}
			}
			w.packet(&item{kind: kind, codec: codec, seq: seq[kind], ts: ts[kind], marker: flags&2 != 0, at: at, payload: payload})
			w.tick(at)
		}
		w.command(command{to: StateStop, at: at})
		b, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			return // no frame made it: no file, as KMS
		}
		if err != nil {
			t.Fatal(err)
		}
		if prof.Container == MP4 {
			checkMP4(t, b)
		} else {
			checkMKV(t, b)
		}
	})
}

func checkMKV(t *testing.T, b []byte) {
	var doc struct {
		Header  webm.EBMLHeader `ebml:"EBML"`
		Segment webm.Segment    `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(b), &doc); err != nil {
		t.Fatalf("the recording does not read back: %v", err)
	}
	declared := map[uint64]bool{}
	for _, e := range doc.Segment.Tracks.TrackEntry {
		declared[e.TrackNumber] = true
	}
	if len(declared) == 0 {
		t.Fatal("a recording without tracks")
	}
	last := map[uint64]int64{}
	for _, c := range doc.Segment.Cluster {
		for _, bl := range c.SimpleBlock {
			if !declared[bl.TrackNumber] {
				t.Fatalf("a block of track %d, which the header does not declare", bl.TrackNumber)
			}
			at := int64(c.Timecode) + int64(bl.Timecode)
			if prev, ok := last[bl.TrackNumber]; ok && at < prev {
				t.Fatalf("track %d goes back from %d ms to %d ms", bl.TrackNumber, prev, at)
			}
			last[bl.TrackNumber] = at
		}
	}
}

func checkMP4(t *testing.T, b []byte) {
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(b)); err != nil {
		t.Fatalf("the recording's header does not read back: %v", err)
	}
	declared := map[int]bool{}
	for _, tr := range init.Tracks {
		declared[tr.ID] = true
	}
	if len(declared) == 0 {
		t.Fatal("a recording without tracks")
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(b); err != nil {
		t.Fatalf("the recording's fragments do not read back: %v", err)
	}
	next := map[int]uint64{}
	for _, p := range parts {
		for _, tr := range p.Tracks {
			if !declared[tr.ID] {
				t.Fatalf("a fragment of track %d, which the header does not declare", tr.ID)
			}
			if tr.BaseTime < next[tr.ID] {
				t.Fatalf("track %d goes back: a fragment starts at %d, the one before ended at %d", tr.ID, tr.BaseTime, next[tr.ID])
			}
			end := tr.BaseTime
			for _, s := range tr.Samples {
				end += uint64(s.Duration)
			}
			next[tr.ID] = end
		}
	}
}
