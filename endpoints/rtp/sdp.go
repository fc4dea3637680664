package rtp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/kurento-go/kms/media"
	"github.com/pion/sdp/v3"
)

// feedback is the RTCP feedback (RFC 4585, RFC 5104, REMB) a media section allows.
type feedback struct{ nack, pli, fir, remb bool }

func (f feedback) and(o feedback) feedback {
	return feedback{f.nack && o.nack, f.pli && o.pli, f.fir && o.fir, f.remb && o.remb}
}

func (f feedback) or(o feedback) feedback {
	return feedback{f.nack || o.nack, f.pli || o.pli, f.fir || o.fir, f.remb || o.remb}
}

// ours is the feedback the endpoint offers for video: it answers and sends all of it.
var ours = feedback{nack: true, pli: true, fir: true, remb: true}

func (f *feedback) add(v string) {
	switch strings.Join(strings.Fields(v), " ") {
	case "nack":
		f.nack = true
	case "nack pli":
		f.pli = true
	case "ccm fir":
		f.fir = true
	case "goog-remb":
		f.remb = true
	}
}

func (f feedback) lines() []string {
	var out []string
	if f.nack {
		out = append(out, "nack")
	}
	if f.pli {
		out = append(out, "nack pli")
	}
	if f.fir {
		out = append(out, "ccm fir")
	}
	if f.remb {
		out = append(out, "goog-remb")
	}
	return out
}

// remoteMedia is what an m-line of the peer's SDP says.
type remoteMedia struct {
	name     string // "audio", "video", "application", ...
	kind     media.Type
	port     int
	proto    string
	formats  []string
	addr     netip.Addr // invalid: unspecified or unusable
	rtcpPort int
	rtcpAddr netip.Addr
	mux      bool
	dir      string
	codecs   []codec
	fb       map[uint8]feedback
	keys     []sdesKey // usable a=crypto lines, in order
	ssrc     uint32
	comedia  bool // a=direction:active: learn the peer's address from what it sends
	mid      string
}

func (m *remoteMedia) avpf() bool { return strings.HasSuffix(m.proto, "AVPF") }
func (m *remoteMedia) srtp() bool { return strings.Contains(m.proto, "SAVP") }

// rtpProto tells whether a transport is one the endpoint speaks.
func rtpProto(p string) bool {
	switch p {
	case "RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF":
		return true
	}
	return false
}

// parseSDP reads a peer's SDP; only text pion cannot read at all is an error.
func parseSDP(text string) (*sdp.SessionDescription, []*remoteMedia, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil, fmt.Errorf("empty SDP")
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		return nil, nil, err
	}
	var sessionAddr netip.Addr
	if sd.ConnectionInformation != nil {
		sessionAddr = parseAddr(sd.ConnectionInformation)
	}
	out := make([]*remoteMedia, 0, len(sd.MediaDescriptions))
	for _, md := range sd.MediaDescriptions {
		m := &remoteMedia{
			name:    md.MediaName.Media,
			port:    md.MediaName.Port.Value,
			proto:   strings.ToUpper(strings.Join(md.MediaName.Protos, "/")),
			formats: md.MediaName.Formats,
			addr:    sessionAddr,
			dir:     "sendrecv",
			fb:      map[uint8]feedback{},
		}
		switch m.name {
		case "audio":
			m.kind = media.Audio
		case "video":
			m.kind = media.Video
		default:
			m.kind = media.Data
		}
		if md.ConnectionInformation != nil {
			m.addr = parseAddr(md.ConnectionInformation)
		}
		if v, ok := sd.Attribute("direction"); ok && v == "active" {
			m.comedia = true
		}
		for _, a := range sd.Attributes {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				m.dir = a.Key
			}
		}
		byPT := map[uint8]*codec{}
		var order []uint8
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.Atoi(f)
			if err != nil || pt < 0 || pt > 127 {
				continue
			}
			c := codec{pt: uint8(pt)}
			if s, ok := staticCodecs[uint8(pt)]; ok {
				c = s
			}
			byPT[uint8(pt)] = &c
			order = append(order, uint8(pt))
		}
		var all feedback
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, rest, ok := cutPT(a.Value)
				if c := byPT[pt]; ok && c != nil {
					parts := strings.Split(strings.TrimSpace(rest), "/")
					c.name = parts[0]
					if len(parts) > 1 {
						r, _ := strconv.Atoi(parts[1])
						c.rate = uint32(r)
					}
					c.channels = 0
					if len(parts) > 2 {
						ch, _ := strconv.Atoi(parts[2])
						c.channels = uint16(ch)
					}
				}
			case "fmtp":
				if pt, rest, ok := cutPT(a.Value); ok && byPT[pt] != nil {
					byPT[pt].fmtp = strings.TrimSpace(rest)
				}
			case "rtcp-fb":
				id, rest, _ := strings.Cut(strings.TrimSpace(a.Value), " ")
				if id == "*" {
					all.add(rest)
				} else if pt, err := strconv.Atoi(id); err == nil && pt >= 0 && pt < 128 {
					f := m.fb[uint8(pt)]
					f.add(rest)
					m.fb[uint8(pt)] = f
				}
			case "rtcp":
				fields := strings.Fields(a.Value)
				if len(fields) > 0 {
					m.rtcpPort, _ = strconv.Atoi(fields[0])
				}
				if len(fields) >= 4 {
					if ip, err := netip.ParseAddr(fields[3]); err == nil && !ip.IsUnspecified() {
						m.rtcpAddr = ip
					}
				}
			case "rtcp-mux":
				m.mux = true
			case "sendrecv", "sendonly", "recvonly", "inactive":
				m.dir = a.Key
			case "crypto":
				if k, err := parseCrypto(a.Value); err == nil {
					m.keys = append(m.keys, k)
				}
			case "ssrc":
				id, _, _ := strings.Cut(a.Value, " ")
				if n, err := strconv.ParseUint(id, 10, 32); err == nil && m.ssrc == 0 {
					m.ssrc = uint32(n)
				}
			case "direction":
				m.comedia = strings.TrimSpace(a.Value) == "active"
			case "mid":
				m.mid = a.Value
			}
		}
		for pt, f := range m.fb {
			m.fb[pt] = f.or(all)
		}
		for _, pt := range order {
			c := byPT[pt]
			if c.name == "" {
				continue // dynamic type without rtpmap
			}
			if _, ok := m.fb[pt]; !ok {
				m.fb[pt] = all
			}
			m.codecs = append(m.codecs, *c)
		}
		if !m.rtcpAddr.IsValid() {
			m.rtcpAddr = m.addr
		}
		out = append(out, m)
	}
	return &sd, out, nil
}

