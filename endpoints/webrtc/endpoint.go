package webrtc

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/rtpengine"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// CandidateFound reports a local ICE candidate, once the application asked for gathering.
type CandidateFound struct {
	Candidate     string
	SDPMid        string
	SDPMLineIndex int
}

// GatheringDone reports that every local candidate has been reported.
type GatheringDone struct{}

// IceStateChanged reports the state of the ICE component, as a Kurento IceComponentState name.
type IceStateChanged struct{ State string }

// CandidatePairSelected reports the pair ICE chose, as SDP candidate strings.
type CandidatePairSelected struct{ Local, Remote string }

// negotiation is where an endpoint stands in its one SDP exchange.
type negotiation int

const (
	notNegotiated negotiation = iota
	offerGenerated
	negotiated
)

// Endpoint is the media side of a WebRtcEndpoint.
type Endpoint struct {
	el  *media.Element
	log *slog.Logger

	mu              sync.Mutex
	settings        Settings
	pc              *webrtc.PeerConnection
	state           negotiation
	gatherRequested bool
	gatherDone      bool             // pion finished gathering
	found           []CandidateFound // candidates found before gatherCandidates was called
	held            []media.Event    // ICE events that happened before gatherCandidates was called
	iceReported     bool             // ICE events go out as they come (gathering requested or connected)
	lastICE         string           // the last ICE state reported or held
	lastPair        CandidatePairSelected
	remoteQueue     []webrtc.ICECandidateInit
	shape           *offerShape // how the remote offer was normalised for pion
	remoteOffer     string      // the offer as the peer sent it
	rejected        string      // the answer to an offer with nothing usable (no peer connection)
	senders         map[media.Type]*media.Sender
	tracks          map[media.Type]*localTrack
	incoming        []*incoming
	feeding         [2]bool // a track of the media type (by media.Audio, media.Video) feeds its source pad
	// fb starts when the peer connects, or with the first incoming track if that comes first (its
	// reader records TWCC arrivals from the start): before, there is nothing to report.
	fb *feedbackLoop
	// rtcpReaders are the senders whose RTCP is read from the moment the peer connects: before,
	// nothing can arrive, and an idle endpoint keeps no goroutine for them.
	rtcpReaders []rtcpReader
	data        dataState
	dtls        dtlsWatch
	dataSrc     atomic.Pointer[media.Source]
	connected   bool
	closed      bool
	sharedUfrag string // ICE username fragment on the shared UDP port, "" when not on it
	direct      *directSRTP
	wg          sync.WaitGroup
}

// New makes the endpoint for a graph element. Nothing is allocated on the network until negotiation.
func New(el *media.Element, log *slog.Logger) *Endpoint {
	e := &Endpoint{
		el:      el,
		log:     log,
		senders: map[media.Type]*media.Sender{},
		tracks:  map[media.Type]*localTrack{},
	}
	for _, t := range []media.Type{media.Audio, media.Video} {
		e.senders[t] = el.NewSender(t, media.DefaultPad)
		e.senders[t].SetLogger(log)
	}
	e.data.in.e = e
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
	if t == media.Data {
		return &e.data.in
	}
	return nil
}

// Sender is the sink pad of a media type, for stats and keyframe requests.
func (e *Endpoint) Sender(t media.Type) *media.Sender { return e.senders[t] }

