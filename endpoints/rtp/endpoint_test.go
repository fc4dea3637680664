package rtp

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// events collects what an element reports.
type events struct {
	mu  sync.Mutex
	all []media.Event
}

func (e *events) add(ev media.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) find(match func(media.Event) bool) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.all {
		if match(ev) {
			return true
		}
	}
	return false
}

func newEndpoint(t *testing.T, p *media.Pipeline) (*Endpoint, *media.Element, *events) {
	t.Helper()
	evs := &events{}
	el := p.NewElement(nil, evs.add)
	ep := New(el, quiet)
	t.Cleanup(func() { ep.Close(); el.Release() })
	return ep, el, evs
}

func loopbackSettings() Settings {
	return Settings{MinPort: 20000, MaxPort: 29999, Address: mustAddr("127.0.0.1")}
}

func TestAnswerVideoOnlyRecvonlyAVP(t *testing.T) {
	p := media.NewPipeline()
	defer p.Close()
	ep, _, _ := newEndpoint(t, p)
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=video 5000 RTP/AVP 97 96 98\r\n" +
		"a=rtpmap:97 MP4V-ES/90000\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n" +
		"a=rtpmap:98 H263-1998/90000\r\na=recvonly\r\n"
	answer, err := ep.ProcessOffer(offer, loopbackSettings())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answer:\n%s", answer)
	_, media, err := parseSDP(answer)
	if err != nil || len(media) != 1 {
		t.Fatalf("answer does not parse into one m-line: %v", err)
	}
	m := media[0]
	if m.proto != "RTP/AVP" || m.port == 0 || m.port%2 != 0 || m.dir != "sendonly" {
		t.Errorf("m-line: proto %s port %d dir %s; want RTP/AVP, an even port, sendonly", m.proto, m.port, m.dir)
	}
	if len(m.codecs) != 1 || m.codecs[0].pt != 96 || m.codecs[0].name != "H264" || m.codecs[0].fmtp != "packetization-mode=1" {
		t.Errorf("codecs %+v, want only H264 as PT 96 with the offered fmtp", m.codecs)
	}
	if m.rtcpPort != m.port+1 || m.mux {
		t.Errorf("rtcp port %d (mux %v), want %d", m.rtcpPort, m.mux, m.port+1)
	}
	if len(m.fb[96].lines()) != 0 {
		t.Errorf("feedback answered on RTP/AVP: %v", m.fb[96].lines())
	}
}

func TestAnswerRejectsWhatItCannotTake(t *testing.T) {
	p := media.NewPipeline()
	defer p.Close()
	ep, _, _ := newEndpoint(t, p)
	offer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 5000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n" +
		"m=video 5002 RTP/SAVP 96\r\na=rtpmap:96 VP8/90000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n" +
		"m=application 5004 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
		"m=audio 5006 RTP/AVPF 0\r\na=rtcp-mux\r\n"
	answer, err := ep.ProcessOffer(offer, loopbackSettings())
	if err != nil {
		t.Fatal(err)
	}
	_, ms, err := parseSDP(answer)
	if err != nil || len(ms) != 4 {
		t.Fatalf("answer %q: %v", answer, err)
	}
	for i, want := range []int{0, 0, 0, -1} {
		if want == 0 && ms[i].port != 0 || want != 0 && ms[i].port == 0 {
			t.Errorf("m-line %d (%s %s): port %d", i, ms[i].name, ms[i].proto, ms[i].port)
		}
	}
	if last := ms[3]; !last.mux || len(last.codecs) != 1 || last.codecs[0].name != "PCMU" {
		t.Errorf("PCMU line: mux %v codecs %+v", last.mux, last.codecs)
	}
}

func TestCryptoAttribute(t *testing.T) {
	k, err := parseCrypto("2 AES_CM_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw|2^31|1:1")
	if err != nil {
		t.Fatal(err)
	}
	if k.tag != 2 || string(k.key) != "123456789012345678901234567890" || len(k.mki) != 1 || k.mki[0] != 1 {
		t.Fatalf("parsed %+v", k)
	}
	if _, err := parseCrypto("1 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw"); err == nil {
		t.Error("unknown suite accepted")
	}
	c := &Crypto{Suite: "AES_256_CM_HMAC_SHA1_32"}
	own, err := newKey(c)
	if err != nil || len(c.Key) != 46 {
		t.Fatalf("random 256-bit key: %v, %d bytes", err, len(c.Key))
	}
	back, err := parseCrypto(own.attribute())
	if err != nil || string(back.key) != string(own.key) || back.suite.kurento != c.Suite {
		t.Fatalf("round trip of %q: %+v %v", own.attribute(), back, err)
	}
}

func TestPortRangeExhausted(t *testing.T) {
	a, b, err := listen(netip.Addr{}, 31000, 31001, false)
	if err != nil {
		t.Skipf("ports 31000-31001 busy on this machine: %v", err)
	}
	defer a.Close()
	defer b.Close()
	if localPort(a) != 31000 || localPort(b) != 31001 {
		t.Errorf("bound %d/%d, want 31000/31001", localPort(a), localPort(b))
	}
	if _, _, err := listen(netip.Addr{}, 31000, 31001, false); !errors.Is(err, ErrNoPorts) {
		t.Fatalf("second bind in an exhausted range: %v", err)
	}
	p := media.NewPipeline()
	defer p.Close()
	ep, _, _ := newEndpoint(t, p)
	_, err = ep.GenerateOffer(true, true, Settings{MinPort: 31000, MaxPort: 31001})
	var ke *kerr.Error
	if !errors.As(err, &ke) || ke.Code != kerr.SdpGenerateOfferError || !strings.Contains(ke.Message, "31000-31001") {
		t.Fatalf("offer with no free port: %v", err)
	}
}

