// Package testmedia makes and inspects media files for tests with ffmpeg and ffprobe: test clips,
// decoded frames and container durations.
package testmedia

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// NeedFFmpeg skips the test when ffmpeg is not on PATH.
func NeedFFmpeg(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg missing")
	}
}

// VP8Clip encodes a 2 s, 30 fps VP8 IVF clip (keyframe every second) from the ffmpeg input args.
func VP8Clip(t testing.TB, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "clip.ivf")
	full := append([]string{"-loglevel", "error", "-y"}, args...)
	full = append(full, "-t", "2", "-r", "30", "-c:v", "libvpx", "-g", "30", "-deadline", "realtime", "-b:v", "400k", out)
	if b, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// Clip makes dir/name of the given length with ffmpeg: a 320x240 30 fps test pattern and a
// 440 Hz sine, encoded with codecArgs (WebMArgs, MP4Args or others).
func Clip(t testing.TB, dir, name string, length time.Duration, codecArgs ...string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	secs := strconv.FormatFloat(length.Seconds(), 'f', 3, 64)
	args := []string{"-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", secs}
	args = append(append(args, codecArgs...), out)
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// Codec arguments for Clip: VP8 and Opus in WebM, H.264 and AAC in MP4.
var (
	WebMArgs = []string{"-c:v", "libvpx", "-g", "30", "-deadline", "realtime", "-b:v", "300k", "-c:a", "libopus", "-b:a", "48k"}
	MP4Args  = []string{"-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-movflags", "+faststart"}
)

// Duration is the container's duration as ffprobe reads it.
func Duration(t testing.TB, file string) time.Duration {
	t.Helper()
	b, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	s, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", b, err)
	}
	return time.Duration(s * float64(time.Second))
}

// CueTimes are the seek index (Cues) of a WebM or Matroska file, each checked to point at a Cluster;
// nil when the file has none. (ffprobe reads Cues but prints them nowhere for a file that has them
// before its clusters, so the file is parsed with ebml-go.)
func CueTimes(t testing.TB, file string) []time.Duration {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Segment struct {
			SeekHead struct {
				Seek []struct {
					SeekID       []byte `ebml:"SeekID"`
					SeekPosition uint64 `ebml:"SeekPosition"`
				} `ebml:"Seek"`
			} `ebml:"SeekHead"`
			Cues webm.Cues `ebml:"Cues"`
		} `ebml:"Segment"`
	}
	if err := ebml.Unmarshal(bytes.NewReader(data), &doc, ebml.WithIgnoreUnknown(true)); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("%s: %v", file, err)
	}
	// Positions count from the Segment's data: the SeekHead is its first element.
	segmentData := bytes.Index(data, []byte{0x11, 0x4D, 0x9B, 0x74})
	var out []time.Duration
	for _, cp := range doc.Segment.Cues.CuePoint {
		for _, tp := range cp.CueTrackPositions {
			at := segmentData + int(tp.CueClusterPosition)
			if segmentData < 0 || at+4 > len(data) || !bytes.Equal(data[at:at+4], []byte{0x1F, 0x43, 0xB6, 0x75}) {
				t.Errorf("%s: cue at %d ms points at no Cluster (position %d)", file, cp.CueTime, tp.CueClusterPosition)
			}
		}
		out = append(out, time.Duration(cp.CueTime)*time.Millisecond)
	}
	return out
}

// LastRGB decodes a video file and returns its last frame, w x h, as RGB24.
func LastRGB(t testing.TB, path string, w, h int) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-loglevel", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-").Output()
	if err != nil || len(out) < w*h*3 {
		t.Fatalf("ffmpeg decode of %s: %v (%d bytes)", path, err, len(out))
	}
	return out[len(out)-w*h*3:]
}

// ColorAt names the color at (x, y) of an RGB24 image w wide: "red", "green", "blue", "white",
// "black", or "other".
func ColorAt(img []byte, w, x, y int) string {
	p := img[(y*w+x)*3:]
	r, g, b := int(p[0]), int(p[1]), int(p[2])
	switch {
	case r > 150 && g < 100 && b < 100:
		return "red"
	case g > 100 && r < 100 && b < 100:
		return "green"
	case b > 150 && r < 100 && g < 100:
		return "blue"
	case r > 200 && g > 200 && b > 200:
		return "white"
	case r < 40 && g < 40 && b < 40:
		return "black"
	}
	return "other"
}

// TailIVF keeps an IVF file's frames from its last keyframe on: enough to decode the last frame,
// without decoding the whole recording each time.
func TailIVF(data []byte) []byte {
	if len(data) < 32 {
		return data
	}
	last := -1
	for off := 32; off+12 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off:]))
		if off+12+n > len(data) {
			break
		}
		if n > 0 && data[off+12]&1 == 0 { // VP8 keyframe
			last = off
		}
		off += 12 + n
	}
	if last < 0 {
		return data
	}
	return append(append([]byte(nil), data[:32]...), data[last:]...)
}

// IVFFrames reads the frames of an IVF file.
func IVFFrames(name string) ([][]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var frames [][]byte
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		frames = append(frames, f)
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%s: no frames", name)
	}
	return frames, nil
}