// peerConnection creates the pion peer connection with the settings of the moment; the caller holds
// e.mu.
func (e *Endpoint) peerConnection(s Settings) error {
	if e.closed {
		return kerr.New(kerr.SdpCreateError, "Endpoint released")
	}
	se := webrtc.SettingEngine{LoggerFactory: newPionLogs(e.log)}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(s.IncludeLoopback)
	se.SetIPFilter(offerable)
	if s.MinPort != 0 || s.MaxPort != 0 {
		if err := se.SetEphemeralUDPPortRange(s.MinPort, s.MaxPort); err != nil {
			return kerr.New(kerr.SdpConfigurationError, "Invalid port range %d-%d: %v", s.MinPort, s.MaxPort, err)
		}
	}
	servers, err := s.iceServers()
	if err != nil {
		return kerr.New(kerr.SdpConfigurationError, "%v", err)
	}
	var network transport.Net
	if s.DSCP != 0 {
		if network, err = newDSCPNet(s.DSCP); err != nil {
			return kerr.New(kerr.SdpConfigurationError, "qosDscp: %v", err)
		}
	}
	if tlsAddrs := turnsOverTCP(servers); len(tlsAddrs) > 0 {
		if network, err = withTURNTLS(network, tlsAddrs); err != nil {
			return kerr.New(kerr.SdpConfigurationError, "turnUrl: %v", err)
		}
	}
	if network == nil {
		if network, err = sharedHostNet(); err != nil {
			return kerr.New(kerr.SdpCreateError, "Cannot list the network interfaces: %v", err)
		}
	}
	se.SetNet(network)
	if s.acceptAnyCertificate {
		se.DisableCertificateFingerprintVerification(true)
	}
	if s.ReceiveMTU > 0 {
		se.SetReceiveMTU(uint(max(s.ReceiveMTU, 1500)))
	}
	if s.UDPMux && s.DSCP == 0 {
		// Without the shared port (none free in the range) the endpoint opens sockets of its own.
		if mux, err := sharedUDPMux(s.MinPort, s.MaxPort, s.NetworkInterfaces, s.IncludeLoopback); err == nil {
			se.SetICEUDPMux(mux)
			var pwd string
			e.sharedUfrag, pwd = sharedCredentials()
			se.SetICECredentials(e.sharedUfrag, pwd)
		} else {
			e.log.Warn("shared UDP port unavailable", "err", err)
		}
	}
	e.direct = newDirectSRTP(&se, s.DirectSRTP && e.sharedUfrag != "", !s.peerDTLSServer)
	if s.IceTCP {
		// Without a free TCP port the endpoint still works over UDP.
		if mux, err := sharedTCPMux(s.MinPort, s.MaxPort, s.NetworkInterfaces); err == nil {
			se.SetICETCPMux(mux)
			se.SetNetworkTypes(allNetworks)
		} else {
			e.log.Warn("ICE-TCP unavailable", "err", err)
		}
	}
	if len(s.NetworkInterfaces) > 0 {
		names := s.NetworkInterfaces
		se.SetInterfaceFilter(func(name string) bool {
			for _, n := range names {
				if n == name {
					return true
				}
			}
			return false
		})
	}
	var external []string
	for _, ip := range []string{s.ExternalIPv4, s.ExternalIPv6} {
		if ip != "" {
			external = append(external, ip)
		}
	}
	if len(external) > 0 {
		se.SetNAT1To1IPs(external, webrtc.ICECandidateTypeHost)
	}
	api, err := newAPI(&s, se)
	if err != nil {
		return kerr.New(kerr.SdpConfigurationError, "%v", err)
	}
	cert, err := certificate(s.CertificateKeyType, s.PemCertificate)
	if err != nil {
		return kerr.New(kerr.SdpConfigurationError, "DTLS certificate: %v", err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		ICEServers:    servers,
		Certificates:  []webrtc.Certificate{cert},
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return kerr.New(kerr.SdpCreateError, "Cannot create the peer connection: %v", err)
	}
	e.settings, e.pc = s, pc
	for t, snd := range e.senders {
		snd.SetMTU(s.MTU)
		if t == media.Video {
			snd.SetSendBandwidth(uint64(s.MinVideoSendBandwidth)*1000, uint64(s.MaxVideoSendBandwidth)*1000)
			snd.SetRembOnConnect(uint64(s.Remb.RembOnConnect))
		}
	}
	pc.OnICECandidate(e.onCandidate)
	pc.OnICEConnectionStateChange(e.onICEState)
	pc.OnConnectionStateChange(e.onConnectionState)
	pc.OnTrack(e.onTrack)
	pc.OnDataChannel(e.onDataChannel)
	direct := e.direct
	e.watchDTLS(pc, direct)
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(p *webrtc.ICECandidatePair) {
		direct.pairChanged(p)
		e.emitICE(CandidatePairSelected{Local: candidateLine(p.Local), Remote: candidateLine(p.Remote)})
		// Over TCP or through a relay a write may block: such a peer gets writers of its own.
		blocking := p.Local != nil && (p.Local.Protocol == webrtc.ICEProtocolTCP || p.Local.Typ == webrtc.ICECandidateTypeRelay)
		for _, s := range e.senders {
			s.SetBlockingWrites(blocking)
		}
	})
	return nil
}

// offerable leaves out IPv6 link-local addresses. pion opens a socket on them and reads it, then
// never offers their candidates (RFC 8445 5.1.1.1 without mDNS): per endpoint and interface, a UDP
// socket, an ICE-TCP connection, two 8 KB read buffers and three goroutines for nothing.
func offerable(ip net.IP) bool {
	return ip.To4() != nil || !ip.IsLinkLocalUnicast()
}

