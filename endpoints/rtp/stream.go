package rtp

import (
	"errors"
	"math"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// KeySoftLimit is how many packets one SRTP master key protects before OnKeySoftLimit is raised:
// libsrtp's soft limit (2^16 packets before the 2^48 hard limit), which KMS reports.
var KeySoftLimit uint64 = 1<<48 - 1<<16

// decryptReportInterval spaces the reports of SRTP failures of one stream.
const decryptReportInterval = 5 * time.Second

const maxPacket = 1500

// Retransmission limits: a NACK is a small packet that asks for many big ones, so what one peer can
// get resent is bounded per packet and in bytes. The byte budget earns one byte for every two bytes
// of media sent (retransmissions never exceed half the stream's own rate over time) and banks at most
// retransmitBurst, for a loss burst.
const (
	maxResendsPerPacket = 2
	retransmitBurst     = 256 << 10
)

// stream is the transport of one negotiated m-line: its sockets, the peer's addresses, SRTP state,
// RTCP statistics, and the pads it connects to the graph.
type stream struct {
	ep       *Endpoint
	kind     media.Type
	rtpConn  *net.UDPConn
	rtcpConn *net.UDPConn // nil with rtcp-mux
	mux      bool
	latch    bool // learn the peer's addresses from what it sends (comedia, or no usable c=)

	remoteRTP  atomic.Pointer[netip.AddrPort]
	remoteRTCP atomic.Pointer[netip.AddrPort]
	// A latching stream learns its peer from the first valid RTP packet, and again only after that
	// peer was silent for MediaTimeout: one spoofed packet cannot redirect a running stream.
	learnt atomic.Bool
	// rtpHost is the host of the first valid RTP packet: RTCP is taken from it too (a peer may
	// send from another of its addresses than the one its SDP names).
	rtpHost atomic.Pointer[netip.Addr]
	// hostAddrs are this machine's addresses when the SDP names a loopback address: such a peer
	// is on this machine and may send from any of them (ffmpeg's first RTCP comes before its RTP).
	hostAddrs    []netip.Addr
	lastFromPeer atomic.Int64 // unix nanos of the last valid RTP packet from the learnt peer

	send, recv bool
	fb         feedback
	localSSRC  uint32
	cname      string
	sender     *media.Sender // send only
	src        *media.Source // recv only
	recvCodecs [128]*media.Codec
	recvRate   uint32
	sendClock  uint32

	// SRTP: one context per reading goroutine, one for everything we send (under outMu).
	inRTP, inRTCP *srtp.Context
	lastFailure   atomic.Int64 // unix nanos of the last reported decrypt failure
	failures      atomic.Uint64

	outMu         sync.Mutex
	out           *srtp.Context
	outBuf        []byte
	encBuf        []byte
	sentPackets   uint32
	sentOctets    uint32
	lastTS        uint32
	lastSentAt    time.Time
	protected     uint64
	softLimitSent bool
	cache         *packetCache
	rtxBudget     int // bytes that may still be retransmitted
	firSeq        uint8

	recvMu        sync.Mutex
	remoteSSRC    uint32
	started       bool
	baseSeq       uint16
	maxSeq        uint16
	cycles        uint32
	received      uint32
	receivedBytes uint64 // payload, for getStats
	expectedPrior uint32
	receivedPrior uint32
	jitter        float64
	lastTransit   int64
	lastSR        uint32 // middle 32 bits of the NTP time of the last SR
	lastSRAt      time.Time
	remb          atomic.Uint64 // bps the peer asks for, 0 if none

	// video: the estimate of what the peer can send us (report goroutine only), and the REMB last sent
	local    *media.RembLocal
	est      uint64
	rembSent atomic.Uint64
}

func isRTCP(b []byte) bool { return len(b) >= 2 && b[1] >= 192 && b[1] <= 223 }

// readLoop is the one goroutine of a socket: RTP (and RTCP when multiplexed, or on the RTCP socket).
func (s *stream) readLoop(conn *net.UDPConn, rtcpOnly bool) {
	defer s.ep.wg.Done()
	buf := make([]byte, maxPacket+100)
	dec := make([]byte, 0, maxPacket+100)
	var p rtp.Packet
	var h rtp.Header
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		data := buf[:n]
		if rtcpOnly || isRTCP(data) {
			s.handleRTCP(data, from, dec)
			continue
		}
		s.handleRTP(data, from, dec, &p, &h)
	}
}

