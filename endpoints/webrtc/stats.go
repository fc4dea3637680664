package webrtc

import (
	"fmt"
	"strings"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/webrtc/v4"
)

// Stats is what getStats reports of a WebRtcEndpoint, typed; the object layer encodes it.
type Stats struct {
	Timestamp time.Time
	Inbound   []RTPStats // what the peer sends us
	Outbound  []RTPStats // what we send the peer
	Pairs     []CandidatePairStats
	Transport *TransportStats
	Codecs    []CodecStats
	Channels  []DataChannelStats
}

// RTPStats is one RTP stream, inbound or outbound (RTCInboundRTPStreamStats / RTCOutboundRTPStreamStats).
type RTPStats struct {
	ID, Kind, CodecID string
	SSRC              uint32
	Packets, Bytes    uint64 // received or sent (payload bytes)
	PacketsLost       int64
	FractionLost      float64 // 0..1
	Jitter            float64 // seconds
	NACKs, PLIs, FIRs uint64  // inbound: sent to the peer; outbound: received from it
	REMB              uint64  // inbound: last sent; outbound: last received (bps)
	TargetBitrate     float64 // outbound: what the peer can take (bps); inbound: what we ask
	RoundTripTime     float64 // outbound, seconds
	// Retransmitted: outbound, packets sent again for the peer's NACKs; inbound, missing packets
	// that arrived after a NACK.
	Retransmitted    uint64
	RetransmitBytes  uint64
	RetransmitMissed uint64
	NACKedPackets    uint64
	BitrateDropped   uint64 // outbound: packets dropped because the peer's bandwidth was short
}

// CandidatePairStats is the ICE candidate pair (RTCIceCandidatePairStats).
type CandidatePairStats struct {
	ID, TransportID, LocalID, RemoteID, State string
	Priority                                  uint64
	Nominated                                 bool
	BytesSent, BytesReceived                  uint64
	RoundTripTime                             float64
	AvailableOutgoingBitrate                  float64
	AvailableIncomingBitrate                  float64
}

// TransportStats is the DTLS transport (RTCTransportStats).
type TransportStats struct {
	ID, SelectedPairID, LocalCertID, RemoteCertID string
	BytesSent, BytesReceived                      uint64
	Active                                        bool
}

// CodecStats is a codec in use (RTCCodec).
type CodecStats struct {
	ID          string
	PayloadType uint8
	MimeType    string
	ClockRate   uint32
	Channels    uint16
	Fmtp        string
}

// DataChannelStats is a data channel (RTCDataChannelStats).
type DataChannelStats struct {
	ID, Label, Protocol, State      string
	ChannelID                       int
	MessagesSent, BytesSent         uint64
	MessagesReceived, BytesReceived uint64
}

func kindOf(t media.Type) string { return strings.ToLower(t.String()) }

// Stats collects the endpoint's statistics; only (non-nil) one media type when asked. Counters come
// from the media layer's atomics; ICE, DTLS and data channels from pion.
func (e *Endpoint) Stats(only *media.Type) Stats {
	st, pc := e.rtpStats(only)
	if pc == nil {
		return st
	}
	e.pionStats(pc, only, &st)
	return st
}

// RTPStats is Stats without what pion reports (ICE, DTLS, data channels): only atomic loads, cheap
// enough for every metrics scrape.
func (e *Endpoint) RTPStats() Stats {
	st, _ := e.rtpStats(nil)
	return st
}

