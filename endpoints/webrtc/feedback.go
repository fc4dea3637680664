package webrtc

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/interceptor/pkg/twcc"
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
	rx     *media.Receiver
	twccID uint8
	// local estimates what the peer can send (KMS's RembLocal, driven by rembParams); until it has
	// measured anything the peer is asked for rembOnConnect.
	local *media.RembLocal
	est   uint64 // its last estimate, bps; 0: none yet
}

// addIncoming registers a new incoming track; its source keeps packets to serve NACKs when video.
func (e *Endpoint) addIncoming(remote *webrtc.TrackRemote, t media.Type, src *media.Source, r *webrtc.RTPReceiver) *incoming {
	c := remote.Codec()
	in := &incoming{t: t, ssrc: uint32(remote.SSRC()), codec: c, src: src, rx: media.NewReceiver(c.ClockRate)}
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
	in.local = media.NewRembLocal(e.settings.Remb, e.settings.MaxVideoRecvBandwidth)
	e.incoming = append(e.incoming, in)
	fb := e.fb
	e.mu.Unlock()
	if fb != nil && t == media.Video {
		fb.wake() // a first REMB at once, as KMS sends rembOnConnect
	}
	return in
}

// readTrack moves packets from the network to the graph and finds what to NACK. The buffer and the
// packet are reused: the source's inputs do not keep them.
func (e *Endpoint) readTrack(remote *webrtc.TrackRemote, src *media.Source, in *incoming) {
	buf := make([]byte, 1500)
	var p rtp.Packet
	video := in.t == media.Video
	e.mu.Lock()
	fb := e.fb
	e.mu.Unlock()
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		now := time.Now().UnixNano()
		if in.twccID != 0 && fb != nil {
			if ext := p.GetExtension(in.twccID); len(ext) >= 2 {
				fb.record(in.ssrc, uint16(ext[0])<<8|uint16(ext[1]), now)
			}
		}
		restart := in.rx.Push(p.SequenceNumber, p.Timestamp, len(p.Payload), now)
		src.WriteRTP(&p)
		if !video {
			continue
		}
		seqs, gaveUp := in.rx.Due(now)
		if len(seqs) > 0 && fb != nil {
			fb.write(&rtcp.TransportLayerNack{MediaSSRC: in.ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)})
		}
		if gaveUp || restart {
			src.RequestKeyframe() // hopeless loss: the decoder needs a new start
		}
	}
}

// senderFeedback serves what the peer says about a stream we send it.
func (e *Endpoint) senderFeedback(s *media.Sender, pkts []rtcp.Packet) {
	now := time.Now()
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication:
			s.CountPLI()
			s.RequestKeyframe()
		case *rtcp.FullIntraRequest:
			s.CountFIR()
			s.RequestKeyframe()
		case *rtcp.TransportLayerNack:
			s.HandleNACK(p)
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			// REMB is for the whole session: what video may use.
			e.senders[media.Video].OnREMB(uint64(p.Bitrate))
		case *rtcp.ReceiverReport:
			for _, r := range p.Reports {
				if r.SSRC == s.SSRC() {
					s.OnReceiverReport(r, now)
				}
			}
		case *rtcp.SenderReport:
			for _, r := range p.Reports {
				if r.SSRC == s.SSRC() {
					s.OnReceiverReport(r, now)
				}
			}
		}
	}
}

// feedbackLoop sends what we say to the peer about what it sends us: TWCC feedback every 100 ms
// (publishers' send-side estimation) and REMB every rembInterval (what its sinks can take).
type feedbackLoop struct {
	e    *Endpoint
	pc   *webrtc.PeerConnection
	mu   sync.Mutex
	twcc *twcc.Recorder
	base int64
	n    int // packets recorded since the last feedback
	stop chan struct{}
	kick chan struct{}
	once sync.Once
}

// rembInterval is KMS's RTCP interval, at which its RembLocal updates (and linealFactorGrade's
// default assumes).
const rembInterval = 500 * time.Millisecond

func (e *Endpoint) startFeedback(pc *webrtc.PeerConnection) {
	fb := &feedbackLoop{e: e, pc: pc, twcc: twcc.NewRecorder(0), base: time.Now().UnixNano(),
		stop: make(chan struct{}), kick: make(chan struct{}, 1)}
	e.fb = fb
	e.wg.Add(1)
	go fb.run()
}

func (f *feedbackLoop) close() { f.once.Do(func() { close(f.stop) }) }

func (f *feedbackLoop) wake() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *feedbackLoop) record(ssrc uint32, seq uint16, now int64) {
	f.mu.Lock()
	f.twcc.Record(ssrc, seq, (now-f.base)/1000)
	f.n++
	f.mu.Unlock()
}

func (f *feedbackLoop) write(p rtcp.Packet) {
	if err := f.pc.WriteRTCP([]rtcp.Packet{p}); err != nil && !errors.Is(err, net.ErrClosed) {
		f.e.log.Debug("cannot send RTCP", "err", err)
	}
}

func (f *feedbackLoop) run() {
	defer f.e.wg.Done()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastREMB time.Time
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
		case <-f.kick:
			lastREMB = time.Time{}
		}
		f.mu.Lock()
		var fbs []rtcp.Packet
		if f.n > 0 {
			fbs = f.twcc.BuildFeedbackPacket()
			f.n = 0
		}
		f.mu.Unlock()
		if len(fbs) > 0 {
			if err := f.pc.WriteRTCP(fbs); err != nil && !errors.Is(err, net.ErrClosed) {
				f.e.log.Debug("cannot send TWCC feedback", "err", err)
			}
		}
		if time.Since(lastREMB) >= rembInterval {
			lastREMB = time.Now()
			f.sendREMB()
		}
	}
}

// sendREMB tells the peer, per video track, the bitrate to send: KMS's RembLocal estimate of what
// arrives from it (rembOnConnect until it has measured), no more than the highest its sinks can take
// (the fastest viewer decides; slower ones get frames dropped at their sender), within
// minVideoRecvBandwidth (floor 30 kbps) and maxVideoRecvBandwidth.
func (f *feedbackLoop) sendREMB() {
	e := f.e
	e.mu.Lock()
	s := e.settings
	list := e.incoming
	e.mu.Unlock()
	now := time.Now()
	for _, in := range list {
		if in.t != media.Video {
			continue
		}
		st := &in.rx.Stats
		st.Interval() // the loss of this report interval, for getStats
		if est, ok := in.local.Update(now, st.Packets.Load(), st.Expected.Load(), st.Bytes.Load()); ok {
			in.est = est
		}
		target := in.est
		if target == 0 {
			target = uint64(s.Remb.RembOnConnect)
		}
		if sinks := in.src.SinkBitrate(); sinks > 0 {
			target = min(target, sinks)
		}
		target = media.ClampREMB(target, s.MinVideoRecvBandwidth, s.MaxVideoRecvBandwidth)
		st.REMB.Store(target)
		st.TargetBitrate.Store(target)
		f.write(&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(target), SSRCs: []uint32{in.ssrc}})
	}
}
