package endpoints

// RTPStats is one RTP stream of an endpoint, inbound (what the peer sends us) or outbound (what we
// send it): RTCInboundRTPStreamStats / RTCOutboundRTPStreamStats of getStats.
type RTPStats struct {
	Kind              string // "audio" or "video"
	Codec             string // MIME type, "" before one is known
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
	LagDropped       uint64 // outbound: packets dropped because the writes to the peer did not keep up
}
