package webrtc

import (
	"fmt"
	"strings"
)

// withBandwidth adds to our SDP what KMS's SDP agent announces of maxAudioRecvBandwidth and
// maxVideoRecvBandwidth: b=AS (kbps) in the audio and video m-lines, so that the peer's sender keeps
// within them (for video REMB also says so while media flows).
func withBandwidth(text string, s *Settings) string {
	limits := map[string]int{"audio": s.MaxAudioRecvBandwidth, "video": s.MaxVideoRecvBandwidth}
	if limits["audio"] <= 0 && limits["video"] <= 0 {
		return text
	}
	sections := mediaSections(text)
	var b strings.Builder
	b.WriteString(sessionPart(text))
	for _, sec := range sections {
		kind, _, _ := strings.Cut(strings.TrimPrefix(sec, "m="), " ")
		kbps := limits[kind]
		if kbps <= 0 || strings.Contains(sec, "\nb=AS:") || strings.HasPrefix(sec, "m="+kind+" 0 ") {
			b.WriteString(sec)
			continue
		}
		// b= goes after m=, i= and c= (RFC 8866 §5).
		lines := strings.SplitAfter(sec, "\n")
		at := 1
		for at < len(lines) && (strings.HasPrefix(lines[at], "i=") || strings.HasPrefix(lines[at], "c=")) {
			at++
		}
		for i, l := range lines {
			if i == at {
				fmt.Fprintf(&b, "b=AS:%d\r\n", kbps)
			}
			b.WriteString(l)
		}
		if at == len(lines) {
			fmt.Fprintf(&b, "b=AS:%d\r\n", kbps)
		}
	}
	return b.String()
}
