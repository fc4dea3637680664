// Package testpeer is a WebRTC peer for tests and the load tool: a pion PeerConnection that signals
// through a WebRtcEndpoint the way Kurento applications do (processOffer, trickle ICE both ways,
// gatherCandidates), sends synthetic VP8 and Opus, and counts what it receives.
package testpeer

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
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
}

// Peer is one client-side WebRTC connection to a WebRtcEndpoint.
type Peer struct {
	PC       *webrtc.PeerConnection
	Endpoint string // id of the WebRtcEndpoint it talks to

	video, audio *webrtc.TrackLocalStaticRTP

	keyframeWanted atomic.Bool
	FramesSent     atomic.Int64
	FramesReceived atomic.Int64 // video frames (marker bits) received
	AudioReceived  atomic.Int64 // audio packets received
	VideoPackets   atomic.Int64
	SeqJumps       atomic.Int64 // received video sequence numbers that skipped ahead by more than one
	KeyframesRecv  atomic.Int64
	// LastKeyframe is when the last keyframe arrived (unix nanoseconds), 0 before any.
	LastKeyframe atomic.Int64
	framesFrom   [256]atomic.Int64
	keysFrom     [256]atomic.Int64
	opts         Options
	mediaStop    chan struct{}
	mediaOnce    sync.Once
	connected    chan struct{}
	firstVideo   chan struct{}
	once         sync.Once
	firstOnce    sync.Once
	stop         chan struct{}
	wg           sync.WaitGroup
}

// New creates a peer connection with loopback host candidates only.
func New(opts Options) (*Peer, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &Peer{PC: pc, opts: opts, connected: make(chan struct{}), firstVideo: make(chan struct{}),
		stop: make(chan struct{}), mediaStop: make(chan struct{})}
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
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframeWanted.Store(true)
			}
		}
	}
}

func (p *Peer) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	var last uint16
	started := false
	for {
		pkt, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if !video {
			p.AudioReceived.Add(1)
			continue
		}
		p.firstOnce.Do(func() { close(p.firstVideo) })
		p.VideoPackets.Add(1)
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
		if json.Unmarshal(ev.Data, &d) == nil {
			p.PC.AddICECandidate(d.Candidate)
		}
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
	var answer string
	if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": offer.SDP}, &answer); err != nil {
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
			payload[0] = 0x10 // S=1, PID=0
			payload[1] = 0x01
			payload[2] = p.opts.Tag
			if key {
				payload[1] = 0x00
			}
			seq++
			p.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
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
