package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/rtpengine"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// epoch is the zero of every time stamp the tool takes (monotonic clock).
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

// newAPI makes the pion API all peers share: VP8 and Opus only, host candidates on one IPv4 address,
// no mDNS and no interceptors. Without a NACK interceptor the receivers never ask for retransmissions,
// so the loss they see is the loss of the server's forwarding, the same for both servers (the soak's
// receivers NACK by themselves: peer.withRepair). im, when not nil, impairs the clients' sockets.
func newAPI(clientIP string, im *testpeer.Impairment) (*webrtc.API, error) {
	ip := net.ParseIP(clientIP)
	if ip == nil || ip.To4() == nil {
		return nil, fmt.Errorf("client address %q: want an IPv4 address", clientIP)
	}
	m := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(ip.IsLoopback())
	se.SetIPFilter(func(a net.IP) bool { return a.Equal(ip) })
	// The clients' receive path is the tool's main cost: no replay check, and batched reads with
	// receive times (stampNet) instead of pion's ECN reads.
	se.DisableSRTPReplayProtection(true)
	se.DisableSRTCPReplayProtection(true)
	if im != nil {
		n, err := testpeer.ImpairedNet(*im)
		if err != nil {
			return nil, err
		}
		se.SetNet(n)
	} else {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, err
		}
		se.SetNet(stampNet{n})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})), nil
}

// stampNet hands pion the clients' UDP sockets as stampConns: read with recvmmsg and kernel receive
// times. pion asks for ECN (recvmsg with control messages nobody here reads) only on a bare
// *net.UDPConn, so it does not on these.
type stampNet struct{ *stdnet.Net }

func (n stampNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	u, ok := c.(*net.UDPConn)
	if err != nil || !ok {
		return c, err
	}
	sc, err := newStampConn(u)
	if err != nil {
		u.Close()
		return nil, err
	}
	return sc, nil
}

// ringSize is how many video packets a publisher remembers the send time of (≈ 20 s at 500 kb/s).
const ringSize = 4096

type sentPacket struct {
	seq atomic.Uint32
	fp  atomic.Uint64
	at  atomic.Int64 // Unix nanoseconds
	// where the payload is in the clip, and the timestamp, to send the packet again for a NACK
	frame, idx atomic.Int32
	ts         atomic.Uint32
}

// publisher sends the clip in real time on a peer's tracks: 30 video frames a second, each frame's
// packets in one burst as an encoder would, and one Opus packet every 20 ms (the pacer calls it). A
// PLI or FIR restarts the clip at its first frame, a keyframe: the clip is a loop, so the stream
// stays decodable. A NACK is answered with the packets asked for, as a browser's sender does.
type publisher struct {
	clip         *clip
	video, audio *webrtc.TrackLocalStaticRTP
	senders      [2]*webrtc.RTPSender // audio, video
	tx           directTx
	ring         [ringSize]sentPacket
	lastSeq      atomic.Uint32
	keyframe     atomic.Bool
	packets      atomic.Int64
	bytes        atomic.Int64
	keyframes    atomic.Int64
	frames       atomic.Int64 // video frames sent
	resent       atomic.Int64 // packets sent again for NACKs

	// the pacer's
	nextVideo, nextAudio time.Time
	vseq, aseq           uint16
	vts, ats             uint32
	frame, opus          int
	pkt                  rtp.Packet
}

// sendFrame sends the next video frame's packets. The send time kept for each is the wall clock's,
// as the kernel's receive times are (stampConn).
func (p *publisher) sendFrame() {
	if p.keyframe.Swap(false) || p.frame >= len(p.clip.frames) {
		p.frame = 0
	}
	f := &p.clip.frames[p.frame]
	if f.key {
		p.keyframes.Add(1)
	}
	pkt := &p.pkt
	for i, pl := range f.payloads {
		p.vseq++
		seq := p.vseq
		e := &p.ring[seq%ringSize]
		e.frame.Store(int32(p.frame))
		e.idx.Store(int32(i))
		e.ts.Store(p.vts)
		e.fp.Store(f.prints[i])
		e.at.Store(time.Now().UnixNano())
		e.seq.Store(uint32(seq)) // last: resend checks it before and after reading the rest
		p.lastSeq.Store(uint32(seq))
		pkt.Header = rtp.Header{Version: 2, Marker: i == len(f.payloads)-1, PayloadType: 96, SequenceNumber: seq, Timestamp: p.vts}
		pkt.Payload = pl
		if p.write(true) {
			p.packets.Add(1)
			p.bytes.Add(int64(len(pl) + 12))
		}
	}
	p.vts += 3000
	p.frame++
	p.frames.Add(1)
}

