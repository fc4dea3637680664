// Package testpeer is a WebRTC peer for tests and the load tool: a pion PeerConnection that signals
// through a WebRtcEndpoint the way Kurento applications do (processOffer, trickle ICE both ways,
// gatherCandidates), sends synthetic VP8 and Opus, and counts what it receives.
package testpeer

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// Options choose what the peer sends and receives.
type Options struct {
	Send    bool // send audio and video
	Receive bool // ask to receive audio and video
	// Tag marks every video frame the peer sends (third payload byte), so a receiver can tell whose
	// frames it gets: see FramesFrom and KeyframesFrom.
	Tag byte
	// GatherFirst makes Negotiate call gatherCandidates before processOffer, as some applications do.
	GatherFirst bool
	// Loss drops this fraction (0..1) of the RTP and RTCP packets the peer sends and receives, below
	// SRTP, as a lossy link would.
	Loss float64
	// MaxBitrate, when set, makes a receiving peer send REMB with this value (bps) twice a second,
	// as a browser behind a link of that capacity would.
	MaxBitrate uint64
	// Adaptive makes a sending peer size its video frames after the REMB it receives (see
	// TargetBitrate), as a browser's encoder follows its bandwidth estimate.
	Adaptive bool
	// TWCC makes a sending peer number its packets with the transport-wide sequence extension, as
	// browsers do, so that the endpoint owes it transport-cc feedback (see TWCCFeedback).
	TWCC bool
	// PacketsPerFrame splits each video frame into that many packets (default 1; Adaptive peers use
	// as many 1100-byte packets as the frame needs).
	PacketsPerFrame int
	// DataChannel makes the peer offer a data channel labelled "test"; see SendData and Messages.
	DataChannel bool
	// TCPOnly makes the peer use ICE over TCP only, as a browser behind a firewall that drops UDP.
	TCPOnly bool
	// PassiveOffer offers a=setup:passive (not actpass): the peer is the DTLS server, the endpoint
	// its client.
	PassiveOffer bool
	// Interface is the network interface the peer gathers host candidates on (default "lo"), for
	// peers in a network namespace of their own.
	Interface string
	// TOS, when set, counts the received datagrams by their IPv4 TOS byte (DSCP marking).
	TOS *TOSCounts
	// Net, when set, opens the peer's sockets (e.g. in another network namespace:
	// testnetns.PionNet); Loss and TOS replace it.
	Net transport.Net
	// MapCandidate, when set, rewrites each ICE candidate line the endpoint sends before the peer
	// uses it (to reach the endpoint through a proxy, say); "" drops the candidate.
	MapCandidate func(candidate string) string
}

// Peer is one client-side WebRTC connection to a WebRtcEndpoint.
type Peer struct {
	PC       *webrtc.PeerConnection
	Endpoint string // id of the WebRtcEndpoint it talks to

	video, audio *webrtc.TrackLocalStaticRTP

	keyframeWanted atomic.Bool
	// KeyframeRequests counts the PLIs and FIRs a sending peer received.
	KeyframeRequests atomic.Int64
	FramesSent       atomic.Int64
	FramesReceived   atomic.Int64 // video frames (marker bits) received
	AudioReceived    atomic.Int64 // audio packets received
	VideoPackets     atomic.Int64
	SeqJumps         atomic.Int64 // received video sequence numbers that skipped ahead by more than one
	KeyframesRecv    atomic.Int64
	// LastKeyframe is when the last keyframe arrived (unix nanoseconds), 0 before any.
	LastKeyframe atomic.Int64
	// DecodedFrames counts the video frames a decoder could decode: complete (after retransmissions,
	// waited for up to 500 ms) and following a decoded frame or being a keyframe. A peer that cannot
	// decode sends a PLI, as a browser does.
	DecodedFrames atomic.Int64
	VideoBytes    atomic.Int64 // video payload bytes received
	// LargestVideoPacket is the size of the largest video RTP packet received (header and payload,
	// before SRTP), what the server's mtu bounds.
	LargestVideoPacket atomic.Int64
	// VideoPacketsSent and VideoBytesSent count the video the peer wrote (payload bytes).
	VideoPacketsSent atomic.Int64
	VideoBytesSent   atomic.Int64
	// RTXReceived counts the video packets that came as retransmissions on an RTX stream.
	RTXReceived atomic.Int64
	// TargetBitrate is the last REMB the peer received (bps), 0 before any.
	TargetBitrate atomic.Uint64
	// TWCCFeedback counts the transport-cc feedback packets the peer received, TWCCReported the
	// packets they reported on (received or lost).
	TWCCFeedback atomic.Int64
	TWCCReported atomic.Int64
	// Reports are the server's RTCP reports on the video the peer receives and sends.
	Reports Reports
	// Messages receives the data-channel messages (DataChannel option), as text.
	Messages   chan string
	dc         *webrtc.DataChannel
	dcOpen     chan struct{}
	videoSSRC  atomic.Uint32
	framesFrom [256]atomic.Int64
	keysFrom   [256]atomic.Int64
	opts       Options
	mediaStop  chan struct{}
	mediaOnce  sync.Once
	connected  chan struct{}
	firstVideo chan struct{}
	once       sync.Once
	firstOnce  sync.Once
	stop       chan struct{}
	wg         sync.WaitGroup
}

