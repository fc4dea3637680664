//go:build !kmsfuzz

package rtp_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/rtp"
)

// A plain RTP peer publishes VP8 to an RtpEndpoint; a WebRTC viewer of it loses 10 % of what it
// receives. The viewer's NACKs are answered from the RtpEndpoint source's cache (before, that source
// had none: no retransmission, and every loss a broken frame until the next keyframe): it gets
// retransmissions and decodes nearly every frame.
func TestRtpPublisherToLossyWebRTCViewer(t *testing.T) {
	s := start(t, 60*time.Second)
	rtpEp := s.create("RtpEndpoint", nil)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	go func() { // RTCP from the server (PLI, NACK, reports): read and ignored, as a simple sender does
		buf := make([]byte, 1500)
		for {
			if _, _, err := peer.ReadFromUDP(buf); err != nil {
				return
			}
		}
	}()
	offer := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-mux\r\na=sendonly\r\n",
		peer.LocalAddr().(*net.UDPAddr).Port)
	_, ports := mediaOf(t, s.invoke(rtpEp, "processOffer", map[string]any{"offer": offer}))
	to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports["video"]}
	// The loss makes the server's loss-based bandwidth estimate fall (fraction lost above 10 % in
	// most reports: the 10 % drawn at random, plus what a loaded machine adds), and frames dropped for
	// bandwidth decode no more than lost ones: the application gives this viewer the stream's rate
	// at least (minVideoSendBandwidth), so that what is measured is the retransmissions.
	viewerEp := s.create("WebRtcEndpoint", nil)
	s.invoke(viewerEp, "setMinVideoSendBandwidth", map[string]any{"minVideoSendBandwidth": 1000})
	viewer := s.viewerAt(viewerEp, rtpEp, testpeer.Options{Receive: true, Loss: 0.1})

	// 30 fps, three packets a frame, a keyframe every second.
	const frames = 180
	payload := make([]byte, 800)
	seq, ts := uint16(40000), uint32(1234)
	tick := time.NewTicker(time.Second / 30)
	defer tick.Stop()
	var decodedFrom int64
	for f := range frames {
		<-tick.C
		if f == 30 {
			decodedFrom = viewer.DecodedFrames.Load() // from the second keyframe: the viewer is set up
		}
		for i := range 3 {
			payload[0], payload[1] = 0x00, 0x01
			if i == 0 {
				payload[0] = 0x10
				if f%30 == 0 {
					payload[1] = 0x00
				}
			}
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: 7, Marker: i == 2},
				Payload: payload}).Marshal()
			if _, err := peer.WriteToUDP(b, to); err != nil {
				t.Fatal(err)
			}
			seq++
		}
		ts += 3000
	}
	// Three quarters: a packet lost with all its NACKs and retransmissions (the 10 % applies to RTCP
	// and RTX too) costs the frames up to the next keyframe, and on a loaded machine a stall of the
	// process past the viewer's 500 ms wait does too (121-147 of 150 decoded there); without
	// retransmissions each GOP decodes only its first few frames (about an eighth of the window).
	// Frames still to come (retransmissions) are waited for until none has been decoded for 2 s.
	want := int64(frames-30) * 75 / 100
	decoded := func() int64 { return viewer.DecodedFrames.Load() - decodedFrom }
	last, since := decoded(), time.Now()
	s.waitFor("the frames decoded", func() bool {
		if n := decoded(); n != last {
			last, since = n, time.Now()
		}
		return last >= want || time.Since(since) > 2*time.Second
	})
	t.Logf("frames sent after set-up %d, decoded %d; %d retransmissions on RTX",
		frames-30, decoded(), viewer.RTXReceived.Load())
	if n := decoded(); n < want {
		t.Errorf("%d of %d frames decoded, want at least %d", n, frames-30, want)
	}
	if viewer.RTXReceived.Load() == 0 {
		t.Error("the viewer got no retransmission")
	}
}