func candidateLine(c *webrtc.ICECandidate) string {
	if c == nil {
		return ""
	}
	return c.ToJSON().Candidate
}

// addLocalTracks gives the peer connection a track per media type we may send.
func (e *Endpoint) addLocalTracks(offer bool, audio, video bool) error {
	for _, t := range []media.Type{media.Audio, media.Video} {
		want := (t == media.Audio && audio) || (t == media.Video && video)
		if !want {
			continue
		}
		kind := webrtc.RTPCodecTypeAudio
		if t == media.Video {
			kind = webrtc.RTPCodecTypeVideo
		}
		dir := webrtc.RTPTransceiverDirectionSendrecv
		switch {
		case e.settings.Recvonly:
			dir = webrtc.RTPTransceiverDirectionRecvonly
		case e.settings.Sendonly:
			dir = webrtc.RTPTransceiverDirectionSendonly
		}
		if dir == webrtc.RTPTransceiverDirectionRecvonly {
			if offer {
				if _, err := e.pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
					return err
				}
			}
			continue
		}
		track := &localTrack{kind: kind, id: strings.ToLower(t.String()), sender: e.senders[t], direct: e.direct}
		e.tracks[t] = track
		var sender *webrtc.RTPSender
		if offer {
			tr, err := e.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: dir})
			if err != nil {
				return err
			}
			sender = tr.Sender()
		} else {
			var err error
			if sender, err = e.pc.AddTrack(track); err != nil {
				return err
			}
		}
		e.rtcpReaders = append(e.rtcpReaders, rtcpReader{sender, e.senders[t]})
	}
	return nil
}

// rtcpReader is a sender of ours whose RTCP from the peer is not read yet.
type rtcpReader struct {
	pion *webrtc.RTPSender
	sink *media.Sender
}

// startRTCPReadersLocked starts reading the senders' RTCP, once the peer is connected; the caller
// holds e.mu.
func (e *Endpoint) startRTCPReadersLocked() {
	for _, r := range e.rtcpReaders {
		e.wg.Add(1)
		go e.readRTCP(r.pion, r.sink)
	}
	e.rtcpReaders = nil
}

// ProcessOffer answers a remote offer. An endpoint negotiates once (40208 afterwards). Text that is not
// SDP fails with 40201 and changes nothing. Offers in shapes pion refuses (no mids, no ICE
// credentials or fingerprint, plan-B, simulcast) are normalised first and answered in their own
// shape (legacy.go). A media type without a codec in common is rejected in the answer (port 0), as
// KMS does; an offer with nothing usable is answered with every m-line rejected. Other pion failures
// give 40205 and leave the endpoint un-negotiated, its peer connection closed: the application may
// call processOffer again.
func (e *Endpoint) ProcessOffer(offer string, s Settings) (string, error) {
	if err := checkSDP(offer); err != nil {
		return "", err
	}
	normalized, shape, err := normalizeOffer(offer, &s)
	if err != nil {
		return "", kerr.New(kerr.SdpParseError, "Invalid SDP: %v", err)
	}
	s.acceptAnyCertificate = shape.noFingerprint
	s.ridSimulcast = shape.ridSimulcast
	s.peerDTLSServer = strings.Contains(normalized, "\na=setup:passive")
	if offeredBySharedPort(offer) {
		s.UDPMux = false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != notNegotiated {
		return "", kerr.New(kerr.SdpAlreadyNegotiated, "Endpoint already negotiated")
	}
	audio, video := offeredMedia(normalized, &s)
	if !shape.accepted() {
		// Nothing in it we could take (a plain RTP offer, say): KMS answers rejecting every m-line
		// rather than failing.
		e.state, e.remoteOffer, e.rejected = negotiated, offer, shape.answer(rejectedSession)
		return e.rejected, nil
	}
	if err := e.peerConnection(s); err != nil {
		return "", err
	}
	if err := e.addLocalTracks(false, audio, video); err != nil {
		return "", e.fail(kerr.SdpProcessOfferError, "Cannot prepare the answer: %v", err)
	}
	if err := e.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: normalized}); err != nil {
		return "", e.fail(kerr.SdpProcessOfferError, "Cannot process the offer: %v", err)
	}
	answer, err := e.pc.CreateAnswer(nil)
	if err != nil {
		return "", e.fail(kerr.SdpProcessOfferError, "Cannot create the answer: %v", err)
	}
	if err := e.pc.SetLocalDescription(answer); err != nil {
		return "", e.fail(kerr.SdpProcessOfferError, "Cannot apply the answer: %v", err)
	}
	e.state = negotiated
	e.shape, e.remoteOffer = &shape, offer
	e.addQueuedCandidates()
	e.el.Emit(endpoints.MediaSessionStarted{})
	return withBandwidth(shape.answer(answer.SDP), &s), nil
}