func unmapped(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func (s *stream) learn(dst *atomic.Pointer[netip.AddrPort], from netip.AddrPort) {
	if cur := dst.Load(); cur == nil || *cur != from {
		dst.Store(&from)
	}
}

func sameHost(a *netip.AddrPort, from netip.AddrPort) bool {
	return a != nil && a.Addr() == from.Addr()
}

// fromPeer tells whether a datagram comes from the peer's host: the one the SDP named, the one
// the stream learnt, or the one its RTP comes from. Ports are not compared: peers behind NAT send
// RTCP from other ports.
func (s *stream) fromPeer(from netip.AddrPort) bool {
	if h := s.rtpHost.Load(); h != nil && *h == from.Addr() || slices.Contains(s.hostAddrs, from.Addr()) {
		return true
	}
	return sameHost(s.remoteRTP.Load(), from) || sameHost(s.remoteRTCP.Load(), from)
}

// mayLearnFrom tells whether a latching stream takes RTP from this address: before it learnt its
// peer, from that peer, or from anyone once that peer went silent.
func (s *stream) mayLearnFrom(from netip.AddrPort, now int64) bool {
	if !s.learnt.Load() {
		return true
	}
	if cur := s.remoteRTP.Load(); cur != nil && *cur == from {
		return true
	}
	return now-s.lastFromPeer.Load() > int64(MediaTimeout)
}

func (s *stream) handleRTP(data []byte, from netip.AddrPort, dec []byte, p *rtp.Packet, h *rtp.Header) {
	if len(data) < 12 || data[0]>>6 != 2 {
		return
	}
	from = unmapped(from)
	now := time.Now()
	if s.latch && !s.mayLearnFrom(from, now.UnixNano()) {
		return
	}
	if s.inRTP != nil {
		plain, err := s.inRTP.DecryptRTP(dec, data, h)
		if err != nil {
			s.decryptFailed(err)
			return
		}
		data = plain
	}
	if p.Unmarshal(data) != nil {
		return
	}
	c := s.recvCodecs[p.PayloadType&0x7f]
	if c == nil {
		return
	}
	if s.latch {
		// Learnt only from a packet that authenticated and carries a negotiated codec.
		s.learn(&s.remoteRTP, from)
		if s.mux {
			s.learn(&s.remoteRTCP, from)
		} else if !sameHost(s.remoteRTCP.Load(), from) {
			s.learn(&s.remoteRTCP, netip.AddrPortFrom(from.Addr(), from.Port()+1)) // until its RTCP comes
		}
		s.learnt.Store(true)
		s.lastFromPeer.Store(now.UnixNano())
	} else if s.rtpHost.Load() == nil {
		host := from.Addr()
		s.rtpHost.CompareAndSwap(nil, &host)
	}
	if !s.recv {
		return
	}
	if cur := s.src.Codec(); cur != c {
		s.src.SetCodec(c)
	}
	s.ep.lastActivity.Store(now.UnixNano())
	s.track(p, now)
	s.src.WriteRTP(p)
}

// track keeps the reception statistics of RFC 3550 A.3 and A.8, and asks for lost packets.
func (s *stream) track(p *rtp.Packet, now time.Time) {
	var lost []uint16
	s.recvMu.Lock()
	seq := p.SequenceNumber
	if !s.started || p.SSRC != s.remoteSSRC {
		s.started, s.remoteSSRC = true, p.SSRC
		s.baseSeq, s.maxSeq, s.cycles, s.received = seq, seq, 0, 0
		s.expectedPrior, s.receivedPrior, s.jitter, s.lastTransit = 0, 0, 0, 0
	} else if d := seq - s.maxSeq; d != 0 && d < 0x8000 {
		if seq < s.maxSeq {
			s.cycles += 1 << 16
		}
		if d > 1 && d <= 64 && s.fb.nack {
			for i := uint16(1); i < d; i++ {
				lost = append(lost, s.maxSeq+i)
			}
		}
		s.maxSeq = seq
	}
	s.received++
	s.receivedBytes += uint64(len(p.Payload))
	if s.recvRate > 0 {
		arrival := int64(float64(now.UnixNano()) * float64(s.recvRate) / 1e9)
		transit := arrival - int64(p.Timestamp)
		if s.lastTransit != 0 {
			d := float64(transit - s.lastTransit)
			s.jitter += (math.Abs(d) - s.jitter) / 16
		}
		s.lastTransit = transit
	}
	ssrc := s.remoteSSRC
	s.recvMu.Unlock()
	if lost != nil {
		s.writeRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
			SenderSSRC: s.localSSRC, MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(lost),
		}})
	}
}

