package elements

import (
	"fmt"
	"strings"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
)

// webRtcEndpoint is the WebRtcEndpoint class: the object side over endpoints/webrtc.
type webRtcEndpoint struct {
	*objects.Element
	ep       *webrtc.Endpoint
	defaults webrtc.Settings // from the constructor and the module configuration
}

func (w *webRtcEndpoint) properties() *objects.Properties { return w.Props }

// settings merges the properties an application may have set into the configured defaults.
func (w *webRtcEndpoint) settings() webrtc.Settings {
	s := w.defaults
	p := w.Props
	s.StunAddress, _ = p.Get(w, "stunServerAddress").(string)
	s.StunPort, _ = p.Get(w, "stunServerPort").(int)
	s.TurnURL, _ = p.Get(w, "turnUrl").(string)
	s.ExternalIPv4, _ = p.Get(w, "externalIPv4").(string)
	s.ExternalIPv6, _ = p.Get(w, "externalIPv6").(string)
	s.IceTCP, _ = p.Get(w, "iceTcp").(bool)
	if names, _ := p.Get(w, "networkInterfaces").(string); names != "" {
		s.NetworkInterfaces = splitComma(names)
	}
	s.MinVideoRecvBandwidth, _ = p.Get(w, "minVideoRecvBandwidth").(int)
	s.MaxVideoRecvBandwidth, _ = p.Get(w, "maxVideoRecvBandwidth").(int)
	s.MinVideoSendBandwidth, _ = p.Get(w, "minVideoSendBandwidth").(int)
	s.MaxVideoSendBandwidth, _ = p.Get(w, "maxVideoSendBandwidth").(int)
	s.MaxAudioRecvBandwidth, _ = p.Get(w, "maxAudioRecvBandwidth").(int)
	s.Remb = rembParams(w, p)
	s.MTU, _ = p.Get(w, "mtu").(int)
	return s
}

