package webrtc

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// offerShape is a remote offer brought into the shape pion accepts, and what was changed, so that the
// answer can be given back in the offer's own shape. KMS's SDP agent answers offers that pion refuses:
// m-lines without a=mid (the answer then has no mids nor BUNDLE group), no ICE credentials or DTLS
// fingerprint, plan-B and simulcast ssrc lists; it rejects (port 0) the m-lines it cannot serve:
// a profile other than (UDP/TLS/)RTP/SAVPF or DTLS/SCTP, more audio or video m-lines than
// numAudioMedias/numVideoMedias, data channels the endpoint was not created for.
type offerShape struct {
	lines         []lineShape
	hadGroup      bool // the offer had an a=group line: the answer keeps pion's
	noFingerprint bool // the peer's certificate cannot be checked
	ridSimulcast  bool // the offer sends rid simulcast layers (simulcast.go)
}

type lineShape struct {
	rejected bool   // not shown to pion; answered with port 0
	addedMid bool   // the mid pion sees was assigned by us; the answer leaves it out
	reject   string // the rejected m-line of the answer
}

var savpf = regexp.MustCompile(`^(UDP/TLS/)?RTP/SAVPF$`)

// normalizeOffer rewrites an offer for pion; limits are the m-lines of each kind the endpoint serves.
func normalizeOffer(offer string, s *Settings) (string, offerShape, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return "", offerShape{}, err
	}
	shape := offerShape{lines: make([]lineShape, len(sd.MediaDescriptions))}
	_, shape.hadGroup = sd.Attribute("group")
	used := map[string]bool{}
	for _, m := range sd.MediaDescriptions {
		if mid, ok := m.Attribute("mid"); ok {
			used[mid] = true
		}
	}
	served := map[string]int{"audio": s.NumAudioMedias, "video": s.NumVideoMedias, "application": 0}
	if s.DataChannels {
		served["application"] = 1
	}
	hasUfrag, hasPwd := hasAttr(&sd, "ice-ufrag"), hasAttr(&sd, "ice-pwd")
	shape.noFingerprint = !hasAttr(&sd, "fingerprint")
	shape.ridSimulcast = offersRidSimulcast(&sd)
	var kept []*sdp.MediaDescription
	var removedMids []string
	next := 0
	for i, m := range sd.MediaDescriptions {
		kind, proto := m.MediaName.Media, strings.Join(m.MediaName.Protos, "/")
		usable := m.MediaName.Port.Value != 0 && served[kind] > 0
		if kind == "application" {
			usable = usable && strings.Contains(proto, "SCTP")
		} else {
			usable = usable && savpf.MatchString(proto)
		}
		if !usable {
			shape.lines[i] = lineShape{rejected: true, reject: rejectedLine(m)}
			if mid, ok := m.Attribute("mid"); ok {
				removedMids = append(removedMids, mid)
			}
			continue
		}
		served[kind]--
		if _, ok := m.Attribute("mid"); !ok {
			for used[strconv.Itoa(next)] {
				next++
			}
			mid := strconv.Itoa(next)
			used[mid] = true
			m.Attributes = append(m.Attributes, sdp.Attribute{Key: "mid", Value: mid})
			shape.lines[i].addedMid = true
		}
		if kind != "application" {
			m.Attributes = oneTrack(m.Attributes)
		}
		kept = append(kept, m)
	}
	sd.MediaDescriptions = kept
	if len(removedMids) > 0 {
		dropFromGroups(&sd, removedMids)
	}
	if !shape.hadGroup && len(kept) > 0 {
		// pion rejects the m-lines outside the offer's BUNDLE group, even when there is no group.
		mids := []string{"BUNDLE"}
		for _, m := range kept {
			mid, _ := m.Attribute("mid")
			mids = append(mids, mid)
		}
		sd.Attributes = append(sd.Attributes, sdp.Attribute{Key: "group", Value: strings.Join(mids, " ")})
	}
	// Credentials and fingerprint the peer left out: pion needs some to start; the real ones can only
	// come from the peer, so connectivity checks need them in the offer (see ProcessOffer).
	if !hasUfrag {
		sd.Attributes = append(sd.Attributes, sdp.Attribute{Key: "ice-ufrag", Value: randomToken(4)})
	}
	if !hasPwd {
		sd.Attributes = append(sd.Attributes, sdp.Attribute{Key: "ice-pwd", Value: randomToken(12)})
	}
	if shape.noFingerprint {
		sd.Attributes = append(sd.Attributes, sdp.Attribute{Key: "fingerprint", Value: "sha-256 " + placeholderFingerprint})
	}
	out, err := sd.Marshal()
	if err != nil {
		return "", offerShape{}, err
	}
	return string(out), shape, nil
}

// placeholderFingerprint stands for a fingerprint the offer did not have; with it the peer's
// certificate is accepted unchecked, as nothing can check it.
var placeholderFingerprint = strings.TrimSuffix(strings.Repeat("00:", 32), ":")

// accepted tells whether pion sees at least one m-line of the offer.
func (o *offerShape) accepted() bool {
	for _, l := range o.lines {
		if !l.rejected {
			return true
		}
	}
	return false
}