func (s *stream) decryptFailed(err error) {
	n := s.failures.Add(1)
	now := time.Now().UnixNano()
	last := s.lastFailure.Load()
	if last != 0 && now-last < int64(decryptReportInterval) || !s.lastFailure.CompareAndSwap(last, now) {
		return
	}
	s.ep.log.Warn("SRTP decryption failed", "media", s.kind.String(), "failures", n, "err", err)
	s.ep.el.Emit(DecryptFailed{Type: s.kind, Failures: n, Reason: err.Error()})
}

func (s *stream) handleRTCP(data []byte, from netip.AddrPort, dec []byte) {
	if len(data) < 8 || data[0]>>6 != 2 {
		return
	}
	from = unmapped(from)
	if !s.fromPeer(from) {
		return // feedback from anyone else would make us send (NACK answers) where it says
	}
	if s.latch && !s.mux && s.learnt.Load() {
		s.learn(&s.remoteRTCP, from)
	}
	if s.inRTCP != nil {
		plain, err := s.inRTCP.DecryptRTCP(dec, data, nil)
		if err != nil {
			s.decryptFailed(err)
			return
		}
		data = plain
	}
	pkts, err := rtcp.Unmarshal(data)
	if err != nil {
		return
	}
	bye := false
	for _, pkt := range pkts {
		switch pkt := pkt.(type) {
		case *rtcp.SenderReport:
			s.recvMu.Lock()
			s.lastSR, s.lastSRAt = uint32(pkt.NTPTime>>16), time.Now()
			s.recvMu.Unlock()
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			if s.send && s.sender != nil {
				s.sender.RequestKeyframe()
			}
		case *rtcp.TransportLayerNack:
			s.serveNack(pkt)
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			s.remb.Store(uint64(pkt.Bitrate))
			if s.send && s.sender != nil && s.kind == media.Video {
				s.sender.OnREMB(uint64(pkt.Bitrate))
			}
		case *rtcp.Goodbye:
			bye = true
		}
	}
	s.ep.rtcpReceived(bye)
}

// keyframeRequester asks the peer for a keyframe with the feedback it accepted: PLI, else FIR.
func (s *stream) keyframeRequester() func() {
	if !s.fb.pli && !s.fb.fir {
		return nil
	}
	return func() {
		s.recvMu.Lock()
		ssrc := s.remoteSSRC
		s.recvMu.Unlock()
		if s.fb.pli {
			s.writeRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: s.localSSRC, MediaSSRC: ssrc}})
			return
		}
		s.outMu.Lock()
		s.firSeq++
		n := s.firSeq
		s.outMu.Unlock()
		s.writeRTCP([]rtcp.Packet{&rtcp.FullIntraRequest{SenderSSRC: s.localSSRC, MediaSSRC: ssrc,
			FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: n}}}})
	}
}

