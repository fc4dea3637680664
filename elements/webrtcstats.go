package elements

import (
	"strconv"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/endpoints/webrtc"
)

// webRtcStats encodes a WebRtcEndpoint's statistics as getStats returns them: statsId -> Stats
// subclass. The endpoint's own entry (EndpointStats) carries no latency figures: KMS only measures
// them with the pipeline's latencyStats on, and we do not measure them yet.
func webRtcStats(id string, st webrtc.Stats) map[string]any {
	ts := st.Timestamp.UnixMilli()
	out := map[string]any{}
	put := func(typ, statsType, sid string, f map[string]any) {
		f["id"], f["type"], f["timestampMillis"] = sid, statsType, ts
		out[sid] = &api.Register{Type: typ, Fields: f}
	}
	transportID := ""
	if st.Transport != nil {
		transportID = st.Transport.ID
	}
	rtp := func(s webrtc.RTPStats, remote bool) map[string]any {
		return map[string]any{
			"ssrc": strconv.FormatUint(uint64(s.SSRC), 10), "associateStatsId": "", "isRemote": remote,
			"mediaTrackId": s.Kind, "transportId": transportID, "codecId": s.CodecID,
			"firCount": int64(s.FIRs), "pliCount": int64(s.PLIs), "nackCount": int64(s.NACKs), "sliCount": int64(0),
			"remb": int64(s.REMB), "packetsLost": s.PacketsLost, "fractionLost": s.FractionLost,
		}
	}
	for _, s := range st.Inbound {
		f := rtp(s, false)
		f["packetsReceived"], f["bytesReceived"], f["jitter"] = int64(s.Packets), int64(s.Bytes), s.Jitter
		put("RTCInboundRTPStreamStats", "inboundrtp", s.ID, f)
	}
	for _, s := range st.Outbound {
		f := rtp(s, false)
		f["packetsSent"], f["bytesSent"] = int64(s.Packets), int64(s.Bytes)
		f["targetBitrate"], f["roundTripTime"] = s.TargetBitrate, s.RoundTripTime
		put("RTCOutboundRTPStreamStats", "outboundrtp", s.ID, f)
	}
	for _, c := range st.Codecs {
		put("RTCCodec", "codec", c.ID, map[string]any{"payloadType": int64(c.PayloadType), "codec": c.MimeType,
			"clockRate": int64(c.ClockRate), "channels": int64(c.Channels), "parameters": c.Fmtp})
	}
	for _, p := range st.Pairs {
		put("RTCIceCandidatePairStats", "candidatepair", p.ID, map[string]any{
			"transportId": p.TransportID, "localCandidateId": p.LocalID, "remoteCandidateId": p.RemoteID,
			"state": p.State, "priority": int64(p.Priority), "nominated": p.Nominated,
			"writable": p.State == "succeeded", "readable": p.State == "succeeded",
			"bytesSent": int64(p.BytesSent), "bytesReceived": int64(p.BytesReceived), "roundTripTime": p.RoundTripTime,
			"availableOutgoingBitrate": p.AvailableOutgoingBitrate, "availableIncomingBitrate": p.AvailableIncomingBitrate,
		})
	}
	if t := st.Transport; t != nil {
		put("RTCTransportStats", "transport", t.ID, map[string]any{
			"bytesSent": int64(t.BytesSent), "bytesReceived": int64(t.BytesReceived), "rtcpTransportStatsId": "",
			"activeConnection": t.Active, "selectedCandidatePairId": t.SelectedPairID,
			"localCertificateId": t.LocalCertID, "remoteCertificateId": t.RemoteCertID,
		})
	}
	for _, c := range st.Channels {
		put("RTCDataChannelStats", "datachannel", c.ID, map[string]any{
			"label": c.Label, "protocol": c.Protocol, "datachannelid": int64(c.ChannelID), "state": c.State,
			"messagesSent": int64(c.MessagesSent), "bytesSent": int64(c.BytesSent),
			"messagesReceived": int64(c.MessagesReceived), "bytesReceived": int64(c.BytesReceived),
		})
	}
	put("EndpointStats", "endpoint", id+"_endpoint", map[string]any{"inputLatency": []any{}, "E2ELatency": []any{}})
	return out
}