func (e *Endpoint) rtpStats(only *media.Type) (Stats, *webrtc.PeerConnection) {
	st := Stats{Timestamp: time.Now()}
	e.mu.Lock()
	pc := e.pc
	list := append([]*incoming(nil), e.incoming...)
	tracks := map[media.Type]*localTrack{}
	for k, v := range e.tracks {
		tracks[k] = v
	}
	e.mu.Unlock()
	want := func(t media.Type) bool { return only == nil || *only == t }
	codecs := map[string]CodecStats{}
	addCodec := func(c CodecStats) string {
		c.ID = fmt.Sprintf("RTCCodec_%d_%s", c.PayloadType, strings.ReplaceAll(c.MimeType, "/", "_"))
		codecs[c.ID] = c
		return c.ID
	}
	for _, in := range list {
		if !want(in.t) {
			continue
		}
		rs := &in.rx.Stats
		s := RTPStats{
			ID:   fmt.Sprintf("RTCInboundRTP%sStream_%d", strings.Title(kindOf(in.t)), in.ssrc), //nolint:staticcheck
			Kind: kindOf(in.t), SSRC: in.ssrc,
			Packets: rs.Packets.Load(), Bytes: rs.Bytes.Load(), PacketsLost: rs.Lost(),
			FractionLost: float64(rs.LastFraction.Load()) / 256,
			NACKs:        rs.NACKs.Load(), PLIs: rs.PLIs.Load(), REMB: rs.REMB.Load(),
			TargetBitrate: float64(rs.TargetBitrate.Load()), Retransmitted: rs.Recovered.Load(),
			NACKedPackets: rs.NACKedPackets.Load(),
		}
		if in.codec.ClockRate > 0 {
			s.Jitter = float64(rs.Jitter.Load()) / float64(in.codec.ClockRate)
		}
		s.CodecID = addCodec(CodecStats{PayloadType: uint8(in.codec.PayloadType), MimeType: in.codec.MimeType,
			ClockRate: in.codec.ClockRate, Channels: in.codec.Channels, Fmtp: in.codec.SDPFmtpLine})
		st.Inbound = append(st.Inbound, s)
	}
	for _, t := range []media.Type{media.Audio, media.Video} {
		if _, ok := tracks[t]; !ok || !want(t) {
			continue
		}
		snd := e.senders[t]
		ssrc := snd.SSRC()
		if ssrc == 0 {
			continue
		}
		packets, bytes, _ := snd.Counters()
		ss := &snd.Stats
		measured, target := snd.Bandwidth()
		if measured > 0 && (target == 0 || measured < target) {
			target = measured
		}
		s := RTPStats{
			ID:   fmt.Sprintf("RTCOutboundRTP%sStream_%d", strings.Title(kindOf(t)), ssrc), //nolint:staticcheck
			Kind: kindOf(t), SSRC: ssrc, Packets: packets, Bytes: bytes,
			PacketsLost: ss.PacketsLost.Load(), FractionLost: float64(ss.FractionLost.Load()) / 256,
			NACKs: ss.NACKs.Load(), PLIs: ss.PLIs.Load(), FIRs: ss.FIRs.Load(), REMB: ss.REMB.Load(),
			TargetBitrate: float64(target), RoundTripTime: time.Duration(ss.RTT.Load()).Seconds(),
			Retransmitted: ss.Retransmitted.Load(), RetransmitBytes: ss.RetransmitBytes.Load(),
			RetransmitMissed: ss.RetransmitMissed.Load(), NACKedPackets: ss.NACKedPackets.Load(),
			BitrateDropped: ss.BitrateDropped.Load(),
		}
		if c := snd.BoundCodec(); c.MimeType != "" {
			s.CodecID = addCodec(CodecStats{PayloadType: snd.PayloadType(), MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels, Fmtp: c.Fmtp})
		}
		st.Outbound = append(st.Outbound, s)
	}
	for _, c := range codecs {
		st.Codecs = append(st.Codecs, c)
	}
	return st, pc
}

func (e *Endpoint) pionStats(pc *webrtc.PeerConnection, only *media.Type, st *Stats) {
	want := func(t media.Type) bool { return only == nil || *only == t }
	report := pc.GetStats()
	for _, v := range report {
		switch v := v.(type) {
		case webrtc.ICECandidatePairStats:
			if only != nil && *only == media.Data {
				continue
			}
			st.Pairs = append(st.Pairs, CandidatePairStats{
				ID: v.ID, TransportID: v.TransportID, LocalID: v.LocalCandidateID, RemoteID: v.RemoteCandidateID,
				State: pairState(v.State), Nominated: v.Nominated,
				BytesSent: v.BytesSent, BytesReceived: v.BytesReceived, RoundTripTime: v.CurrentRoundTripTime,
				AvailableOutgoingBitrate: v.AvailableOutgoingBitrate, AvailableIncomingBitrate: v.AvailableIncomingBitrate,
			})
		case webrtc.TransportStats:
			st.Transport = &TransportStats{ID: v.ID, SelectedPairID: v.SelectedCandidatePairID,
				LocalCertID: v.LocalCertificateID, RemoteCertID: v.RemoteCertificateID,
				BytesSent: v.BytesSent, BytesReceived: v.BytesReceived, Active: v.DTLSState == webrtc.DTLSTransportStateConnected}
		case webrtc.DataChannelStats:
			if !want(media.Data) {
				continue
			}
			id := -1
			if v.DataChannelIdentifier != 0 || v.Label != "" {
				id = int(v.DataChannelIdentifier)
			}
			st.Channels = append(st.Channels, DataChannelStats{ID: v.ID, Label: v.Label, Protocol: v.Protocol,
				State: v.State.String(), ChannelID: id, MessagesSent: uint64(v.MessagesSent), BytesSent: v.BytesSent,
				MessagesReceived: uint64(v.MessagesReceived), BytesReceived: v.BytesReceived})
		}
	}
}

// pairState maps pion's pair states onto RTCStatsIceCandidatePairState.
func pairState(s webrtc.StatsICECandidatePairState) string {
	switch s {
	case webrtc.StatsICECandidatePairStateFrozen:
		return "frozen"
	case webrtc.StatsICECandidatePairStateWaiting:
		return "waiting"
	case webrtc.StatsICECandidatePairStateInProgress:
		return "inprogress"
	case webrtc.StatsICECandidatePairStateFailed:
		return "failed"
	case webrtc.StatsICECandidatePairStateSucceeded:
		return "succeeded"
	}
	return "frozen"
}
