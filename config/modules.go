package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Modules holds the module settings the server uses, read from
// "kurento.<Class>" files with KMS defaults, plus every file loaded raw.
type Modules struct {
	MediaElement     MediaElement
	BaseRtpEndpoint  BaseRtpEndpoint
	SdpEndpoint      SdpEndpoint
	UriEndpoint      UriEndpoint
	WebRtcEndpoint   WebRtcEndpoint
	PlayerEndpoint   PlayerEndpoint
	RecorderEndpoint RecorderEndpoint
	HttpEndpoint     HttpEndpoint
	Composite        Composite

	// Raw has every loaded module file keyed "<sub>.<Name>" (for example
	// "kurento.WebRtcEndpoint"), KMS_* overrides included: strings from .ini
	// files and the environment, decoded JSON values from .json files. It
	// serves modules that have no typed settings here.
	Raw map[string]map[string]any
}

// MediaElement settings, in bits per second.
type MediaElement struct {
	EncoderBitrate    int
	MinEncoderBitrate int
	MaxEncoderBitrate int // 0 = unlimited
	// MaxVideoWidth x MaxVideoHeight (maxVideoResolution, KMS_MAX_VIDEO_RESOLUTION) bounds the
	// pictures received video may announce, in either orientation; larger ones are dropped.
	MaxVideoWidth, MaxVideoHeight int
}

// BaseRtpEndpoint settings (RtpEndpoint and WebRtcEndpoint).
type BaseRtpEndpoint struct {
	MinPort int
	MaxPort int
	MTU     int // largest RTP packet, bytes
}

// SdpEndpoint settings. Codecs are "<encoding>/<clock rate>[/<channels>]",
// in order of preference.
type SdpEndpoint struct {
	NumAudioMedias int
	NumVideoMedias int
	AudioCodecs    []string
	VideoCodecs    []string
}

// UriEndpoint settings.
type UriEndpoint struct {
	DefaultPath string // prefix for schemeless Player/Recorder URIs
}

// WebRtcEndpoint settings. Invalid (zero) addresses mean unset.
type WebRtcEndpoint struct {
	NetworkInterfaces   []string // nil = all
	StunServerAddress   netip.Addr
	StunServerPort      int
	TURN                *TURNServer // nil = none
	ExternalIPv4        netip.Addr
	ExternalIPv6        netip.Addr
	IceTCP              bool
	PemCertificateRSA   string // absolute path; "" = self-signed
	PemCertificateECDSA string
	QosDSCP             string // DSCPValue name; "" = unset
	EnableH265          bool
	// UDPMux shares one UDP port (per interface address) among all endpoints; false gives every
	// endpoint ports of its own, as KMS does (udpMux, KMS_WEBRTC_UDP_MUX, --webrtc-udp-mux).
	UDPMux bool
	// DirectSRTP sends RTP on the shared UDP port with an SRTP context of the endpoint's own rather
	// than pion's write path, where it can (directSrtp, KMS_WEBRTC_DIRECT_SRTP,
	// --webrtc-direct-srtp); false keeps pion's path for every packet.
	DirectSRTP bool
}

// TURNServer is a parsed turnURL.
type TURNServer struct {
	Username  string
	Password  string
	Addr      netip.AddrPort
	Transport string // udp, tcp or tls
}

// PlayerEndpoint settings.
type PlayerEndpoint struct {
	RtspClientPortRange PortRange // zero = any port
}

// PortRange is an inclusive UDP port range.
type PortRange struct{ Min, Max int }

// RecorderEndpoint settings.
type RecorderEndpoint struct {
	GapsFix string // NONE, GENPTS or FILL_IF_TRANSCODING
}

// Composite settings: the size and rate of the mixed video.
type Composite struct {
	Width, Height, Framerate int
}

// HttpEndpoint settings of the embedded HTTP server.
type HttpEndpoint struct {
	ServerAddress    string // "" = any
	AnnouncedAddress string // "" = auto-detect
	Port             int
}

// MTU bounds: 576 is the smallest datagram every IPv4 host must accept and
// 9000 the usual jumbo frame; anything outside is a typo, not a tuning.
const (
	minMTU = 576
	maxMTU = 9000
)

var dscpValues = []string{"NO_DSCP", "NO_VALUE", "AUDIO_VERYLOW", "AUDIO_LOW", "AUDIO_MEDIUM",
	"AUDIO_HIGH", "VIDEO_VERYLOW", "VIDEO_LOW", "VIDEO_MEDIUM", "VIDEO_MEDIUM_THROUGHPUT",
	"VIDEO_HIGH", "VIDEO_HIGH_THROUGHPUT", "DATA_VERYLOW", "DATA_LOW", "DATA_MEDIUM", "DATA_HIGH",
	"CHROME_HIGH", "CHROME_MEDIUM", "CHROME_LOW", "CHROME_VERYLOW", "CS0", "CS1", "CS2", "CS3",
	"CS4", "CS5", "CS6", "CS7", "AF11", "AF12", "AF13", "AF21", "AF22", "AF23", "AF31", "AF32",
	"AF33", "AF41", "AF42", "AF43", "EF", "VOICEADMIT", "LE"}