func splitComma(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// DotDescription is what getGstreamerDot shows of the pion side: what each sender sends.
func (w *webRtcEndpoint) DotDescription() []string {
	lines := []string{"pion PeerConnection"}
	for _, t := range []media.Type{media.Audio, media.Video} {
		if s := w.ep.Sender(t); s != nil {
			if c := s.BoundCodec(); c.MimeType != "" {
				lines = append(lines, fmt.Sprintf("sends %s: %s pt %d ssrc %d", t, c.MimeType, s.PayloadType(), s.SSRC()))
			}
		}
	}
	return lines
}

func (w *webRtcEndpoint) GenerateOffer(audio, video bool) (string, error) {
	return w.ep.GenerateOffer(audio, video, w.settings())
}

func (w *webRtcEndpoint) ProcessOffer(offer string) (string, error) {
	return w.ep.ProcessOffer(offer, w.settings())
}

func (w *webRtcEndpoint) ProcessAnswer(answer string) (string, error) {
	return w.ep.ProcessAnswer(answer)
}
func (w *webRtcEndpoint) LocalDescription() (string, error)  { return w.ep.LocalDescription() }
func (w *webRtcEndpoint) RemoteDescription() (string, error) { return w.ep.RemoteDescription() }
func (w *webRtcEndpoint) RequestKeyframe() bool              { return w.ep.RequestKeyframe() }

// RTPStreams is the RTP part of what getStats reports, for metrics and the inspector.
func (w *webRtcEndpoint) RTPStreams() (inbound, outbound []endpoints.RTPStats) {
	st := w.ep.RTPStats()
	return st.Inbound, st.Outbound
}

// Close ends the peer connection, then takes the element out of the graph.
func (w *webRtcEndpoint) Close() {
	w.ep.Close()
	w.Element.Close()
}

func (w *webRtcEndpoint) onEvent(ev media.Event) {
	if sessionEvents(w.Element, ev) {
		return
	}
	switch ev := ev.(type) {
	case webrtc.CandidateFound:
		w.Emit("IceCandidateFound", map[string]any{"candidate": &api.Register{Type: "IceCandidate", Fields: map[string]any{
			"candidate": ev.Candidate, "sdpMid": ev.SDPMid, "sdpMLineIndex": ev.SDPMLineIndex,
		}}})
	case webrtc.GatheringDone:
		w.Emit("IceGatheringDone", nil)
	case webrtc.IceStateChanged:
		w.Props.Set(w, "iceState", ev.State)
		w.Emit("IceComponentStateChanged", map[string]any{"streamId": 1, "componentId": 1, "state": ev.State})
	case webrtc.DataChannelOpened:
		w.Emit("DataChannelOpened", map[string]any{"channelId": ev.ChannelID})
	case webrtc.DataChannelClosed:
		w.Emit("DataChannelClosed", map[string]any{"channelId": ev.ChannelID})
	case webrtc.DtlsStateChanged:
		w.Props.Set(w, "dtlsState", ev.State)
		w.Emit("DtlsConnectionStateChange", map[string]any{"streamId": "1", "componentId": "1", "connectionId": "1", "state": ev.State})
	case webrtc.CandidatePairSelected:
		pair := &api.Register{Type: "IceCandidatePair", Fields: map[string]any{
			"streamId": "1", "componentId": 1, "localCandidate": ev.Local, "remoteCandidate": ev.Remote,
		}}
		w.Props.Set(w, "candidatePair", pair)
		w.Emit("NewCandidatePairSelected", map[string]any{"candidatePair": pair})
	}
}

func (d *definer) defineWebRtc() {
	wc := d.cfg.Modules.WebRtcEndpoint
	brt := d.cfg.Modules.BaseRtpEndpoint
	sdpc := d.cfg.Modules.SdpEndpoint
	props := func(o objects.Object) *objects.Properties { return o.(*webRtcEndpoint).Props }
	d.r.Define("WebRtcEndpoint", objects.Class{
		New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
			initial := d.baseRtpDefaults()
			initial["stunServerPort"] = wc.StunServerPort
			initial["iceTcp"] = wc.IceTCP
			initial["turnUrl"] = ""
			initial["stunServerAddress"] = ""
			initial["externalIPv4"] = ""
			initial["externalIPv6"] = ""
			initial["networkInterfaces"] = strings.Join(wc.NetworkInterfaces, ",")
			if wc.StunServerAddress.IsValid() {
				initial["stunServerAddress"] = wc.StunServerAddress.String()
			}
			if wc.ExternalIPv4.IsValid() {
				initial["externalIPv4"] = wc.ExternalIPv4.String()
			}
			if wc.ExternalIPv6.IsValid() {
				initial["externalIPv6"] = wc.ExternalIPv6.String()
			}
			if t := wc.TURN; t != nil {
				initial["turnUrl"] = t.Username + ":" + t.Password + "@" + t.Addr.String() + "?transport=" + t.Transport
			}
			w := &webRtcEndpoint{Element: objects.NewElement(b, initial)}
			keyType := a.String("certificateKeyType")
			pem := wc.PemCertificateRSA
			if keyType == "ECDSA" {
				pem = wc.PemCertificateECDSA
			}
			w.defaults = webrtc.Settings{
				MinPort:            uint16(brt.MinPort),
				MaxPort:            uint16(brt.MaxPort),
				ReceiveMTU:         brt.MTU,
				AudioCodecs:        sdpc.AudioCodecs,
				VideoCodecs:        sdpc.VideoCodecs,
				EnableH265:         wc.EnableH265,
				NumAudioMedias:     sdpc.NumAudioMedias,
				NumVideoMedias:     sdpc.NumVideoMedias,
				IncludeLoopback:    true,
				UDPMux:             wc.UDPMux,
				DirectSRTP:         wc.DirectSRTP,
				Recvonly:           a.Bool("recvonly"),
				Sendonly:           a.Bool("sendonly"),
				DataChannels:       a.Bool("useDataChannels"),
				CertificateKeyType: keyType,
				PemCertificate:     pem,
			}
			w.defaults.DSCP = qosDSCP(a.String("qosDscp"), wc.QosDSCP)
			if w.defaults.Recvonly && w.defaults.Sendonly {
				return nil, kerr.New(kerr.MarshallError, "recvonly and sendonly cannot both be set")
			}
			w.OnOtherEvent = w.onEvent
			w.ep = webrtc.New(w.Media, d.r.Logger().With("element", b.ID()))
			return w, nil
		},
		Ops: objects.Merge(map[string]objects.Handler{
			"gatherCandidates": func(o objects.Object, _ objects.Args) (any, error) {
				return nil, o.(*webRtcEndpoint).ep.GatherCandidates()
			},
			"addIceCandidate": func(o objects.Object, a objects.Args) (any, error) {
				c := a.Register("candidate")
				cand, _ := c.Fields["candidate"].(string)
				mid, _ := c.Fields["sdpMid"].(string)
				idx, _ := c.Fields["sdpMLineIndex"].(int)
				return nil, o.(*webRtcEndpoint).ep.AddIceCandidate(cand, mid, idx)
			},
			"createDataChannel": func(o objects.Object, a objects.Args) (any, error) {
				w := o.(*webRtcEndpoint)
				opts := webrtc.DataChannelOptions{Label: a.String("label"), Ordered: true, MaxPacketLifeTime: -1,
					MaxRetransmits: -1, Protocol: a.String("protocol")}
				if a.Has("ordered") {
					opts.Ordered = a.Bool("ordered")
				}
				if a.Has("maxPacketLifeTime") {
					opts.MaxPacketLifeTime = a.Int("maxPacketLifeTime")
				}
				if a.Has("maxRetransmits") {
					opts.MaxRetransmits = a.Int("maxRetransmits")
				}
				if opts.MaxPacketLifeTime >= 0 && opts.MaxRetransmits >= 0 {
					return nil, kerr.New(kerr.IllegalParam, "maxPacketLifeTime and maxRetransmits cannot both be set")
				}
				return nil, w.ep.CreateDataChannel(opts)
			},
			"closeDataChannel": func(o objects.Object, a objects.Args) (any, error) {
				return nil, o.(*webRtcEndpoint).ep.CloseDataChannel(a.Int("channelId"))
			},
			"getStats": func(o objects.Object, a objects.Args) (any, error) {
				w := o.(*webRtcEndpoint)
				only, err := mediaTypeArg(a)
				if err != nil {
					return nil, err
				}
				return webRtcStats(w, w.ep.Stats(only)), nil
			},
			"getICECandidatePairs": func(o objects.Object, _ objects.Args) (any, error) {
				w := o.(*webRtcEndpoint)
				if p := w.Props.Get(w, "candidatePair"); p != nil {
					return []any{p}, nil
				}
				return []any{}, nil
			},
			"getIceConnectionState": func(o objects.Object, _ objects.Args) (any, error) {
				w := o.(*webRtcEndpoint)
				state, _ := w.Props.Get(w, "iceState").(string)
				if state == "" {
					return []any{}, nil
				}
				return []any{&api.Register{Type: "IceConnection", Fields: map[string]any{"streamId": "1", "componentId": 1, "state": state}}}, nil
			},
			"getDtlsConnectionState": func(o objects.Object, _ objects.Args) (any, error) {
				w := o.(*webRtcEndpoint)
				state, _ := w.Props.Get(w, "dtlsState").(string)
				if state == "" { // KMS: nothing before the first DTLS event
					return []any{}, nil
				}
				return []any{&api.Register{Type: "DtlsConnection", Fields: map[string]any{
					"streamId": "1", "componentId": "1", "connectionId": "1", "state": state}}}, nil
			},
		}, objects.PropertyOps(d.r.Schema().Classes["WebRtcEndpoint"], props,
			"networkInterfaces", "iceTcp", "stunServerAddress", "stunServerPort", "turnUrl", "externalIPv4", "externalIPv6")),
	})
}

// qosDSCP is the codepoint of the constructor's qosDscp, or of the module's qos-dscp when the
// constructor leaves it at NO_VALUE, as KMS resolves it; 0 when neither sets one.
func qosDSCP(param, configured string) uint8 {
	if param == "" || param == "NO_VALUE" {
		param = configured
	}
	codepoint, _ := webrtc.DSCP(param)
	return codepoint
}