// New creates a peer connection with host candidates of one interface only (loopback by default).
func New(opts Options) (*Peer, error) {
	pc, err := newPeerConnection(opts)
	if err != nil {
		return nil, err
	}
	p := &Peer{PC: pc, opts: opts, connected: make(chan struct{}), firstVideo: make(chan struct{}),
		stop: make(chan struct{}), mediaStop: make(chan struct{}), Messages: make(chan string, 100),
		dcOpen: make(chan struct{})}
	if opts.DataChannel {
		dc, err := pc.CreateDataChannel("test", nil)
		if err != nil {
			return nil, err
		}
		p.dc = dc
		dc.OnOpen(func() { close(p.dcOpen) })
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			select {
			case p.Messages <- string(m.Data):
			default:
			}
		})
	}
	if opts.MaxBitrate > 0 {
		p.wg.Add(1)
		go p.sendREMB()
	}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			p.once.Do(func() { close(p.connected) })
		}
	})
	dir := webrtc.RTPTransceiverDirectionRecvonly
	if opts.Send && opts.Receive {
		dir = webrtc.RTPTransceiverDirectionSendrecv
	} else if opts.Send {
		dir = webrtc.RTPTransceiverDirectionSendonly
	}
	if opts.Send {
		if p.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "peer"); err != nil {
			return nil, err
		}
		if p.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "peer"); err != nil {
			return nil, err
		}
		for _, tr := range []*webrtc.TrackLocalStaticRTP{p.audio, p.video} {
			t, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: dir})
			if err != nil {
				return nil, err
			}
			p.wg.Add(1)
			go p.readSenderRTCP(t.Sender())
		}
	} else {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
				return nil, err
			}
		}
	}
	pc.OnTrack(p.onTrack)
	return p, nil
}

func (p *Peer) readSenderRTCP(s *webrtc.RTPSender) {
	defer p.wg.Done()
	var videoSSRC uint32
	if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeVideo {
		videoSSRC = uint32(s.GetParameters().Encodings[0].SSRC)
	}
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			if videoSSRC != 0 {
				p.Reports.fromServer(pkt, videoSSRC)
			}
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.KeyframeRequests.Add(1)
				p.keyframeWanted.Store(true)
			case *rtcp.ReceiverEstimatedMaximumBitrate:
				p.TargetBitrate.Store(uint64(pkt.Bitrate))
			case *rtcp.TransportLayerCC:
				p.TWCCFeedback.Add(1)
				p.TWCCReported.Add(int64(pkt.PacketStatusCount))
			}
		}
	}
}

