package rtp

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/fuzzseed"
	"github.com/kurento-go/kms/internal/netif"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// muteRemotes forgets the peer addresses an SDP named, so that a fuzzed description never makes the
// endpoint send reports or BYE to an address it chose.
func muteRemotes(e *Endpoint) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, st := range e.streams {
		st.remoteRTP.Store(nil)
		st.remoteRTCP.Store(nil)
	}
}

// sameHostAddresses makes the streams of a fuzz target take this machine's addresses as they were
// when it started: listing them per input took 14 % of FuzzStreamPackets' time.
func sameHostAddresses(f *testing.F) {
	addrs := netif.Addresses(nil)
	hostAddresses = func([]string) []netip.Addr { return addrs }
	f.Cleanup(func() { hostAddresses = netif.Addresses })
}

// FuzzProcessOffer answers fuzzed offers (and, on a second endpoint, processes them as answers to
// an offer): a description or a Kurento error, never a panic; an answer parses and has one m-line
// per offered one.
func FuzzProcessOffer(f *testing.F) {
	for _, s := range fuzzseed.SDPs() {
		f.Add(s, false)
		f.Add(s, true)
	}
	sameHostAddresses(f)
	f.Fuzz(func(t *testing.T, sdp string, srtp bool) {
		p := media.NewPipeline()
		defer p.Close()
		settings := loopbackSettings()
		if srtp {
			settings.Crypto = &Crypto{Suite: "AES_128_CM_HMAC_SHA1_80"}
		}
		_, offered, parseErr := parseSDP(sdp)
		ep := New(p.NewElement(nil, nil), quiet)
		answer, err := ep.ProcessOffer(sdp, settings)
		muteRemotes(ep)
		ep.Close()
		if err == nil {
			_, answered, perr := parseSDP(answer)
			if perr != nil || len(answered) != len(offered) {
				t.Fatalf("answer does not parse into %d m-lines (%v):\n%s", len(offered), perr, answer)
			}
		}
		gen := New(p.NewElement(nil, nil), quiet)
		// ProcessAnswer parses before it looks at the endpoint's state, so an answer that does not
		// parse fails the same with or without an offer: only one that parses needs the offer (and
		// its four sockets, most of this target's time when made for every input).
		if parseErr == nil {
			if _, err := gen.GenerateOffer(true, true, settings); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := gen.ProcessAnswer(sdp); parseErr != nil && (err == nil || kerr.From(err).Code != kerr.SdpParseError) {
			t.Fatalf("an answer that does not parse (%v) gave %v", parseErr, err)
		}
		muteRemotes(gen)
		gen.Close()
	})
}

// FuzzStreamPackets sends fuzzed datagrams from the negotiated peer into a stream that has sent
// video: RTCP (NACK, PLI, FIR, REMB, SR/RR, BYE) and RTP. Nothing panics and retransmissions stay
// within the budget.
func FuzzStreamPackets(f *testing.F) {
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.TransportLayerNack{MediaSSRC: 1, Nacks: []rtcp.NackPair{{PacketID: 0, LostPackets: 0xffff}, {PacketID: 17, LostPackets: 0xffff}}}},
		{&rtcp.SenderReport{SSRC: 7, NTPTime: 1 << 40, Reports: []rtcp.ReceptionReport{{SSRC: 1, LastSequenceNumber: 40}}}, &rtcp.PictureLossIndication{MediaSSRC: 1}},
		{&rtcp.ReceiverReport{SSRC: 7}, &rtcp.ReceiverEstimatedMaximumBitrate{Bitrate: 3e5, SSRCs: []uint32{1}}, &rtcp.Goodbye{Sources: []uint32{7}}},
		{&rtcp.FullIntraRequest{MediaSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 1, SequenceNumber: 4}}}},
	} {
		b, _ := rtcp.Marshal(pkts)
		f.Add(b)
	}
	vp8, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 9, Timestamp: 3000, SSRC: 7, Marker: true},
		Payload: []byte{0x10, 0, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01}}).Marshal()
	f.Add(vp8)
	sameHostAddresses(f)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		f.Fatal(err)
	}
	defer peer.Close()
	// The peer never reads: once its socket buffer is full the kernel drops what the endpoint sends
	// it, which costs the endpoint's writer nothing. A reader woke a thread per datagram, and these
	// wake-ups were most of the target's time; one thread (GOMAXPROCS 1) leaves no hand-off between
	// threads either, and the wait for the writer a yield to it rather than a spin.
	_ = peer.SetReadBuffer(1)
	procs := runtime.GOMAXPROCS(1)
	f.Cleanup(func() { runtime.GOMAXPROCS(procs) })
	offer := videoOffer(peer.LocalAddr().(*net.UDPAddr).Port)
	// A datagram the stream drops unparsed goes to one stream kept for such datagrams: it never
	// changes that stream's state (checked after each input), so every input finds it as a fresh
	// one and a finding fails again alone. Any other datagram gets a fresh stream, as a stream
	// follows what it parsed (the retransmission budget, the sender's and receiver's state).
	pristine := sentVideoStream(f, offer)
	f.Fuzz(func(t *testing.T, data []byte) {
		st := pristine
		before := st.ep.lastActivity.Load()
		if !dropsUnparsed(st, data) {
			st = sentVideoStream(t, offer)
		}
		from := peer.LocalAddr().(*net.UDPAddr).AddrPort()
		dec := make([]byte, 0, maxPacket+100)
		var pkt rtp.Packet
		var h rtp.Header
		for range 3 { // a peer repeating itself
			if isRTCP(data) {
				st.handleRTCP(data, from, dec)
			} else {
				st.handleRTP(data, from, dec, &pkt, &h)
			}
		}
		if st == pristine && (st.ep.lastActivity.Load() != before || st.receiving.Load() || st.sender.Stats.RetransmitBytes.Load() != 0) {
			t.Fatal("the stream took a datagram dropsUnparsed says it drops: the shared stream is no longer fresh")
		}
		// Retransmissions stay within the budget: half of what was sent (all packets the same size).
		if resent, sent := st.sender.Stats.RetransmitBytes.Load(), uint64(40*len(framePayload)); resent > sent/2 {
			t.Fatalf("%d bytes retransmitted after %d sent", resent, sent)
		}
	})
}

