package webrtc

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kurento-go/kms/egress"
	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The direct SRTP path. pion writes each RTP packet through an interceptor writer, its SRTP
// session, a mux endpoint, the ICE connection (a channel select per packet), the candidate and the
// UDP mux before it reaches our shared socket: a quarter of the server's CPU in a fan-out. When we
// are the DTLS server and the selected pair is a UDP candidate on the shared socket, an endpoint
// encrypts its outgoing RTP with an SRTP context of its own and hands the datagram to the shared
// egress.Conn itself.
//
// pion does not export the DTLS-SRTP keys; they are derived with its public hooks only, no unsafe:
// the DTLS key log gives the client random and master secret, the ServerHello we send (its hook)
// the server random, the cipher suite (the PRF's hash) and the SRTP profile. RFC 5705's exporter
// over them is what pion's own DTLS state computes. When anything is missing or unusual (we are
// the DTLS client, an unknown suite, an MKI, a relay or TCP pair, a socket of the endpoint's own),
// pion's path is used, which is always right.
//
// All RTP of an SSRC must go through one SRTP context (an AES-GCM nonce is the SSRC, rollover
// counter and sequence number). So nothing goes through pion's path until the choice is made,
// once DTLS is connected; after a choice for pion it stays pion. If the pair moves after the direct
// path started to one it cannot reach, the packets go back to pion only while no sequence number
// of ours has wrapped (pion's context starts at rollover 0, as ours did); else they are dropped.
// RTCP stays pion's: SRTCP has a context of its own.

// directMode is where an endpoint's RTP goes.
type directMode int32

const (
	directPending directMode = iota // DTLS not connected yet: nothing is sent
	directOn                        // our SRTP context, the shared socket
	directPion                      // pion's write path, for good
	directStopped                   // the connection has ended, or the pair cannot be reached
)

// RTPPaths counts the RTP packets the WebRtcEndpoints sent by each path, for the metrics and the
// tests that tell which path carried media.
type RTPPaths struct{ Direct, Pion uint64 }

var rtpPaths struct{ direct, pion atomic.Uint64 }

// SentRTP reports how many RTP packets went out by each path since the process started.
func SentRTP() RTPPaths { return RTPPaths{Direct: rtpPaths.direct.Load(), Pion: rtpPaths.pion.Load()} }

// sharedConns are the shared UDP sockets by local address: where a candidate of the shared port
// sends from.
var sharedConns sync.Map // netip.AddrPort → *egress.Conn

func registerSharedConn(c *egress.Conn) {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		ap := a.AddrPort()
		sharedConns.Store(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), c)
	}
}

// directSRTP is an endpoint's direct writer, shared by its audio and video tracks.
type directSRTP struct {
	mode atomic.Int32 // directMode; changed under mu

	mu sync.Mutex
	// from the handshake
	hello        bool // we sent a ServerHello: we are the DTLS server
	serverRandom [32]byte
	hash         prf.HashFunc
	profile      srtp.ProtectionProfile
	clientRandom []byte
	secret       []byte
	// once on
	ctx   *srtp.Context
	conn  *egress.Conn
	to    netip.AddrPort
	ssrcs [4]uint32 // the SSRCs our context encrypted (media and RTX of audio and video)
	more  bool      // and others, not recorded
	buf   [egress.SlotSize]byte
	hdr   rtp.Header
	rx    directRx // the receive side (directrx.go), keyed and routed with the send side
}

// newDirectSRTP sets pion up for the direct path: our answers take the DTLS server role where the
// offer lets them (answerPassive), and the handshake's secrets come to the writer. Without it
// (disabled, or no shared port) RTP takes pion's path from the start.
func newDirectSRTP(se *webrtc.SettingEngine, enabled, answerPassive bool) *directSRTP {
	d := &directSRTP{}
	if !enabled {
		d.mode.Store(int32(directPion))
		return d
	}
	// Passive in our answers, so that we are the DTLS server (our offers are actpass: the peer
	// answers active). A peer that insists on being the server gets pion's path.
	if answerPassive {
		_ = se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer) // fails only for other roles
	}
	se.SetDTLSServerHelloMessageHook(d.serverHello)
	se.SetDTLSKeyLogWriter(keyLog{d})
	return d
}

