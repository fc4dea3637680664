package processing

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

type inputsOf map[media.Type]media.Input

func (m inputsOf) Input(t media.Type, pad string) media.Input {
	if pad != media.DefaultPad {
		return nil
	}
	return m[t]
}

// h264Sink records what a sender bound to H264 sends: NAL unit types, and the stream in Annex B.
type h264Sink struct {
	mu      sync.Mutex
	packets int
	nals    map[byte]int
	annexB  []byte
	depay   codecs.H264Packet
	badPT   int
}

func (k *h264Sink) write(h *rtp.Header, payload []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.packets++
	if h.PayloadType != 102 || h.SSRC != 4242 {
		k.badPT++
	}
	if len(payload) > 0 {
		typ := payload[0] & 0x1f
		switch {
		case typ == 28 && len(payload) > 1: // FU-A: the type of the fragmented unit
			k.nals[payload[1]&0x1f]++
		case typ == 24: // STAP-A: the aggregated units
			for b := payload[1:]; len(b) > 2; {
				n := int(b[0])<<8 | int(b[1])
				if n == 0 || len(b) < 2+n {
					break
				}
				k.nals[b[2]&0x1f]++
				b = b[2+n:]
			}
		default:
			k.nals[typ]++
		}
	}
	if out, err := k.depay.Unmarshal(payload); err == nil {
		k.annexB = append(k.annexB, out...)
	}
	return nil
}

func (k *h264Sink) count(typ byte) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.nals[typ]
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A VP8 source linked to two senders whose peers negotiated H264 only: one transcoder serves both,
// they send H264 (SPS, PPS, IDR) that ffmpeg decodes, the owner of the source reports TRANSCODING
// once, and the transcoder goes away with the last sender.
func TestTranscodeVP8ToH264SharedByTwoSenders(t *testing.T) {
	needGst(t, "x264enc", "rtph264pay", "videoconvert")
	before := runtime.NumGoroutine()
	if media.ActiveTranscoders() != 0 {
		t.Fatalf("%d transcoders before the test", media.ActiveTranscoders())
	}
	p := media.NewPipeline()
	defer p.Close()
	var evMu sync.Mutex
	var events []media.TranscodingChanged
	pub := p.NewElement(nil, func(ev media.Event) {
		if tc, ok := ev.(media.TranscodingChanged); ok {
			evMu.Lock()
			events = append(events, tc)
			evMu.Unlock()
		}
	})
	src := pub.Source(media.Video, media.DefaultPad)
	src.SetCodec(VP8)

	h264 := media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1;profile-level-id=42e01f"}
	var sinks []*h264Sink
	var elems []*media.Element
	var senders []*media.Sender
	for i := 0; i < 2; i++ {
		e := p.NewElement(nil, nil)
		s := e.NewSender(media.Video, media.DefaultPad)
		e.SetInputs(inputsOf{media.Video: s})
		k := &h264Sink{nals: map[byte]int{}}
		s.Bind(4242, 102, h264, k.write)
		sinks, elems, senders = append(sinks, k), append(elems, e), append(senders, s)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	publish(t, src, asymmetricClip(t), stop, &wg)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	start := time.Now()
	for _, e := range elems {
		if err := media.Connect(pub, e, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
			t.Fatal(err)
		}
	}
	for i, k := range sinks {
		waitUntil(t, 10*time.Second, "an H264 IDR at sender "+string(rune('0'+i)), func() bool { return k.count(5) > 0 })
	}
	t.Logf("first IDR at both senders %v after connecting", time.Since(start).Round(time.Millisecond))
	if n := media.ActiveTranscoders(); n != 1 {
		t.Fatalf("%d transcoders for two H264 sinks of one source, want 1", n)
	}
	for _, s := range senders {
		if !s.Transcoding() {
			t.Fatal("a sender is not fed by the transcoder")
		}
	}
	time.Sleep(1500 * time.Millisecond) // a second and a half of H264
	for i, k := range sinks {
		k.mu.Lock()
		t.Logf("sender %d: %d packets, NAL types %v", i, k.packets, k.nals)
		if k.nals[7] == 0 || k.nals[8] == 0 || k.badPT != 0 {
			t.Errorf("sender %d: no SPS/PPS or wrong SSRC/PT (%d): %v", i, k.badPT, k.nals)
		}
		k.mu.Unlock()
	}
	evMu.Lock()
	if len(events) != 1 || !events[0].Transcoding || events[0].Type != media.Video || events[0].Bin == "" {
		t.Errorf("TranscodingChanged events on the source's element: %+v, want one TRANSCODING", events)
	}
	evMu.Unlock()

	// ffmpeg decodes what the first sender sent.
	sinks[0].mu.Lock()
	file := filepath.Join(t.TempDir(), "out.h264")
	err := os.WriteFile(file, sinks[0].annexB, 0o644)
	sinks[0].mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "h264", "-i", file,
		"-f", "null", "-progress", "pipe:1", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg cannot decode the H264: %v\n%s", err, out)
	}
	frames := ""
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "frame=") {
			frames = l
		}
	}
	t.Logf("ffmpeg decoded the transcoded H264: %s", frames)
	if frames == "" || frames == "frame=0" {
		t.Errorf("ffmpeg decoded no frame:\n%s", out)
	}

	// Unlinking the senders releases the transcoder with the last one.
	if err := media.Disconnect(pub, elems[0], media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := media.ActiveTranscoders(); n != 1 {
		t.Fatalf("%d transcoders with one H264 sink left, want 1", n)
	}
	if err := media.Disconnect(pub, elems[1], media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "no transcoder", func() bool { return media.ActiveTranscoders() == 0 })
	if n := src.Sinks(); n != 0 {
		t.Errorf("the source still has %d sinks", n)
	}
	close(stop)
	wg.Wait()
	for _, e := range append(elems, pub) {
		e.Release()
	}
	waitUntil(t, 5*time.Second, "goroutines back", func() bool { return runtime.NumGoroutine() <= before+1 })
}

