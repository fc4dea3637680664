// Package rtp is the RtpEndpoint's media side: plain RTP/RTCP (RTP/AVP, RTP/AVPF) and SDES-keyed
// SRTP (RTP/SAVP, RTP/SAVPF) negotiated by SDP offer/answer, on UDP sockets of the configured port
// range. Received media goes to the element's source pads as it is; what the graph sends to the
// element goes to the peer through its media.Sender pads. It knows nothing about JSON: it reports
// typed events through its media.Element.
package rtp

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/internal/netif"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/rtpengine"
)

// Settings are what an endpoint needs to negotiate: the module configuration merged with the
// element's constructor parameters and properties at the time of negotiation.
type Settings struct {
	MinPort, MaxPort int
	AudioCodecs      []string // "opus/48000/2", ...; nil: every supported codec
	VideoCodecs      []string
	UseIPv6          bool
	Address          netip.Addr // the address written in our SDP; invalid: the host's first address
	// Interfaces (networkInterfaces) limit the address to these NICs', and the sockets are then
	// bound to it instead of the wildcard address. Empty: any interface.
	Interfaces []string
	Crypto     *Crypto // nil: plain RTP
	// Receive limits in kbps, 0 for none: b=AS in the SDP, and the bounds of the REMB sent for
	// video when the peer negotiated goog-remb.
	MaxAudioRecvBandwidth int
	MaxVideoRecvBandwidth int
	MinVideoRecvBandwidth int
	// Send bounds in kbps, 0 for none: what our video sender asks its source for, whatever the
	// peer's REMB says.
	MinVideoSendBandwidth int
	MaxVideoSendBandwidth int
	// Remb drives the REMB estimate sent to the peer and rembOnConnect of our sender.
	Remb rtpengine.RembParams
	// MTU is the largest RTP packet sent to the peer; 0: no limit.
	MTU int
}

// DecryptFailed reports SRTP/SRTCP packets from the peer that could not be authenticated or
// decrypted (a wrong key, most often). It is raised on the first failure, then at most every 5 s.
type DecryptFailed struct {
	Type     media.Type
	Failures uint64 // since negotiation
	Reason   string
}

// KeySoftLimitReached reports that our SRTP master key of a stream nears its usage limit.
type KeySoftLimitReached struct{ Type media.Type }

// MediaTimeout is how long a peer may stay silent (no RTP, no RTCP) before the media state goes
// back to DISCONNECTED.
var MediaTimeout = 5 * time.Second

type negotiation int

const (
	notNegotiated negotiation = iota
	offerGenerated
	negotiated
)

// Endpoint is the media side of an RtpEndpoint.
type Endpoint struct {
	el      *media.Element
	log     *slog.Logger
	senders map[media.Type]*media.Sender

	mu        sync.Mutex
	state     negotiation
	settings  Settings
	addr      netip.Addr
	key       *sdesKey
	sessionID uint64
	lines     []*localMedia
	streams   []*stream
	local     string
	remote    string
	closed    bool
	stop      chan struct{}
	wg        sync.WaitGroup

	lastActivity   atomic.Int64
	mediaMu        sync.Mutex
	mediaConnected bool
}

// New makes the endpoint of a graph element. Nothing is bound on the network until negotiation.
func New(el *media.Element, log *slog.Logger) *Endpoint {
	e := &Endpoint{el: el, log: log, senders: map[media.Type]*media.Sender{}, stop: make(chan struct{})}
	for _, t := range []media.Type{media.Audio, media.Video} {
		e.senders[t] = el.NewSender(t, media.DefaultPad)
	}
	el.SetInputs(e)
	return e
}

// Input implements media.Inputs: the audio and video the endpoint sends to its peer.
func (e *Endpoint) Input(t media.Type, pad string) media.Input {
	if pad != media.DefaultPad {
		return nil
	}
	if s, ok := e.senders[t]; ok {
		return s
	}
	return nil
}