func cutPT(v string) (uint8, string, bool) {
	id, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	pt, err := strconv.Atoi(id)
	if err != nil || pt < 0 || pt > 127 {
		return 0, "", false
	}
	return uint8(pt), rest, true
}

// parseAddr reads a c= line; unspecified addresses and names are not usable destinations.
func parseAddr(c *sdp.ConnectionInformation) netip.Addr {
	if c.Address == nil {
		return netip.Addr{}
	}
	ip, err := netip.ParseAddr(c.Address.Address)
	if err != nil || ip.IsUnspecified() {
		return netip.Addr{}
	}
	return ip
}

// localMedia is one m-line of our SDP.
type localMedia struct {
	conns
	name     string
	kind     media.Type
	proto    string
	rejected bool
	formats  []string // rejected lines only: echoed formats
	port     int
	rtcpPort int
	mux      bool
	dir      string
	codecs   []codec
	fb       feedback // video feedback listed for every codec
	key      *sdesKey
	ssrc     uint32
	cname    string
	mid      string
	bwAS     int // kbps, 0: none
}

// reverse is the direction an answer takes for an offered one.
func reverse(dir string) string {
	switch dir {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// buildSDP writes our description.
func buildSDP(lines []*localMedia, addr netip.Addr, sessionID, version uint64) string {
	addrType := "IP4"
	if addr.Is6() && !addr.Is4In6() {
		addrType = "IP6"
	}
	conn := &sdp.ConnectionInformation{NetworkType: "IN", AddressType: addrType, Address: &sdp.Address{Address: addr.String()}}
	sd := sdp.SessionDescription{
		Origin: sdp.Origin{
			Username: "-", SessionID: sessionID, SessionVersion: version,
			NetworkType: "IN", AddressType: addrType, UnicastAddress: addr.String(),
		},
		SessionName:           "Kurento Media Server",
		ConnectionInformation: conn,
		TimeDescriptions:      []sdp.TimeDescription{{Timing: sdp.Timing{}}},
	}
	for _, l := range lines {
		md := &sdp.MediaDescription{MediaName: sdp.MediaName{
			Media:  l.name,
			Port:   sdp.RangedPort{Value: l.port},
			Protos: strings.Split(l.proto, "/"),
		}}
		if l.rejected {
			md.MediaName.Port.Value = 0
			md.MediaName.Formats = l.formats
			if len(md.MediaName.Formats) == 0 {
				md.MediaName.Formats = []string{"0"}
			}
			sd.MediaDescriptions = append(sd.MediaDescriptions, md)
			continue
		}
		for _, c := range l.codecs {
			md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(c.pt)))
		}
		if l.bwAS > 0 {
			md.Bandwidth = append(md.Bandwidth, sdp.Bandwidth{Type: "AS", Bandwidth: uint64(l.bwAS)})
		}
		for _, c := range l.codecs {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("rtpmap", c.rtpmap()))
			if c.fmtp != "" {
				md.Attributes = append(md.Attributes, sdp.NewAttribute("fmtp", fmt.Sprintf("%d %s", c.pt, c.fmtp)))
			}
			if l.kind == media.Video {
				for _, fb := range l.fb.lines() {
					md.Attributes = append(md.Attributes, sdp.NewAttribute("rtcp-fb", fmt.Sprintf("%d %s", c.pt, fb)))
				}
			}
		}
		if l.mux {
			md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute("rtcp-mux"))
		} else {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("rtcp", strconv.Itoa(l.rtcpPort)))
		}
		md.Attributes = append(md.Attributes, sdp.NewPropertyAttribute(l.dir))
		if l.mid != "" {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("mid", l.mid))
		}
		if l.key != nil {
			md.Attributes = append(md.Attributes, sdp.NewAttribute("crypto", l.key.attribute()))
		}
		md.Attributes = append(md.Attributes, sdp.NewAttribute("ssrc", fmt.Sprintf("%d cname:%s", l.ssrc, l.cname)))
		sd.MediaDescriptions = append(sd.MediaDescriptions, md)
	}
	text, err := sd.Marshal()
	if err != nil {
		return "" // every field above is well-formed
	}
	return string(text)
}