// Without a way to convert (audio to video), the sender keeps dropping, as before.
func TestTranscoderDescriptions(t *testing.T) {
	for _, tc := range []struct {
		from *media.Codec
		to   string
		ok   bool
	}{
		{VP8, "video/H264", true},
		{&media.Codec{MimeType: "video/H264"}, "video/VP8", true},
		{&media.Codec{MimeType: "video/VP9"}, "video/VP8", true},
		{Opus, "audio/PCMU", true},
		{&media.Codec{MimeType: "audio/PCMA"}, "audio/opus", true},
		{Opus, "video/H264", false},
		{nil, "video/H264", false},
		{VP8, "video/AV1", false},
	} {
		d, err := TranscoderDescription(tc.from, tc.to, 300000, nil)
		if (err == nil) != tc.ok {
			t.Errorf("%v -> %s: %v", tc.from, tc.to, err)
		}
		if tc.ok && !strings.Contains(d, "appsink") {
			t.Errorf("%v -> %s: %s", tc.from, tc.to, d)
		}
	}
}

// TestTranscoderFollowsSinkBitrate: the encoder's target follows the REMB of the transcoded media's
// sink, within the source element's encoder bitrate bounds, and the source hears what the sink takes.
func TestTranscoderFollowsSinkBitrate(t *testing.T) {
	needGst(t, "x264enc", "rtph264pay", "videoconvert")
	p := media.NewPipeline()
	defer p.Close()
	pub := p.NewElement(nil, nil)
	src := pub.Source(media.Video, media.DefaultPad)
	src.SetCodec(VP8)

	// The transcoder's output belongs to an element whose sink is an H264 sender.
	conv := p.NewElement(nil, nil)
	out := conv.Source(media.Video, media.DefaultPad)
	h264 := media.Codec{MimeType: "video/H264", ClockRate: 90000}
	out.SetCodec(&h264)
	tr, err := NewTranscoder(src, h264, out)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	feeder := p.NewElement(nil, nil)
	feeder.SetInputs(inputsOf{media.Video: tr})
	peer := p.NewElement(nil, nil)
	sender := peer.NewSender(media.Video, media.DefaultPad)
	peer.SetInputs(inputsOf{media.Video: sender})
	sender.Bind(4242, 102, h264, (&h264Sink{nals: map[byte]int{}}).write)
	for _, link := range [][2]*media.Element{{pub, feeder}, {conv, peer}} {
		if err := media.Connect(link[0], link[1], media.Video, media.DefaultPad, media.DefaultPad); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	publish(t, src, asymmetricClip(t), stop, &wg)
	defer func() { close(stop); wg.Wait() }()

	kbps := func() uint64 {
		v, err := tr.(*Transcoder).pipe.Get(encName, "bitrate")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := v.(uint64)
		return n
	}
	if got := kbps(); got != media.DefaultEncoderBitrate/1000 {
		t.Errorf("encoder starts at %d kb/s, want KMS's default %d", got, media.DefaultEncoderBitrate/1000)
	}
	sender.OnREMB(120000)
	waitUntil(t, 5*time.Second, "the encoder at the REMB's 120 kb/s", func() bool { return kbps() == 120 })
	if got := src.SinkBitrate(); got != 120000 {
		t.Errorf("the source hears its sinks take %d b/s, want the transcoded sink's 120000", got)
	}
	pub.SetEncoderBitrate(media.EncoderBitrate{Target: 300000, Min: 200000})
	waitUntil(t, 5*time.Second, "the encoder at minEncoderBitrate's 200 kb/s", func() bool { return kbps() == 200 })
}
