package webrtc

import (
	"strings"
	"time"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/media"
	"github.com/pion/webrtc/v4"
)

// Stats is what getStats reports of a WebRtcEndpoint, typed; the object layer encodes it. As KMS:
// RTP streams, and with data channels the channels and the peer connection's counts; no ICE,
// transport or codec entries (KMS has none).
type Stats struct {
	Timestamp time.Time
	Inbound   []RTPStats // what the peer sends us
	Outbound  []RTPStats // what we send the peer
	Channels  []DataChannelStats
	// Session is the peer connection (RTCPeerConnectionStats), with data channels only.
	Session *SessionStats
}

// RTPStats is one RTP stream, inbound or outbound.
type RTPStats = endpoints.RTPStats

// SessionStats counts the data channels of the peer connection.
type SessionStats struct{ Opened, Closed uint64 }

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
	for _, in := range list {
		if !want(in.t) {
			continue
		}
		rs := &in.rx.Stats
		s := RTPStats{
			Kind: kindOf(in.t), SSRC: in.ssrc, Codec: in.codec.MimeType,
			Packets: rs.Packets.Load(), Bytes: rs.Bytes.Load(), PacketsLost: rs.Lost(),
			FractionLost: float64(rs.LastFraction.Load()) / 256,
			NACKs:        rs.NACKs.Load(), PLIs: rs.PLIs.Load(), REMB: rs.REMB.Load(),
			TargetBitrate: float64(rs.TargetBitrate.Load()), Retransmitted: rs.Recovered.Load(),
			NACKedPackets: rs.NACKedPackets.Load(),
		}
		if in.codec.ClockRate > 0 {
			s.Jitter = float64(rs.Jitter.Load()) / float64(in.codec.ClockRate)
		}
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
			Kind: kindOf(t), SSRC: ssrc, Codec: snd.BoundCodec().MimeType, Packets: packets, Bytes: bytes,
			PacketsLost: ss.PacketsLost.Load(), FractionLost: float64(ss.FractionLost.Load()) / 256,
			NACKs: ss.NACKs.Load(), PLIs: ss.PLIs.Load(), FIRs: ss.FIRs.Load(), REMB: ss.REMB.Load(),
			TargetBitrate: float64(target), RoundTripTime: time.Duration(ss.RTT.Load()).Seconds(),
			Retransmitted: ss.Retransmitted.Load(), RetransmitBytes: ss.RetransmitBytes.Load(),
			RetransmitMissed: ss.RetransmitMissed.Load(), NACKedPackets: ss.NACKedPackets.Load(),
			BitrateDropped: ss.BitrateDropped.Load(), LagDropped: ss.LagDropped.Load(),
		}
		st.Outbound = append(st.Outbound, s)
	}
	return st, pc
}

func (e *Endpoint) pionStats(pc *webrtc.PeerConnection, only *media.Type, st *Stats) {
	want := func(t media.Type) bool { return only == nil || *only == t }
	e.mu.Lock()
	dataChannels := e.settings.DataChannels
	e.mu.Unlock()
	report := pc.GetStats()
	for _, v := range report {
		switch v := v.(type) {
		case webrtc.PeerConnectionStats:
			if dataChannels && want(media.Data) {
				st.Session = &SessionStats{Opened: uint64(v.DataChannelsOpened), Closed: uint64(v.DataChannelsClosed)}
			}
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
