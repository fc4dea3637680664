package rtpengine

import (
	"time"

	"github.com/pion/rtcp"
)

// ntpEpochOffset is the seconds from the NTP epoch (1900) to the Unix epoch.
const ntpEpochOffset = 2208988800

// NTPTime is t as a 64-bit NTP timestamp, as sender reports carry it.
func NTPTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return secs<<32 | frac
}

// OnSenderReport records the stream's sender report (its 64-bit NTP time) that arrived at now: the
// next reception reports return it (LSR, DLSR) so that the sender can measure the round trip.
func (s *ReceiveStats) OnSenderReport(ntp uint64, now time.Time) {
	s.lastSR.Store(uint32(ntp >> 16))
	s.lastSRAt.Store(now.UnixNano())
}

// ReportBlock is the reception report of the stream with SSRC ssrc at now (RFC 3550 6.4.1). It
// closes the loss interval (Interval), so one report a period makes the fraction lost.
func (s *ReceiveStats) ReportBlock(ssrc uint32, now time.Time) rtcp.ReceptionReport {
	fraction := s.Interval()
	lost := int64(s.Expected.Load()) - int64(s.Packets.Load())
	lost = max(min(lost, 0x7fffff), -0x800000) // 24 bits, signed
	b := rtcp.ReceptionReport{SSRC: ssrc, FractionLost: fraction, TotalLost: uint32(lost) & 0xffffff,
		LastSequenceNumber: s.HighestSeq.Load(), Jitter: s.Jitter.Load()}
	if at := s.lastSRAt.Load(); at != 0 {
		b.LastSenderReport = s.lastSR.Load()
		b.Delay = uint32(now.Sub(time.Unix(0, at)).Seconds() * 65536)
	}
	return b
}