// serverHello records what the ServerHello we send fixes, and sends it unchanged.
func (d *directSRTP) serverHello(m handshake.MessageServerHello) handshake.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hello, d.hash, d.profile = false, nil, 0
	if m.CipherSuiteID == nil {
		return &m
	}
	d.hash = prfHash(dtls.CipherSuiteID(*m.CipherSuiteID))
	for _, ext := range m.Extensions {
		if u, ok := ext.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 && len(u.MasterKeyIdentifier) == 0 {
			d.profile = srtpProfile(u.ProtectionProfiles[0])
		}
	}
	d.serverRandom = m.Random.MarshalFixed()
	d.hello = d.hash != nil && d.profile != 0
	return &m
}

// prfHash is the PRF hash of the cipher suites pion negotiates by default (RFC 5288/5289/7905);
// nil for any other.
func prfHash(id dtls.CipherSuiteID) prf.HashFunc {
	switch id {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, dtls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA:
		return sha256.New
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	}
	return nil
}

// srtpProfile maps the DTLS use_srtp profile to the SRTP one, as pion does; 0 for others.
func srtpProfile(p extension.SRTPProtectionProfile) srtp.ProtectionProfile {
	switch p {
	case extension.SRTP_AEAD_AES_128_GCM:
		return srtp.ProtectionProfileAeadAes128Gcm
	case extension.SRTP_AEAD_AES_256_GCM:
		return srtp.ProtectionProfileAeadAes256Gcm
	case extension.SRTP_AES128_CM_HMAC_SHA1_80:
		return srtp.ProtectionProfileAes128CmHmacSha1_80
	}
	return 0
}

// keyLog receives the NSS key log line pion's DTLS writes once the master secret is known:
// "CLIENT_RANDOM <client random> <master secret>", in hex.
type keyLog struct{ d *directSRTP }

func (k keyLog) Write(line []byte) (int, error) {
	f := strings.Fields(string(line))
	if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
		return len(line), nil
	}
	random, err1 := hex.DecodeString(f[1])
	secret, err2 := hex.DecodeString(f[2])
	if err1 != nil || err2 != nil || len(random) != 32 {
		return len(line), nil
	}
	k.d.mu.Lock()
	k.d.clientRandom, k.d.secret = random, secret
	k.d.mu.Unlock()
	return len(line), nil
}

// exporter is RFC 5705's keying material exporter over the captured secrets, as the DTLS server.
type exporter struct{ d *directSRTP }

var errExporter = errors.New("webrtc: DTLS secrets incomplete")

func (x exporter) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	d := x.d
	if len(context) != 0 || !d.hello || len(d.secret) == 0 {
		return nil, errExporter
	}
	seed := bytes.Join([][]byte{[]byte(label), d.clientRandom, d.serverRandom[:]}, nil)
	return prf.PHash(d.secret, seed, length, d.hash)
}

// connected chooses the path once DTLS is connected: ours when we were the DTLS server, the keys
// derive and the selected pair is on the shared socket; else pion's.
// Not called from pion's DTLS callback: it asks the peer connection.
func (d *directSRTP) connected(pc *webrtc.PeerConnection) {
	if directMode(d.mode.Load()) != directPending {
		return
	}
	pair, _ := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	cryptex, known := cryptexNegotiated(pc.LocalDescription(), pc.RemoteDescription())
	d.mu.Lock()
	defer d.mu.Unlock()
	if directMode(d.mode.Load()) != directPending {
		return
	}
	conn, to, reachable := directRoute(pair)
	started := known && reachable && d.startContext(cryptex)
	d.secret, d.clientRandom = nil, nil // the keys are derived, or will not be
	if !started {
		d.mode.Store(int32(directPion))
		return
	}
	d.conn, d.to = conn, to
	d.rx.route(conn, to)
	d.mode.Store(int32(directOn))
}

// cryptexNegotiated tells whether both descriptions declare RFC 9335 header encryption, which pion's
// SRTP then applies to what we send (our headers carry no extensions, but may carry CSRCs); known
// is false when only one does, a case left to pion.
func cryptexNegotiated(local, remote *webrtc.SessionDescription) (cryptex, known bool) {
	if local == nil || remote == nil {
		return false, false
	}
	l, r := strings.Contains(local.SDP, "\na=cryptex"), strings.Contains(remote.SDP, "\na=cryptex")
	return l && r, l == r
}

