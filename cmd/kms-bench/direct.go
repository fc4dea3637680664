package main

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/dtls/v3"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The direct SRTP path of a client. pion writes each RTP packet through an interceptor writer, its
// SRTP session, a mux endpoint, the ICE connection and the candidate, one sendto each: at loopback
// N=300 that path was a fifth of the tool's core on top of the system calls. Once DTLS is
// connected a publishing client encrypts its RTP with an SRTP context of its own, keyed from the
// same DTLS handshake, and the pacer sends each publisher's due packets to the selected pair's
// remote address in one sendmmsg on the socket pion chose (stampConn). What goes on the wire is
// what pion sent: the same headers (no extensions: the tool negotiates none), the same SRTP. ICE,
// DTLS, RTCP and the receive side stay pion's.
//
// All RTP of an SSRC must go through one SRTP context, so a publisher sends nothing until the
// choice is made (pion drops RTP before its SRTP starts, too); when the direct path cannot be used
// (the soak's impaired sockets, a relayed pair) pion's path is used for good.

// directMode is where a publisher's RTP goes.
type directMode int32

const (
	directPending directMode = iota // DTLS not connected yet: RTP is dropped, as pion does
	directOn                        // our SRTP context, sendmmsg on the pair's socket
	directPion                      // pion's write path, for good
)

// directTx is a publisher's direct sender.
type directTx struct {
	mode atomic.Int32 // directMode; set once, from pending

	mu           sync.Mutex // ctx: the pacer and NACK resends encrypt with it
	ctx          *srtp.Context
	conn         *stampConn
	to           netip.AddrPort
	video, audio sendStream
	plain        [stampSlotSize]byte // the packet before encryption
	buf          [stampSlotSize]byte // resend's
}

// rtpPaths counts the RTP packets the publishers sent by each path, and those the receivers took
// on the direct path, for the run's log and TestShortRun.
var rtpPaths struct{ direct, pion, directRx atomic.Uint64 }

// sendStream is what pion's track binding would write in a packet's header.
type sendStream struct {
	ssrc uint32
	pt   uint8
}

var errNoKeys = errors.New("kms-bench: DTLS-SRTP keys not available")

// start chooses the path once the peer connection is connected (DTLS done, a pair selected).
func (d *directTx) start(pc *webrtc.PeerConnection, video, audio *webrtc.RTPSender) {
	if directMode(d.mode.Load()) != directPending {
		return
	}
	mode := directPion
	defer func() { d.mode.Store(int32(mode)) }()
	k, err := directKeys(pc)
	if err != nil {
		return
	}
	ctx, err := srtp.CreateContext(k.cfg.Keys.LocalMasterKey, k.cfg.Keys.LocalMasterSalt, k.cfg.Profile, srtp.Cryptex(k.localCryptex))
	if err != nil {
		return
	}
	vs, as := sendStreamOf(video), sendStreamOf(audio)
	if vs.pt == 0 || as.pt == 0 {
		return
	}
	d.mu.Lock()
	d.ctx, d.conn, d.to = ctx, k.conn, k.remote
	d.video, d.audio = vs, as
	d.mu.Unlock()
	mode = directOn
}

// peerKeys is what both directions of the direct path need of a connected peer connection.
type peerKeys struct {
	cfg                         *srtp.Config
	localCryptex, remoteCryptex srtp.CryptexMode
	conn                        *stampConn     // the selected pair's socket
	remote                      netip.AddrPort // and its remote address
}

// directKeys finds the SRTP keys and the selected pair of a connected peer connection; an error
// when the pair is not a host UDP candidate on a stampConn (the soak's impaired sockets) or the
// keys cannot be had.
func directKeys(pc *webrtc.PeerConnection) (*peerKeys, error) {
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Local.Typ != webrtc.ICECandidateTypeHost {
		return nil, errNoKeys
	}
	c, ok := stampConns.Load(pair.Local.Port)
	addr, err := netip.ParseAddr(pair.Remote.Address)
	if !ok || err != nil {
		return nil, errNoKeys
	}
	k := &peerKeys{conn: c.(*stampConn), remote: netip.AddrPortFrom(addr.Unmap(), pair.Remote.Port)}
	if k.cfg, k.localCryptex, k.remoteCryptex, err = srtpKeys(pc); err != nil {
		return nil, err
	}
	return k, nil
}