// Sender is the sink pad of a media type, for stats.
func (e *Endpoint) Sender(t media.Type) *media.Sender { return e.senders[t] }

// prepare fixes the settings, the address and the key at the first negotiation; the caller holds e.mu.
func (e *Endpoint) prepare(s Settings, code int) error {
	if e.closed {
		return kerr.New(code, "Endpoint released")
	}
	e.settings = s
	e.addr = s.Address
	if !e.addr.IsValid() {
		e.addr = localAddress(s.UseIPv6, s.Interfaces)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	e.sessionID = binary.BigEndian.Uint64(b[:]) >> 2
	if s.Crypto != nil {
		k, err := newKey(s.Crypto)
		if err != nil {
			return kerr.New(code, "SDES: %v", err)
		}
		e.key = k
	}
	return nil
}

func randomSSRC() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func randomCNAME() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "kms-" + hex.EncodeToString(b[:])
}

func (e *Endpoint) proto() string {
	if e.key != nil {
		return "RTP/SAVPF"
	}
	return "RTP/AVPF"
}

// GenerateOffer makes the local offer: one m-line per media type asked for, RTP/AVPF (RTP/SAVPF
// with SDES), RTP on an even port and RTCP on the next one.
func (e *Endpoint) GenerateOffer(audio, video bool, s Settings) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != notNegotiated {
		return "", kerr.New(kerr.SdpAlreadyNegotiated, "Endpoint already negotiated")
	}
	if err := e.prepare(s, kerr.SdpGenerateOfferError); err != nil {
		return "", err
	}
	var lines []*localMedia
	for _, t := range []media.Type{media.Audio, media.Video} {
		if (t == media.Audio && !audio) || (t == media.Video && !video) {
			continue
		}
		configured := s.AudioCodecs
		if t == media.Video {
			configured = s.VideoCodecs
		}
		codecs := offerCodecs(t, configured, e.sourceMime(t))
		if len(codecs) == 0 {
			continue
		}
		l := &localMedia{name: strings.ToLower(t.String()), kind: t, proto: e.proto(), dir: "sendrecv",
			codecs: codecs, ssrc: randomSSRC(), cname: randomCNAME(), mid: strings.ToLower(t.String()) + "0"}
		if t == media.Video {
			l.fb = ours
			l.bwAS = s.MaxVideoRecvBandwidth
		} else {
			l.bwAS = s.MaxAudioRecvBandwidth
		}
		if e.key != nil {
			k := *e.key
			l.key = &k
		}
		if err := l.listen(s, e.bindAddress()); err != nil {
			closeLines(lines)
			return "", kerr.New(kerr.SdpGenerateOfferError, "Cannot bind the %s sockets: %v (BaseRtpEndpoint minPort..maxPort)", l.name, err)
		}
		lines = append(lines, l)
	}
	if len(lines) == 0 {
		return "", kerr.New(kerr.SdpGenerateOfferError, "Nothing to offer: no media type asked for has a configured codec")
	}
	e.lines = lines
	e.local = buildSDP(lines, e.addr, e.sessionID, 0)
	e.state = offerGenerated
	return e.local, nil
}

// sourceMime is the codec of what is connected to the sink pad of a type, "" when unknown.
func (e *Endpoint) sourceMime(t media.Type) string {
	if src := e.senders[t].Source(); src != nil && src.Codec() != nil {
		return src.Codec().MimeType
	}
	return ""
}

// bindAddress is where the sockets listen: the advertised address when interfaces are
// configured (a peer must not reach the endpoint through any other NIC), else the wildcard.
func (e *Endpoint) bindAddress() netip.Addr {
	if len(e.settings.Interfaces) == 0 {
		return netip.Addr{}
	}
	return e.addr
}

