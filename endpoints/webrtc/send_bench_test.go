package webrtc

import (
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The forwarding path of one subscriber over a real pion connection on loopback: a source's packet
// goes through the subscriber's media.Sender, localTrack's write (what pion's interceptors, if any,
// add per packet), SRTP and the socket to a pion peer reading it. cpu-ns/op is the process's CPU
// per packet, both ends included.
func BenchmarkPionSendPath(b *testing.B) {
	s := Settings{IncludeLoopback: true, CertificateKeyType: "ECDSA"}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	api, err := newAPI(&s, se)
	if err != nil {
		b.Fatal(err)
	}
	offerer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer offerer.Close()
	answerer, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	defer answerer.Close()

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
	if _, err := offerer.AddTrack(&localTrack{kind: webrtc.RTPCodecTypeVideo, id: "video", sender: sender}); err != nil {
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
	write := func() {
		pkt.SequenceNumber++
		pkt.Timestamp += 3000
		source.WriteRTP(pkt)
	}
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
