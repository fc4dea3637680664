package webrtc

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/egress"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// The direct SRTP receive path, the mirror of direct.go. pion takes a received RTP packet through
// its UDP mux (a queue per connection), the candidate's read loop, the ICE connection, its DTLS/SRTP
// mux, the SRTP session and the track's read buffer: four goroutine hand-offs and as many copies
// before our reader sees it, and queues that grow under load. Where the direct send path runs (we
// are the DTLS server, the pair is on the shared socket), the same derived keys give the peer's
// write context: the shared socket's reading goroutine decrypts an SRTP packet from the peer's
// address, for an SSRC one of our tracks is bound to, with the endpoint's own context into that
// track's ring (rxring.go), which the track's reader goroutine drains. STUN, DTLS, SRTCP, and RTP of
// SSRCs not bound (yet) keep going to pion.
//
// pion sees each new SSRC first: it makes the track (OnTrack, simulcast rids, the RTX repair
// stream), and the track's reader binds the SSRC after its first packet (feedback.go). pion's
// context decrypted those packets, ours starts at the rollover counter the reader saw; if that was
// wrong by one (a wrap in between), the first packet's authentication fails and the next counter is
// tried. Replay protection is ours from then on. When the path stops (the pair moves where the
// shared socket cannot reach, DTLS ends), the rings close and the readers go back to pion.

// A track's ring starts small and grows, when its reader did not keep up, to what a video keyframe
// burst (≈ 100 packets) needs while the reader waits for a core; audio packets are small.
func rxRingSizes(video bool) (initial, maxSize int) {
	if video {
		return 16 << 10, 128 << 10
	}
	return 4 << 10, 16 << 10
}

// maxRxStreams bounds the SSRCs an endpoint binds: media and RTX of audio and video.
const maxRxStreams = 4

// srtpReplayWindow is pion's default for the peer's SRTP.
const srtpReplayWindow = 64

// ReceivedRTP reports how many RTP packets the WebRtcEndpoints received by each path since the
// process started (pion's: what their track readers read from pion).
func ReceivedRTP() RTPPaths {
	return RTPPaths{Direct: rxCounts.direct.Load(), Pion: rxCounts.pion.Load()}
}

// DirectRxDropped reports the packets the direct receive path dropped: a track's ring full, or a
// packet that failed authentication or replay protection.
func DirectRxDropped() (full, rejected uint64) {
	return rxCounts.full.Load(), rxCounts.rejected.Load()
}

var rxCounts struct{ direct, pion, full, rejected atomic.Uint64 }

// rxTable routes a shared socket's datagrams by source address to the endpoint that takes them
// directly. Read per datagram without a lock: a copy-on-write map.
type rxTable struct {
	mu    sync.Mutex
	peers atomic.Pointer[map[netip.AddrPort]*directRx]
}

var rxTables sync.Map // *egress.Conn → *rxTable

// filterDirectRx installs the direct receive path on a shared socket.
func filterDirectRx(c *egress.Conn) {
	t := &rxTable{}
	rxTables.Store(c, t)
	c.SetReadFilter(t.filter)
}

// filter takes an SRTP packet (RFC 7983: first byte 128–191; RTP, not RTCP, by payload type) from
// an address an endpoint receives directly on.
func (t *rxTable) filter(b []byte, from netip.AddrPort) bool {
	if len(b) < 12 || b[0]&0xc0 != 0x80 || (b[1] >= 192 && b[1] <= 223) {
		return false
	}
	m := t.peers.Load()
	if m == nil {
		return false
	}
	rx := (*m)[from]
	return rx != nil && rx.receive(b)
}

func (t *rxTable) set(addr netip.AddrPort, rx *directRx) {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := map[netip.AddrPort]*directRx{}
	if m := t.peers.Load(); m != nil {
		for a, r := range *m {
			if r != rx {
				next[a] = r
			}
		}
	}
	if addr.IsValid() {
		next[addr] = rx
	}
	t.peers.Store(&next)
}

// directRx is an endpoint's direct receive path.
type directRx struct {
	mu      sync.Mutex
	ctx     *srtp.Context // the peer's write context; nil: the path does not apply
	table   *rxTable      // where the peer's address is routed to us, nil when not routed
	stopped bool
	streams [maxRxStreams]rxStream
	n       int
	hdr     rtp.Header
}

// rxStream is an SSRC bound to a track's ring.
type rxStream struct {
	ssrc      uint32
	ring      *rxRing
	mediaSSRC uint32 // for an RTX stream, the SSRC it repairs; 0 for media
	pt        uint8  // for an RTX stream, the media's payload type
	confirmed bool   // a packet authenticated: the rollover counter is right
	// the highest sequence number authenticated, and which of the srtpReplayWindow before it were
	// (bit i: top-i), so that a replay (a retransmission of a packet that was only late), or a
	// packet older than the window, is dropped before decryption: pion's context would refuse it,
	// after allocating its error
	top  uint16
	seen uint64
}

// replayed tells whether the packet seq authenticated already, or is too old to tell.
func (s *rxStream) replayed(seq uint16) bool {
	d := int16(s.top - seq)
	return s.seen != 0 && d >= 0 && (d >= srtpReplayWindow || s.seen&(1<<d) != 0)
}

// authenticated records that the packet seq authenticated.
func (s *rxStream) authenticated(seq uint16) {
	switch d := int16(seq - s.top); {
	case s.seen == 0 || d >= srtpReplayWindow:
		s.top, s.seen = seq, 1
	case d > 0:
		s.top, s.seen = seq, s.seen<<d|1
	case d > -srtpReplayWindow:
		s.seen |= 1 << -d
	}
}