func defaultModules() Modules {
	return Modules{
		MediaElement:    MediaElement{EncoderBitrate: 300000, MaxVideoWidth: 3840, MaxVideoHeight: 2160},
		BaseRtpEndpoint: BaseRtpEndpoint{MinPort: 1024, MaxPort: 65535, MTU: 1200},
		SdpEndpoint: SdpEndpoint{
			NumAudioMedias: 1,
			NumVideoMedias: 1,
			AudioCodecs:    []string{"opus/48000/2", "PCMU/8000", "PCMA/8000", "AMR/8000"},
			VideoCodecs:    []string{"H265/90000", "AV1/90000", "VP9/90000", "VP8/90000", "H264/90000"},
		},
		UriEndpoint:      UriEndpoint{DefaultPath: "file:///var/lib/kurento/"},
		WebRtcEndpoint:   WebRtcEndpoint{StunServerPort: 3478, IceTCP: true, UDPMux: true, DirectSRTP: true},
		RecorderEndpoint: RecorderEndpoint{GapsFix: "NONE"},
		HttpEndpoint:     HttpEndpoint{Port: 9091},
		Composite:        Composite{Width: 800, Height: 600, Framerate: 15},
	}
}

// module is one "<sub>.<Name>" entry: key -> value with its origin.
type module map[string]setting

type moduleSet map[string]module

func (s moduleSet) set(name, key string, v setting) {
	if s[name] == nil {
		s[name] = module{}
	}
	s[name][key] = v
}

// loadModuleDirs reads every <dir>/<sub...>/<Name>.conf.{ini,json}. Later
// files override earlier ones key by key. As in KMS, a file that does not
// parse is skipped with a warning rather than stopping the server.
func loadModuleDirs(dirs []string, warnings *[]string) moduleSet {
	set := moduleSet{}
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			*warnings = append(*warnings, fmt.Sprintf("module config dir %s not usable, skipped", dir))
			continue
		}
		loadModuleDir(set, dir, "", warnings)
	}
	return set
}

func loadModuleDir(set moduleSet, dir, prefix string, warnings *[]string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		*warnings = append(*warnings, err.Error())
		return
	}
	for _, e := range entries {
		// Hidden entries include Kubernetes' ..data mirrors of ConfigMaps.
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		fi, err := os.Stat(path) // follows symlinks: mounted files often are
		if err != nil {
			*warnings = append(*warnings, err.Error())
			continue
		}
		if fi.IsDir() {
			if e.Type()&os.ModeSymlink == 0 { // no loops through linked dirs
				loadModuleDir(set, path, prefix+e.Name()+".", warnings)
			}
			continue
		}
		name, ext, ok := moduleFileName(e.Name())
		if !ok {
			continue
		}
		values, err := readModuleFile(path, ext)
		if err != nil {
			*warnings = append(*warnings, fmt.Sprintf("module config %s ignored: %v", path, err))
			continue
		}
		for k, v := range values {
			set.set(prefix+name, k, setting{v: v, src: path, dir: dir})
		}
	}
}

// moduleFileName splits "Name.conf.ext".
func moduleFileName(file string) (name, ext string, ok bool) {
	name, ext, ok = strings.Cut(file, ".conf.")
	return name, ext, ok && name != "" && (ext == "ini" || ext == "json")
}

func readModuleFile(path, ext string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if ext == "json" {
		return decodeObject(path, data)
	}
	return parseINI(string(data))
}