// listen binds the line's sockets on ip and records their ports.
func (l *localMedia) listen(s Settings, ip netip.Addr) error {
	a, b, err := listen(ip, s.MinPort, s.MaxPort, l.mux)
	if err != nil {
		return err
	}
	l.rtpConn, l.rtcpConn = a, b
	l.port, l.rtcpPort = localPort(a), localPort(b)
	if l.mux {
		l.rtcpPort = l.port
	}
	return nil
}

func (l *localMedia) closeSockets() {
	if l.rtpConn != nil {
		l.rtpConn.Close()
	}
	if l.rtcpConn != nil {
		l.rtcpConn.Close()
	}
}

func closeLines(lines []*localMedia) {
	for _, l := range lines {
		l.closeSockets()
	}
}

// ProcessOffer answers a remote offer. Every parseable SDP gets an answer: m-lines the endpoint
// cannot take (other media, other transports, no common codec, no usable key) are rejected with port 0.
func (e *Endpoint) ProcessOffer(offer string, s Settings) (string, error) {
	_, remote, err := parseSDP(offer)
	if err != nil {
		return "", kerr.New(kerr.SdpParseError, "Invalid SDP offer: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != notNegotiated {
		return "", kerr.New(kerr.SdpAlreadyNegotiated, "Endpoint already negotiated")
	}
	if err := e.prepare(s, kerr.SdpProcessOfferError); err != nil {
		return "", err
	}
	used := map[media.Type]bool{}
	lines := make([]*localMedia, len(remote))
	keys := make([]*sdesKey, len(remote))
	for i, r := range remote {
		l := &localMedia{name: r.name, kind: r.kind, proto: r.proto, formats: r.formats, mid: r.mid}
		lines[i] = l
		codecs, key, why := e.acceptable(r, used)
		if why != "" {
			e.log.Debug("m-line rejected", "index", i, "media", r.name, "reason", why)
			l.rejected = true
			if len(l.formats) > 1 {
				l.formats = l.formats[:1]
			}
			continue
		}
		used[r.kind] = true
		keys[i] = key
		l.codecs, l.dir, l.mux = codecs, reverse(r.dir), r.mux
		l.ssrc, l.cname = randomSSRC(), randomCNAME()
		if r.kind == media.Video && r.avpf() {
			var offered feedback
			for _, c := range codecs {
				offered = offered.or(r.fb[c.pt])
			}
			l.fb = offered.and(ours)
			l.bwAS = s.MaxVideoRecvBandwidth
		} else if r.kind == media.Audio {
			l.bwAS = s.MaxAudioRecvBandwidth
		}
		if key != nil {
			k := *e.key
			k.tag = key.tag
			l.key = &k
		}
		if err := l.listen(s, e.bindAddress()); err != nil {
			closeLines(lines)
			return "", kerr.New(kerr.SdpProcessOfferError, "Cannot bind the %s sockets: %v (BaseRtpEndpoint minPort..maxPort)", l.name, err)
		}
	}
	answer := buildSDP(lines, e.addr, e.sessionID, 0)
	for i, l := range lines {
		if l.rejected {
			continue
		}
		if err := e.startStream(l, remote[i], keys[i], l.codecs); err != nil {
			e.stopStreamsLocked()
			closeLines(lines)
			return "", kerr.New(kerr.SdpProcessOfferError, "Cannot start the %s stream: %v", l.name, err)
		}
	}
	e.lines, e.local, e.remote = lines, answer, offer
	e.negotiatedLocked()
	return answer, nil
}

// acceptable tells whether an offered m-line can be answered, with the codecs (offerer's payload
// types and order) and the offerer's key to use; else why not.
func (e *Endpoint) acceptable(r *remoteMedia, used map[media.Type]bool) ([]codec, *sdesKey, string) {
	switch {
	case r.kind == media.Data:
		return nil, nil, "not audio or video"
	case r.port == 0:
		return nil, nil, "disabled by the offerer"
	case used[r.kind]:
		return nil, nil, "one m-line per media type"
	case !rtpProto(r.proto):
		return nil, nil, "transport " + r.proto
	case r.srtp() && e.key == nil:
		return nil, nil, "SRTP offered but the endpoint has no crypto configured"
	case !r.srtp() && e.key != nil:
		return nil, nil, "plain RTP offered but the endpoint requires SRTP"
	}
	var key *sdesKey
	if e.key != nil {
		for i := range r.keys {
			if r.keys[i].suite.kurento == e.key.suite.kurento {
				key = &r.keys[i]
				break
			}
		}
		if key == nil {
			return nil, nil, "no a=crypto line with suite " + e.key.suite.sdp
		}
	}
	var codecs []codec
	for _, c := range r.codecs {
		if supported(r.kind, c) {
			codecs = append(codecs, c)
		}
	}
	if len(codecs) == 0 {
		return nil, nil, "no supported codec"
	}
	return codecs, key, ""
}

// ProcessAnswer completes a negotiation started by GenerateOffer and returns the local description.
func (e *Endpoint) ProcessAnswer(answer string) (string, error) {
	_, remote, err := parseSDP(answer)
	if err != nil {
		return "", kerr.New(kerr.SdpParseError, "Invalid SDP answer: %v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return "", kerr.New(kerr.SdpProcessAnswerError, "Endpoint released")
	case e.state == notNegotiated:
		return "", kerr.New(kerr.SdpNotOfferGenerated, "No offer was generated before processing the answer")
	case e.state == negotiated:
		return "", kerr.New(kerr.SdpAnswerAlreadyProcessed, "An answer was already processed")
	}
	for i, l := range e.lines {
		var r *remoteMedia
		if i < len(remote) {
			r = remote[i]
		}
		codecs, key, why := answered(l, r)
		if why != "" {
			e.log.Debug("m-line not accepted by the answer", "index", i, "media", l.name, "reason", why)
			l.closeSockets()
			continue
		}
		if r.kind == media.Video && r.avpf() {
			var answeredFB feedback
			for _, c := range codecs {
				answeredFB = answeredFB.or(r.fb[c.pt])
			}
			l.fb = l.fb.and(answeredFB)
		} else {
			l.fb = feedback{}
		}
		l.dir = reverse(r.dir)
		if err := e.startStream(l, r, key, codecs); err != nil {
			e.stopStreamsLocked()
			return "", kerr.New(kerr.SdpProcessAnswerError, "Cannot start the %s stream: %v", l.name, err)
		}
	}
	e.remote = answer
	e.negotiatedLocked()
	return e.local, nil
}

// answered checks an m-line of the answer against ours: the codecs of ours it kept (with its
// payload types) and its key.
func answered(l *localMedia, r *remoteMedia) ([]codec, *sdesKey, string) {
	switch {
	case r == nil:
		return nil, nil, "missing from the answer"
	case r.port == 0:
		return nil, nil, "rejected"
	case r.name != l.name:
		return nil, nil, "media " + r.name + " answers " + l.name
	case !rtpProto(r.proto) || r.srtp() != (l.key != nil):
		return nil, nil, "transport " + r.proto + " answers " + l.proto
	}
	var key *sdesKey
	if l.key != nil {
		for i := range r.keys {
			if r.keys[i].suite.kurento == l.key.suite.kurento {
				key = &r.keys[i]
				break
			}
		}
		if key == nil {
			return nil, nil, "no a=crypto line with suite " + l.key.suite.sdp
		}
	}
	var codecs []codec
	for _, c := range r.codecs {
		if contains(l.codecs, c) {
			codecs = append(codecs, c)
		}
	}
	if len(codecs) == 0 {
		return nil, nil, "no codec in common"
	}
	return codecs, key, ""
}

// hostAddresses lists this machine's addresses; a variable so that the fuzz targets list them once
// instead of once per input (a test-only hook).
var hostAddresses = netif.Addresses

// startStream connects a negotiated m-line to the network and the graph; the caller holds e.mu.
func (e *Endpoint) startStream(l *localMedia, r *remoteMedia, remoteKey *sdesKey, codecs []codec) error {
	st := &stream{
		ep: e, kind: l.kind, rtpConn: l.rtpConn, rtcpConn: l.rtcpConn, mux: r.mux,
		localSSRC: l.ssrc, cname: l.cname, fb: l.fb,
		send:   l.dir == "sendrecv" || l.dir == "sendonly",
		recv:   l.dir == "sendrecv" || l.dir == "recvonly",
		outBuf: make([]byte, maxPacket+100),
		encBuf: make([]byte, 0, maxPacket+200),
	}
	if r.addr.IsValid() && r.port > 0 {
		rtpAddr := netip.AddrPortFrom(r.addr, uint16(r.port))
		st.remoteRTP.Store(&rtpAddr)
		rtcpAddr := rtpAddr
		if !r.mux {
			port := r.rtcpPort
			if port == 0 {
				port = r.port + 1
			}
			rtcpAddr = netip.AddrPortFrom(r.rtcpAddr, uint16(port))
		}
		st.remoteRTCP.Store(&rtcpAddr)
	}
	st.latch = r.comedia || !r.addr.IsValid()
	if r.addr.IsLoopback() {
		st.hostAddrs = hostAddresses(nil)
	}
	if l.key != nil {
		var err error
		if st.out, err = l.key.context(); err != nil {
			return fmt.Errorf("SRTP: %w", err)
		}
		if st.inRTP, err = remoteKey.context(); err != nil {
			return fmt.Errorf("SRTP: %w", err)
		}
		if st.inRTCP, err = remoteKey.context(); err != nil {
			return fmt.Errorf("SRTP: %w", err)
		}
	}
	for _, c := range codecs {
		st.recvCodecs[c.pt&0x7f] = c.media(l.kind)
	}
	st.rx = rtpengine.NewReceiver(codecs[0].rate)
	st.sent = rtpengine.NewOutbound(st.localSSRC, codecs[0].rate)
	if st.recv {
		st.src = e.el.Source(l.kind, media.DefaultPad)
		st.src.SetCodec(st.recvCodecs[codecs[0].pt&0x7f])
		if l.kind == media.Video {
			st.src.SetKeyframeRequester(st.keyframeRequester())
			// Its sinks' peers (WebRTC viewers, other RTP peers) get their NACKs answered from it.
			st.src.EnableCache()
			if st.fb.remb {
				s := e.settings
				st.remb = rtpengine.NewRembTarget(s.Remb, s.MinVideoRecvBandwidth, s.MaxVideoRecvBandwidth)
			}
		}
	}
	if st.send {
		st.sender = e.senders[l.kind]
		chosen := codecs[0]
		if want := e.sourceMime(l.kind); want != "" {
			for _, c := range codecs {
				if strings.EqualFold(c.mime(l.kind), want) {
					chosen = c
					break
				}
			}
		}
		st.sent = rtpengine.NewOutbound(st.localSSRC, chosen.rate)
		st.sent.LimitRetransmissions() // the peer's NACKs are not authenticated: no amplifier
		st.sender.SetMTU(e.settings.MTU)
		if l.kind == media.Video {
			st.sender.SetSendBandwidth(uint64(e.settings.MinVideoSendBandwidth)*1000, uint64(e.settings.MaxVideoSendBandwidth)*1000)
			st.sender.SetRembOnConnect(uint64(e.settings.Remb.RembOnConnect))
		}
		st.sender.Bind(st.localSSRC, chosen.pt, *chosen.media(l.kind), st.writeRTP)
	}
	e.streams = append(e.streams, st)
	e.wg.Add(1)
	go st.readLoop(st.rtpConn, false)
	if st.rtcpConn != nil {
		e.wg.Add(1)
		go st.readLoop(st.rtcpConn, true)
	}
	return nil
}

// stopStreamsLocked undoes the streams of a failed negotiation; the caller holds e.mu.
func (e *Endpoint) stopStreamsLocked() {
	for _, st := range e.streams {
		st.close()
		if st.sender != nil {
			st.sender.Bind(0, 0, media.Codec{}, nil)
		}
	}
	e.streams = nil
}

// negotiatedLocked starts the RTCP reports and tells the application; the caller holds e.mu.
func (e *Endpoint) negotiatedLocked() {
	e.state = negotiated
	e.wg.Add(1)
	go e.reportLoop(e.streams)
	e.el.Emit(endpoints.MediaSessionStarted{})
	e.el.Emit(endpoints.ConnectionStateChanged{Old: "DISCONNECTED", New: "CONNECTED"})
}

// reportInterval is KMS's RTCP interval: reports, and the REMB estimate updated with them.
const reportInterval = 500 * time.Millisecond

// reportLoop sends RTCP reports and notices a silent peer.
func (e *Endpoint) reportLoop(streams []*stream) {
	defer e.wg.Done()
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	for {
		for _, st := range streams {
			st.report()
		}
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		last := e.lastActivity.Load()
		if last != 0 && time.Since(time.Unix(0, last)) > MediaTimeout {
			e.setMediaState(false)
		}
	}
}

// rtcpReceived records RTCP from the peer: the media session is up, or down on BYE.
func (e *Endpoint) rtcpReceived(bye bool) {
	e.lastActivity.Store(time.Now().UnixNano())
	e.setMediaState(!bye)
}

func (e *Endpoint) setMediaState(connected bool) {
	e.mediaMu.Lock()
	defer e.mediaMu.Unlock()
	if e.mediaConnected == connected {
		return
	}
	e.mediaConnected = connected
	old, next := "DISCONNECTED", "CONNECTED"
	if !connected {
		old, next = next, old
	}
	e.el.Emit(endpoints.MediaStateChanged{Old: old, New: next})
}

// LocalDescription is our SDP.
func (e *Endpoint) LocalDescription() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.local == "" {
		return "", kerr.New(kerr.SdpNoLocalSdp, "Local SDP not available")
	}
	return e.local, nil
}

// RemoteDescription is the SDP the peer sent.
func (e *Endpoint) RemoteDescription() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.remote == "" {
		return "", kerr.New(kerr.SdpNoRemoteSdp, "Remote SDP not available")
	}
	return e.remote, nil
}