func sendStreamOf(s *webrtc.RTPSender) sendStream {
	p := s.GetParameters()
	if len(p.Encodings) == 0 || len(p.Codecs) == 0 {
		return sendStream{}
	}
	// Each kind has one codec (newAPI): the negotiated one.
	return sendStream{ssrc: uint32(p.Encodings[0].SSRC), pt: uint8(p.Codecs[0].PayloadType)}
}

// encrypt writes pkt's SRTP into dst with the stream's SSRC and payload type, as pion's binding
// does; the caller holds mu.
func (d *directTx) encrypt(dst []byte, pkt *rtp.Packet, video bool) ([]byte, error) {
	s := d.audio
	if video {
		s = d.video
	}
	pkt.SSRC, pkt.PayloadType = s.ssrc, s.pt
	n, err := pkt.MarshalTo(d.plain[:])
	if err != nil {
		return nil, err
	}
	return d.ctx.EncryptRTP(dst[:0], d.plain[:n], &pkt.Header)
}

// resend sends one packet again now (a NACK's answer, from RTCP's reader).
func (d *directTx) resend(pkt *rtp.Packet) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := d.encrypt(d.buf[:], pkt, true)
	if err != nil {
		return false
	}
	_, err = d.conn.WriteToAddrPort(b, d.to)
	return err == nil
}

// srtpKeys derives the SRTP master keys of a connected peer connection from its DTLS connection
// state, as pion's own SRTP start does, and tells the header encryption (RFC 9335) pion's SRTP
// applies to what it sends. pion does not export that state, and as the DTLS client the tool sees
// no ServerHello to rebuild it from (the server's hook, endpoints/webrtc/direct.go); so it is read
// from the transport's private fields, checked for their types: a pion upgrade that renames them
// makes every peer take pion's path (and TestShortRun fail), never bad keys.
func srtpKeys(pc *webrtc.PeerConnection) (cfg *srtp.Config, local, remote srtp.CryptexMode, err error) {
	t := reflect.ValueOf(pc.SCTP().Transport()).Elem()
	connField, profileField := t.FieldByName("conn"), t.FieldByName("srtpProtectionProfile")
	localField, remoteField := t.FieldByName("localCryptexMode"), t.FieldByName("remoteCryptexMode")
	cryptexType := reflect.TypeOf(srtp.CryptexMode(0))
	if !connField.IsValid() || connField.Type() != reflect.TypeOf((*dtls.Conn)(nil)) || connField.IsNil() ||
		!profileField.IsValid() || profileField.Type() != reflect.TypeOf(srtp.ProtectionProfile(0)) ||
		!localField.IsValid() || localField.Type() != cryptexType || !remoteField.IsValid() || remoteField.Type() != cryptexType {
		return nil, 0, 0, errNoKeys
	}
	conn := (*dtls.Conn)(unsafe.Pointer(connField.Pointer()))
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, 0, 0, errNoKeys
	}
	client, ok := dtlsClient(pc.LocalDescription(), pc.RemoteDescription())
	if !ok {
		return nil, 0, 0, errNoKeys
	}
	cfg = &srtp.Config{Profile: srtp.ProtectionProfile(profileField.Uint())}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return nil, 0, 0, err
	}
	return cfg, srtp.CryptexMode(localField.Int()), srtp.CryptexMode(remoteField.Int()), nil
}

// dtlsClient tells whether this side is the DTLS client (RFC 5763): active in its own description,
// or the offerer (actpass) of an answer that says passive.
func dtlsClient(local, remote *webrtc.SessionDescription) (client, ok bool) {
	if local == nil || remote == nil {
		return false, false
	}
	switch l, r := setupOf(local.SDP), setupOf(remote.SDP); {
	case l == "active":
		return true, true
	case l == "passive":
		return false, true
	case l == "actpass" && r == "passive":
		return true, true
	case l == "actpass" && r == "active":
		return false, true
	}
	return false, false
}

