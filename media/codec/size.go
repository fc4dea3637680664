package codec

import (
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
)

// PictureSize reads the picture size a keyframe announces, from the RTP payload that starts it: the
// VP8 frame header (RFC 6386 §9.1) or an H.264 sequence parameter set. ok is false when the payload
// carries no size (not a keyframe start, another codec, an IDR whose SPS came earlier).
func PictureSize(mimeType string, payload []byte) (width, height int, ok bool) {
	switch {
	case strings.EqualFold(mimeType, "video/vp8"):
		return vp8Size(payload)
	case strings.EqualFold(mimeType, "video/h264"):
		return h264Size(payload)
	}
	return 0, 0, false
}

// vp8Size reads the keyframe header after the payload descriptor: 3 bytes of frame tag, the start
// code 9d 01 2a, then 14-bit width and height (the top two bits are scaling).
func vp8Size(p []byte) (int, int, bool) {
	i, ok := vp8FrameStart(p)
	if !ok || p[i]&0x01 != 0 {
		return 0, 0, false
	}
	h := p[i:]
	if len(h) < 10 || h[3] != 0x9d || h[4] != 0x01 || h[5] != 0x2a {
		return 0, 0, false
	}
	return int(h[6]) | int(h[7]&0x3f)<<8, int(h[8]) | int(h[9]&0x3f)<<8, true
}

// h264Size finds a sequence parameter set in a single NAL unit or a STAP-A aggregate and reads its
// size. It parses (and allocates) only for SPS units, which come once per keyframe.
func h264Size(p []byte) (int, int, bool) {
	if len(p) < 1 {
		return 0, 0, false
	}
	switch p[0] & 0x1f {
	case 7:
		return spsSize(p)
	case 24:
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return 0, 0, false
			}
			if p[i]&0x1f == 7 {
				return spsSize(p[i : i+size])
			}
			i += size
		}
	}
	return 0, 0, false
}

func spsSize(nal []byte) (int, int, bool) {
	var sps h264.SPS
	if sps.Unmarshal(nal) != nil {
		return 0, 0, false
	}
	return sps.Width(), sps.Height(), true
}
