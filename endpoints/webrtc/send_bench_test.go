package webrtc

import (
	"testing"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The forwarding path of one subscriber over a real pion connection on loopback: a source's packet
// goes through the subscriber's media.Sender, localTrack's write (what pion's interceptors, if any,
// add per packet), SRTP and the socket to a pion peer reading it. cpu-ns/op is the process's CPU
// per packet, both ends included.
func BenchmarkPionSendPath(b *testing.B) { benchSendPath(b, false) }

// The same through the direct SRTP path: the sending peer on the shared UDP socket, our SRTP
// context, the egress.Conn.
func BenchmarkDirectSendPath(b *testing.B) { benchSendPath(b, true) }

func benchSendPath(b *testing.B, direct bool) {
	var d *directSRTP
	offerer, answerer := benchPeers(b, func(se *webrtc.SettingEngine) {
		if direct {
			mux, err := sharedUDPMux(0, 0, []string{"lo"}, true)
			if err != nil {
				b.Fatal(err)
			}
			se.SetICEUDPMux(mux)
			se.SetICECredentials(sharedCredentials())
		}
		d = newDirectSRTP(se, direct, true)
	})
	dtls := offerer.SCTP().Transport()
	dtls.OnStateChange(func(s webrtc.DTLSTransportState) {
		if s == webrtc.DTLSTransportStateConnected {
			go d.connected(offerer)
		}
	})
	dtls.ICETransport().OnSelectedCandidatePairChange(d.pairChanged)

	pl := media.NewPipeline()
	defer pl.Close()
	producer := pl.NewElement(nil, nil)
	source := producer.Source(media.Video, media.DefaultPad)
	source.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
	source.EnableCache()
	sinkEl := pl.NewElement(nil, nil)
	sender := sinkEl.NewSender(media.Video, media.DefaultPad)
	sinkEl.SetInputs(benchInputs{sender})
	if err := media.Connect(producer, sinkEl, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		b.Fatal(err)
	}
	if _, err := offerer.AddTrack(&localTrack{kind: webrtc.RTPCodecTypeVideo, id: "video", sender: sender, direct: d}); err != nil {
		b.Fatal(err)
	}
	received := make(chan struct{}, 1<<16)
	answerer.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := r.Read(buf); err != nil {
				return
			}
			received <- struct{}{}
		}
	})
	signal(b, offerer, answerer)

	payload := make([]byte, 1100)
	payload[0] = 0x10 // keyframe start
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SSRC: 42}, Payload: payload}
	benchFlow(b, payload, received, func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
		source.WriteRTP(pkt)
	})
	if sent := SentRTP(); direct != (sent.Direct > 0) {
		b.Fatalf("RTP sent direct %d, through pion %d", sent.Direct, sent.Pion)
	}
}