// keys makes the peer's context from the DTLS-SRTP keys; called once, holding directSRTP's mu.
func (rx *directRx) keys(cfg *srtp.Config, cryptex bool) {
	opts := []srtp.ContextOption{srtp.SRTPReplayProtection(srtpReplayWindow)}
	if cryptex {
		opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	ctx, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile, opts...)
	if err != nil {
		return // pion's path receives everything
	}
	rx.mu.Lock()
	rx.ctx = ctx
	rx.mu.Unlock()
}

// route takes the peer's datagrams arriving on conn from addr.
func (rx *directRx) route(conn *egress.Conn, addr netip.AddrPort) {
	v, _ := rxTables.Load(conn)
	t, _ := v.(*rxTable)
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.ctx == nil || rx.stopped || t == nil {
		return
	}
	if rx.table != nil && rx.table != t {
		rx.table.set(netip.AddrPort{}, rx)
	}
	rx.table = t
	t.set(addr, rx)
}

// stop ends the path: the peer's datagrams go to pion again, the track readers with them.
func (rx *directRx) stop() {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.stopped {
		return
	}
	rx.stopped = true
	if rx.table != nil {
		rx.table.set(netip.AddrPort{}, rx)
		rx.table = nil
	}
	for i := range rx.streams[:rx.n] {
		rx.streams[i].ring.close()
	}
}

// bind takes a track's SSRC (and its RTX SSRC, when known) off pion's path; roc is the rollover
// counter its reader has seen. nil when the path does not run.
func (rx *directRx) bind(ssrc, rtxSSRC uint32, pt uint8, roc uint32, video bool) *rxRing {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	need := 1
	if rtxSSRC != 0 {
		need = 2
	}
	if rx.ctx == nil || rx.table == nil || rx.stopped || rx.n+need > maxRxStreams {
		return nil
	}
	ring := newRxRing(rxRingSizes(video))
	ring.mu = &rx.mu
	rx.addLocked(rxStream{ssrc: ssrc, ring: ring}, roc)
	if rtxSSRC != 0 {
		rx.addLocked(rxStream{ssrc: rtxSSRC, ring: ring, mediaSSRC: ssrc, pt: pt}, 0)
	}
	return ring
}

// bindRTX adds a repair SSRC that pion learned after the media was bound (rid simulcast's rrid).
func (rx *directRx) bindRTX(ring *rxRing, rtxSSRC, mediaSSRC uint32, pt uint8) bool {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	if rx.stopped || rx.n == maxRxStreams {
		return false
	}
	rx.addLocked(rxStream{ssrc: rtxSSRC, ring: ring, mediaSSRC: mediaSSRC, pt: pt}, 0)
	return true
}

func (rx *directRx) addLocked(s rxStream, roc uint32) {
	rx.streams[rx.n] = s
	rx.n++
	rx.ctx.SetROC(s.ssrc, roc)
}

// receive decrypts a packet of a bound SSRC into its track's ring; false leaves the datagram to
// pion. A packet that does not authenticate, or does not fit, is dropped here: pion would drop it
// as well (its context would not even know the SSRC's state).
func (rx *directRx) receive(b []byte) bool {
	ssrc := binary.BigEndian.Uint32(b[8:12])
	rx.mu.Lock()
	defer rx.mu.Unlock()
	var s *rxStream
	for i := range rx.streams[:rx.n] {
		if rx.streams[i].ssrc == ssrc {
			s = &rx.streams[i]
		}
	}
	if s == nil || rx.stopped {
		return false
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	if s.replayed(seq) {
		rxCounts.rejected.Add(1)
		return true
	}
	dst, ok := s.ring.reserve(len(b))
	if !ok {
		rxCounts.full.Add(1)
		return true
	}
	out, err := rx.ctx.DecryptRTP(dst, b, &rx.hdr)
	if err != nil && !s.confirmed {
		// The rollover counter may be one more than the reader saw: the sequence wrapped
		// between pion's last packet and this one.
		roc, _ := rx.ctx.ROC(ssrc)
		rx.ctx.SetROC(ssrc, roc+1)
		if out, err = rx.ctx.DecryptRTP(dst, b, &rx.hdr); err != nil {
			rx.ctx.SetROC(ssrc, roc)
		}
	}
	if err != nil {
		rxCounts.rejected.Add(1)
		return true
	}
	s.confirmed = true
	s.authenticated(seq)
	if s.mediaSSRC != 0 {
		if out = unwrapRTX(out, s.mediaSSRC, s.pt); out == nil {
			return true // padding only: a bandwidth probe
		}
	}
	s.ring.commit(len(out), time.Now().UnixNano())
	rxCounts.direct.Add(1)
	return true
}

// unwrapRTX turns a decrypted RFC 4588 retransmission back into the packet it repairs, in place:
// the original sequence number (the payload's first two bytes) into the header, the media's SSRC
// and payload type. nil for a packet without a payload to repair (padding probes), as pion does.
func unwrapRTX(p []byte, mediaSSRC uint32, pt uint8) []byte {
	hl := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 {
		if len(p) < hl+4 {
			return nil
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(p[hl+2:]))
	}
	padding := 0
	if p[0]&0x20 != 0 && len(p) > 0 {
		padding = int(p[len(p)-1])
	}
	if len(p)-hl-padding < 2 {
		return nil
	}
	p[1] = p[1]&0x80 | pt
	p[2], p[3] = p[hl], p[hl+1]
	binary.BigEndian.PutUint32(p[8:12], mediaSSRC)
	copy(p[hl:], p[hl+2:])
	return p[:len(p)-2]
}