// rejectedSession is the session part of an answer that rejects every m-line of the offer.
const rejectedSession = "v=0\r\no=- 0 0 IN IP4 0.0.0.0\r\ns=Kurento Media Server\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"

// GenerateOffer makes the local offer; audio or video false leaves that media out.
func (e *Endpoint) GenerateOffer(audio, video bool, s Settings) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.state != notNegotiated {
		return "", kerr.New(kerr.SdpAlreadyNegotiated, "Endpoint already negotiated")
	}
	if err := e.peerConnection(s); err != nil {
		return "", err
	}
	if err := e.addLocalTracks(true, audio, video); err != nil {
		return "", e.fail(kerr.SdpGenerateOfferError, "Cannot prepare the offer: %v", err)
	}
	if s.DataChannels {
		dc, err := e.pc.CreateDataChannel("kurento", nil)
		if err != nil {
			return "", e.fail(kerr.SdpGenerateOfferError, "Cannot offer data channels: %v", err)
		}
		e.data.mu.Lock()
		e.data.placeholder = dc
		e.data.mu.Unlock()
		e.setupChannel(dc)
	}
	offer, err := e.pc.CreateOffer(nil)
	if err != nil {
		return "", e.fail(kerr.SdpGenerateOfferError, "Cannot create the offer: %v", err)
	}
	if err := e.pc.SetLocalDescription(offer); err != nil {
		return "", e.fail(kerr.SdpGenerateOfferError, "Cannot apply the offer: %v", err)
	}
	e.state = offerGenerated
	return withBandwidth(offer.SDP, &s), nil
}

// ProcessAnswer completes a negotiation started by GenerateOffer and returns the local description.
func (e *Endpoint) ProcessAnswer(answer string) (string, error) {
	if err := checkSDP(answer); err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case notNegotiated:
		return "", kerr.New(kerr.SdpNotOfferGenerated, "No offer was generated before processing the answer")
	case negotiated:
		return "", kerr.New(kerr.SdpAnswerAlreadyProcessed, "An answer was already processed")
	}
	if err := e.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return "", kerr.New(kerr.SdpProcessAnswerError, "Cannot process the answer: %v", err)
	}
	e.state = negotiated
	e.addQueuedCandidates()
	e.el.Emit(endpoints.MediaSessionStarted{})
	return e.pc.LocalDescription().SDP, nil
}

// fail closes a peer connection whose negotiation broke, so that it leaks nothing, and makes the
// error (none for code 0). The endpoint stays un-negotiated: the application may try again.
func (e *Endpoint) fail(code int, format string, err error) error {
	// Closed outside e.mu: pion may be delivering a callback that waits for it.
	pc, fb := e.pc, e.fb
	if fb != nil {
		fb.close()
		e.fb = nil
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		pc.Close()
		if fb != nil {
			fb.wait()
		}
	}()
	e.pc = nil
	e.tracks = map[media.Type]*localTrack{}
	e.rtcpReaders = nil
	if code == 0 {
		return nil
	}
	return kerr.New(code, format, err)
}

