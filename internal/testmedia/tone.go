package testmedia

import (
	"encoding/binary"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
)

// ToneOgg makes an Ogg Opus file of a pure tone of freq Hz (2 s, 48 kHz stereo, one 20 ms packet
// per page) with ffmpeg, for a clip peer to send.
func ToneOgg(t testing.TB, freq int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), fmt.Sprintf("tone%d.ogg", freq))
	b, err := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=frequency=%d:sample_rate=48000:duration=2", freq), "-ac", "2",
		"-c:a", "libopus", "-b:a", "64k", "-frame_duration", "20", "-page_duration", "20000", out).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	return out
}

// PCM decodes an audio file into mono 48 kHz samples in [-1, 1].
func PCM(t testing.TB, path string) []float64 {
	t.Helper()
	raw, err := exec.Command("ffmpeg", "-loglevel", "error", "-i", path, "-f", "s16le", "-ac", "1", "-ar", "48000", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decode of %s: %v", path, err)
	}
	out := make([]float64, len(raw)/2)
	for i := range out {
		out[i] = float64(int16(binary.LittleEndian.Uint16(raw[2*i:]))) / 32768
	}
	return out
}

// ToneLevel is the amplitude of the freq Hz component of 48 kHz samples (Goertzel): about A for a
// sine of amplitude A at that frequency, about 0 without it.
func ToneLevel(samples []float64, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / 48000
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, x := range samples {
		s1, s2 = x+c*s1-s2, s1
	}
	power := s1*s1 + s2*s2 - c*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(samples))
}
