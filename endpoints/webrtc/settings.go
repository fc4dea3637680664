// Package webrtc is the WebRtcEndpoint's media side on pion/webrtc: SDP negotiation, trickle ICE as
// Kurento applications drive it, DTLS-SRTP, and the tracks that connect the peer to the media graph.
// It knows nothing about JSON: it reports typed events through its media.Element.
package webrtc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"

	"github.com/kurento-go/kms/rtpengine"
	"github.com/pion/webrtc/v4"
)

// Settings are what an endpoint needs to negotiate: the module configuration merged with the
// element's properties at the time of negotiation.
type Settings struct {
	MinPort, MaxPort  uint16
	ReceiveMTU        int
	NetworkInterfaces []string // empty: all
	StunAddress       string   // IP literal, "" for none
	StunPort          int
	TurnURL           string // user:password@ip:port[?transport=udp|tcp|tls], "" for none
	ExternalIPv4      string
	ExternalIPv6      string
	AudioCodecs       []string // "opus/48000/2" ...; nil: the defaults
	VideoCodecs       []string
	EnableH265        bool
	// IceTCP adds passive TCP candidates on the process's shared ICE-TCP port (KMS's iceTcp).
	IceTCP bool
	// UDPMux puts the endpoint's host candidates on the process's shared UDP port (one socket per
	// interface address, batched writes); false opens sockets of its own in MinPort..MaxPort.
	UDPMux bool
	// DirectSRTP sends RTP on the shared UDP port with the endpoint's own SRTP context instead of
	// pion's write path, where it can (direct.go).
	DirectSRTP bool
	// IncludeLoopback offers 127.0.0.1/::1 candidates; KMS offers whatever the host has, and a server
	// tested on one machine needs them.
	IncludeLoopback bool

	// Bandwidth, in kbps as KMS's properties (0: unbounded): what we ask the peer to send us (REMB
	// toward it is kept within MinVideoRecv..MaxVideoRecv, floor 30) and the bounds of what we
	// ask our sources for on behalf of the peer (MinVideoSend..MaxVideoSend).
	MinVideoRecvBandwidth int
	MaxVideoRecvBandwidth int
	MinVideoSendBandwidth int
	MaxVideoSendBandwidth int
	// MaxAudioRecvBandwidth (kbps, 0: unbounded) is announced to the peer with b=AS, as
	// MaxVideoRecvBandwidth is.
	MaxAudioRecvBandwidth int
	// Remb drives the REMB sent to the peer (the estimate of what arrives from it) and, with
	// RembOnConnect, what our senders ask their sources for before the peer's REMB has probed.
	Remb rtpengine.RembParams
	// MTU is the largest RTP packet sent to the peer (BaseRtpEndpoint mtu); 0: no limit.
	MTU int

	// NumAudioMedias and NumVideoMedias are the m-lines of each kind an offer may have accepted
	// (SdpEndpoint's numAudioMedias/numVideoMedias); further ones are rejected.
	NumAudioMedias, NumVideoMedias int

	Recvonly     bool
	Sendonly     bool
	DataChannels bool
	// CertificateKeyType is "RSA" or "ECDSA"; PemCertificate overrides the generated one.
	CertificateKeyType string
	PemCertificate     string
	// DSCP marks every UDP packet the endpoint sends (KMS's qosDscp); 0 leaves the sockets at their
	// default, which is CS0 as well.
	DSCP uint8

	// acceptAnyCertificate: the offer had no fingerprint to check the peer's certificate against.
	acceptAnyCertificate bool
	// ridSimulcast: the offer sends rid simulcast layers; their header extensions are negotiated.
	ridSimulcast bool
	// peerDTLSServer: the offer says a=setup:passive, so our answer must be active (pion's
	// answering role would override it).
	peerDTLSServer bool
}

// iceServers turns the STUN and TURN settings into pion's form.
func (s *Settings) iceServers() ([]webrtc.ICEServer, error) {
	var out []webrtc.ICEServer
	if s.StunAddress != "" {
		port := s.StunPort
		if port == 0 {
			port = 3478
		}
		out = append(out, webrtc.ICEServer{URLs: []string{fmt.Sprintf("stun:%s:%d", bracket(s.StunAddress), port)}})
	}
	if s.TurnURL != "" {
		turn, err := parseTurnURL(s.TurnURL)
		if err != nil {
			return nil, err
		}
		out = append(out, turn)
	}
	return out, nil
}

func bracket(ip string) string {
	if strings.Contains(ip, ":") && !strings.HasPrefix(ip, "[") {
		return "[" + ip + "]"
	}
	return ip
}

// parseTurnURL reads KMS's turnURL form: user:password@address:port[?transport=udp|tcp|tls].
func parseTurnURL(u string) (webrtc.ICEServer, error) {
	at := strings.LastIndex(u, "@")
	if at < 0 {
		return webrtc.ICEServer{}, fmt.Errorf("turnUrl %q: want user:password@address:port", u)
	}
	// The user runs to the last ':' as in KMS's pattern: REST-API users are "expiry:name".
	colon := strings.LastIndex(u[:at], ":")
	if colon < 0 {
		return webrtc.ICEServer{}, fmt.Errorf("turnUrl %q: want user:password@address:port", u)
	}
	hostPort, query, _ := strings.Cut(u[at+1:], "?")
	scheme, transport := "turn", "udp"
	if t, ok := strings.CutPrefix(query, "transport="); ok {
		transport = strings.ToLower(t)
	}
	switch transport {
	case "udp", "tcp":
	case "tls":
		scheme, transport = "turns", "tcp"
	default:
		return webrtc.ICEServer{}, fmt.Errorf("turnUrl %q: unknown transport %q", u, transport)
	}
	return webrtc.ICEServer{
		URLs:       []string{fmt.Sprintf("%s:%s?transport=%s", scheme, hostPort, transport)},
		Username:   u[:colon],
		Credential: u[colon+1 : at],
	}, nil
}

// Certificates are made once per process and key type, as KMS does: generating an RSA key takes long
// enough to be felt in every call setup otherwise.
var (
	certMu    sync.Mutex
	certCache = map[string]webrtc.Certificate{}
)

func certificate(keyType, pemFile string) (webrtc.Certificate, error) {
	certMu.Lock()
	defer certMu.Unlock()
	key := keyType + "|" + pemFile
	if c, ok := certCache[key]; ok {
		return c, nil
	}
	var c *webrtc.Certificate
	var err error
	if pemFile != "" {
		c, err = loadPEM(pemFile)
	} else if strings.EqualFold(keyType, "ECDSA") {
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err == nil {
			c, err = webrtc.GenerateCertificate(k)
		}
	} else {
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, 2048); err == nil {
			c, err = webrtc.GenerateCertificate(k)
		}
	}
	if err != nil {
		return webrtc.Certificate{}, err
	}
	certCache[key] = *c
	return *c, nil
}

// loadPEM reads a file holding a certificate and its private key.
func loadPEM(file string) (*webrtc.Certificate, error) {
	pair, err := tls.LoadX509KeyPair(file, file)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", file, err)
	}
	c := webrtc.CertificateFromX509(pair.PrivateKey, leaf)
	return &c, nil
}