// writeRTP is the network write of the element's media.Sender: marshal into a reused buffer,
// protect, send. No allocation.
func (s *stream) writeRTP(h *rtp.Header, payload []byte) error {
	dst := s.remoteRTP.Load()
	if dst == nil {
		return nil
	}
	s.outMu.Lock()
	defer s.outMu.Unlock()
	pad := 0
	if h.Padding {
		pad = int(h.PaddingSize)
	}
	n, err := h.MarshalTo(s.outBuf)
	if err != nil || n+len(payload)+pad > len(s.outBuf) {
		return errPacketTooLarge
	}
	n += copy(s.outBuf[n:], payload)
	if pad > 0 {
		clear(s.outBuf[n : n+pad])
		n += pad
		s.outBuf[n-1] = byte(pad)
	}
	pkt := s.outBuf[:n]
	if s.cache != nil {
		s.cache.store(h.SequenceNumber, pkt)
	}
	if s.out != nil {
		enc, err := s.out.EncryptRTP(s.encBuf[:0], pkt, h)
		if err != nil {
			return err
		}
		s.encBuf = enc[:0]
		pkt = enc
		s.protectedOne()
	}
	s.sentPackets++
	s.sentOctets += uint32(len(payload))
	s.rtxBudget = min(s.rtxBudget+len(pkt)/2, retransmitBurst)
	s.lastTS, s.lastSentAt = h.Timestamp, time.Now()
	_, err = s.rtpConn.WriteToUDPAddrPort(pkt, *dst)
	return err
}

var errPacketTooLarge = errors.New("RTP packet larger than the send buffer")

// protectedOne counts a packet protected with our key and raises the soft limit once; the caller holds outMu.
func (s *stream) protectedOne() {
	s.protected++
	if s.protected >= KeySoftLimit && !s.softLimitSent {
		s.softLimitSent = true
		s.ep.el.Emit(KeySoftLimitReached{Type: s.kind})
	}
}

// writeRTCP sends a compound packet to the peer's RTCP address (its RTP address with rtcp-mux).
func (s *stream) writeRTCP(pkts []rtcp.Packet) {
	dst := s.remoteRTCP.Load()
	if dst == nil {
		return
	}
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		return
	}
	s.outMu.Lock()
	if s.out != nil {
		enc, err := s.out.EncryptRTCP(nil, raw, nil)
		if err != nil {
			s.outMu.Unlock()
			return
		}
		raw = enc
		s.protectedOne()
	}
	s.outMu.Unlock()
	conn := s.rtcpConn
	if conn == nil {
		conn = s.rtpConn
	}
	_, _ = conn.WriteToUDPAddrPort(raw, *dst)
}

// serveNack resends what the peer lost from the packets we sent, each packet at most
// maxResendsPerPacket times and within the retransmission byte budget.
func (s *stream) serveNack(n *rtcp.TransportLayerNack) {
	if s.cache == nil {
		return
	}
	dst := s.remoteRTP.Load()
	if dst == nil {
		return
	}
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			s.outMu.Lock()
			pkt := s.cache.take(seq, s.rtxBudget)
			if pkt != nil {
				s.rtxBudget -= len(pkt)
			}
			if pkt != nil && s.out != nil {
				enc, err := s.out.EncryptRTP(s.encBuf[:0], pkt, nil)
				if err != nil {
					pkt = nil
				} else {
					s.encBuf = enc[:0]
					pkt = enc
					s.protectedOne()
				}
			}
			if pkt != nil {
				_, _ = s.rtpConn.WriteToUDPAddrPort(pkt, *dst)
			}
			s.outMu.Unlock()
		}
	}
}

const ntpEpochOffset = 2208988800

func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := uint64(t.Nanosecond()) * (1 << 32) / 1e9
	return secs<<32 | frac
}

