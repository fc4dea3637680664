package webrtc

import (
	"fmt"
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "goog-remb"}, {Type: "transport-cc"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"},
}

type codecEntry struct {
	name string // configuration name, "vp8/90000"
	caps webrtc.RTPCodecCapability
	pt   webrtc.PayloadType
	rtx  webrtc.PayloadType // 0: none
}

// videoCatalog is every video codec we can forward, in the order we prefer when the configuration
// does not restrict it. VP8 first: every browser has it and WebM recordings take it as it is.
var videoCatalog = []codecEntry{
	{"vp8/90000", capability("video/VP8", 90000, 0, ""), 96, 97},
	{"vp9/90000", capability("video/VP9", 90000, 0, "profile-id=0"), 98, 99},
	{"vp9/90000", capability("video/VP9", 90000, 0, "profile-id=2"), 100, 101},
	{"h264/90000", capability("video/H264", 90000, 0, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"), 102, 103},
	{"h264/90000", capability("video/H264", 90000, 0, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"), 108, 109},
	{"h264/90000", capability("video/H264", 90000, 0, "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"), 106, 107},
	{"h264/90000", capability("video/H264", 90000, 0, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"), 127, 125},
	{"h264/90000", capability("video/H264", 90000, 0, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"), 112, 113},
	{"av1/90000", capability("video/AV1", 90000, 0, ""), 45, 46},
	{"h265/90000", capability("video/H265", 90000, 0, ""), 116, 117},
}

var audioCatalog = []codecEntry{
	{"opus/48000/2", capability("audio/opus", 48000, 2, "minptime=10;useinbandfec=1"), 111, 0},
	{"pcmu/8000", capability("audio/PCMU", 8000, 0, ""), 0, 0},
	{"pcma/8000", capability("audio/PCMA", 8000, 0, ""), 8, 0},
}

func capability(mime string, rate uint32, channels uint16, fmtp string) webrtc.RTPCodecCapability {
	c := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: rate, Channels: channels, SDPFmtpLine: fmtp}
	if strings.HasPrefix(mime, "video/") {
		c.RTCPFeedback = videoFeedback
	}
	return c
}

// enabled tells whether a catalog entry is in the configured list ("VP8/90000", "opus/48000/2", ...);
// an empty list enables everything.
func enabled(e codecEntry, configured []string) bool {
	if len(configured) == 0 {
		return true
	}
	for _, c := range configured {
		if strings.EqualFold(c, e.name) || strings.EqualFold(c+"/2", e.name) {
			return true
		}
	}
	return false
}

// newAPI builds a pion API with the configured codecs and the interceptors every endpoint uses.
func newAPI(s *Settings, se webrtc.SettingEngine) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	register := func(list []codecEntry, configured []string, kind webrtc.RTPCodecType) error {
		for _, e := range list {
			if !enabled(e, configured) || (e.name == "h265/90000" && !s.EnableH265) {
				continue
			}
			if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: e.caps, PayloadType: e.pt}, kind); err != nil {
				return fmt.Errorf("codec %s: %w", e.name, err)
			}
			if e.rtx != 0 {
				rtx := webrtc.RTPCodecCapability{MimeType: "video/rtx", ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", e.pt)}
				if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: rtx, PayloadType: e.rtx}, kind); err != nil {
					return fmt.Errorf("codec %s rtx: %w", e.name, err)
				}
			}
		}
		return nil
	}
	if err := register(audioCatalog, s.AudioCodecs, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if err := register(videoCatalog, s.VideoCodecs, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	// NACKs are ours (media.PacketCache, rtpengine.Receiver): pion's NACK interceptors allocate per
	// packet. TWCC feedback toward publishers is ours too (endpoint.readTrack records arrivals), for
	// the same reason; the header extension is negotiated here. We send no transport-wide sequence
	// numbers, so subscribers' browsers estimate on their side and send REMB.
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.TransportCCURI}, kind); err != nil {
			return nil, err
		}
	}
	if s.ridSimulcast {
		if err := registerSimulcastExtensions(m); err != nil {
			return nil, err
		}
	}
	// No interceptors: every per-packet layer pion would add on the write path costs CPU on each
	// packet to each viewer. Sender and receiver reports are ours (rtpengine: feedback.go, and the
	// write closure of localTrack.Bind).
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(&interceptor.Registry{}), webrtc.WithSettingEngine(se)), nil
}
