package recorder

import (
	"errors"
	"fmt"
	"strings"
)

// Container is the file format a profile writes.
type Container uint8

// The containers the recorder writes: WebM, Matroska and MP4 muxed in Go, FLV and JPEG through
// GStreamer (they need an AAC or a JPEG encoder on the way).
const (
	// WebM is Matroska with the "webm" doctype: VP8 or VP9 video, Opus audio.
	WebM Container = iota
	// Matroska is Matroska with the "matroska" doctype: VP8, VP9 or H.264 video, Opus audio.
	Matroska
	// MP4 is fragmented MP4 (ISO BMFF with moof/mdat fragments of half a second): H.264 video,
	// Opus audio.
	MP4
	// FLV is Flash Video with H.264 video and AAC audio (the Opus audio is encoded to AAC), as KMS's
	// FLV profile; written streamable, so that it reads up to the last tag after a crash.
	FLV
	// JPEG is the video as a series of JPEG images, one per frame, as KMS's JPEG_VIDEO_ONLY.
	JPEG
)

func (c Container) String() string {
	switch c {
	case WebM:
		return "WebM"
	case Matroska:
		return "Matroska"
	case MP4:
		return "MP4"
	case FLV:
		return "FLV"
	case JPEG:
		return "JPEG"
	}
	return fmt.Sprintf("Container(%d)", c)
}

// Profile is a MediaProfileSpecType: a container and the tracks it records.
type Profile struct {
	Name      string
	Container Container
	Audio     bool
	Video     bool
}

// ErrProfileUnsupported is returned by ParseProfile for the profiles this server does not record.
var ErrProfileUnsupported = errors.New("media profile not supported")

// ErrSplitRecorder is returned by ParseProfile for KURENTO_SPLIT_RECORDER: KMS refuses it with the
// same words when its kmsrecorder plugin is missing, which is always the case here.
var ErrSplitRecorder = errors.New("Kurento Split Recorder not supported")

// ParseProfile reads a MediaProfileSpecType name.
//
// MKV: KMS 7 builds it like MP4 (H.264 + AAC, transcoding WebRTC media). This server writes Matroska
// with the codecs the source sends (VP8, VP9 or H.264 video; Opus audio), so that an MKV recording of
// a browser needs no transcoding at all; the file plays in every Matroska reader.
// FLV and JPEG_VIDEO_ONLY have no _AUDIO_ONLY or _VIDEO_ONLY variants of their own.
func ParseProfile(name string) (Profile, error) {
	var p Profile
	base, only, _ := strings.Cut(name, "_")
	switch base {
	case "WEBM":
		p.Container = WebM
	case "MKV":
		p.Container = Matroska
	case "MP4":
		p.Container = MP4
	case "KURENTO":
		if name == "KURENTO_SPLIT_RECORDER" {
			return p, ErrSplitRecorder
		}
		return p, fmt.Errorf("%w: %s", ErrProfileUnsupported, name)
	case "FLV":
		if name != "FLV" {
			return p, fmt.Errorf("%w: unknown profile %s", ErrProfileUnsupported, name)
		}
		p.Container = FLV
	case "JPEG":
		if name != "JPEG_VIDEO_ONLY" {
			return p, fmt.Errorf("%w: unknown profile %s", ErrProfileUnsupported, name)
		}
		p.Container = JPEG
	default:
		return p, fmt.Errorf("%w: unknown profile %s", ErrProfileUnsupported, name)
	}
	switch only {
	case "":
		p.Audio, p.Video = true, true
	case "AUDIO_ONLY":
		p.Audio = true
	case "VIDEO_ONLY":
		p.Video = true
	default:
		return p, fmt.Errorf("%w: unknown profile %s", ErrProfileUnsupported, name)
	}
	p.Name = name
	return p, nil
}

// accepts tells whether the container stores a codec as it is (a MIME type such as "video/VP8").
//
// Audio in MP4 is Opus ("Opus" sample entry with a dOps box, ISO/IEC 14496-12 + the Opus-in-ISOBMFF
// mapping): KMS would transcode to AAC, but we do no audio transcoding on this path. ffmpeg/ffprobe,
// Chrome and Firefox read Opus in MP4; Safari reads it since 17. Decided so that recording a
// browser's audio costs no CPU.
func (c Container) accepts(mime string) bool {
	switch strings.ToLower(mime) {
	case "audio/opus":
		return c != JPEG
	case "video/vp8", "video/vp9":
		return c == WebM || c == Matroska || c == JPEG
	case "video/h264":
		return c == Matroska || c == MP4 || c == FLV || c == JPEG
	}
	return false
}

// wants lists what a container takes, for error messages.
func (c Container) wants(video bool) string {
	switch {
	case !video && c == JPEG:
		return "no"
	case !video:
		return "Opus"
	case c == WebM:
		return "VP8 or VP9"
	case c == Matroska, c == JPEG:
		return "VP8, VP9 or H264"
	}
	return "H264"
}
