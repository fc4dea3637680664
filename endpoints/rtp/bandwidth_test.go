package rtp

import (
	"fmt"
	"math"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/rtpengine"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// The peer of an RtpEndpoint with mtu 500 receives no RTP datagram above 500 bytes, though the
// graph sends it VP8 packets of 1000 bytes: they are repacketised, not dropped.
func TestMTUBoundsWhatThePeerReceives(t *testing.T) {
	peer := newUDPPeer(t, "127.0.0.1")
	p := media.NewPipeline()
	t.Cleanup(p.Close)
	ep, el, _ := newEndpoint(t, p)
	producer := p.NewElement(nil, nil)
	src := producer.Source(media.Video, media.DefaultPad)
	src.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
	if err := media.Connect(producer, el, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	s := loopbackSettings()
	s.MTU = 500
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-mux\r\na=recvonly\r\n", peer.port())
	if _, err := ep.ProcessOffer(offer, s); err != nil {
		t.Fatal(err)
	}
	sendBig(src, 1, 10)
	// 10 packets of 1000 bytes of payload become 30 of at most 500 bytes.
	waitFor(t, "30 packets at the peer", func() bool { return peer.packets.Load() >= 30 })
	if n := peer.largest.Load(); n > 500 {
		t.Fatalf("the peer received a %d-byte RTP packet, mtu 500", n)
	}
}

// rembPeer negotiates a recvonly video RtpEndpoint (goog-remb) with a peer that then sends it VP8
// at 400 kbit/s, dropping every third packet when lossy; it returns the REMBs the peer got once
// there are n of them.
func rembPeer(t *testing.T, s Settings, lossy bool, n int) []uint64 {
	t.Helper()
	peer := newUDPPeer(t, "127.0.0.1")
	p := media.NewPipeline()
	t.Cleanup(p.Close)
	ep, _, _ := newEndpoint(t, p)
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-mux\r\na=sendonly\r\n", peer.port())
	if _, err := ep.ProcessOffer(offer, s); err != nil {
		t.Fatal(err)
	}
	port := ep.LocalPorts()[0]
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 1000)
		payload[0] = 0x10
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if lossy && seq%3 == 0 {
				continue
			}
			pkt := rtpFrom(77, seq)
			pkt = append(pkt[:12], payload...)
			_, _ = peer.conn.WriteToUDP(pkt, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		}
	}()
	defer func() { close(stop); <-done }()
	deadline := time.Now().Add(20 * time.Second)
	for len(peer.remb()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the peer got %d REMBs in 20 s, want %d", len(peer.remb()), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rembs := peer.remb()
	t.Logf("REMBs: %v", rembs)
	return rembs
}

// hasStep tells whether some REMB is ratio times the one before it (±2 %).
func hasStep(rembs []uint64, ratio float64) bool {
	for i := 1; i < len(rembs); i++ {
		if math.Abs(float64(rembs[i])/float64(rembs[i-1])-ratio) < 0.02 {
			return true
		}
	}
	return false
}

// The REMB an RtpEndpoint sends its peer follows rembParams as KMS's does: rembOnConnect first,
// then the bitrate received grown by exponentialFactor per report, never above twice what arrives
// nor maxVideoRecvBandwidth; cut by decrementFactor on losses above upLosses, held when they are
// within.
func TestRembFollowsRembParams(t *testing.T) {
	params := rtpengine.DefaultRembParams()
	params.RembOnConnect = 250000
	params.ExponentialFactor = 0.25
	s := loopbackSettings()
	s.Remb = params

	t.Run("lossless", func(t *testing.T) {
		t.Parallel()
		rembs := rembPeer(t, s, false, 6)
		if rembs[0] != 250000 {
			t.Errorf("first REMB %d, want rembOnConnect 250000", rembs[0])
		}
		if !hasStep(rembs, 1.25) {
			t.Errorf("REMBs %v: none grows by exponentialFactor 0.25", rembs)
		}
		for _, r := range rembs {
			if r > 2*420000 {
				t.Errorf("REMBs %v: above twice the 400 kbit/s received", rembs)
				break
			}
		}
	})
	t.Run("maxVideoRecvBandwidth", func(t *testing.T) {
		t.Parallel()
		s := s
		s.MaxVideoRecvBandwidth, s.MinVideoRecvBandwidth = 300, 260
		rembs := rembPeer(t, s, false, 5)
		for _, r := range rembs {
			if r > 300000 || r < 260000 {
				t.Fatalf("REMBs %v: outside minVideoRecvBandwidth 260..maxVideoRecvBandwidth 300 kbit/s", rembs)
			}
		}
	})
	// A third lost: about 267 kbit/s arrive.
	t.Run("decrementFactor", func(t *testing.T) {
		t.Parallel()
		s := s
		s.Remb.DecrementFactor = 0.3
		rembs := rembPeer(t, s, true, 6)
		// 0.3 of what arrived in a report interval (about 267 kbit/s, less on a loaded machine); KMS's
		// default 0.5 would not go below 130 kbit/s.
		if low := slices.Min(rembs); low > 107000 {
			t.Errorf("REMBs %v with 33%% loss: none is cut to 0.3 times the 267 kbit/s received", rembs)
		}
	})
	t.Run("upLosses", func(t *testing.T) {
		t.Parallel()
		s := s
		s.Remb.DecrementFactor, s.Remb.UpLosses = 0.3, 255
		rembs := rembPeer(t, s, true, 6)
		if low := slices.Min(rembs); low < 220000 {
			t.Errorf("REMBs %v: cut below the 267 kbit/s received though upLosses tolerates the loss", rembs)
		}
	})
}

// The peer's REMB bounds what it is sent (frames beyond it are dropped up to a keyframe), but never
// below minVideoSendBandwidth.
func TestPeerREMBWithinMinVideoSendBandwidth(t *testing.T) {
	received := func(t *testing.T, minKbps int) int64 {
		peer := newUDPPeer(t, "127.0.0.1")
		p := media.NewPipeline()
		t.Cleanup(p.Close)
		ep, el, _ := newEndpoint(t, p)
		producer := p.NewElement(nil, nil)
		src := producer.Source(media.Video, media.DefaultPad)
		src.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
		if err := media.Connect(producer, el, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
			t.Fatal(err)
		}
		s := loopbackSettings()
		s.MinVideoSendBandwidth = minKbps
		offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
			"m=video %d RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-mux\r\na=recvonly\r\n", peer.port())
		if _, err := ep.ProcessOffer(offer, s); err != nil {
			t.Fatal(err)
		}
		remb, _ := (&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 77, Bitrate: 40000, SSRCs: []uint32{1}}).Marshal()
		peer.send(t, ep.LocalPorts()[0], remb)
		waitFor(t, "the peer's REMB taken", func() bool {
			_, out := ep.Stats(nil)
			return len(out) == 1 && out[0].REMB == 40000
		})
		sendBig(src, 1, 1) // a keyframe, then 1000-byte delta frames far above 40 kbit/s
		payload := make([]byte, 1000)
		payload[0], payload[1] = 0x10, 0x01
		for i := 2; i <= 200; i++ {
			src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: 42}, Payload: payload})
			time.Sleep(2 * time.Millisecond) // the source's pace: 4 Mbit/s, within the socket buffers
		}
		dropped := &ep.Sender(media.Video).Stats.BitrateDropped
		waitFor(t, "every packet received or dropped", func() bool { return peer.packets.Load()+int64(dropped.Load()) == 200 })
		return peer.packets.Load()
	}
	if n := received(t, 0); n > 20 {
		t.Errorf("the peer received %d of 200 packets though its REMB says 40 kbit/s", n)
	}
	if n := received(t, 100000); n != 200 {
		t.Errorf("the peer received %d of 200 packets: its 40 kbit/s REMB cut below minVideoSendBandwidth", n)
	}
}