// decode turns the loaded settings into the typed fields, validating them.
func (m *Modules) decode(set moduleSet) error {
	m.Raw = map[string]map[string]any{}
	for name, mod := range set {
		raw := map[string]any{}
		for k, s := range mod {
			raw[k] = s.v
		}
		m.Raw[name] = raw
	}
	class := func(name string) lookup {
		mod := set["kurento."+name]
		return func(key string) (setting, bool) {
			s, ok := mod[key]
			return s, ok
		}
	}
	var ck checker

	get := class("MediaElement")
	me := &m.MediaElement
	ck.intMin(get, "encoderBitrate", 1, &me.EncoderBitrate)
	ck.intMin(get, "minEncoderBitrate", 0, &me.MinEncoderBitrate)
	ck.intMin(get, "maxEncoderBitrate", 0, &me.MaxEncoderBitrate)
	if me.MaxEncoderBitrate > 0 && me.MinEncoderBitrate > me.MaxEncoderBitrate {
		ck.order(get, "minEncoderBitrate", "maxEncoderBitrate")
	}
	ck.resolution(get, "maxVideoResolution", &me.MaxVideoWidth, &me.MaxVideoHeight)

	get = class("BaseRtpEndpoint")
	rtp := &m.BaseRtpEndpoint
	ck.intRange(get, "minPort", 0, 65535, &rtp.MinPort)
	ck.intRange(get, "maxPort", 0, 65535, &rtp.MaxPort)
	ck.intRange(get, "mtu", minMTU, maxMTU, &rtp.MTU)
	if rtp.MinPort > rtp.MaxPort {
		ck.order(get, "minPort", "maxPort")
	}

	get = class("SdpEndpoint")
	sdp := &m.SdpEndpoint
	ck.intMin(get, "numAudioMedias", 0, &sdp.NumAudioMedias)
	ck.intMin(get, "numVideoMedias", 0, &sdp.NumVideoMedias)
	ck.codecs(get, "audioCodecs", &sdp.AudioCodecs)
	ck.codecs(get, "videoCodecs", &sdp.VideoCodecs)

	ck.str(class("UriEndpoint"), "defaultPath", &m.UriEndpoint.DefaultPath)

	m.WebRtcEndpoint.decode(&ck, class("WebRtcEndpoint"))

	get = class("PlayerEndpoint")
	if s, ok := get("rtspClientPortRange"); ok {
		r, ok := parsePortRange(s.v)
		if !ok {
			ck.bad(s, "rtspClientPortRange", "min-max with 1 <= min <= max <= 65535")
		}
		m.PlayerEndpoint.RtspClientPortRange = r
	}

	ck.oneOf(class("RecorderEndpoint"), "gapsFix", []string{"NONE", "GENPTS", "FILL_IF_TRANSCODING"},
		&m.RecorderEndpoint.GapsFix)

	get = class("Composite")
	comp := &m.Composite
	ck.intRange(get, "width", 16, 7680, &comp.Width)
	ck.intRange(get, "height", 16, 4320, &comp.Height)
	ck.intRange(get, "framerate", 1, 120, &comp.Framerate)

	get = class("HttpEndpoint")
	http := &m.HttpEndpoint
	ck.str(get, "serverAddress", &http.ServerAddress)
	ck.str(get, "announcedAddress", &http.AnnouncedAddress)
	// KMS code reads serverPort while its shipped file says port; accept
	// both so either spelling works, serverPort winning.
	ck.intRange(get, "port", 1, 65535, &http.Port)
	ck.intRange(get, "serverPort", 1, 65535, &http.Port)
	return errors.Join(ck.errs...)
}

func (w *WebRtcEndpoint) decode(ck *checker, get lookup) {
	var s string
	if ck.str(get, "networkInterfaces", &s); s != "" {
		for _, n := range strings.Split(s, ",") {
			if n = strings.TrimSpace(n); n != "" {
				w.NetworkInterfaces = append(w.NetworkInterfaces, n)
			}
		}
	}
	ck.addr(get, "stunServerAddress", func(netip.Addr) bool { return true }, "an IP address", &w.StunServerAddress)
	ck.intRange(get, "stunServerPort", 1, 65535, &w.StunServerPort)
	if s, ok := get("turnURL"); ok {
		if str, _ := asString(s.v); str != "" {
			t, err := parseTURN(str)
			if err != nil {
				ck.bad(s, "turnURL", "user:password@ip:port[?transport=udp|tcp|tls] ("+err.Error()+")")
			}
			w.TURN = t
		}
	}
	ck.addr(get, "externalIPv4", netip.Addr.Is4, "an IPv4 address", &w.ExternalIPv4)
	ck.addr(get, "externalIPv6", func(a netip.Addr) bool { return a.Is6() && !a.Is4In6() },
		"an IPv6 address", &w.ExternalIPv6)
	// iceTcp is a boolean stored as an int in KMS: only 0 and 1 are valid.
	tcp := 0
	if w.IceTCP {
		tcp = 1
	}
	ck.intRange(get, "iceTcp", 0, 1, &tcp)
	w.IceTCP = tcp == 1
	w.PemCertificateRSA = ck.path(get, "pemCertificateRSA")
	w.PemCertificateECDSA = ck.path(get, "pemCertificateECDSA")
	ck.oneOf(get, "qos-dscp", dscpValues, &w.QosDSCP)
	ck.boolean(get, "enable-h265", &w.EnableH265)
	ck.boolean(get, "udpMux", &w.UDPMux)
	ck.boolean(get, "directSrtp", &w.DirectSRTP)
}