// report is the periodic RTCP compound: SR when we sent since the start, else RR; reception
// report of the peer's stream; SDES CNAME; REMB when negotiated.
func (s *stream) report(set Settings) {
	now := time.Now()
	var blocks []rtcp.ReceptionReport
	var received, expected64, bytes uint64
	s.recvMu.Lock()
	ssrc := s.remoteSSRC
	if s.started {
		ext := s.cycles + uint32(s.maxSeq)
		expected := ext - uint32(s.baseSeq) + 1
		received, expected64, bytes = uint64(s.received), uint64(expected), s.receivedBytes
		lost := int64(expected) - int64(s.received)
		lost = max(min(lost, 0x7fffff), -0x800000)
		expInt := expected - s.expectedPrior
		recvInt := s.received - s.receivedPrior
		s.expectedPrior, s.receivedPrior = expected, s.received
		var fraction uint8
		if lostInt := int64(expInt) - int64(recvInt); expInt > 0 && lostInt > 0 {
			fraction = uint8(lostInt << 8 / int64(expInt))
		}
		var dlsr uint32
		if !s.lastSRAt.IsZero() {
			dlsr = uint32(now.Sub(s.lastSRAt).Seconds() * 65536)
		}
		blocks = append(blocks, rtcp.ReceptionReport{
			SSRC: ssrc, FractionLost: fraction, TotalLost: uint32(lost) & 0xffffff,
			LastSequenceNumber: ext, Jitter: uint32(s.jitter), LastSenderReport: s.lastSR, Delay: dlsr,
		})
	}
	s.recvMu.Unlock()

	var pkts []rtcp.Packet
	s.outMu.Lock()
	if s.sentPackets > 0 {
		rtpTime := s.lastTS + uint32(now.Sub(s.lastSentAt).Seconds()*float64(s.sendClock))
		pkts = append(pkts, &rtcp.SenderReport{SSRC: s.localSSRC, NTPTime: ntpTime(now), RTPTime: rtpTime,
			PacketCount: s.sentPackets, OctetCount: s.sentOctets, Reports: blocks})
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: s.localSSRC, Reports: blocks})
	}
	s.outMu.Unlock()
	pkts = append(pkts, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.localSSRC, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: s.cname}},
	}}})
	if s.fb.remb && s.local != nil && s.recv && ssrc != 0 {
		pkts = append(pkts, &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: s.localSSRC,
			Bitrate: float32(s.rembTarget(now, set, received, expected64, bytes)), SSRCs: []uint32{ssrc}})
	}
	s.writeRTCP(pkts)
}

// rembTarget is the REMB for the peer as WebRtcEndpoint computes it: the RembLocal estimate of what
// arrives (rembOnConnect before it has measured), no more than the element's sinks take, within
// min/maxVideoRecvBandwidth.
func (s *stream) rembTarget(now time.Time, set Settings, received, expected, bytes uint64) uint64 {
	if est, ok := s.local.Update(now, received, expected, bytes); ok {
		s.est = est
	}
	target := s.est
	if target == 0 {
		target = uint64(set.Remb.RembOnConnect)
	}
	if sinks := s.src.SinkBitrate(); sinks > 0 {
		target = min(target, sinks)
	}
	target = media.ClampREMB(target, set.MinVideoRecvBandwidth, set.MaxVideoRecvBandwidth)
	s.rembSent.Store(target)
	return target
}

// bye tells the peer we leave.
func (s *stream) bye() {
	s.writeRTCP([]rtcp.Packet{&rtcp.Goodbye{Sources: []uint32{s.localSSRC}}})
}

func (s *stream) close() {
	s.rtpConn.Close()
	if s.rtcpConn != nil {
		s.rtcpConn.Close()
	}
}

// packetCache keeps the last packets sent, by sequence number, to answer NACKs.
type packetCache struct {
	slots [256]struct {
		seq     uint16
		n       int
		valid   bool
		resends uint8
		buf     [maxPacket]byte
	}
}

func (c *packetCache) store(seq uint16, pkt []byte) {
	if len(pkt) > maxPacket {
		return
	}
	sl := &c.slots[seq%uint16(len(c.slots))]
	sl.seq, sl.n, sl.valid, sl.resends = seq, copy(sl.buf[:], pkt), true, 0
}

// take returns a packet to resend, nil when it is gone, was resent maxResendsPerPacket times, or is
// larger than budget bytes.
func (c *packetCache) take(seq uint16, budget int) []byte {
	sl := &c.slots[seq%uint16(len(c.slots))]
	if !sl.valid || sl.seq != seq || sl.resends >= maxResendsPerPacket || sl.n > budget {
		return nil
	}
	sl.resends++
	return sl.buf[:sl.n]
}
