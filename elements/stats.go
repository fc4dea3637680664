package elements

import (
	"crypto/sha1"
	"fmt"
	"strconv"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
)

// statsReport builds a getStats answer as KMS's: statsId -> Stats subclass, the element's own entry
// under its object id, each other entry under an id that stays the same between calls.
type statsReport struct {
	owner string
	ts    int64
	out   map[string]any
}

func newStatsReport(o objects.Object, at time.Time) *statsReport {
	id, own := objects.OwnStats(o)
	return &statsReport{owner: o.ID(), ts: at.UnixMilli(), out: map[string]any{id: own}}
}

// statsID is a UUID-shaped id derived from the owner and what the entry describes (KMS gives each
// RTP source and data channel a UUID).
func (r *statsReport) statsID(what string) string {
	h := sha1.Sum([]byte(r.owner + "/" + what))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func (r *statsReport) put(typ, statsType, what string, f map[string]any) {
	id := r.statsID(what)
	f["id"], f["type"], f["timestampMillis"] = id, statsType, r.ts
	r.out[id] = &api.Register{Type: typ, Fields: f}
}

// rtp adds the RTP streams, with KMS's fields: fractionLost in 1/256 as RTCP carries it; the ids
// of associated entries are empty (KMS sends none of those entries). mediaTrackId names the media
// type, which KMS leaves empty, so that an application can tell the streams apart.
func (r *statsReport) rtp(inbound, outbound []endpoints.RTPStats) {
	common := func(s endpoints.RTPStats) map[string]any {
		return map[string]any{
			"ssrc": strconv.FormatUint(uint64(s.SSRC), 10), "associateStatsId": "", "isRemote": false,
			"mediaTrackId": s.Kind, "transportId": "", "codecId": "",
			"firCount": int64(s.FIRs), "pliCount": int64(s.PLIs), "nackCount": int64(s.NACKs), "sliCount": int64(0),
			"remb": int64(s.REMB), "packetsLost": s.PacketsLost, "fractionLost": s.FractionLost * 256,
		}
	}
	for _, s := range inbound {
		f := common(s)
		f["packetsReceived"], f["bytesReceived"], f["jitter"] = int64(s.Packets), int64(s.Bytes), s.Jitter
		r.put("RTCInboundRTPStreamStats", "inboundrtp", fmt.Sprintf("in/%s/%d", s.Kind, s.SSRC), f)
	}
	for _, s := range outbound {
		f := common(s)
		f["packetsSent"], f["bytesSent"] = int64(s.Packets), int64(s.Bytes)
		f["targetBitrate"], f["roundTripTime"] = s.TargetBitrate, s.RoundTripTime
		f["packetsDiscarded"] = int64(s.LagDropped) // not sent: the peer did not keep up
		r.put("RTCOutboundRTPStreamStats", "outboundrtp", fmt.Sprintf("out/%s/%d", s.Kind, s.SSRC), f)
	}
}

// webRtcStats encodes a WebRtcEndpoint's statistics: its own EndpointStats, the RTP streams and, with
// data channels, each channel and the peer connection's RTCPeerConnectionStats.
func webRtcStats(o objects.Object, st webrtc.Stats) map[string]any {
	r := newStatsReport(o, st.Timestamp)
	r.rtp(st.Inbound, st.Outbound)
	for _, c := range st.Channels {
		r.put("RTCDataChannelStats", "datachannel", "dc/"+c.ID, map[string]any{
			"label": c.Label, "protocol": c.Protocol, "datachannelid": int64(c.ChannelID), "state": c.State,
			"messagesSent": int64(c.MessagesSent), "bytesSent": int64(c.BytesSent),
			"messagesReceived": int64(c.MessagesReceived), "bytesReceived": int64(c.BytesReceived),
		})
	}
	if s := st.Session; s != nil {
		r.put("RTCPeerConnectionStats", "session", "session", map[string]any{
			"dataChannelsOpened": int64(s.Opened), "dataChannelsClosed": int64(s.Closed),
		})
	}
	return r.out
}

// mediaTypeArg reads getStats' optional mediaType: nil for all.
func mediaTypeArg(a objects.Args) (*media.Type, error) {
	if !a.Has("mediaType") {
		return nil, nil
	}
	t, err := media.ParseType(a.String("mediaType"))
	if err != nil {
		return nil, kerr.New(kerr.IllegalParam, "%v", err)
	}
	return &t, nil
}