// checkSDP rejects text that is not an SDP at all, with KMS's parse error.
func checkSDP(text string) error {
	if strings.TrimSpace(text) == "" {
		return kerr.New(kerr.SdpParseError, "Empty SDP")
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(text); err != nil {
		return kerr.New(kerr.SdpParseError, "Invalid SDP: %v", err)
	}
	return nil
}

// offeredMedia tells which media types a remote offer has m-lines for with a codec we can use. A
// media type without one gets no track of ours, and pion rejects its m-line in the answer (port 0),
// as KMS does, instead of failing the whole negotiation.
func offeredMedia(offer string, s *Settings) (audio, video bool) {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(offer) != nil {
		return false, false
	}
	for _, m := range sd.MediaDescriptions {
		switch m.MediaName.Media {
		case "audio":
			audio = audio || offersCodec(m, audioCatalog, s.AudioCodecs, s)
		case "video":
			video = video || offersCodec(m, videoCatalog, s.VideoCodecs, s)
		}
	}
	return audio, video
}

// offersCodec tells whether an offered m-line has a codec of the catalog that the settings enable.
func offersCodec(m *sdp.MediaDescription, catalog []codecEntry, configured []string, s *Settings) bool {
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		// "96 VP8/90000" or "111 opus/48000/2"
		_, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(enc, "/")
		for _, e := range catalog {
			if !enabled(e, configured) || (e.name == "h265/90000" && !s.EnableH265) {
				continue
			}
			if strings.EqualFold(strings.TrimPrefix(strings.ToLower(e.caps.MimeType), m.MediaName.Media+"/"), name) {
				return true
			}
		}
	}
	// Static payload types without rtpmap (0 PCMU, 8 PCMA).
	for _, f := range m.MediaName.Formats {
		if (f == "0" || f == "8") && m.MediaName.Media == "audio" {
			for _, e := range catalog {
				if enabled(e, configured) && ((f == "0" && e.name == "pcmu/8000") || (f == "8" && e.name == "pcma/8000")) {
					return true
				}
			}
		}
	}
	return false
}

// LocalDescription is the local SDP, with the candidates gathered so far.
func (e *Endpoint) LocalDescription() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rejected != "" {
		return e.rejected, nil
	}
	if e.pc == nil || e.pc.LocalDescription() == nil {
		return "", kerr.New(kerr.SdpNoLocalSdp, "Local SDP not available")
	}
	local := e.pc.LocalDescription().SDP
	if e.shape != nil {
		local = e.shape.answer(local)
	}
	return withBandwidth(local, &e.settings), nil
}

// RemoteDescription is the SDP the peer sent.
func (e *Endpoint) RemoteDescription() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.remoteOffer != "" {
		return e.remoteOffer, nil
	}
	if e.pc == nil || e.pc.RemoteDescription() == nil {
		return "", kerr.New(kerr.SdpNoRemoteSdp, "Remote SDP not available")
	}
	return e.pc.RemoteDescription().SDP, nil
}

// GatherCandidates lets the candidates flow to the application: those found so far at once, the
// others as they come, then GatheringDone. Before negotiation it only records the wish.
func (e *Endpoint) GatherCandidates() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return kerr.New(kerr.IceGatherCandidatesError, "Endpoint released")
	}
	if e.gatherRequested {
		return nil
	}
	e.gatherRequested = true
	e.el.Emit(IceStateChanged{State: "GATHERING"})
	for _, c := range e.found {
		e.el.Emit(c)
	}
	e.found = nil
	if e.gatherDone {
		e.el.Emit(GatheringDone{})
	}
	e.releaseHeldLocked()
	return nil
}

// emitICE reports an ICE state or pair event. pion starts ICE at SetLocalDescription, before the
// application asks for gathering; KMS's order (GATHERING, then CONNECTING...) is kept by holding these
// events back until gatherCandidates, or until the peer is connected if it never comes.
func (e *Endpoint) emitICE(ev media.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.emitICELocked(ev)
}

// emitICELocked reports an ICE event once: pion's callbacks run on goroutines of their own, so the
// connection may have reported them already (see ensureICEReportedLocked). The caller holds e.mu.
func (e *Endpoint) emitICELocked(ev media.Event) {
	switch ev := ev.(type) {
	case IceStateChanged:
		if ev.State == e.lastICE || (e.lastICE == "READY" && ev.State == "CONNECTED") {
			return
		}
		e.lastICE = ev.State
	case CandidatePairSelected:
		if ev == e.lastPair {
			return
		}
		e.lastPair = ev
	}
	if !e.iceReported {
		e.held = append(e.held, ev)
		return
	}
	e.el.Emit(ev)
}

// releaseHeldLocked reports the held ICE events and lets the next ones through; the caller holds e.mu.
func (e *Endpoint) releaseHeldLocked() {
	e.iceReported = true
	for _, ev := range e.held {
		e.el.Emit(ev)
	}
	e.held = nil
}