// order reports lo > hi, naming where each came from.
// resolution reads "WIDTHxHEIGHT", each side 16 to 16383 (the largest a VP8 header can state).
func (c *checker) resolution(get lookup, key string, w, h *int) {
	s, ok := get(key)
	if !ok {
		return
	}
	str, _ := asString(s.v)
	ws, hs, _ := strings.Cut(strings.TrimSpace(str), "x")
	width, err1 := strconv.Atoi(ws)
	height, err2 := strconv.Atoi(hs)
	if err1 != nil || err2 != nil || width < 16 || height < 16 || width > 16383 || height > 16383 {
		c.bad(s, key, "WIDTHxHEIGHT with each side from 16 to 16383")
		return
	}
	*w, *h = width, height
}

func (c *checker) order(get lookup, lo, hi string) {
	l, _ := get(lo)
	h, _ := get(hi)
	src := l.src
	if src == "" {
		src = h.src
	} else if h.src != "" && h.src != l.src {
		src += " and " + h.src
	}
	c.errs = append(c.errs, fmt.Errorf("%s: %s must not be greater than %s", src, lo, hi))
}

// addr stores an IP literal accepted by ok; KMS does no DNS lookups here.
func (c *checker) addr(get lookup, key string, ok func(netip.Addr) bool, want string, dst *netip.Addr) {
	s, found := get(key)
	if !found {
		return
	}
	str, _ := asString(s.v)
	if str = strings.TrimSpace(str); str == "" {
		return // "key=" in an ini file leaves it unset
	}
	a, err := netip.ParseAddr(str)
	if err != nil || !ok(a) {
		c.bad(s, key, want)
		return
	}
	*dst = a
}

// path returns a file path setting made absolute against its file's dir.
func (c *checker) path(get lookup, key string) string {
	var p string
	c.str(get, key, &p)
	s, _ := get(key)
	return resolve(s.dir, strings.TrimSpace(p))
}

// codecs reads a JSON array of {"name": "enc/rate[/channels]"}.
func (c *checker) codecs(get lookup, key string, dst *[]string) {
	s, ok := get(key)
	if !ok {
		return
	}
	list, ok := s.v.([]any)
	if !ok {
		c.bad(s, key, `a list of {"name": "<encoding>/<rate>[/<channels>]"}`)
		return
	}
	var names []string
	for _, item := range list {
		obj, _ := item.(map[string]any)
		name, _ := asString(obj["name"])
		if !validCodec(name) {
			c.bad(setting{v: item, src: s.src}, key, `{"name": "<encoding>/<rate>[/<channels>]"} entries`)
			return
		}
		names = append(names, name)
	}
	*dst = names
}

func validCodec(name string) bool {
	parts := strings.Split(name, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return false
	}
	for _, p := range parts[1:] {
		if n, ok := asInt(p); !ok || n <= 0 {
			return false
		}
	}
	return true
}

func parsePortRange(v any) (PortRange, bool) {
	s, _ := asString(v)
	a, b, ok := strings.Cut(s, "-")
	lo, ok1 := asInt(a)
	hi, ok2 := asInt(b)
	if !ok || !ok1 || !ok2 || lo < 1 || lo > hi || hi > 65535 {
		return PortRange{}, false
	}
	return PortRange{lo, hi}, true
}

// parseTURN parses user:password@ip:port[?transport=udp|tcp|tls]. The user
// may contain ':' and the password '@' (the last '@' starts the address);
// IPv6 addresses need brackets.
func parseTURN(s string) (*TURNServer, error) {
	rest, query, hasQuery := strings.Cut(strings.TrimSpace(s), "?")
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return nil, errors.New("missing user:password@")
	}
	// KMS's pattern is greedy: the user runs to the last ':', so REST-API users ("expiry:name")
	// work and the password has no ':'.
	colon := strings.LastIndex(rest[:at], ":")
	user, pass := rest[:max(colon, 0)], rest[colon+1:at]
	if colon < 0 || user == "" || pass == "" {
		return nil, errors.New("missing user or password")
	}
	ap, err := netip.ParseAddrPort(rest[at+1:])
	if err != nil || ap.Port() == 0 {
		return nil, errors.New("address must be ip:port with an IP literal")
	}
	t := &TURNServer{Username: user, Password: pass, Addr: ap, Transport: "udp"}
	if hasQuery {
		v, ok := strings.CutPrefix(query, "transport=")
		if !ok || (v != "udp" && v != "tcp" && v != "tls") {
			return nil, errors.New("transport must be udp, tcp or tls")
		}
		t.Transport = v
	}
	return t, nil
}
