package webrtc

import (
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Simulcast offers come in two shapes, and of both one layer feeds the element's video pad (layer
// selection per viewer comes later):
//   - SSRC simulcast (a=ssrc-group:SIM, kurento-utils-js' `simulcast: true`): the offer pion sees
//     keeps the first SSRC of the group (legacy.go, oneTrack), which is what KMS forwards (its SDP
//     agent takes the first a=ssrc of the m-line, the group's first in kurento-utils' munging);
//     pion drops the packets of the other SSRCs.
//   - rid simulcast (a=rid, a=simulcast, browsers' sendEncodings): the layers are told apart by the
//     rid header extensions, which are negotiated for such offers only; the answer accepts the
//     layers, and the first a=rid of the offer is forwarded. KMS 7.3 does not negotiate a=simulcast
//     at all (its peers then send the first encoding only): the same layer reaches the viewers.
var simulcastExtensions = []string{sdp.SDESMidURI, sdp.SDESRTPStreamIDURI, sdp.SDESRepairRTPStreamIDURI}

// offersRidSimulcast tells whether an offer sends rid simulcast in some m-line.
func offersRidSimulcast(sd *sdp.SessionDescription) bool {
	for _, m := range sd.MediaDescriptions {
		if _, ok := m.Attribute("simulcast"); ok {
			return true
		}
	}
	return false
}

// registerSimulcastExtensions negotiates the header extensions pion needs to demultiplex rid layers.
func registerSimulcastExtensions(m *webrtc.MediaEngine) error {
	for _, uri := range simulcastExtensions {
		for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: uri}, kind); err != nil {
				return err
			}
		}
	}
	return nil
}

// forwardedLayer tells whether a track the peer sends is the simulcast layer the endpoint forwards:
// the first rid of its m-line, or any track that is not a rid layer.
func forwardedLayer(receiver *webrtc.RTPReceiver, remote *webrtc.TrackRemote) bool {
	if remote.RID() == "" || receiver == nil {
		return true
	}
	tracks := receiver.Tracks()
	return len(tracks) == 0 || tracks[0].RID() == remote.RID()
}