func (e *Endpoint) onCandidate(c *webrtc.ICECandidate) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c == nil {
		e.gatherDone = true
		if e.gatherRequested {
			e.el.Emit(GatheringDone{})
		}
		return
	}
	init := c.ToJSON()
	found := CandidateFound{Candidate: init.Candidate}
	if init.SDPMid != nil {
		found.SDPMid = *init.SDPMid
	}
	if init.SDPMLineIndex != nil {
		found.SDPMLineIndex = int(*init.SDPMLineIndex)
	}
	if e.gatherRequested {
		e.el.Emit(found)
	} else {
		e.found = append(e.found, found)
	}
}

// AddIceCandidate adds a remote candidate; before the remote description is known it is queued.
// An empty candidate (end of candidates) is accepted and ignored.
func (e *Endpoint) AddIceCandidate(candidate, sdpMid string, sdpMLineIndex int) error {
	text := strings.TrimPrefix(strings.TrimSpace(candidate), "a=")
	if text == "" {
		return nil
	}
	if _, err := ice.UnmarshalCandidate(text); err != nil {
		return kerr.New(kerr.IceAddCandidateError, "Invalid ICE candidate %q: %v", candidate, err)
	}
	idx := uint16(sdpMLineIndex)
	init := webrtc.ICECandidateInit{Candidate: text, SDPMid: &sdpMid, SDPMLineIndex: &idx}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return kerr.New(kerr.IceAddCandidateError, "Endpoint released")
	}
	if e.pc == nil || e.pc.RemoteDescription() == nil {
		e.remoteQueue = append(e.remoteQueue, init)
		return nil
	}
	if err := e.pc.AddICECandidate(init); err != nil {
		return kerr.New(kerr.IceAddCandidateError, "Cannot add ICE candidate %q: %v", candidate, err)
	}
	return nil
}

// addQueuedCandidates applies candidates received before the remote description; the caller holds e.mu.
func (e *Endpoint) addQueuedCandidates() {
	for _, c := range e.remoteQueue {
		if err := e.pc.AddICECandidate(c); err != nil {
			e.log.Warn("queued ICE candidate rejected", "candidate", c.Candidate, "err", err)
		}
	}
	e.remoteQueue = nil
}

// ensureICEReportedLocked reports the selected pair and the ICE connection before the media state
// says CONNECTED, as KMS orders them. The caller holds e.mu.
func (e *Endpoint) ensureICEReportedLocked(pair *CandidatePairSelected) {
	if e.lastPair == (CandidatePairSelected{}) && pair != nil {
		e.emitICELocked(*pair)
	}
	if e.lastICE != "CONNECTED" && e.lastICE != "READY" {
		e.emitICELocked(IceStateChanged{State: "CONNECTED"})
		e.emitICELocked(IceStateChanged{State: "READY"})
	}
}

var iceStateNames = map[webrtc.ICEConnectionState]string{
	webrtc.ICEConnectionStateChecking:     "CONNECTING",
	webrtc.ICEConnectionStateConnected:    "CONNECTED",
	webrtc.ICEConnectionStateCompleted:    "READY",
	webrtc.ICEConnectionStateFailed:       "FAILED",
	webrtc.ICEConnectionStateDisconnected: "DISCONNECTED",
	webrtc.ICEConnectionStateClosed:       "DISCONNECTED",
}

func (e *Endpoint) onICEState(s webrtc.ICEConnectionState) {
	name, ok := iceStateNames[s]
	if !ok {
		return
	}
	e.emitICE(IceStateChanged{State: name})
	if s == webrtc.ICEConnectionStateFailed {
		e.dtlsState("CLOSED") // the peer is gone, and its DTLS connection with it
		e.mu.Lock()
		direct := e.direct
		e.mu.Unlock()
		direct.stop()
	}
	if s == webrtc.ICEConnectionStateConnected {
		// pion has no separate "ready" step; KMS reports READY once the pair is in use.
		e.emitICE(IceStateChanged{State: "READY"})
	}
}