func (p *publisher) sendAudio() {
	p.aseq++
	pl := p.clip.audio[p.opus%len(p.clip.audio)]
	p.opus++
	p.pkt.Header = rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: p.aseq, Timestamp: p.ats}
	p.pkt.Payload = pl
	if p.write(false) {
		p.packets.Add(1)
		p.bytes.Add(int64(len(pl) + 12))
	}
	p.ats += 960
}

// resend sends a video packet again if it is still in the ring.
func (p *publisher) resend(seq uint16) {
	e := &p.ring[seq%ringSize]
	if e.seq.Load() != uint32(seq) {
		return
	}
	f, i, ts := int(e.frame.Load()), int(e.idx.Load()), e.ts.Load()
	if e.seq.Load() != uint32(seq) || f >= len(p.clip.frames) || i >= len(p.clip.frames[f].payloads) {
		return
	}
	pls := p.clip.frames[f].payloads
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == len(pls)-1, PayloadType: 96, SequenceNumber: seq, Timestamp: ts},
		Payload: pls[i]}
	var ok bool
	switch directMode(p.tx.mode.Load()) {
	case directOn:
		ok = p.tx.resend(&pkt)
	case directPion:
		ok = p.video.WriteRTP(&pkt) == nil
	}
	if ok {
		p.resent.Add(1)
	}
}

// write sends p.pkt on the video or the audio stream: queued in the pacer's batch on the direct
// path, else by pion. It reports whether the packet counts as sent.
func (p *publisher) write(video bool) bool {
	switch directMode(p.tx.mode.Load()) {
	case directOn:
		b := pace.batch
		buf, full := b.slot()
		if full {
			p.flush()
			buf, _ = b.slot()
		}
		p.tx.mu.Lock()
		out, err := p.tx.encrypt(buf, &p.pkt, video)
		p.tx.mu.Unlock()
		if err != nil {
			return false
		}
		b.add(len(out))
		rtpPaths.direct.Add(1)
		return true
	case directPion:
		rtpPaths.pion.Add(1)
		t := p.audio
		if video {
			t = p.video
		}
		return t.WriteRTP(&p.pkt) == nil
	}
	return true // not connected yet: dropped, as pion drops RTP before its SRTP starts
}

// flush sends what write queued on the direct path (the pacer's, after each publisher's turn).
func (p *publisher) flush() {
	if b := pace.batch; b.n > 0 {
		b.flush(p.tx.conn, p.tx.to)
	}
}

// streamStats counts one received track as RTCP receiver reports do: expected = extended highest
// sequence number - first + 1; lost = expected - received. Written by the track's reader only.
type streamStats struct {
	expected atomic.Int64
	received atomic.Int64

	started bool
	base    int64
	highest int64 // extended
}

func (s *streamStats) add(seq uint16) {
	if !s.started {
		s.started = true
		s.base, s.highest = int64(seq), int64(seq)
	} else {
		// Extend seq to the value nearest to the highest seen.
		ext := s.highest&^0xffff | int64(seq)
		if ext < s.highest-0x8000 {
			ext += 0x10000
		} else if ext > s.highest+0x8000 {
			ext -= 0x10000
		}
		if ext > s.highest {
			s.highest = ext
		}
	}
	s.expected.Store(s.highest - s.base + 1)
	s.received.Add(1)
}

// peer is one client PeerConnection. A peer sends (pub != nil), receives (ref: the publisher whose
// stream it expects back, for latency), or both.
type peer struct {
	pc  *webrtc.PeerConnection
	pub *publisher
	ref *publisher
	hst *histograms

	rxMu         sync.Mutex // what received counts: pion's track readers and the direct path
	video, audio streamStats
	frames       atomic.Int64
	latencyOK    atomic.Int64 // received video packets matched to their send time
	start        atomic.Int64 // nowNS when the answer was in: processOffer returned, Janus answered or took ours
	firstFrame   atomic.Int64 // nowNS of the first complete keyframe received, 0 = none
	first        frameCheck   // the reader's: is the first frame complete yet
	connected    chan struct{}
	failed       atomic.Bool
	connOnce     sync.Once
	stop         chan struct{}
	wg           sync.WaitGroup
	off          uint16 // received seq - sent seq, learned from fingerprints
	offKnown     bool

	// With repair (the soak), a receiver NACKs what it misses, as a browser does, and decodes in
	// a model of a jitter buffer and decoder: rx counts missing, recovered and given-up packets,
	// decoded the frames a decoder could show.
	repair  bool
	rx      *rtpengine.Receiver
	decoded atomic.Int64
}

