package webrtc

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/rtpengine"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// incoming is one track the peer sends us.
type incoming struct {
	t      media.Type
	ssrc   uint32
	codec  webrtc.RTPCodecParameters
	src    *media.Source
	rx     *rtpengine.Receiver
	twccID uint8
	remb   *rtpengine.RembTarget // video: the REMB the peer gets for it
}

// addIncoming registers a new incoming track; its source keeps packets to serve NACKs when video.
func (e *Endpoint) addIncoming(remote *webrtc.TrackRemote, t media.Type, src *media.Source, r *webrtc.RTPReceiver) *incoming {
	c := remote.Codec()
	in := &incoming{t: t, ssrc: uint32(remote.SSRC()), codec: c, src: src, rx: rtpengine.NewReceiver(c.ClockRate)}
	if r != nil {
		for _, h := range r.GetParameters().HeaderExtensions {
			if h.URI == sdp.TransportCCURI {
				in.twccID = uint8(h.ID)
			}
		}
	}
	if t == media.Video {
		src.EnableCache()
	}
	e.mu.Lock()
	if t == media.Video {
		s := e.settings
		in.remb = rtpengine.NewRembTarget(s.Remb, s.MinVideoRecvBandwidth, s.MaxVideoRecvBandwidth)
	}
	e.incoming = append(e.incoming, in)
	fb := e.fb
	e.mu.Unlock()
	if fb != nil && in.twccID != 0 {
		fb.twccOn.Store(true)
	}
	if fb != nil && (t == media.Video || in.twccID != 0) {
		fb.wake() // a first REMB at once, as KMS sends rembOnConnect; TWCC ticks from now
	}
	return in
}

// readTrack moves packets from the network to the graph and finds what to NACK. The buffer and the
// packet are reused: the source's inputs do not keep them. It reads pion's track until the direct
// receive path takes the track's SSRCs (directrx.go), then the track's ring, and pion again if
// that path stops.
func (e *Endpoint) readTrack(remote *webrtc.TrackRemote, src *media.Source, in *incoming) {
	buf := make([]byte, 1500)
	var p rtp.Packet
	e.mu.Lock()
	fb, direct := e.fb, e.direct
	e.mu.Unlock()
	r := trackReader{e: e, remote: remote, src: src, in: in, fb: fb, direct: direct}
	r.nackPkt = []rtcp.Packet{&r.nack}
	r.nack.Nacks = r.nackPairs[:0]
	for {
		if r.ring != nil && !r.draining {
			pkt, arrival, ok := r.ring.next()
			if !ok {
				r.ring, r.done = nil, true // the path stopped: pion's for good
				continue
			}
			if p.Unmarshal(pkt) == nil {
				r.accept(&p, arrival)
			}
			r.ring.release()
			r.bindLateRTX()
			continue
		}
		n, _, err := remote.Read(buf)
		if err != nil {
			if r.draining && isTimeout(err) {
				r.draining = false
				_ = remote.SetReadDeadline(time.Time{})
				continue
			}
			return
		}
		rxCounts.pion.Add(1)
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		r.accept(&p, time.Now().UnixNano())
		r.bind()
	}
}

// rxDrain is how long a track's reader keeps reading pion once its SSRCs are bound to the direct
// path: what pion's goroutines still carry arrives within it.
const rxDrain = 20 * time.Millisecond

// trackReader is the state of readTrack.
type trackReader struct {
	e        *Endpoint
	remote   *webrtc.TrackRemote
	src      *media.Source
	in       *incoming
	fb       *feedbackLoop
	direct   *directSRTP
	ring     *rxRing // the direct path's, once bound
	draining bool    // bound, and pion's leftovers are still read
	done     bool    // the direct path stopped: it is not tried again
	rtx      bool    // the repair SSRC is bound too
	count    uint32
	// the NACK the reader sends, reused: its items are in nackPairs unless more are needed at once
	nack      rtcp.TransportLayerNack
	nackPkt   []rtcp.Packet
	nackPairs [32]rtcp.NackPair
}

// accept gives one packet to the RTP engine and the graph.
func (r *trackReader) accept(p *rtp.Packet, now int64) {
	in, fb := r.in, r.fb
	if in.twccID != 0 && fb != nil {
		if ext := p.GetExtension(in.twccID); len(ext) >= 2 {
			fb.twcc.Record(in.ssrc, uint16(ext[0])<<8|uint16(ext[1]), now)
		}
	}
	restart := in.rx.Push(p.SequenceNumber, p.Timestamp, len(p.Payload), now)
	r.src.WriteRTP(p)
	if in.t != media.Video {
		return
	}
	seqs, gaveUp := in.rx.Due(now)
	if len(seqs) > 0 && fb != nil {
		r.nack.MediaSSRC, r.nack.Nacks = in.ssrc, rtpengine.AppendNackPairs(r.nack.Nacks[:0], seqs)
		fb.write(r.nackPkt...) // marshalled at once: the reader's to reuse
	}
	if gaveUp || restart {
		r.src.RequestKeyframe() // hopeless loss: the decoder needs a new start
	}
}