func (p *Peer) onTrack(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	var last uint16
	started := false
	var fm FrameModel
	if video {
		p.videoSSRC.Store(uint32(t.SSRC()))
		go p.readReceiverRTCP(rcv)
	}
	for {
		pkt, attr, err := t.ReadRTP()
		if err != nil {
			return
		}
		if video && attr != nil && attr.Get(webrtc.AttributeRtxSsrc) != nil {
			p.RTXReceived.Add(1)
		}
		if !video {
			p.AudioReceived.Add(1)
			continue
		}
		p.firstOnce.Do(func() { close(p.firstVideo) })
		p.VideoPackets.Add(1)
		p.VideoBytes.Add(int64(len(pkt.Payload)))
		p.Reports.received(pkt.Timestamp, len(pkt.Payload), time.Now())
		if n := int64(pkt.MarshalSize()); n > p.LargestVideoPacket.Load() {
			p.LargestVideoPacket.Store(n)
		}
		decoded, pli := fm.Push(pkt, time.Now())
		p.DecodedFrames.Add(int64(decoded))
		if pli {
			p.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
		}
		// A jitter buffer sees a jump forward as loss and one far backward as stale packets (a
		// retransmission or reordering goes back only a little).
		if d := pkt.SequenceNumber - last; started && ((d > 1 && d < 0x8000) || (d >= 0x8000 && d < 0x10000-100)) {
			p.SeqJumps.Add(1)
		}
		if !started || pkt.SequenceNumber-last < 0x8000 {
			last = pkt.SequenceNumber
		}
		started = true
		var tag byte
		if len(pkt.Payload) > 2 {
			tag = pkt.Payload[2]
		}
		if len(pkt.Payload) > 1 && pkt.Payload[0]&0x10 != 0 && pkt.Payload[1]&0x01 == 0 {
			p.KeyframesRecv.Add(1)
			p.keysFrom[tag].Add(1)
			p.LastKeyframe.Store(time.Now().UnixNano())
		}
		if pkt.Marker {
			p.FramesReceived.Add(1)
			p.framesFrom[tag].Add(1)
		}
	}
}

// Connect signals through a new WebRtcEndpoint of the pipeline, as a Kurento application does.
// loopback connects the endpoint to itself.
func (p *Peer) Connect(ctx context.Context, c *client.Client, pipeline string, loopback bool) error {
	ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		return fmt.Errorf("create WebRtcEndpoint: %w", err)
	}
	p.Endpoint = ep
	return p.Negotiate(ctx, c, loopback)
}

// Negotiate runs processOffer and trickle ICE with p.Endpoint.
func (p *Peer) Negotiate(ctx context.Context, c *client.Client, loopback bool) error {
	ep := p.Endpoint
	err := c.Subscribe(ctx, ep, "IceCandidateFound", func(ev client.Event) {
		var d struct {
			Candidate webrtc.ICECandidateInit `json:"candidate"`
		}
		if json.Unmarshal(ev.Data, &d) != nil {
			return
		}
		if p.opts.MapCandidate != nil {
			if d.Candidate.Candidate = p.opts.MapCandidate(d.Candidate.Candidate); d.Candidate.Candidate == "" {
				return
			}
		}
		p.PC.AddICECandidate(d.Candidate)
	})
	if err != nil {
		return err
	}
	if loopback {
		if err := c.Invoke(ctx, ep, "connect", map[string]any{"sink": ep}, nil); err != nil {
			return err
		}
	}
	if p.opts.GatherFirst {
		if err := c.Invoke(ctx, ep, "gatherCandidates", nil, nil); err != nil {
			return fmt.Errorf("gatherCandidates: %w", err)
		}
	}
	p.PC.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		go c.Invoke(context.Background(), ep, "addIceCandidate", map[string]any{"candidate": map[string]any{
			"__module__": "kurento", "__type__": "IceCandidate",
			"candidate": init.Candidate, "sdpMid": *init.SDPMid, "sdpMLineIndex": *init.SDPMLineIndex,
		}}, nil)
	})
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := p.PC.SetLocalDescription(offer); err != nil {
		return err
	}
	sdp := offer.SDP
	if p.opts.PassiveOffer {
		sdp = strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive")
	}
	var answer string
	if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": sdp}, &answer); err != nil {
		return fmt.Errorf("processOffer: %w", err)
	}
	if err := p.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return err
	}
	if p.opts.GatherFirst {
		return nil
	}
	return c.Invoke(ctx, ep, "gatherCandidates", nil, nil)
}

// FramesFrom is the number of video frames received from the peer sending with Options.Tag tag.
func (p *Peer) FramesFrom(tag byte) int64 { return p.framesFrom[tag].Load() }

// KeyframesFrom is the number of keyframes received from the peer sending with Options.Tag tag.
func (p *Peer) KeyframesFrom(tag byte) int64 { return p.keysFrom[tag].Load() }

// StopMedia stops what StartMedia sends; the connection stays up.
func (p *Peer) StopMedia() { p.mediaOnce.Do(func() { close(p.mediaStop) }) }