func newPeer(api *webrtc.API, c *clip, send, receive bool, ref *publisher, h *histograms) (*peer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &peer{pc: pc, ref: ref, hst: h, connected: make(chan struct{}), stop: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			p.connOnce.Do(func() { close(p.connected) })
			if p.pub != nil {
				p.pub.tx.start(pc, p.pub.senders[1], p.pub.senders[0])
			}
			p.startRx()
		case webrtc.PeerConnectionStateFailed:
			p.failed.Store(true)
		}
	})
	dir := webrtc.RTPTransceiverDirectionRecvonly
	switch {
	case send && receive:
		dir = webrtc.RTPTransceiverDirectionSendrecv
	case send:
		dir = webrtc.RTPTransceiverDirectionSendonly
	}
	if send {
		p.pub = &publisher{clip: c}
		if receive && p.ref == nil {
			p.ref = p.pub
		}
		id := fmt.Sprintf("bench-%d", rand.Uint32())
		if p.pub.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", id); err != nil {
			pc.Close()
			return nil, err
		}
		if p.pub.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", id); err != nil {
			pc.Close()
			return nil, err
		}
		for i, tr := range []*webrtc.TrackLocalStaticRTP{p.pub.audio, p.pub.video} {
			t, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: dir})
			if err != nil {
				pc.Close()
				return nil, err
			}
			p.pub.senders[i] = t.Sender()
			p.wg.Add(1)
			go p.readRTCP(t.Sender(), tr == p.pub.video)
		}
	} else {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
				pc.Close()
				return nil, err
			}
		}
	}
	if receive {
		pc.OnTrack(p.onTrack)
	}
	return p, nil
}

// offer makes the offer with every (host) candidate in it: the servers' trickle is still received
// and applied, but the client sends none.
func (p *peer) offer() (string, error) {
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	done := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(o); err != nil {
		return "", err
	}
	<-done
	return p.pc.LocalDescription().SDP, nil
}

func (p *peer) answer(sdp string) error {
	return p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
}

// answerOffer answers a remote offer (Janus VideoRoom's to its subscribers, or a direct publisher's),
// with every host candidate in the answer.
func (p *peer) answerOffer(offer string) (string, error) {
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	done := webrtc.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	<-done
	return p.pc.LocalDescription().SDP, nil
}

func (p *peer) startMedia() {
	if p.pub != nil {
		pace.add(p.pub)
	}
}

// withRepair makes a receiving peer NACK lost video packets and model a decoder (see peer.repair).
// Call it before negotiating.
func (p *peer) withRepair() *peer {
	p.repair, p.rx = true, rtpengine.NewReceiver(90000)
	return p
}

func (p *peer) readRTCP(s *webrtc.RTPSender, video bool) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pkt := range pkts {
			p.pub.feedback(pkt, video)
		}
	}
}

// feedback acts on an RTCP packet for one of the publisher's streams: a PLI or FIR restarts the clip
// at a keyframe, a NACK of the video stream is answered.
func (p *publisher) feedback(pkt rtcp.Packet, video bool) {
	switch pkt := pkt.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		p.keyframe.Store(true)
	case *rtcp.TransportLayerNack:
		if video {
			for _, pair := range pkt.Nacks {
				for _, seq := range pair.PacketList() {
					p.resend(seq)
				}
			}
		}
	}
}

func (p *peer) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	buf := make([]byte, 1600)
	var pkt rtp.Packet
	var fm testpeer.FrameModel
	var arr *arrivals // the receive times of this peer's socket
	for i := 0; ; i++ {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		clock := time.Now()
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		if arr == nil && i%64 == 0 {
			arr = socketArrivals(r)
		}
		var in int64 // when it reached the socket, 0 = unknown
		if arr != nil {
			in, _ = arr.at(pkt.SSRC, pkt.SequenceNumber)
		}
		p.rxMu.Lock()
		p.received(&pkt, n, video, clock, in, &fm)
		p.rxMu.Unlock()
	}
}

// received counts one RTP packet of the stream and measures it: clock is when the tool's receive
// path handed it over, in when it reached the socket (Unix nanoseconds; 0: unknown). pion's track
// readers and the direct receive path (directRx) both call it, under rxMu. fm is the stream's decoder
// model (with repair).
func (p *peer) received(pkt *rtp.Packet, n int, video bool, clock time.Time, in int64, fm *testpeer.FrameModel) {
	now := int64(clock.Sub(epoch))
	if !video {
		p.audio.add(pkt.SequenceNumber)
		return
	}
	p.video.add(pkt.SequenceNumber)
	if p.repair {
		p.repairVideo(pkt.SSRC, pkt, fm, n)
	}
	if pkt.Marker {
		p.frames.Add(1)
	}
	if p.firstFrame.Load() == 0 && !p.repair { // with repair, the decoder model says (repairVideo)
		if p.first.complete(pkt) {
			p.firstFrame.Store(now)
		} else if pkt.Marker && now-p.first.pli >= int64(250*time.Millisecond) {
			// A frame it cannot show yet: ask for a keyframe, as a browser's receiver does.
			p.first.pli = now
			p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: pkt.SSRC}})
		}
	}
	at, ok := p.sendTime(pkt.SequenceNumber, pkt.Payload)
	if !ok {
		return
	}
	p.latencyOK.Add(1)
	p.hst.client.Load().add(clock.UnixNano() - at)
	if in != 0 {
		p.hst.latency.Load().add(in - at)
	}
}

