package testpeer

import (
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// Reports keeps the RTCP reports a peer got from the server about video: the last sender report on
// the video it receives, with what had arrived when it came, and the last reception report on the
// video it sends.
type Reports struct {
	mu sync.Mutex
	// sr came at srAt; the last video packet before it had RTP timestamp lastTS and came at lastAt;
	// packets and bytes (payload) of video had arrived by then.
	sr       *rtcp.SenderReport
	srAt     time.Time
	atSR     arrived // what had arrived when sr came
	arrived  arrived
	rr       *rtcp.ReceptionReport
	srs, rrs int
}

// arrived is the video received so far: the last packet's RTP timestamp and arrival, packets and
// payload bytes.
type arrived struct {
	lastTS         uint32
	lastAt         time.Time
	packets, bytes int64
}

// SenderReport is the last sender report received on the video stream, when it came, the RTP
// timestamp and arrival time of the last video packet before it, and the video packets and
// payload bytes received by then; nil before any.
func (r *Reports) SenderReport() (sr *rtcp.SenderReport, at time.Time, lastTS uint32, lastAt time.Time, packets, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sr, r.srAt, r.atSR.lastTS, r.atSR.lastAt, r.atSR.packets, r.atSR.bytes
}

// ReceptionReport is the last report block on the video the peer sends, and how many came.
func (r *Reports) ReceptionReport() (*rtcp.ReceptionReport, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rr, r.rrs
}

// received notes a video packet.
func (r *Reports) received(ts uint32, payload int, now time.Time) {
	r.mu.Lock()
	a := &r.arrived
	a.lastTS, a.lastAt = ts, now
	a.packets++
	a.bytes += int64(payload)
	r.mu.Unlock()
}

// fromServer notes the report blocks on the stream of SSRC ssrc (the video the peer sends).
func (r *Reports) fromServer(pkt rtcp.Packet, ssrc uint32) {
	var blocks []rtcp.ReceptionReport
	switch p := pkt.(type) {
	case *rtcp.ReceiverReport:
		blocks = p.Reports
	case *rtcp.SenderReport:
		blocks = p.Reports
	}
	for i := range blocks {
		if blocks[i].SSRC == ssrc {
			r.mu.Lock()
			b := blocks[i]
			r.rr = &b
			r.rrs++
			r.mu.Unlock()
		}
	}
}

// readReceiverRTCP reads the server's RTCP about the video the peer receives: its sender reports.
func (p *Peer) readReceiverRTCP(rcv *webrtc.RTPReceiver) {
	for {
		pkts, _, err := rcv.ReadRTCP()
		if err != nil {
			return
		}
		now := time.Now()
		for _, pkt := range pkts {
			if sr, ok := pkt.(*rtcp.SenderReport); ok {
				r := &p.Reports
				r.mu.Lock()
				r.sr, r.srAt, r.atSR = sr, now, r.arrived
				r.srs++
				r.mu.Unlock()
			}
		}
	}
}