func (e *Endpoint) onConnectionState(s webrtc.PeerConnectionState) {
	// The pair in use, asked before taking e.mu: pion's ICE agent must not wait on our lock.
	var pair *CandidatePairSelected
	e.mu.Lock()
	pc := e.pc
	e.mu.Unlock()
	if s == webrtc.PeerConnectionStateConnected && pc != nil {
		if p, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
			pair = &CandidatePairSelected{Local: candidateLine(p.Local), Remote: candidateLine(p.Remote)}
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	was := e.connected
	now := s == webrtc.PeerConnectionStateConnected
	if was == now || (e.closed && now) {
		return
	}
	e.connected = now
	if now {
		// The ICE events come first, even if the application never called gatherCandidates, and
		// even if pion's goroutines that report them have not run yet.
		e.ensureICEReportedLocked(pair)
		e.releaseHeldLocked()
		e.startRTCPReadersLocked()
		if e.fb == nil && e.pc != nil {
			e.startFeedback(e.pc) // our sender reports
		}
	}
	old, next := "DISCONNECTED", "CONNECTED"
	if !now {
		old, next = next, old
	}
	// Under e.mu, so that the states are reported in the order they happened.
	e.el.Emit(endpoints.ConnectionStateChanged{Old: old, New: next})
	e.el.Emit(endpoints.MediaStateChanged{Old: old, New: next})
}

// onTrack starts the one reader goroutine of an incoming track.
func (e *Endpoint) onTrack(remote *webrtc.TrackRemote, receiver *webrtc.RTPReceiver) {
	t := media.Audio
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		t = media.Video
	}
	e.mu.Lock()
	pc := e.pc
	e.mu.Unlock()
	first := firstReceiving(pc, receiver)
	layer := forwardedLayer(receiver, remote)
	e.mu.Lock()
	second, closed := e.feeding[t] || !first || !layer, e.closed
	if !second {
		e.feeding[t] = true
	}
	if !second && !closed && e.fb == nil && pc != nil {
		e.startFeedback(pc)
	}
	if !closed {
		e.wg.Add(1)
	}
	e.mu.Unlock()
	if closed {
		return
	}
	if second {
		// One track per media type, as in KMS: the pad has one producer, the first m-line of its
		// kind. Another track is read (pion would otherwise buffer it) and dropped.
		if layer {
			e.log.Warn("the peer sends a second track of a media type: ignored", "type", t.String(), "ssrc", uint32(remote.SSRC()))
		} else {
			e.log.Debug("simulcast layer not forwarded", "rid", remote.RID(), "ssrc", uint32(remote.SSRC()))
		}
		go func() {
			defer e.wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := remote.Read(buf); err != nil {
					return
				}
				rxCounts.pion.Add(1)
			}
		}()
		return
	}
	c := remote.Codec()
	src := e.el.Source(t, media.DefaultPad)
	src.SetCodec(&media.Codec{MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.SDPFmtpLine})
	in := e.addIncoming(remote, t, src, receiver)
	if t == media.Video {
		// Made once: the packet path asks for keyframes (a joining or lagging peer), and pion only
		// reads the packet.
		pli := []rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(remote.SSRC())}}
		src.SetKeyframeRequester(func() {
			in.rx.Stats.PLIs.Add(1)
			if err := pc.WriteRTCP(pli); err != nil && !errors.Is(err, net.ErrClosed) {
				e.log.Debug("cannot send PLI", "err", err)
			}
		})
	}
	e.wg.Add(1)
	go e.readReceiverRTCP(receiver, remote.RID(), in)
	go func() {
		defer e.wg.Done()
		e.readTrack(remote, src, in)
		e.mu.Lock()
		e.feeding[t] = false
		e.mu.Unlock()
	}()
}

// firstReceiving tells whether the receiver is that of the first m-line of its kind in which the peer
// sends: the one whose media feeds the element's pad. Unknown (no mid) counts as yes.
func firstReceiving(pc *webrtc.PeerConnection, receiver *webrtc.RTPReceiver) bool {
	if pc == nil || receiver == nil || receiver.Track() == nil {
		return true
	}
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == receiver {
			mid = tr.Mid()
		}
	}
	rd := pc.RemoteDescription()
	if mid == "" || rd == nil {
		return true
	}
	// Parsed here: rd.Unmarshal would write into pion's own copy, which other callbacks read.
	var parsed sdp.SessionDescription
	if parsed.UnmarshalString(rd.SDP) != nil {
		return true
	}
	kind := receiver.Track().Kind().String()
	for _, m := range parsed.MediaDescriptions {
		if m.MediaName.Media != kind || m.MediaName.Port.Value == 0 {
			continue
		}
		if _, recvonly := m.Attribute("recvonly"); recvonly {
			continue
		}
		if _, inactive := m.Attribute("inactive"); inactive {
			continue
		}
		first, _ := m.Attribute("mid")
		return first == "" || first == mid
	}
	return true
}

