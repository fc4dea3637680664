package webrtc

import (
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/rtpengine"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Unmarshalling into the reader's reused packet allocates nothing once its CSRC and extension slices
// have grown (pion/rtp v1.10.6 reuses them).
func TestUnmarshalReusedPacketAllocatesNothing(t *testing.T) {
	src := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1, CSRC: []uint32{1, 2}}, Payload: make([]byte, 1000)}
	src.SetExtension(1, []byte{1, 2})
	src.SetExtension(3, []byte{3})
	buf, err := src.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if allocs := testing.AllocsPerRun(1000, func() { p.Unmarshal(buf) }); allocs != 0 {
		t.Fatalf("%.1f allocations per Unmarshal", allocs)
	}
	if len(p.CSRC) != 2 || len(p.Extensions) != 2 {
		t.Fatalf("unmarshalled %+v", p.Header)
	}
}

func BenchmarkUnmarshalReused(b *testing.B) {
	src := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 1100)}
	src.SetExtension(1, []byte{1, 2})
	buf, _ := src.Marshal()
	var p rtp.Packet
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := p.Unmarshal(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// The whole receiving path of an endpoint over a real pion connection on loopback: a pion peer
// writes, readTrack (TrackRemote.Read, Unmarshal into a reused packet) hands each packet to a source
// with one sink. allocs/op counts both ends (SRTP, interceptors) per packet.
func BenchmarkPionReceivePath(b *testing.B) {
	b.Run("nack=off", func(b *testing.B) { benchReceivePath(b, false) })
	b.Run("nack=on", func(b *testing.B) { benchReceivePath(b, true) })
}

// benchReceivePath: with nack, the source keeps its packet cache and the reader follows the stream
// for NACKs (rtpengine.Receiver) as endpoints do for video.
func benchReceivePath(b *testing.B, nack bool) {
	offerer, answerer := benchPeers(b, nil)
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := offerer.AddTrack(track); err != nil {
		b.Fatal(err)
	}
	pl := media.NewPipeline()
	defer pl.Close()
	el := pl.NewElement(nil, nil)
	source := el.Source(media.Video, media.DefaultPad)
	sinkEl := pl.NewElement(nil, nil)
	sender := sinkEl.NewSender(media.Video, media.DefaultPad)
	sinkEl.SetInputs(benchInputs{sender})
	if err := media.Connect(el, sinkEl, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		b.Fatal(err)
	}
	received := make(chan struct{}, 1<<16)
	sender.Bind(5, 96, media.Codec{MimeType: "video/VP8", ClockRate: 90000}, func(*rtp.Header, []byte) error {
		received <- struct{}{}
		return nil
	})
	if nack {
		source.EnableCache()
	}
	ep := &Endpoint{}
	answerer.OnTrack(func(r *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		in := &incoming{t: media.Video, ssrc: uint32(r.SSRC()), src: source, rx: rtpengine.NewReceiver(90000)}
		if !nack {
			in.t = media.Audio // no NACK bookkeeping beyond the counters
		}
		ep.readTrack(r, source, in)
	})
	signal(b, offerer, answerer)

	payload := make([]byte, 1100)
	payload[0] = 0x10
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}, Payload: payload}
	benchFlow(b, payload, received, func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
		if err := track.WriteRTP(pkt); err != nil {
			b.Fatal(err)
		}
	})
}

// benchPeers are two pion peers with the endpoints' API (codecs, interceptors), on loopback,
// closed at the end of the benchmark; offererSetup, when set, adds to the offerer's settings.
func benchPeers(b *testing.B, offererSetup func(*webrtc.SettingEngine)) (offerer, answerer *webrtc.PeerConnection) {
	s := Settings{IncludeLoopback: true, CertificateKeyType: "ECDSA"}
	for _, pc := range []**webrtc.PeerConnection{&offerer, &answerer} {
		se := webrtc.SettingEngine{}
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
		if pc == &offerer && offererSetup != nil {
			offererSetup(&se)
		}
		api, err := newAPI(&s, se)
		if err != nil {
			b.Fatal(err)
		}
		if *pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { (*pc).Close() })
	}
	return offerer, answerer
}

// benchFlow writes VP8 packets (payload, a keyframe start) until one is received, then times b.N
// more, each waited for, not keyframes. cpu-ns/op is the process's CPU per packet, both ends.
func benchFlow(b *testing.B, payload []byte, received chan struct{}, write func()) {
	deadline := time.After(10 * time.Second)
	for started := false; !started; {
		write()
		select {
		case <-received:
			started = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			b.Fatal("no media")
		}
	}
	payload[1] = 0x01 // not a keyframe from now on
	timeout := time.NewTimer(time.Hour)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	lost := 0
	for i := 0; i < b.N; i++ {
		write()
		timeout.Reset(time.Second)
		select {
		case <-received:
		case <-timeout.C:
			lost++
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if lost > b.N/100 {
		b.Fatalf("%d of %d packets lost", lost, b.N)
	}
}

// cpuTime is the CPU the process used so far, user and system, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

type benchInputs struct{ s *media.Sender }

func (i benchInputs) Input(media.Type, string) media.Input { return i.s }

// signal connects two pion peers in-process (non-trickle).
func signal(tb testing.TB, offerer, answerer *webrtc.PeerConnection) {
	offer, err := offerer.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(offerer)
	if err := offerer.SetLocalDescription(offer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := answerer.SetRemoteDescription(*offerer.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
	answer, err := answerer.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	gathered = webrtc.GatheringCompletePromise(answerer)
	if err := answerer.SetLocalDescription(answer); err != nil {
		tb.Fatal(err)
	}
	<-gathered
	if err := offerer.SetRemoteDescription(*answerer.LocalDescription()); err != nil {
		tb.Fatal(err)
	}
}