// collector is a sink pad counting what reaches it.
type collector struct {
	packets atomic.Int64
	lastSeq atomic.Int64
}

func (c *collector) WriteRTP(_ *media.Source, p *rtp.Packet) {
	c.packets.Add(1)
	c.lastSeq.Store(int64(p.SequenceNumber))
}
func (c *collector) SetSource(*media.Source) {}

type collectorInputs struct{ c *collector }

func (ci collectorInputs) Input(t media.Type, _ string) media.Input {
	if t == media.Video {
		return ci.c
	}
	return nil
}

// pair negotiates two endpoints with each other: a offers, b answers. A producer element feeds a,
// a collector element takes what b receives.
func pair(t *testing.T, ca, cb *Crypto, mutateOffer ...func(string) string) (*media.Source, *collector, *events, *events) {
	t.Helper()
	p := media.NewPipeline()
	t.Cleanup(p.Close)
	a, ael, aev := newEndpoint(t, p)
	b, bel, bev := newEndpoint(t, p)
	producer := p.NewElement(nil, nil)
	src := producer.Source(media.Video, media.DefaultPad)
	src.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
	if err := media.Connect(producer, ael, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	sink := p.NewElement(nil, nil)
	col := &collector{}
	sink.SetInputs(collectorInputs{col})
	if err := media.Connect(bel, sink, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	sa, sb := loopbackSettings(), loopbackSettings()
	sa.Crypto, sb.Crypto = ca, cb
	offer, err := a.GenerateOffer(false, true, sa)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mutateOffer {
		offer = f(offer)
	}
	answer, err := b.ProcessOffer(offer, sb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.ProcessAnswer(answer); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, " 96 ") && !strings.Contains(answer, "VP8/90000") {
		t.Fatalf("answer without VP8:\n%s", answer)
	}
	return src, col, aev, bev
}

func sendFrames(src *media.Source, n int) {
	payload := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}
	for i := 0; i < n; i++ {
		src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: 42}, Payload: payload})
		time.Sleep(2 * time.Millisecond)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRTPBetweenEndpoints(t *testing.T) {
	for _, suite := range []string{"", "AES_128_CM_HMAC_SHA1_80", "AES_128_CM_HMAC_SHA1_32", "AES_256_CM_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32"} {
		name := suite
		if name == "" {
			name = "plain"
		}
		t.Run(name, func(t *testing.T) {
			var ca, cb *Crypto
			if suite != "" {
				ca, cb = &Crypto{Suite: suite}, &Crypto{Suite: suite}
			}
			src, col, aev, bev := pair(t, ca, cb)
			sendFrames(src, 50)
			waitFor(t, "50 packets", func() bool { return col.packets.Load() >= 50 })
			// Both sides report RTCP every second: media state goes CONNECTED on both.
			waitFor(t, "MediaStateChanged CONNECTED on both ends", func() bool {
				return mediaConnected(aev) && mediaConnected(bev)
			})
		})
	}
}

func TestWrongKeyIsReported(t *testing.T) {
	// b learns another key than the one a encrypts with, as with a peer that put a wrong key in its SDP.
	wrong := base64.StdEncoding.EncodeToString([]byte("this-is-not-the-key-of-a-30b!!"))
	src, col, _, bev := pair(t, &Crypto{Suite: "AES_128_CM_HMAC_SHA1_80"}, &Crypto{Suite: "AES_128_CM_HMAC_SHA1_80"},
		func(offer string) string {
			i := strings.Index(offer, "inline:") + len("inline:")
			j := i + strings.IndexAny(offer[i:], "\r\n")
			return offer[:i] + wrong + offer[j:]
		})
	go sendFrames(src, 20)
	waitFor(t, "DecryptFailed", func() bool {
		return bev.find(func(ev media.Event) bool { d, ok := ev.(DecryptFailed); return ok && d.Type == media.Video })
	})
	time.Sleep(100 * time.Millisecond)
	if got := col.packets.Load(); got != 0 {
		t.Errorf("%d packets passed a wrong key", got)
	}
}

func TestKeySoftLimit(t *testing.T) {
	old := KeySoftLimit
	KeySoftLimit = 10
	defer func() { KeySoftLimit = old }()
	src, col, aev, _ := pair(t, &Crypto{Suite: "AES_256_CM_HMAC_SHA1_80"}, &Crypto{Suite: "AES_256_CM_HMAC_SHA1_80"})
	sendFrames(src, 20)
	waitFor(t, "20 packets", func() bool { return col.packets.Load() >= 20 })
	waitFor(t, "KeySoftLimitReached", func() bool {
		return aev.find(func(ev media.Event) bool { k, ok := ev.(KeySoftLimitReached); return ok && k.Type == media.Video })
	})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func mediaConnected(evs *events) bool {
	return evs.find(func(ev media.Event) bool {
		m, ok := ev.(endpoints.MediaStateChanged)
		return ok && m.New == "CONNECTED"
	})
}
