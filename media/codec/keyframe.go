// Package codec reads what the forwarding path needs to know from RTP payloads without decoding them:
// whether a packet starts a keyframe.
package codec

import "strings"

// IsKeyframeStart tells whether an RTP payload of the given codec (a MIME type such as "video/VP8")
// begins a keyframe. For codecs it cannot read it answers true, so that nothing waits forever.
func IsKeyframeStart(mimeType string, payload []byte) bool {
	// EqualFold, not ToLower: this runs per frame on paced paths and must not allocate.
	switch {
	case strings.EqualFold(mimeType, "video/vp8"):
		return vp8Keyframe(payload)
	case strings.EqualFold(mimeType, "video/vp9"):
		return vp9Keyframe(payload)
	case strings.EqualFold(mimeType, "video/h264"):
		return h264Keyframe(payload)
	}
	return true
}

// vp8Keyframe reads the VP8 payload descriptor (RFC 7741 §4.2) and the first byte of the frame
// header, whose lowest bit is 0 on keyframes.
func vp8Keyframe(p []byte) bool {
	i, ok := vp8FrameStart(p)
	return ok && p[i]&0x01 == 0
}

// vp8FrameStart is the offset of the frame header in a payload that starts partition 0 of a frame,
// past the payload descriptor; ok is false for other payloads.
func vp8FrameStart(p []byte) (int, bool) {
	if len(p) < 1 {
		return 0, false
	}
	start, pid := p[0]&0x10 != 0, p[0]&0x07
	if !start || pid != 0 {
		return 0, false
	}
	i := 1
	if p[0]&0x80 != 0 { // X: extension byte follows
		if len(p) <= i {
			return 0, false
		}
		ext := p[i]
		i++
		if ext&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(p) <= i {
				return 0, false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			i++
		}
	}
	return i, len(p) > i
}

// vp9Keyframe reads the VP9 payload descriptor (RFC 9628 §4.2): a frame that begins here (B) and is
// not inter-predicted (P clear) is a keyframe.
func vp9Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	interPredicted, begin := p[0]&0x40 != 0, p[0]&0x08 != 0
	return begin && !interPredicted
}

// h264Keyframe looks for an IDR slice or a sequence parameter set at the start of the payload, in a
// single NAL unit, a STAP-A aggregate or the first fragment of an FU-A (RFC 6184).
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch nal := p[0] & 0x1f; nal {
	case 5, 7:
		return true
	case 24: // STAP-A: 16-bit size, then the NAL unit
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if t := p[i] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += size
		}
	case 28: // FU-A: the start bit and the type of the fragmented unit
		if len(p) < 2 {
			return false
		}
		t := p[1] & 0x1f
		return p[1]&0x80 != 0 && (t == 5 || t == 7)
	}
	return false
}
