//go:build !kmsfuzz

package webrtc_test

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// loopbackPeer connects a peer to a WebRtcEndpoint connected to itself and waits for its video to
// come back; prepare, if set, changes the peer before it negotiates.
func loopbackPeer(t *testing.T, opts testpeer.Options, prepare func(*testpeer.Peer)) *testpeer.Peer {
	t.Helper()
	return loopbackPeerOn(t, testserver.Start(t).URL, opts, prepare)
}

// loopbackPeerOn is loopbackPeer with the server at url.
func loopbackPeerOn(t *testing.T, url string, opts testpeer.Options, prepare func(*testpeer.Peer)) *testpeer.Peer {
	t.Helper()
	ctx, c, pipeline := testserver.Connect(t, url, 20*time.Second)
	peer, err := testpeer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if prepare != nil {
		prepare(peer)
	}
	if err := peer.Connect(ctx, c, pipeline, true); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	peer.StartMedia()
	if err := peer.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	return peer
}

func TestLoopbackEchoesMedia(t *testing.T) {
	peer := loopbackPeer(t, testpeer.Options{Send: true, Receive: true}, nil)
	time.Sleep(2 * time.Second)
	sent, got, audio := peer.FramesSent.Load(), peer.FramesReceived.Load(), peer.AudioReceived.Load()
	t.Logf("frames sent %d, received %d, audio packets %d, seq jumps %d", sent, got, audio, peer.SeqJumps.Load())
	if got < sent/2 || audio == 0 {
		t.Fatalf("loopback: sent %d frames, got %d back and %d audio packets", sent, got, audio)
	}
}

// TestSecondVideoTrackIgnored: a peer that sends two video tracks (camera and screen, say) gets the
// first one back in loopback; the second is read and dropped, not mixed into the same pad.
func TestSecondVideoTrackIgnored(t *testing.T) {
	var screen *webrtc.TrackLocalStaticRTP
	stop := make(chan struct{})
	defer close(stop)
	peer := loopbackPeer(t, testpeer.Options{Send: true, Receive: true, Tag: 1}, func(p *testpeer.Peer) {
		var err error
		screen, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "screen", "peer")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PC.AddTransceiverFromTrack(screen, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		go func() { // the second track's frames carry tag 2
			tick := time.NewTicker(time.Second / 30)
			defer tick.Stop()
			payload := []byte{0x10, 0x00, 2, 0, 0, 0, 0, 0}
			for seq, ts := uint16(1), uint32(1); ; seq, ts = seq+1, ts+3000 {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				screen.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
			}
		}()
	})
	time.Sleep(2 * time.Second)
	first, second := peer.FramesFrom(1), peer.FramesFrom(2)
	t.Logf("frames back: %d of the first video track, %d of the second", first, second)
	if first < 30 || second != 0 {
		t.Errorf("got %d frames of the first track and %d of the second; want the first only", first, second)
	}
}

// TestLoopbackOverICETCP: a peer that can only use TCP (UDP blocked) reaches the endpoint through its
// passive ICE-TCP candidate, and media flows both ways.
func TestLoopbackOverICETCP(t *testing.T) {
	peer := loopbackPeer(t, testpeer.Options{Send: true, Receive: true, TCPOnly: true}, nil)
	time.Sleep(time.Second)
	pair, err := peer.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair: %v", err)
	}
	sent, got := peer.FramesSent.Load(), peer.FramesReceived.Load()
	t.Logf("over %s: frames sent %d, received %d", pair.Remote.Protocol, sent, got)
	if pair.Remote.Protocol != webrtc.ICEProtocolTCP || got < sent/2 {
		t.Errorf("pair over %s, %d of %d frames back", pair.Remote.Protocol, got, sent)
	}
}
