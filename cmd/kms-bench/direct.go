package main

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pion/dtls/v3"
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

// rtpPaths counts the RTP packets the publishers sent by each path, for TestShortRun.
var rtpPaths struct{ direct, pion atomic.Uint64 }

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
	cfg, cryptex, err := srtpKeys(pc)
	if err != nil {
		return
	}
	ctx, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile, srtp.Cryptex(cryptex))
	if err != nil {
		return
	}
	pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Local.Typ != webrtc.ICECandidateTypeHost {
		return
	}
	c, ok := stampConns.Load(pair.Local.Port)
	addr, err := netip.ParseAddr(pair.Remote.Address)
	if !ok || err != nil {
		return
	}
	vs, as := sendStreamOf(video), sendStreamOf(audio)
	if vs.pt == 0 || as.pt == 0 {
		return
	}
	d.mu.Lock()
	d.ctx, d.conn, d.to = ctx, c.(*stampConn), netip.AddrPortFrom(addr.Unmap(), pair.Remote.Port)
	d.video, d.audio = vs, as
	d.mu.Unlock()
	mode = directOn
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
func srtpKeys(pc *webrtc.PeerConnection) (*srtp.Config, srtp.CryptexMode, error) {
	t := reflect.ValueOf(pc.SCTP().Transport()).Elem()
	connField, profileField := t.FieldByName("conn"), t.FieldByName("srtpProtectionProfile")
	cryptexField := t.FieldByName("localCryptexMode")
	if !connField.IsValid() || connField.Type() != reflect.TypeOf((*dtls.Conn)(nil)) || connField.IsNil() ||
		!profileField.IsValid() || profileField.Type() != reflect.TypeOf(srtp.ProtectionProfile(0)) ||
		!cryptexField.IsValid() || cryptexField.Type() != reflect.TypeOf(srtp.CryptexMode(0)) {
		return nil, 0, errNoKeys
	}
	conn := (*dtls.Conn)(unsafe.Pointer(connField.Pointer()))
	state, ok := conn.ConnectionState()
	if !ok {
		return nil, 0, errNoKeys
	}
	client, ok := dtlsClient(pc.LocalDescription(), pc.RemoteDescription())
	if !ok {
		return nil, 0, errNoKeys
	}
	cfg := &srtp.Config{Profile: srtp.ProtectionProfile(profileField.Uint())}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, client); err != nil {
		return nil, 0, err
	}
	return cfg, srtp.CryptexMode(cryptexField.Int()), nil
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