// answer maps pion's answer back onto the offer's m-lines: rejected ones reinserted with port 0 in
// their place, mids we assigned removed (and the BUNDLE group with them when the offer had none).
func (o *offerShape) answer(answer string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(sessionPart(answer), "\n") {
		if o.hadGroup || !strings.HasPrefix(line, "a=group:") {
			b.WriteString(line)
		}
	}
	sections := mediaSections(answer)
	k := 0
	for _, l := range o.lines {
		if l.rejected || k >= len(sections) {
			b.WriteString(l.reject)
			continue
		}
		section := sections[k]
		k++
		if l.addedMid {
			var keep strings.Builder
			for _, line := range strings.SplitAfter(section, "\n") {
				if !strings.HasPrefix(line, "a=mid:") {
					keep.WriteString(line)
				}
			}
			section = keep.String()
		}
		b.WriteString(section)
	}
	return b.String()
}

// rejectedLine is the answer to an m-line KMS cannot serve: port 0, inactive, its first format (with
// its rtpmap: stacks such as pion refuse a payload type they cannot look up).
func rejectedLine(m *sdp.MediaDescription) string {
	format := "0"
	if len(m.MediaName.Formats) > 0 {
		format = m.MediaName.Formats[0]
	}
	line := "m=" + m.MediaName.Media + " 0 " + strings.Join(m.MediaName.Protos, "/") + " " + format + "\r\n"
	for _, a := range m.Attributes {
		if a.Key == "rtpmap" && strings.HasPrefix(a.Value, format+" ") {
			line += "a=rtpmap:" + a.Value + "\r\n"
		}
	}
	return line + "a=inactive\r\n"
}

// sessionPart is the text of an SDP before its first m-line; mediaSections the text of each m-line.
func sessionPart(text string) string {
	if i := strings.Index(text, "\nm="); i >= 0 {
		return text[:i+1]
	}
	return text
}

func mediaSections(text string) []string {
	var out []string
	rest := text[len(sessionPart(text)):]
	for rest != "" {
		end := strings.Index(rest[1:], "\nm=")
		if end < 0 {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:end+2])
		rest = rest[end+2:]
	}
	return out
}

func hasAttr(sd *sdp.SessionDescription, key string) bool {
	if _, ok := sd.Attribute(key); ok {
		return true
	}
	for _, m := range sd.MediaDescriptions {
		if _, ok := m.Attribute(key); ok {
			return true
		}
	}
	return false
}

// dropFromGroups takes mids of m-lines pion does not see out of the session's a=group lines.
func dropFromGroups(sd *sdp.SessionDescription, mids []string) {
	for i, a := range sd.Attributes {
		if a.Key != "group" {
			continue
		}
		fields := strings.Fields(a.Value)
		var keep []string
		for _, f := range fields {
			drop := false
			for _, mid := range mids {
				drop = drop || f == mid
			}
			if !drop {
				keep = append(keep, f)
			}
		}
		sd.Attributes[i].Value = strings.Join(keep, " ")
	}
}

// oneTrack keeps the ssrc lines of one track of an m-line, as KMS takes one stream per media type:
// the first layer of a simulcast group (a=ssrc-group:SIM, kurento-utils' munging) or the first
// track of a plan-B list, with its retransmission (FID) partner. pion would take several tracks in
// one m-line for plan-B and refuse the offer.
func oneTrack(attrs []sdp.Attribute) []sdp.Attribute {
	var first uint64
	var sim []string
	label := map[uint64]string{}
	for _, a := range attrs {
		switch a.Key {
		case "ssrc-group":
			if f := strings.Fields(a.Value); len(f) > 1 && f[0] == "SIM" {
				sim = f[1:]
			}
		case "ssrc":
			f := strings.Fields(a.Value)
			ssrc, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				continue
			}
			if first == 0 {
				first = ssrc
			}
			if len(f) > 1 && strings.HasPrefix(f[1], "msid:") {
				label[ssrc] = strings.Join(f[1:], " ")
			}
		}
	}
	if first == 0 {
		return attrs
	}
	keep := map[uint64]bool{}
	if len(sim) > 0 {
		first, _ = strconv.ParseUint(sim[0], 10, 32)
		keep[first] = true
	} else {
		for ssrc, l := range label {
			keep[ssrc] = l == label[first]
		}
		keep[first] = true
	}
	for _, a := range attrs { // retransmission partners of what is kept
		if f := strings.Fields(a.Value); a.Key == "ssrc-group" && len(f) == 3 && f[0] == "FID" {
			if p, _ := strconv.ParseUint(f[1], 10, 32); keep[p] {
				r, _ := strconv.ParseUint(f[2], 10, 32)
				keep[r] = true
			}
		}
	}
	var out []sdp.Attribute
	for _, a := range attrs {
		f := strings.Fields(a.Value)
		switch {
		case a.Key == "ssrc" && len(f) > 0:
			if ssrc, _ := strconv.ParseUint(f[0], 10, 32); !keep[ssrc] {
				continue
			}
		case a.Key == "ssrc-group" && len(f) > 0:
			all := true
			for _, s := range f[1:] {
				ssrc, _ := strconv.ParseUint(s, 10, 32)
				all = all && keep[ssrc]
			}
			if f[0] == "SIM" || !all {
				continue
			}
		}
		out = append(out, a)
	}
	return out
}

func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
