package objects

import (
	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/media"
)

// formatCodecs are the codecs of KMS's AudioCodec and VideoCodec enums as RTP codecs. RAW is not
// among them: raw media between elements is what every sink encodes into its own codec anyway, so
// forcing RAW lifts the forcing.
var formatCodecs = map[string]media.Codec{
	"OPUS": {MimeType: "audio/opus", ClockRate: 48000, Channels: 2},
	"PCMU": {MimeType: "audio/PCMU", ClockRate: 8000, Channels: 1},
	"PCMA": {MimeType: "audio/PCMA", ClockRate: 8000, Channels: 1},
	"VP8":  {MimeType: "video/VP8", ClockRate: 90000},
	"VP9":  {MimeType: "video/VP9", ClockRate: 90000},
	"H264": {MimeType: "video/H264", ClockRate: 90000,
		Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
	"H265": {MimeType: "video/H265", ClockRate: 90000},
	"AV1":  {MimeType: "video/AV1", ClockRate: 90000},
}

// formatOf is the media format of an AudioCaps or VideoCaps value, nil for RAW.
func formatOf(caps *api.Register) *media.Format {
	if caps == nil {
		return nil
	}
	name, _ := caps.Fields["codec"].(string)
	c, ok := formatCodecs[name]
	if !ok {
		return nil
	}
	f := &media.Format{Codec: c}
	f.Bitrate, _ = caps.Fields["bitrate"].(int)
	if fr, ok := caps.Fields["framerate"].(*api.Register); ok {
		f.FramerateNum, _ = fr.Fields["numerator"].(int)
		f.FramerateDen, _ = fr.Fields["denominator"].(int)
	}
	return f
}

// setFormatOp forces the element's output of one media type, as KMS's audio-caps/video-caps do.
func setFormatOp(t media.Type) Handler {
	return func(o Object, a Args) (any, error) {
		elementOf(o).Media.SetFormat(t, formatOf(a.Register("caps")))
		return nil, nil
	}
}
