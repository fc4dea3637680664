package rtp

import (
	"strings"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/media"
)

// Stats lists the endpoint's RTP streams for getStats: inbound, what the peer sends (once it has
// sent), and outbound, what we send; only (non-nil) one media type when asked.
func (e *Endpoint) Stats(only *media.Type) (inbound, outbound []endpoints.RTPStats) {
	e.mu.Lock()
	streams := append([]*stream(nil), e.streams...)
	e.mu.Unlock()
	for _, s := range streams {
		if only != nil && *only != s.kind {
			continue
		}
		kind := strings.ToLower(s.kind.String())
		if s.recv && s.receiving.Load() {
			rs := &s.rx.Stats
			in := endpoints.RTPStats{Kind: kind, SSRC: s.remoteSSRC.Load(), Packets: rs.Packets.Load(), Bytes: rs.Bytes.Load(),
				PacketsLost: rs.Lost(), FractionLost: float64(rs.LastFraction.Load()) / 256, REMB: rs.REMB.Load(),
				NACKs: rs.NACKs.Load(), NACKedPackets: rs.NACKedPackets.Load(), Retransmitted: rs.Recovered.Load()}
			if c := s.src.Codec(); c != nil && c.ClockRate > 0 {
				in.Jitter = float64(rs.Jitter.Load()) / float64(c.ClockRate)
			}
			inbound = append(inbound, in)
		}
		if !s.send {
			continue
		}
		packets, octets := s.sent.Counts()
		outbound = append(outbound, endpoints.RTPStats{Kind: kind, SSRC: s.localSSRC, Packets: uint64(packets), Bytes: uint64(octets),
			REMB: s.sender.Stats.REMB.Load()})
	}
	return inbound, outbound
}
