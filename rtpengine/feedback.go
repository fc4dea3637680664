package rtpengine

import (
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtcp"
)

// Feedback routes what a peer says in RTCP to what it is about: keyframe requests, NACKs and report
// blocks to the sender of the stream we send it, REMB (for the whole session) to the video sender,
// sender reports to the statistics of the stream it sends us. Nil fields are streams there are not.
type Feedback struct {
	Sender  *media.Sender // the stream the peer receives from us
	Video   *media.Sender // what the peer's REMB limits
	Inbound *ReceiveStats // the stream the peer sends us
}

// Serve handles a compound packet that arrived at now; bye tells that the peer said BYE.
func (f Feedback) Serve(pkts []rtcp.Packet, now time.Time) (bye bool) {
	s := f.Sender
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication:
			if s != nil {
				s.CountPLI()
				s.RequestKeyframe()
			}
		case *rtcp.FullIntraRequest:
			if s != nil {
				s.CountFIR()
				s.RequestKeyframe()
			}
		case *rtcp.TransportLayerNack:
			if s != nil {
				s.HandleNACK(p)
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			if f.Video != nil {
				f.Video.OnREMB(uint64(p.Bitrate))
			}
		case *rtcp.ReceiverReport:
			f.reports(p.Reports, now)
		case *rtcp.SenderReport:
			if f.Inbound != nil {
				f.Inbound.OnSenderReport(p.NTPTime, now)
			}
			f.reports(p.Reports, now)
		case *rtcp.Goodbye:
			bye = true
		}
	}
	return bye
}

// reports gives the sender the report blocks about its stream (loss, jitter, round trip).
func (f Feedback) reports(blocks []rtcp.ReceptionReport, now time.Time) {
	if f.Sender == nil {
		return
	}
	ssrc := f.Sender.SSRC()
	for _, r := range blocks {
		if r.SSRC == ssrc {
			f.Sender.OnReceiverReport(r, now)
		}
	}
}
