package elements

import (
	"time"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/endpoints/rtp"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
)

// rtpEndpoint is the RtpEndpoint class: the object side over endpoints/rtp.
type rtpEndpoint struct {
	*objects.Element
	ep       *rtp.Endpoint
	defaults rtp.Settings // from the constructor and the module configuration
}

func (r *rtpEndpoint) properties() *objects.Properties { return r.Props }

// settings merges the properties an application may have set into the configured defaults.
func (r *rtpEndpoint) settings() rtp.Settings {
	s := r.defaults
	s.MaxAudioRecvBandwidth, _ = r.Props.Get(r, "maxAudioRecvBandwidth").(int)
	s.MaxVideoRecvBandwidth, _ = r.Props.Get(r, "maxVideoRecvBandwidth").(int)
	s.MinVideoRecvBandwidth, _ = r.Props.Get(r, "minVideoRecvBandwidth").(int)
	s.MinVideoSendBandwidth, _ = r.Props.Get(r, "minVideoSendBandwidth").(int)
	s.MaxVideoSendBandwidth, _ = r.Props.Get(r, "maxVideoSendBandwidth").(int)
	s.Remb = rembParams(r, r.Props)
	s.MTU, _ = r.Props.Get(r, "mtu").(int)
	return s
}

func (r *rtpEndpoint) GenerateOffer(audio, video bool) (string, error) {
	return r.ep.GenerateOffer(audio, video, r.settings())
}

func (r *rtpEndpoint) ProcessOffer(offer string) (string, error) {
	return r.ep.ProcessOffer(offer, r.settings())
}

func (r *rtpEndpoint) ProcessAnswer(answer string) (string, error) { return r.ep.ProcessAnswer(answer) }
func (r *rtpEndpoint) LocalDescription() (string, error)           { return r.ep.LocalDescription() }
func (r *rtpEndpoint) RemoteDescription() (string, error)          { return r.ep.RemoteDescription() }
func (r *rtpEndpoint) RequestKeyframe() bool                       { return r.ep.RequestKeyframe() }

// Close ends the RTP session, then takes the element out of the graph.
// RTPStreams is the RTP part of what getStats reports, for metrics and the inspector.
func (r *rtpEndpoint) RTPStreams() (inbound, outbound []endpoints.RTPStats) { return r.ep.Stats(nil) }

func (r *rtpEndpoint) Close() {
	r.ep.Close()
	r.Element.Close()
}

func (r *rtpEndpoint) onEvent(ev media.Event) {
	if sessionEvents(r.Element, ev) {
		return
	}
	switch ev := ev.(type) {
	case rtp.KeySoftLimitReached:
		r.Emit("OnKeySoftLimit", map[string]any{"mediaType": ev.Type.String()})
	case rtp.DecryptFailed:
		// GStreamer's GST_STREAM_ERROR_DECRYPT, as KMS names bus errors.
		r.Emit("Error", map[string]any{
			"description": "SRTP: cannot authenticate or decrypt " + ev.Type.String() + " from the peer (wrong key?): " + ev.Reason,
			"errorCode":   12,
			"type":        "STREAM_ERROR_DECRYPT",
		})
	}
}

// crypto reads the SDES constructor parameter as KMS does: no suite means plain RTP; a key (raw
// characters) or keyBase64 must have the suite's size; no key means a random one.
func crypto(sdes map[string]any) (*rtp.Crypto, error) {
	suite, _ := sdes["crypto"].(string)
	if suite == "" {
		return nil, nil
	}
	size := rtp.KeySize(suite)
	if size == 0 {
		return nil, kerr.New(kerr.IllegalParam, "Invalid crypto suite")
	}
	c := &rtp.Crypto{Suite: suite}
	if key, ok := sdes["key"].(string); ok {
		c.Key = []byte(key)
	} else if b64, ok := sdes["keyBase64"].(string); ok {
		key, err := rtp.DecodeKey(b64)
		if err != nil {
			return nil, kerr.New(kerr.IllegalParam, "Master key is not valid Base64")
		}
		c.Key = key
	} else {
		return c, nil
	}
	if len(c.Key) != size {
		return nil, kerr.New(kerr.IllegalParam, "Master key size is wrong: %s needs %d bytes, got %d", suite, size, len(c.Key))
	}
	return c, nil
}

func (d *definer) defineRtp() {
	brt := d.cfg.Modules.BaseRtpEndpoint
	sdpc := d.cfg.Modules.SdpEndpoint
	d.r.Define("RtpEndpoint", objects.Class{
		New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
			var sdes map[string]any
			if reg := a.Register("crypto"); reg != nil {
				sdes = reg.Fields
			}
			c, err := crypto(sdes)
			if err != nil {
				return nil, err
			}
			r := &rtpEndpoint{Element: objects.NewElement(b, d.baseRtpDefaults())}
			r.defaults = rtp.Settings{
				MinPort:     brt.MinPort,
				MaxPort:     brt.MaxPort,
				AudioCodecs: sdpc.AudioCodecs,
				VideoCodecs: sdpc.VideoCodecs,
				UseIPv6:     a.Bool("useIpv6"),
				Interfaces:  d.cfg.Modules.WebRtcEndpoint.NetworkInterfaces,
				Crypto:      c,
			}
			r.OnOtherEvent = r.onEvent
			r.ep = rtp.New(r.Media, d.r.Logger().With("element", b.ID()))
			return r, nil
		},
		Ops: map[string]objects.Handler{
			"getStats": func(o objects.Object, a objects.Args) (any, error) {
				r := o.(*rtpEndpoint)
				only, err := mediaTypeArg(a)
				if err != nil {
					return nil, err
				}
				report := newStatsReport(r, time.Now())
				report.rtp(r.ep.Stats(only))
				return report.out, nil
			},
		},
	})
}