// bind moves the track to the direct receive path once it runs; pion's leftovers are read first,
// for rxDrain.
func (r *trackReader) bind() {
	if r.ring != nil || r.done || r.direct == nil {
		return
	}
	rtxSSRC := uint32(r.remote.RtxSSRC())
	roc := r.in.rx.Stats.HighestSeq.Load() >> 16
	r.ring = r.direct.rx.bind(r.in.ssrc, rtxSSRC, uint8(r.remote.PayloadType()), roc, r.in.t == media.Video)
	if r.ring != nil {
		r.rtx = rtxSSRC != 0
		r.draining = true
		_ = r.remote.SetReadDeadline(time.Now().Add(rxDrain))
	}
}

// bindLateRTX binds a repair SSRC pion learned after the media SSRC was bound (rid simulcast
// names it in its packets' rrid), looked for every 128 packets.
func (r *trackReader) bindLateRTX() {
	r.count++
	if r.rtx || r.count%128 != 0 {
		return
	}
	if rtxSSRC := uint32(r.remote.RtxSSRC()); rtxSSRC != 0 {
		r.rtx = r.direct.rx.bindRTX(r.ring, rtxSSRC, r.in.ssrc, uint8(r.remote.PayloadType()))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readReceiverRTCP takes the peer's RTCP about a stream it sends us: its sender reports, which our
// reception reports return (LSR, DLSR) for the peer's round-trip time. Read, too, so that pion does
// not keep it buffered.
func (e *Endpoint) readReceiverRTCP(r *webrtc.RTPReceiver, rid string, in *incoming) {
	defer e.wg.Done()
	buf := make([]byte, 1500)
	fb := rtpengine.Feedback{Inbound: &in.rx.Stats}
	var rd rtpengine.RTCPReader
	for {
		var n int
		var err error
		if rid != "" {
			n, _, err = r.ReadSimulcast(buf, rid)
		} else {
			n, _, err = r.Read(buf)
		}
		if err != nil {
			return
		}
		if pkts, err := rd.Read(buf[:n]); err == nil {
			fb.Serve(pkts, time.Now())
		}
	}
}

// senderFeedback serves what the peer says about a stream we send it.
func (e *Endpoint) senderFeedback(s *media.Sender, pkts []rtcp.Packet) {
	rtpengine.Feedback{Sender: s, Video: e.senders[media.Video]}.Serve(pkts, time.Now())
}

// feedbackLoop sends what we say to the peer: TWCC feedback every feedbackInterval (publishers'
// send-side estimation), and every reportInterval the RTCP reports (SR for what we send, reception
// reports for what it sends us) and REMB (what its sinks can take). It runs on a timer, not on a
// goroutine of its own: between ticks an endpoint holds no stack for it (issue 11's memory bound),
// and a tick's deep write path (interceptors, SRTP) grows a pooled goroutine's stack, not one kept.
type feedbackLoop struct {
	e    *Endpoint
	pc   *webrtc.PeerConnection
	twcc *rtpengine.TWCC
	ssrc uint32 // ours in receiver reports when we send nothing

	// timerMu guards timer and closed; it is a leaf lock, so that close may be called under e.mu
	// while a tick, which takes e.mu, is under way.
	timerMu sync.Mutex
	timer   *time.Timer
	closed  bool
	// ticking is held by a tick: one at a time, and wait waits for the last.
	ticking     sync.Mutex
	forceReport atomic.Bool // wake: the reports go with the next tick, which comes at once
	// twccOn: an incoming track carries transport-cc, so ticks come every feedbackInterval; without
	// one (a viewer), every reportInterval, when there is something to send.
	twccOn atomic.Bool

	// the ticks' own: when the reports were last sent, and their packets, reused (WriteRTCP
	// marshals them at once)
	lastReport time.Time
	outs       []*rtpengine.Outbound
	blocks     []rtcp.ReceptionReport
	pkts       []rtcp.Packet
	srs        [2]rtcp.SenderReport // audio, video
	rr         rtcp.ReceiverReport
	rembs      []rtcp.ReceiverEstimatedMaximumBitrate
	rembSSRCs  []uint32
}

// reportInterval is KMS's RTCP interval, at which its RembLocal updates (and linealFactorGrade's
// default assumes); feedbackInterval is how often the TWCC feedback goes.
const (
	reportInterval   = 500 * time.Millisecond
	feedbackInterval = 100 * time.Millisecond
)

// startFeedback starts the loop's ticks; the caller holds e.mu.
func (e *Endpoint) startFeedback(pc *webrtc.PeerConnection) {
	var b [4]byte
	_, _ = rand.Read(b[:])
	fb := &feedbackLoop{e: e, pc: pc, twcc: rtpengine.NewTWCC(time.Now().UnixNano()), ssrc: binary.BigEndian.Uint32(b[:])}
	for _, in := range e.incoming {
		if in.twccID != 0 {
			fb.twccOn.Store(true)
		}
	}
	e.fb = fb
	fb.timerMu.Lock()
	fb.timer = time.AfterFunc(feedbackInterval, fb.tick)
	fb.timerMu.Unlock()
}

// close stops the ticks without waiting for one under way (the caller may hold e.mu, which a tick
// takes); wait does, outside e.mu.
func (f *feedbackLoop) close() {
	f.timerMu.Lock()
	f.closed = true
	f.timer.Stop()
	f.timerMu.Unlock()
}

func (f *feedbackLoop) wait() {
	f.ticking.Lock()
	f.ticking.Unlock() //nolint:staticcheck // an empty critical section: waiting is the point
}

// rearm schedules the next tick after d, unless closed.
func (f *feedbackLoop) rearm(d time.Duration) {
	f.timerMu.Lock()
	if !f.closed {
		f.timer.Reset(d)
	}
	f.timerMu.Unlock()
}

func (f *feedbackLoop) wake() {
	f.forceReport.Store(true)
	f.rearm(0)
}

func (f *feedbackLoop) write(pkts ...rtcp.Packet) {
	if err := f.pc.WriteRTCP(pkts); err != nil && !errors.Is(err, net.ErrClosed) {
		f.e.log.Debug("cannot send RTCP", "err", err)
	}
}

func (f *feedbackLoop) tick() {
	f.ticking.Lock()
	defer f.ticking.Unlock()
	f.timerMu.Lock()
	closed := f.closed
	f.timerMu.Unlock()
	if closed {
		return
	}
	if fbs := f.twcc.Feedback(); len(fbs) > 0 {
		f.write(fbs...)
	}
	if f.forceReport.Swap(false) || time.Since(f.lastReport) >= reportInterval {
		f.lastReport = time.Now()
		if pkts := f.reports(f.lastReport); len(pkts) > 0 {
			f.write(pkts...)
		}
	}
	if f.twccOn.Load() {
		f.rearm(feedbackInterval)
	} else {
		f.rearm(reportInterval)
	}
}

// reports is the periodic compound: a sender report per stream we send (the first carries the
// reception reports), else a receiver report, and a REMB per video stream the peer sends us. The
// packets are the loop's own, valid until the next call.
func (f *feedbackLoop) reports(now time.Time) []rtcp.Packet {
	e := f.e
	e.mu.Lock()
	list := e.incoming
	outs := f.outs[:0]
	for _, t := range [...]media.Type{media.Audio, media.Video} {
		if tr := e.tracks[t]; tr != nil {
			if o := tr.out.Load(); o != nil {
				outs = append(outs, o)
			}
		}
	}
	e.mu.Unlock()
	f.outs = outs
	blocks := f.blocks[:0]
	for _, in := range list {
		blocks = append(blocks, in.rx.Stats.ReportBlock(in.ssrc, now))
	}
	f.blocks = blocks
	pkts := f.pkts[:0]
	for i, o := range outs {
		if o.FillSenderReport(now, blocks, &f.srs[i]) {
			pkts = append(pkts, &f.srs[i])
			blocks = nil
		}
	}
	if len(blocks) > 0 {
		f.rr = rtcp.ReceiverReport{SSRC: f.ssrc, Reports: blocks}
		pkts = append(pkts, &f.rr)
	}
	if len(f.rembs) < len(list) {
		f.rembs = make([]rtcp.ReceiverEstimatedMaximumBitrate, len(list))
		f.rembSSRCs = make([]uint32, len(list))
	}
	for i, in := range list {
		if in.remb != nil {
			target := in.remb.Next(now, &in.rx.Stats, in.src.SinkBitrate())
			f.rembSSRCs[i] = in.ssrc
			f.rembs[i] = rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(target), SSRCs: f.rembSSRCs[i : i+1]}
			pkts = append(pkts, &f.rembs[i])
		}
	}
	f.pkts = pkts
	return pkts
}