// videoOffer is a plain VP8 offer with NACK, PLI, FIR and REMB from a peer at 127.0.0.1:port.
func videoOffer(port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-mux\r\n", port)
}

// sentVideoStream is an endpoint that negotiated offer (one video m-line) and sent 40 one-packet
// keyframes to its peer, released when tb ends.
func sentVideoStream(tb testing.TB, offer string) *stream {
	tb.Helper()
	p := media.NewPipeline()
	el := p.NewElement(nil, nil)
	ep := New(el, quiet)
	tb.Cleanup(func() { ep.Close(); el.Release(); p.Close() })
	producer := p.NewElement(nil, nil)
	src := producer.Source(media.Video, media.DefaultPad)
	src.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
	src.EnableCache() // as every producer of video
	if err := media.Connect(producer, el, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		tb.Fatal(err)
	}
	if _, err := ep.ProcessOffer(offer, loopbackSettings()); err != nil {
		tb.Fatal(err)
	}
	sendFramesFast(src, 40)
	st := ep.streams[0]
	for deadline := time.Now().Add(10 * time.Second); !st.sender.Settled(); { // its writer has sent the 40 before the peer's feedback comes
		if time.Now().After(deadline) {
			tb.Fatal("the writer did not send the 40 packets")
		}
		runtime.Gosched()
	}
	return st
}

// dropsUnparsed tells whether a plain, non-latching stream drops data before it changes any of
// its state: what handleRTCP and handleRTP check first (version 2, a length, a packet that
// unmarshals once transport-cc feedback is left out, a negotiated payload type).
func dropsUnparsed(st *stream, data []byte) bool {
	if isRTCP(data) {
		if len(data) < 8 || data[0]>>6 != 2 {
			return true
		}
		_, err := rtcp.Unmarshal(withoutTransportCC(data))
		return err != nil
	}
	var p rtp.Packet
	return len(data) < 12 || data[0]>>6 != 2 || p.Unmarshal(data) != nil || st.recvCodecs[p.PayloadType&0x7f] == nil
}

// framePayload is a one-packet VP8 keyframe.
var framePayload = []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}

// sendFramesFast writes n one-packet VP8 keyframes at once.
func sendFramesFast(src *media.Source, n int) {
	for i := range n {
		src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: 42}, Payload: framePayload})
	}
}