// socketArrivals finds the receive times of the socket r's media comes in on, nil until ICE has
// chosen it (or when the socket is not a stampConn: the soak's impaired sockets).
func socketArrivals(r *webrtc.RTPReceiver) *arrivals {
	pair, err := r.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil
	}
	return arrivalsAt(pair.Local.Port)
}

// repairVideo asks for what is missing (NACK) and for a keyframe when the model cannot decode or the
// gap is beyond repair, and counts the decodable frames.
func (p *peer) repairVideo(ssrc uint32, pkt *rtp.Packet, fm *testpeer.FrameModel, size int) {
	now := time.Now()
	key := p.rx.Push(pkt.SequenceNumber, pkt.Timestamp, size, now.UnixNano())
	decoded, pli := fm.Push(pkt, now)
	p.decoded.Add(int64(decoded))
	if decoded > 0 {
		p.firstFrame.CompareAndSwap(0, nowNS())
	}
	var out []rtcp.Packet
	if seqs, _ := p.rx.Due(now.UnixNano()); len(seqs) > 0 {
		out = append(out, &rtcp.TransportLayerNack{MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)})
	}
	if key || pli {
		out = append(out, &rtcp.PictureLossIndication{MediaSSRC: ssrc})
	}
	if len(out) > 0 {
		p.pc.WriteRTCP(out)
	}
}

// sendTime finds when the packet was sent. The server rewrites SSRC, sequence numbers and timestamps
// (and strips header extensions), but not the payload, and within one stream its sequence offset is
// constant. So the offset is learned once by matching the payload's fingerprint against the
// publisher's recent packets, and then every packet is checked against the fingerprint at its slot.
func (p *peer) sendTime(seq uint16, payload []byte) (int64, bool) {
	if p.ref == nil {
		return 0, false
	}
	fp := fingerprint(payload)
	if p.offKnown {
		in := seq - p.off
		e := &p.ref.ring[in%ringSize]
		if e.seq.Load() == uint32(in) && e.fp.Load() == fp {
			return e.at.Load(), true
		}
	}
	last := uint16(p.ref.lastSeq.Load())
	for i := uint16(0); i < 1024; i++ { // newest first: the loop repeats payloads every few seconds
		in := last - i
		e := &p.ref.ring[in%ringSize]
		if e.seq.Load() == uint32(in) && e.fp.Load() == fp {
			p.off, p.offKnown = seq-in, true
			return e.at.Load(), true
		}
	}
	return 0, false
}

// frameCheck finds the first complete VP8 keyframe of a stream, the first frame a decoder can show:
// every packet from the start of partition 0 to the marker, in any order (a lossy link reorders, and
// retransmissions come late). It looks at each packet only until that frame is found. Until then the
// receiver asks for a keyframe after each frame it could not show (every 250 ms at most, pli: when it
// last did), as browsers do; the servers may or may not have asked already.
type frameCheck struct {
	pli      int64
	key      bool // a keyframe's start was seen: ts, start
	ts       uint32
	start    uint16
	end      uint16 // the marker's sequence number, once seen
	endKnown bool
	got      uint64 // bit i: packet start+i arrived
	vp8      codecs.VP8Packet
}

func (f *frameCheck) complete(pkt *rtp.Packet) bool {
	if _, err := f.vp8.Unmarshal(pkt.Payload); err == nil && f.vp8.S == 1 && f.vp8.PID == 0 &&
		len(f.vp8.Payload) > 0 && f.vp8.Payload[0]&1 == 0 && // P bit 0: a keyframe starts
		!(f.key && pkt.Timestamp == f.ts && pkt.SequenceNumber == f.start) { // (not its start again: a retransmission)
		f.key, f.ts, f.start, f.endKnown, f.got = true, pkt.Timestamp, pkt.SequenceNumber, false, 0
	} else if !f.key || pkt.Timestamp != f.ts {
		return false
	}
	off := pkt.SequenceNumber - f.start
	if off >= 64 { // before the start, or a keyframe larger than this tracks
		return false
	}
	f.got |= 1 << off
	if pkt.Marker {
		f.end, f.endKnown = pkt.SequenceNumber, true
	}
	n := f.end - f.start + 1
	if !f.endKnown || n > 64 {
		return false
	}
	want := ^uint64(0) >> (64 - n)
	return f.got&want == want
}

func (p *peer) close() {
	if p.pub != nil {
		pace.remove(p.pub)
	}
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.pc.Close()
	p.wg.Wait()
}