// readRTCP serves the peer's feedback on what we send: keyframe requests go to the source.
func (e *Endpoint) readRTCP(sender *webrtc.RTPSender, s *media.Sender) {
	defer e.wg.Done()
	buf := make([]byte, 1500)
	var rd rtpengine.RTCPReader
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rd.Read(buf[:n])
		if err != nil {
			continue
		}
		e.senderFeedback(s, pkts)
	}
}

// RequestKeyframe asks the source of what we send for a keyframe; false when the endpoint sends no video.
func (e *Endpoint) RequestKeyframe() bool {
	e.mu.Lock()
	_, sending := e.tracks[media.Video]
	e.mu.Unlock()
	if !sending {
		return false
	}
	e.senders[media.Video].RequestKeyframe()
	return true
}

// Close ends the peer connection and waits for its goroutines.
func (e *Endpoint) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	sharedUfrags.Delete(e.sharedUfrag)
	pc, wasNegotiated, direct, fb := e.pc, e.state == negotiated, e.direct, e.fb
	if fb != nil {
		fb.close()
	}
	e.mu.Unlock()
	if fb != nil {
		fb.wait()
	}
	if pc != nil {
		if err := pc.Close(); err != nil {
			e.log.Debug("closing peer connection", "err", err)
		}
	}
	if direct != nil {
		direct.stop() // the track readers leave the direct path's rings for pion's closed tracks
	}
	e.wg.Wait()
	if wasNegotiated {
		e.el.Emit(endpoints.MediaSessionTerminated{})
	}
}

// localTrack is what pion sends for one media type: it binds the negotiated SSRC, payload type and
// writer to the element's sink pad. out follows what is written, for our sender reports.
type localTrack struct {
	kind   webrtc.RTPCodecType
	id     string
	sender *media.Sender
	direct *directSRTP // where its packets go
	out    atomic.Pointer[rtpengine.Outbound]
}

func (t *localTrack) ID() string                { return t.id }
func (t *localTrack) StreamID() string          { return "kurento" }
func (t *localTrack) RID() string               { return "" }
func (t *localTrack) Kind() webrtc.RTPCodecType { return t.kind }
func (t *localTrack) Unbind(webrtc.TrackLocalContext) error {
	t.sender.Bind(0, 0, media.Codec{}, nil)
	t.out.Store(nil)
	return nil
}

// Bind picks, among the negotiated codecs, the one the connected source produces, else the first.
func (t *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	codecs := ctx.CodecParameters()
	var chosen *webrtc.RTPCodecParameters
	var want string
	if src := t.sender.Source(); src != nil && src.Codec() != nil {
		want = src.Codec().MimeType
	}
	for i := range codecs {
		c := &codecs[i]
		if strings.EqualFold(c.MimeType, "video/rtx") {
			continue
		}
		if chosen == nil || (want != "" && strings.EqualFold(c.MimeType, want) && !strings.EqualFold(chosen.MimeType, want)) {
			chosen = c
		}
	}
	if chosen == nil {
		return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
	}
	w := ctx.WriteStream()
	var rtxPT uint8
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, "video/rtx") && c.SDPFmtpLine == fmt.Sprintf("apt=%d", chosen.PayloadType) {
			rtxPT = uint8(c.PayloadType)
		}
	}
	if rtxPT != 0 && ctx.SSRCRetransmission() != 0 {
		t.sender.BindRTX(uint32(ctx.SSRCRetransmission()), rtxPT)
	} else {
		t.sender.BindRTX(0, 0)
	}
	ssrc := uint32(ctx.SSRC())
	out := rtpengine.NewOutbound(ssrc, chosen.ClockRate)
	t.out.Store(out)
	// pion's interceptor chain is empty: the packet goes straight to SRTP, ours or pion's
	// (direct.go). What the sender reports need is taken here, from the media stream
	// (retransmissions on the RTX stream are not counted).
	direct := t.direct
	t.sender.Bind(ssrc, uint8(chosen.PayloadType),
		media.Codec{MimeType: chosen.MimeType, ClockRate: chosen.ClockRate, Channels: chosen.Channels, Fmtp: chosen.SDPFmtpLine},
		func(h *rtp.Header, payload []byte) error {
			n, err := direct.writeRTP(w, h, payload)
			if n == 0 && err == nil {
				return media.ErrNotSent // dropped by pion: SRTP not started, or the transport full
			}
			if err == nil && h.SSRC == ssrc {
				out.Sent(h, len(payload), n)
			}
			return err
		})
	return *chosen, nil
}