// WaitConnected waits for DTLS to complete.
func (p *Peer) WaitConnected(ctx context.Context) error {
	select {
	case <-p.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("peer not connected: %w", ctx.Err())
	}
}

// WaitVideo waits for the first received video packet.
func (p *Peer) WaitVideo(ctx context.Context) error {
	select {
	case <-p.firstVideo:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no video received: %w", ctx.Err())
	}
}

// StartMedia sends 30 fps synthetic VP8 (a keyframe every second and on request) and 50 packets/s of
// Opus-shaped audio until Close.
func (p *Peer) StartMedia() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(time.Second / 30)
		defer tick.Stop()
		payload := make([]byte, 600)
		big := make([]byte, 1100)
		audio := make([]byte, 80)
		// Random starts, as RFC 3550 wants: two peers' streams do not line up by chance.
		seq, aseq := uint16(rand.Uint32()), uint16(rand.Uint32())
		ts, ats := rand.Uint32(), rand.Uint32()
		for frame := 0; ; frame++ {
			select {
			case <-p.stop:
				return
			case <-p.mediaStop:
				return
			case <-tick.C:
			}
			key := frame%30 == 0 || p.keyframeWanted.Swap(false)
			size, n := len(payload), max(p.opts.PacketsPerFrame, 1)
			if t := p.TargetBitrate.Load(); p.opts.Adaptive && t > 0 {
				size = int(t/8/30) - 40
				size = max(size, 200)
				n = (size + 1099) / 1100
				size = min(size/n, len(big))
			}
			for i := 0; i < n; i++ {
				pl := payload
				if size != len(payload) {
					pl = big[:size]
				}
				pl[0], pl[1], pl[2] = 0x00, 0x01, p.opts.Tag
				if i == 0 {
					pl[0] = 0x10 // S=1, PID=0
					if key {
						pl[1] = 0x00
					}
				}
				seq++
				if p.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: i == n-1, SequenceNumber: seq, Timestamp: ts}, Payload: pl}) == nil {
					p.VideoPacketsSent.Add(1)
					p.VideoBytesSent.Add(int64(len(pl)))
				}
			}
			ts += 3000
			p.FramesSent.Add(1)
			for i := 0; i < 2 && frame%3 != 0 || i < 1; i++ {
				aseq++
				audio[0] = 0xfc
				p.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: ats}, Payload: audio})
				ats += 960
			}
		}
	}()
}

// WriteVideo sends one packet on the peer's video track as given (pion sets its SSRC and payload
// type), for tests that send what no encoder would: oversized packets, forged keyframe headers.
func (p *Peer) WriteVideo(pkt *rtp.Packet) error { return p.video.WriteRTP(pkt) }

// Offer is the SDP offer of a sending and receiving peer that is closed at once: for tests whose
// endpoints are negotiated but never connected, where the server's work is the same whoever offered.
func Offer() (string, error) {
	p, err := New(Options{Send: true, Receive: true})
	if err != nil {
		return "", err
	}
	defer p.Close()
	offer, err := p.PC.CreateOffer(nil)
	return offer.SDP, err
}

// Close stops the media and the peer connection.
func (p *Peer) Close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.PC.Close()
	p.wg.Wait()
}

// sendREMB tells the server, twice a second, the bandwidth the peer can take (MaxBitrate).
func (p *Peer) sendREMB() {
	defer p.wg.Done()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		if ssrc := p.videoSSRC.Load(); ssrc != 0 {
			p.PC.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: float32(p.opts.MaxBitrate), SSRCs: []uint32{ssrc}}})
		}
	}
}

// WaitDataChannel waits for the peer's data channel (DataChannel option) to open.
func (p *Peer) WaitDataChannel(ctx context.Context) error {
	if p.dc == nil {
		return fmt.Errorf("no data channel: Options.DataChannel not set")
	}
	select {
	case <-p.dcOpen:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("data channel not open: %w", ctx.Err())
	}
}

// SendData sends a text message on the peer's data channel.
func (p *Peer) SendData(text string) error {
	if p.dc == nil {
		return fmt.Errorf("no data channel: Options.DataChannel not set")
	}
	return p.dc.SendText(text)
}