// RequestKeyframe asks the source of what we send for a keyframe; false when the endpoint sends no video.
func (e *Endpoint) RequestKeyframe() bool {
	e.mu.Lock()
	sending := false
	for _, st := range e.streams {
		if st.kind == media.Video && st.send {
			sending = true
		}
	}
	e.mu.Unlock()
	if !sending {
		return false
	}
	e.senders[media.Video].RequestKeyframe()
	return true
}

// LocalPorts are the RTP ports of the negotiated or offered m-lines, for tests and stats.
func (e *Endpoint) LocalPorts() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for _, l := range e.lines {
		if !l.rejected {
			out = append(out, l.port)
		}
	}
	return out
}

// Close says BYE, closes the sockets and waits for the endpoint's goroutines.
func (e *Endpoint) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	close(e.stop)
	streams, lines, wasNegotiated := e.streams, e.lines, e.state == negotiated
	e.mu.Unlock()
	for _, st := range streams {
		st.bye()
	}
	closeLines(lines)
	e.wg.Wait()
	for _, st := range streams {
		if st.sender != nil {
			st.sender.Bind(0, 0, media.Codec{}, nil)
		}
	}
	if wasNegotiated {
		e.el.Emit(endpoints.MediaSessionTerminated{})
	}
}

var _ media.Inputs = (*Endpoint)(nil)

// conns lets localMedia carry its sockets between offer and answer.
type conns struct {
	rtpConn, rtcpConn *net.UDPConn
}