// startContext derives our SRTP write key and makes the context; the caller holds mu.
func (d *directSRTP) startContext(cryptex bool) bool {
	if !d.hello {
		return false // we were the DTLS client: the server random is not ours to see
	}
	cfg := srtp.Config{Profile: d.profile}
	if cfg.ExtractSessionKeysFromDTLS(exporter{d}, false) != nil {
		return false
	}
	var opts []srtp.ContextOption
	if cryptex {
		opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	ctx, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, d.profile, opts...)
	if err != nil {
		return false
	}
	d.ctx = ctx
	d.rx.keys(&cfg, cryptex)
	return true
}

// pairChanged follows the selected pair once the direct path runs.
func (d *directSRTP) pairChanged(pair *webrtc.ICECandidatePair) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if directMode(d.mode.Load()) != directOn {
		return
	}
	if conn, to, ok := directRoute(pair); ok {
		d.conn, d.to = conn, to
		d.rx.route(conn, to)
		return
	}
	d.rx.stop()
	wrapped := d.more
	for _, ssrc := range d.ssrcs {
		if roc, ok := d.ctx.ROC(ssrc); ssrc != 0 && ok && roc != 0 {
			wrapped = true
		}
	}
	if wrapped {
		d.mode.Store(int32(directStopped))
		return
	}
	d.mode.Store(int32(directPion))
}

// stop ends the direct path with the connection.
func (d *directSRTP) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rx.stop()
	if directMode(d.mode.Load()) != directPion {
		d.mode.Store(int32(directStopped))
	}
}

// directRoute is the shared socket and the peer's address of a pair, ok when the pair's local
// candidate is a UDP candidate of the shared socket.
func directRoute(pair *webrtc.ICECandidatePair) (*egress.Conn, netip.AddrPort, bool) {
	if pair == nil || pair.Local == nil || pair.Remote == nil || pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil, netip.AddrPort{}, false
	}
	l := pair.Local
	addr, port := l.Address, l.Port
	switch l.Typ {
	case webrtc.ICECandidateTypeHost:
	case webrtc.ICECandidateTypeSrflx:
		addr, port = l.RelatedAddress, l.RelatedPort // sent from its base
	default:
		return nil, netip.AddrPort{}, false
	}
	local, err1 := netip.ParseAddr(addr)
	remote, err2 := netip.ParseAddr(pair.Remote.Address)
	if err1 != nil || err2 != nil {
		return nil, netip.AddrPort{}, false
	}
	c, ok := sharedConns.Load(netip.AddrPortFrom(local.Unmap(), port))
	if !ok {
		return nil, netip.AddrPort{}, false
	}
	return c.(*egress.Conn), netip.AddrPortFrom(remote.Unmap(), pair.Remote.Port), true
}

// writeRTP sends one packet by the endpoint's path: n 0 and no error when it was not sent (not
// connected yet, or ended).
func (d *directSRTP) writeRTP(pion webrtc.TrackLocalWriter, h *rtp.Header, payload []byte) (int, error) {
	if directMode(d.mode.Load()) == directPion {
		rtpPaths.pion.Add(1)
		return pion.WriteRTP(h, payload)
	}
	d.mu.Lock()
	switch directMode(d.mode.Load()) {
	case directPion:
		d.mu.Unlock()
		rtpPaths.pion.Add(1)
		return pion.WriteRTP(h, payload)
	case directOn:
	default:
		d.mu.Unlock()
		return 0, nil
	}
	n, err := d.sendLocked(h, payload)
	d.mu.Unlock()
	if err == nil {
		rtpPaths.direct.Add(1)
	}
	return n, err
}

// sendLocked encrypts the packet in place in the writer's buffer and queues it on the shared
// socket, which copies it; the caller holds mu.
func (d *directSRTP) sendLocked(h *rtp.Header, payload []byte) (int, error) {
	d.noteSSRC(h.SSRC)
	plain, err := rtp.MarshalPacketTo(d.buf[:], h, payload) //nolint:staticcheck // pion's own write path uses it
	if err != nil {
		return 0, err
	}
	out, err := d.ctx.EncryptRTP(d.buf[:], d.buf[:plain], &d.hdr)
	if err != nil {
		return 0, err
	}
	return d.conn.WriteToAddrPort(out, d.to)
}

// noteSSRC remembers the SSRCs our context encrypts, for pairChanged; the caller holds mu.
func (d *directSRTP) noteSSRC(ssrc uint32) {
	for i, s := range d.ssrcs {
		if s == ssrc {
			return
		}
		if s == 0 {
			d.ssrcs[i] = ssrc
			return
		}
	}
	d.more = true
}
