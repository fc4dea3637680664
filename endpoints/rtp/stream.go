package rtp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/rtpengine"
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

// stream is the transport of one negotiated m-line: its sockets, the peer's addresses, SRTP state,
// and the pads it connects to the graph. What RTP needs beyond moving packets (statistics, NACKs,
// reports, REMB, the peer's feedback) is rtpengine's.
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

	// SRTP: one context per reading goroutine, one for everything we send (under outMu).
	inRTP, inRTCP *srtp.Context
	lastFailure   atomic.Int64 // unix nanos of the last reported decrypt failure
	failures      atomic.Uint64

	outMu         sync.Mutex
	out           *srtp.Context
	outBuf        []byte
	encBuf        []byte
	protected     uint64
	softLimitSent bool
	firSeq        uint8

	// sent follows what we send (send only): sender reports, the retransmission budget.
	sent *rtpengine.Outbound
	// rx follows what the peer sends (RTP reader goroutine; its Stats are atomics), from the SSRC
	// in remoteSSRC once receiving.
	rx         *rtpengine.Receiver
	receiving  atomic.Bool
	remoteSSRC atomic.Uint32
	// remb is the REMB the peer gets for its video (report goroutine), nil when not negotiated.
	remb *rtpengine.RembTarget
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
	s.receive(p, now.UnixNano())
}

// receive hands a packet of the peer to the graph after the engine has followed it; with NACK
// negotiated it asks for what is missing, and for a keyframe when that is hopeless.
func (s *stream) receive(p *rtp.Packet, now int64) {
	if !s.receiving.Load() || p.SSRC != s.remoteSSRC.Load() {
		if s.receiving.Load() {
			s.rx.Restart() // a new SSRC: its sequence numbers start afresh
		}
		s.remoteSSRC.Store(p.SSRC)
		s.receiving.Store(true)
	}
	restart := s.rx.Push(p.SequenceNumber, p.Timestamp, len(p.Payload), now)
	s.src.WriteRTP(p)
	if !s.fb.nack {
		return
	}
	if seqs, gaveUp := s.rx.Due(now); len(seqs) > 0 || gaveUp || restart {
		if len(seqs) > 0 {
			s.writeRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
				SenderSSRC: s.localSSRC, MediaSSRC: p.SSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs),
			}})
		}
		if gaveUp || restart {
			s.src.RequestKeyframe() // hopeless loss: the decoder needs a new start
		}
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
	pkts, err := rtcp.Unmarshal(withoutTransportCC(data))
	if err != nil {
		return
	}
	s.ep.rtcpReceived(s.feedback().Serve(pkts, time.Now()))
}

// withoutTransportCC is a compound RTCP packet without its transport-wide congestion control
// feedback, which an RtpEndpoint never negotiates. pion spends ~5 ms and 1.1 MB (22,602
// allocations) on a 52-byte one that claims 12,336 received packets before it finds it short: a
// cheap way for a hostile peer to keep a core busy. It returns data itself when there is none.
func withoutTransportCC(data []byte) []byte {
	var out []byte // nil until a transport-cc packet is found
	off := 0
	for off+4 <= len(data) {
		n := 4 * (int(binary.BigEndian.Uint16(data[off+2:])) + 1)
		if off+n > len(data) {
			break // rtcp.Unmarshal rejects a length past the end before it looks at the type
		}
		tcc := data[off+1] == byte(rtcp.TypeTransportSpecificFeedback) && data[off]&0x1f == rtcp.FormatTCC
		switch {
		case tcc && out == nil:
			out = append(make([]byte, 0, len(data)), data[:off]...)
		case !tcc && out != nil:
			out = append(out, data[off:off+n]...)
		}
		off += n
	}
	if out == nil {
		return data
	}
	return append(out, data[off:]...)
}

// feedback routes the peer's RTCP: about what we send to our sender (NACKs answered from its
// source's cache within the retransmission budget), its sender reports to our receive statistics.
func (s *stream) feedback() rtpengine.Feedback {
	f := rtpengine.Feedback{Inbound: &s.rx.Stats}
	if s.send && s.sender != nil {
		f.Sender = s.sender
		if s.kind == media.Video {
			f.Video = s.sender
		}
	}
	return f
}

// keyframeRequester asks the peer for a keyframe with the feedback it accepted: PLI, else FIR.
func (s *stream) keyframeRequester() func() {
	if !s.fb.pli && !s.fb.fir {
		return nil
	}
	return func() {
		ssrc := s.remoteSSRC.Load()
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
// protect, send. No allocation. A retransmission beyond the budget is not sent.
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
	if !s.sent.Sent(h, len(payload), n) {
		return errRetransmitBudget
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
	_, err = s.rtpConn.WriteToUDPAddrPort(pkt, *dst)
	return err
}

var (
	errPacketTooLarge   = errors.New("RTP packet larger than the send buffer")
	errRetransmitBudget = errors.New("retransmission over the budget")
)

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

// report is the periodic RTCP compound: SR when we sent since the start, else RR; reception
// report of the peer's stream; SDES CNAME; REMB when negotiated.
func (s *stream) report() {
	now := time.Now()
	var blocks []rtcp.ReceptionReport
	receiving := s.recv && s.receiving.Load()
	ssrc := s.remoteSSRC.Load()
	if receiving {
		blocks = append(blocks, s.rx.Stats.ReportBlock(ssrc, now))
	}
	var pkts []rtcp.Packet
	if sr, ok := s.sent.SenderReport(now, blocks); ok {
		pkts = append(pkts, sr)
	} else {
		pkts = append(pkts, &rtcp.ReceiverReport{SSRC: s.localSSRC, Reports: blocks})
	}
	pkts = append(pkts, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: s.localSSRC, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: s.cname}},
	}}})
	if s.remb != nil && receiving {
		pkts = append(pkts, &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: s.localSSRC,
			Bitrate: float32(s.remb.Next(now, &s.rx.Stats, s.src.SinkBitrate())), SSRCs: []uint32{ssrc}})
	}
	s.writeRTCP(pkts)
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
