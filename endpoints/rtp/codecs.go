package rtp

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kurento-go/kms/media"
)

// codec is one payload type of an m-line: what rtpmap and fmtp say about it.
type codec struct {
	pt       uint8
	name     string // encoding name as written in SDP: "VP8", "opus", "H264"
	rate     uint32
	channels uint16
	fmtp     string
}

// mime is the codec as the media graph names it ("video/VP8").
func (c codec) mime(t media.Type) string {
	prefix := "audio/"
	if t == media.Video {
		prefix = "video/"
	}
	return prefix + c.name
}

func (c codec) media(t media.Type) *media.Codec {
	return &media.Codec{MimeType: c.mime(t), ClockRate: c.rate, Channels: c.channels, Fmtp: c.fmtp}
}

func (c codec) rtpmap() string {
	s := fmt.Sprintf("%d %s/%d", c.pt, c.name, c.rate)
	if c.channels > 1 {
		s += "/" + strconv.Itoa(int(c.channels))
	}
	return s
}

// same tells whether two descriptions name the same encoding (payload types and fmtp aside).
func (c codec) same(o codec) bool {
	if !strings.EqualFold(c.name, o.name) || c.rate != o.rate {
		return false
	}
	if strings.EqualFold(c.name, "opus") {
		return true // always written opus/48000/2
	}
	return max(c.channels, 1) == max(o.channels, 1)
}

// staticCodecs are the RFC 3551 payload types an m-line may use without rtpmap.
var staticCodecs = map[uint8]codec{
	0: {pt: 0, name: "PCMU", rate: 8000, channels: 1},
	8: {pt: 8, name: "PCMA", rate: 8000, channels: 1},
}

// catalog is every codec the endpoint can carry without transcoding, with the payload type it
// uses in its own offers. The configuration (SdpEndpoint audioCodecs/videoCodecs) orders and filters it.
var catalog = map[media.Type][]codec{
	media.Audio: {
		{pt: 111, name: "opus", rate: 48000, channels: 2, fmtp: "minptime=10;useinbandfec=1"},
		{pt: 0, name: "PCMU", rate: 8000, channels: 1},
		{pt: 8, name: "PCMA", rate: 8000, channels: 1},
	},
	media.Video: {
		{pt: 98, name: "VP9", rate: 90000},
		{pt: 96, name: "VP8", rate: 90000},
		{pt: 102, name: "H264", rate: 90000, fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
	},
}

// supported tells whether an offered codec is one the endpoint can carry.
func supported(t media.Type, c codec) bool {
	for _, k := range catalog[t] {
		if k.same(c) {
			return true
		}
	}
	return false
}

// offerCodecs is the codec list of generated offers: the configured list in its order (entries
// "<name>/<rate>[/<channels>]"), keeping only what the endpoint supports; nil configures the catalog.
// prefer, when set, moves that MIME type to the front: it is what the connected source produces.
func offerCodecs(t media.Type, configured []string, prefer string) []codec {
	var out []codec
	if len(configured) == 0 {
		out = append(out, catalog[t]...)
	}
	for _, entry := range configured {
		parts := strings.Split(entry, "/")
		if len(parts) < 2 {
			continue
		}
		rate, _ := strconv.Atoi(parts[1])
		for _, k := range catalog[t] {
			if strings.EqualFold(k.name, parts[0]) && int(k.rate) == rate && !contains(out, k) {
				out = append(out, k)
			}
		}
	}
	if prefer != "" {
		for i, c := range out {
			if strings.EqualFold(c.mime(t), prefer) && i > 0 {
				out = append([]codec{c}, append(out[:i:i], out[i+1:]...)...)
				break
			}
		}
	}
	return out
}

func contains(list []codec, c codec) bool {
	for _, x := range list {
		if x.same(c) {
			return true
		}
	}
	return false
}
