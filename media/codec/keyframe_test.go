package codec

import "testing"

func TestIsKeyframeStart(t *testing.T) {
	cases := []struct {
		name    string
		mime    string
		payload []byte
		want    bool
	}{
		{"vp8 key, short descriptor", "video/VP8", []byte{0x10, 0x00}, true},
		{"vp8 delta", "video/VP8", []byte{0x10, 0x01}, false},
		{"vp8 key with 15-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 delta with 15-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x81, 0x23, 0x01}, false},
		{"vp8 key with tl0 and tid", "video/VP8", []byte{0x90, 0xe0, 0x05, 0x11, 0x40, 0x00}, true},
		{"vp8 continuation", "video/VP8", []byte{0x00, 0x00}, false},
		{"vp8 truncated", "video/VP8", []byte{0x90}, false},
		{"vp9 key", "video/VP9", []byte{0x08}, true},
		{"vp9 inter", "video/VP9", []byte{0x48}, false},
		{"vp9 middle of frame", "video/VP9", []byte{0x00}, false},
		{"h264 idr", "video/H264", []byte{0x65}, true},
		{"h264 sps", "video/H264", []byte{0x67}, true},
		{"h264 non-idr slice", "video/H264", []byte{0x41}, false},
		{"h264 stap-a with sps", "video/H264", []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x01, 0x68}, true},
		{"h264 stap-a without", "video/H264", []byte{0x78, 0x00, 0x01, 0x41}, false},
		{"h264 fu-a idr start", "video/H264", []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", "video/H264", []byte{0x7c, 0x05}, false},
		{"opus is never gated", "audio/opus", []byte{0x01}, true},
		{"empty vp8", "video/VP8", nil, false},
	}
	for _, c := range cases {
		if got := IsKeyframeStart(c.mime, c.payload); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
