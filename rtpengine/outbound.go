package rtpengine

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Outbound follows a stream we send, as its writer sees every packet go out: the counts and the
// last timestamp of its sender reports (RFC 3550 6.4.1), and, when limited, the byte budget of
// its retransmissions. Safe for concurrent use: media and retransmissions are written by
// different goroutines.
type Outbound struct {
	ssrc      uint32
	clockRate uint32

	mu      sync.Mutex
	started bool
	packets uint32
	octets  uint32 // payload bytes
	lastSeq uint16
	lastTS  uint32 // RTP timestamp of the newest frame sent, whose first packet left at lastAt (unix nanos)
	lastAt  int64
	// budget (bytes) is what retransmissions may still take when limited: it earns one byte for
	// every two bytes of new media and banks at most retransmitBurst, for a burst of loss.
	limited bool
	budget  int
}

// retransmitBurst is the most a retransmission budget banks.
const retransmitBurst = 256 << 10

// NewOutbound follows the stream of SSRC ssrc at the given clock rate.
func NewOutbound(ssrc, clockRate uint32) *Outbound {
	return &Outbound{ssrc: ssrc, clockRate: clockRate}
}

// LimitRetransmissions bounds what is sent again to half of what was sent (a NACK is a small packet
// that asks for many big ones: without a bound, an amplifier).
func (o *Outbound) LimitRetransmissions() {
	o.mu.Lock()
	o.limited = true
	o.mu.Unlock()
}

// SSRC is the stream's SSRC.
func (o *Outbound) SSRC() uint32 { return o.ssrc }

// Sent records a packet about to be written, of wire bytes in all. A packet not newer than the last
// one sent is a retransmission: it does not move the stream's timestamp, and false says the budget
// has no room for it (the caller drops it). The clock is read once a frame, on its first packet: the
// time its timestamp went out. Nothing is allocated.
func (o *Outbound) Sent(h *rtp.Header, payloadLen, wire int) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	fresh := !o.started || int16(h.SequenceNumber-o.lastSeq) > 0
	if !fresh && o.limited {
		if wire > o.budget {
			return false
		}
		o.budget -= wire
	}
	if fresh {
		if !o.started || h.Timestamp != o.lastTS {
			o.lastTS, o.lastAt = h.Timestamp, time.Now().UnixNano()
		}
		o.started, o.lastSeq = true, h.SequenceNumber
		o.budget = min(o.budget+wire/2, retransmitBurst)
	}
	o.packets++
	o.octets += uint32(payloadLen)
	return true
}

// Counts are the packets and payload bytes sent so far.
func (o *Outbound) Counts() (packets, octets uint32) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.packets, o.octets
}

// SenderReport is the stream's sender report at now, carrying blocks; false before anything was
// sent. Its RTP time is the newest packet's, advanced by the time since it went out, so that the
// peer maps both clocks onto each other (lip sync).
func (o *Outbound) SenderReport(now time.Time, blocks []rtcp.ReceptionReport) (*rtcp.SenderReport, bool) {
	sr := &rtcp.SenderReport{}
	return sr, o.FillSenderReport(now, blocks, sr)
}

// FillSenderReport is SenderReport into sr, for a caller that reuses its packets.
func (o *Outbound) FillSenderReport(now time.Time, blocks []rtcp.ReceptionReport, sr *rtcp.SenderReport) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.started {
		return false
	}
	elapsed := max(now.UnixNano()-o.lastAt, 0)
	rtpTime := o.lastTS + uint32(elapsed/1000*int64(o.clockRate)/1e6)
	*sr = rtcp.SenderReport{SSRC: o.ssrc, NTPTime: NTPTime(now), RTPTime: rtpTime,
		PacketCount: o.packets, OctetCount: o.octets, Reports: blocks}
	return true
}
