package elements

import (
	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/rtpengine"
)

// negotiator is what every SDP endpoint class (WebRtcEndpoint, RtpEndpoint) offers to the shared
// SdpEndpoint and BaseRtpEndpoint operations.
type negotiator interface {
	objects.Object
	GenerateOffer(audio, video bool) (string, error)
	ProcessOffer(offer string) (string, error)
	ProcessAnswer(answer string) (string, error)
	LocalDescription() (string, error)
	RemoteDescription() (string, error)
	// RequestKeyframe asks for a keyframe for the video the endpoint sends; false when it sends none.
	RequestKeyframe() bool
	properties() *objects.Properties
}

func negotiatorOf(o objects.Object) negotiator { return o.(negotiator) }

// defineBaseRtp installs the operations of SdpEndpoint and BaseRtpEndpoint.
func (d *definer) defineBaseRtp() {
	schema := d.r.Schema()
	props := func(o objects.Object) *objects.Properties { return negotiatorOf(o).properties() }
	d.r.Define("SdpEndpoint", objects.Class{Ops: objects.Merge(map[string]objects.Handler{
		"generateOffer": func(o objects.Object, a objects.Args) (any, error) {
			audio, video := true, true
			if opts := a.Register("options"); opts != nil {
				if v, ok := opts.Fields["offerToReceiveAudio"].(bool); ok {
					audio = v
				}
				if v, ok := opts.Fields["offerToReceiveVideo"].(bool); ok {
					video = v
				}
			}
			return negotiatorOf(o).GenerateOffer(audio, video)
		},
		"processOffer": func(o objects.Object, a objects.Args) (any, error) {
			return negotiatorOf(o).ProcessOffer(a.String("offer"))
		},
		"processAnswer": func(o objects.Object, a objects.Args) (any, error) {
			return negotiatorOf(o).ProcessAnswer(a.String("answer"))
		},
		"getLocalSessionDescriptor": func(o objects.Object, _ objects.Args) (any, error) {
			return negotiatorOf(o).LocalDescription()
		},
		"getRemoteSessionDescriptor": func(o objects.Object, _ objects.Args) (any, error) {
			return negotiatorOf(o).RemoteDescription()
		},
	}, objects.PropertyOps(schema.Classes["SdpEndpoint"], props, "maxAudioRecvBandwidth", "maxVideoRecvBandwidth"))})

	d.r.Define("BaseRtpEndpoint", objects.Class{Ops: objects.Merge(map[string]objects.Handler{
		"requestKeyframe": func(o objects.Object, _ objects.Args) (any, error) {
			if !negotiatorOf(o).RequestKeyframe() {
				return nil, kerr.New(kerr.OperationNotSupported, "The endpoint does not send video")
			}
			return nil, nil
		},
	}, objects.PropertyOps(schema.Classes["BaseRtpEndpoint"], props,
		"minVideoRecvBandwidth", "minVideoSendBandwidth", "maxVideoSendBandwidth", "mediaState",
		"connectionState", "mtu", "rembParams"), map[string]objects.Handler{
		"getRembParams": func(o objects.Object, _ objects.Args) (any, error) {
			fields := map[string]any{}
			for k, v := range rembDefaults {
				fields[k] = v
			}
			if set, ok := props(o).Get(o, "rembParams").(*api.Register); ok && set != nil {
				for k, v := range set.Fields {
					fields[k] = v
				}
			}
			return &api.Register{Type: "RembParams", Fields: fields}, nil
		},
	})})
}

// rembDefaults are KMS's RembParams (kmsremb.c): what getRembParams shows for what the application
// did not set.
var rembDefaults = func() map[string]any {
	r := rtpengine.DefaultRembParams()
	return map[string]any{
		"packetsRecvIntervalTop": r.PacketsRecvIntervalTop, "exponentialFactor": r.ExponentialFactor,
		"linealFactorMin": r.LinealFactorMin, "linealFactorGrade": r.LinealFactorGrade,
		"decrementFactor": r.DecrementFactor, "thresholdFactor": r.ThresholdFactor, "upLosses": r.UpLosses,
		"rembOnConnect": r.RembOnConnect,
	}
}()

// rembParams are the RembParams in effect for an endpoint: what the application set over KMS's
// defaults. Values that make no sense (a window of no packets, a negative rate) keep the default.
func rembParams(o objects.Object, p *objects.Properties) rtpengine.RembParams {
	r := rtpengine.DefaultRembParams()
	set, _ := p.Get(o, "rembParams").(*api.Register)
	if set == nil {
		return r
	}
	num := func(name string, dst *float64) {
		switch v := set.Fields[name].(type) {
		case int:
			*dst = float64(v)
		case float64:
			*dst = v
		}
	}
	positiveInt := func(name string, dst *int) {
		f := float64(*dst)
		if num(name, &f); f > 0 {
			*dst = int(f)
		}
	}
	positive := func(name string, dst *float64) {
		f := *dst
		if num(name, &f); f > 0 {
			*dst = f
		}
	}
	positiveInt("packetsRecvIntervalTop", &r.PacketsRecvIntervalTop)
	positiveInt("linealFactorMin", &r.LinealFactorMin)
	positiveInt("upLosses", &r.UpLosses)
	positiveInt("rembOnConnect", &r.RembOnConnect)
	positive("exponentialFactor", &r.ExponentialFactor)
	positive("linealFactorGrade", &r.LinealFactorGrade)
	positive("decrementFactor", &r.DecrementFactor)
	positive("thresholdFactor", &r.ThresholdFactor)
	return r
}

// baseRtpDefaults are the initial properties of every RTP endpoint, from KMS's defaults and the
// module configuration.
func (d *definer) baseRtpDefaults() map[string]any {
	return map[string]any{
		"minVideoRecvBandwidth": 0,
		"minVideoSendBandwidth": 100,
		"maxVideoSendBandwidth": 500,
		"maxAudioRecvBandwidth": 0,
		"maxVideoRecvBandwidth": 0,
		"mediaState":            "DISCONNECTED",
		"connectionState":       "DISCONNECTED",
		"mtu":                   d.cfg.Modules.BaseRtpEndpoint.MTU,
	}
}