func setupOf(sdp string) string {
	_, v, ok := strings.Cut(sdp, "\na=setup:")
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, "\n")
	return strings.TrimSpace(v)
}

// directRx is a receiving client's direct path: the selected pair's socket reader (stampConn)
// decrypts the RTP from the server's address with an SRTP context of its own and counts it
// (peer.received) right there, instead of handing it through pion's ICE connection, mux, SRTP
// session and track buffer to a track reader, three goroutine hand-offs a packet. Whatever it
// does not take (STUN, DTLS, RTCP, an unknown payload type, a packet its context cannot decrypt)
// still goes to pion, whose own SRTP context decrypts it as before: a stream whose first packets
// pion decrypted is never lost to a rollover counter guessed wrong here, it only stays on pion's
// path. Used by one goroutine, the socket's reader.
type directRx struct {
	p     *peer
	from  netip.AddrPort
	ctx   *srtp.Context
	video map[uint8]bool // payload type → video (else audio)
	buf   [stampSlotSize]byte
	hdr   rtp.Header
	pkt   rtp.Packet
	fm    testpeer.FrameModel // unused: peers with repair are on impaired sockets, never direct
}

// startRx puts a peer's RTP, and the RTCP for its publisher, on the direct path once connected;
// without a stampConn, or for a peer with repair (its decoder model is per track), pion's path stays.
func (p *peer) startRx() {
	if p.repair {
		return
	}
	k, err := directKeys(p.pc)
	if err != nil {
		return
	}
	ctx, err := srtp.CreateContext(k.cfg.Keys.RemoteMasterKey, k.cfg.Keys.RemoteMasterSalt, k.cfg.Profile,
		srtp.Cryptex(k.remoteCryptex), srtp.SRTPNoReplayProtection(), srtp.SRTCPNoReplayProtection())
	if err != nil {
		return
	}
	rx := &directRx{p: p, from: k.remote, ctx: ctx, video: map[uint8]bool{}}
	for _, t := range p.pc.GetTransceivers() {
		if r := t.Receiver(); r != nil {
			for _, c := range r.GetParameters().Codecs {
				rx.video[uint8(c.PayloadType)] = t.Kind() == webrtc.RTPCodecTypeVideo
			}
		}
	}
	k.conn.rx.Store(rx)
}

// receive takes the datagram d from address from, which reached the socket at in (Unix
// nanoseconds, 0: unknown), if it is RTP it can decrypt; false leaves it to pion.
func (rx *directRx) receive(d []byte, from netip.AddrPort, in int64) bool {
	if from != rx.from || len(d) < 12 || d[0]>>6 != 2 {
		return false
	}
	if d[1] >= 192 && d[1] <= 223 {
		return rx.feedback(d)
	}
	video, ok := rx.video[d[1]&0x7f]
	if !ok {
		return false
	}
	out, err := rx.ctx.DecryptRTP(rx.buf[:0], d, &rx.hdr)
	if err != nil || rx.pkt.Unmarshal(out) != nil {
		return false
	}
	clock := time.Now()
	rx.p.rxMu.Lock()
	rx.p.received(&rx.pkt, len(out), video, clock, in, &rx.fm)
	rx.p.rxMu.Unlock()
	rtpPaths.directRx.Add(1)
	return true
}

// feedback takes an SRTCP datagram for a publisher that sends on the direct path (so that a NACK
// can be told to be for its video stream) and acts on it as the RTCP reader does.
func (rx *directRx) feedback(d []byte) bool {
	pub := rx.p.pub
	if pub == nil || directMode(pub.tx.mode.Load()) != directOn {
		return false
	}
	out, err := rx.ctx.DecryptRTCP(rx.buf[:0], d, nil)
	if err != nil {
		return false
	}
	pkts, err := rtcp.Unmarshal(out)
	if err != nil {
		return true // pion's reader skips these too
	}
	video := pub.tx.video.ssrc // set before the mode
	for _, pkt := range pkts {
		n, ok := pkt.(*rtcp.TransportLayerNack)
		pub.feedback(pkt, ok && n.MediaSSRC == video)
	}
	return true
}
