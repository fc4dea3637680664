package codec_test

import (
	"testing"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/media/codec"
)

func TestPictureSizeOfRealVP8Keyframe(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=size=352x288:rate=30")
	frames, err := testmedia.IVFFrames(clip)
	if err != nil {
		t.Fatal(err)
	}
	// The RTP payload of a keyframe's first packet: a 4-byte descriptor with a 15-bit picture id.
	payload := append([]byte{0x90, 0x80, 0x81, 0x23}, frames[0]...)
	w, h, ok := codec.PictureSize("video/VP8", payload)
	if !ok || w != 352 || h != 288 {
		t.Fatalf("PictureSize = %dx%d %v, want 352x288", w, h, ok)
	}
	if _, _, ok := codec.PictureSize("video/VP8", append([]byte{0x10}, frames[1]...)); ok {
		t.Fatal("a delta frame announced a size")
	}
}

func TestPictureSizeOfForgedHeaders(t *testing.T) {
	bomb := []byte{0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0xff, 0x3f, 0xff, 0x3f}
	if w, h, ok := codec.PictureSize("video/VP8", bomb); !ok || w != 16383 || h != 16383 {
		t.Fatalf("forged VP8 header: %dx%d %v, want 16383x16383", w, h, ok)
	}
	for name, p := range map[string][]byte{
		"no start code":   {0x10, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2b, 0xff, 0x3f, 0xff, 0x3f},
		"truncated":       bomb[:8],
		"continuation":    append([]byte{0x00}, bomb[1:]...),
		"empty":           nil,
		"descriptor only": {0x90},
	} {
		if _, _, ok := codec.PictureSize("video/VP8", p); ok {
			t.Errorf("%s: a size was read", name)
		}
	}
	// H.264: a baseline SPS for 1280x720 (profile 66, level 31), alone and in a STAP-A.
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x06, 0xd0, 0xa1, 0x35}
	stap := append([]byte{0x78, 0x00, byte(len(sps))}, sps...)
	for name, p := range map[string][]byte{"sps": sps, "stap-a": stap} {
		if w, h, ok := codec.PictureSize("video/H264", p); !ok || w != 1280 || h != 720 {
			t.Errorf("h264 %s: %dx%d %v, want 1280x720", name, w, h, ok)
		}
	}
}
