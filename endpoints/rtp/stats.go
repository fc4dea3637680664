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
		s.recvMu.Lock()
		if s.recv && s.started {
			in := endpoints.RTPStats{Kind: kind, SSRC: s.remoteSSRC, Packets: uint64(s.received), Bytes: s.receivedBytes,
				REMB: s.rembSent.Load()}
			expected := s.cycles + uint32(s.maxSeq) - uint32(s.baseSeq) + 1
			in.PacketsLost = int64(expected) - int64(s.received)
			if s.recvRate > 0 {
				in.Jitter = s.jitter / float64(s.recvRate)
			}
			inbound = append(inbound, in)
		}
		s.recvMu.Unlock()
		if !s.send {
			continue
		}
		s.outMu.Lock()
		out := endpoints.RTPStats{Kind: kind, SSRC: s.localSSRC, Packets: uint64(s.sentPackets), Bytes: uint64(s.sentOctets),
			REMB: s.remb.Load()}
		s.outMu.Unlock()
		outbound = append(outbound, out)
	}
	return inbound, outbound
}