// FrameModel is a receiver's jitter buffer and decoder in miniature, over VP8 frames as pion and
// browsers packetize them (first packet with the S bit, last with the marker): a frame is decoded
// when all its packets have arrived, in order, and it is a keyframe or the frame before it was
// decoded. A frame missing a packet for 500 ms is skipped and breaks the chain until a keyframe:
// 500 ms of wall time and of the stream's time both, so that a stall of this process, which holds
// the sender and the server back with the receiver, is not taken for a retransmission that failed.
type FrameModel struct {
	started   bool
	next      uint16 // first sequence number of the next frame to decode
	chain     bool
	slots     [4096]pktInfo
	waitSince time.Time
	waitTS    uint32 // RTP time of the packet that found the frame incomplete
	lastPLI   time.Time
}

type pktInfo struct {
	seq                    uint16
	ok, marker, start, key bool
}

func (m *FrameModel) get(seq uint16) *pktInfo {
	if e := &m.slots[seq%4096]; e.ok && e.seq == seq {
		return e
	}
	return nil
}

// Push takes a packet that arrived at now and returns how many frames it made decodable, and whether
// the receiver should ask for a keyframe (at most once a second).
func (m *FrameModel) Push(p *rtp.Packet, now time.Time) (decoded int, pli bool) {
	start := len(p.Payload) > 1 && p.Payload[0]&0x10 != 0
	m.slots[p.SequenceNumber%4096] = pktInfo{seq: p.SequenceNumber, ok: true, marker: p.Marker, start: start,
		key: start && p.Payload[1]&0x01 == 0}
	if !m.started {
		if !start {
			return 0, false
		}
		m.started, m.next = true, p.SequenceNumber
	}
	for {
		first := m.get(m.next)
		end, complete := uint16(0), false
		for i := uint16(0); i < 256; i++ {
			e := m.get(m.next + i)
			if e == nil || (i > 0 && e.start) {
				break
			}
			if e.marker {
				end, complete = m.next+i, true
				break
			}
		}
		if complete && first != nil && first.start {
			if first.key || m.chain {
				decoded++
				m.chain = true
			} else {
				pli = true
			}
			m.next, m.waitSince = end+1, time.Time{}
			continue
		}
		if int16(p.SequenceNumber-m.next) <= 0 {
			break // nothing newer than the frame we wait for
		}
		if m.waitSince.IsZero() {
			m.waitSince, m.waitTS = now, p.Timestamp
		}
		if now.Sub(m.waitSince) < 500*time.Millisecond || int32(p.Timestamp-m.waitTS) < 90000/2 {
			break
		}
		// Give up on this frame: go on from the next frame start we have.
		m.chain, pli = false, true
		found := false
		for i := uint16(1); i < 2048 && int16(p.SequenceNumber-(m.next+i)) >= 0; i++ {
			if e := m.get(m.next + i); e != nil && e.start {
				m.next, found = m.next+i, true
				break
			}
		}
		m.waitSince = time.Time{}
		if !found {
			m.next = p.SequenceNumber + 1
			break
		}
	}
	if pli {
		if now.Sub(m.lastPLI) < time.Second {
			pli = false
		} else {
			m.lastPLI = now
		}
	}
	return decoded, pli
}

// newPeerConnection is a pion peer with the default codecs and interceptors and loopback candidates
// only, over a lossy network or TCP only as the options say.
func newPeerConnection(opts Options) (*webrtc.PeerConnection, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	if opts.TWCC {
		numbering, err := twcc.NewHeaderExtensionInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(numbering)
	}
	se := webrtc.SettingEngine{}
	iface := opts.Interface
	if iface == "" {
		iface = "lo"
		se.SetIncludeLoopbackCandidate(true)
	}
	se.SetInterfaceFilter(func(name string) bool { return name == iface })
	// No mDNS, as the server: its sockets (port 5353 and an ephemeral one, on every address) would
	// be the only ones of the peer off its interface, and a test that checks where the server
	// listens sees the process's sockets.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if opts.TCPOnly {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	}
	if opts.Net != nil {
		se.SetNet(opts.Net)
	}
	if opts.Loss > 0 {
		n, err := ImpairedNet(Impairment{Loss: opts.Loss})
		if err != nil {
			return nil, err
		}
		se.SetNet(n)
	}
	if opts.TOS != nil {
		n, err := newTOSNet(opts.TOS)
		if err != nil {
			return nil, err
		}
		se.SetNet(n)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{})
}
