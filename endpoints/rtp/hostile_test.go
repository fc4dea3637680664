package rtp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// udpPeer is a plain UDP socket standing for a remote host; it counts the RTP it receives and
// keeps the REMBs.
type udpPeer struct {
	conn    *net.UDPConn
	packets atomic.Int64
	bytes   atomic.Int64
	largest atomic.Int64 // the largest RTP datagram

	mu    sync.Mutex
	rembs []uint64
}

// remb lists the bitrates of the REMBs received so far.
func (p *udpPeer) remb() []uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint64(nil), p.rembs...)
}

func newUDPPeer(t *testing.T, ip string) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Skipf("cannot bind %s: %v", ip, err)
	}
	p := &udpPeer{conn: c}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2000)
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if !isRTCP(buf[:n]) {
				p.packets.Add(1)
				p.bytes.Add(int64(n))
				if int64(n) > p.largest.Load() {
					p.largest.Store(int64(n))
				}
				continue
			}
			pkts, _ := rtcp.Unmarshal(buf[:n])
			for _, pkt := range pkts {
				if r, ok := pkt.(*rtcp.ReceiverEstimatedMaximumBitrate); ok {
					p.mu.Lock()
					p.rembs = append(p.rembs, uint64(r.Bitrate))
					p.mu.Unlock()
				}
			}
		}
	}()
	return p
}

func (p *udpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

func (p *udpPeer) send(t *testing.T, to int, b []byte) {
	t.Helper()
	if _, err := p.conn.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to}); err != nil {
		t.Fatal(err)
	}
}

// hostileSetup negotiates a sendrecv VP8 RtpEndpoint with peer (rtcp-mux, NACK), with a producer
// feeding it and a collector taking what it receives. direction is "" or "a=direction:active\r\n".
func hostileSetup(t *testing.T, peer *udpPeer, direction string) (ep *Endpoint, src *media.Source, col *collector) {
	t.Helper()
	p := media.NewPipeline()
	t.Cleanup(p.Close)
	ep, el, _ := newEndpoint(t, p)
	producer := p.NewElement(nil, nil)
	src = producer.Source(media.Video, media.DefaultPad)
	src.SetCodec(&media.Codec{MimeType: "video/VP8", ClockRate: 90000})
	src.EnableCache() // as every producer of video
	if err := media.Connect(producer, el, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	sink := p.NewElement(nil, nil)
	col = &collector{}
	sink.SetInputs(collectorInputs{col})
	if err := media.Connect(el, sink, media.Video, media.DefaultPad, media.DefaultPad); err != nil {
		t.Fatal(err)
	}
	offer := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVPF 96\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-mux\r\n%sa=sendrecv\r\n", peer.port(), direction)
	if _, err := ep.ProcessOffer(offer, loopbackSettings()); err != nil {
		t.Fatal(err)
	}
	return ep, src, col
}

// sendBig writes n one-packet VP8 keyframes of 1000 bytes, sequence numbers from first.
func sendBig(src *media.Source, first, n int) {
	payload := make([]byte, 1000)
	copy(payload, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a})
	for i := first; i < first+n; i++ {
		src.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: uint32(i * 3000), SSRC: 42}, Payload: payload})
	}
}

// rtpFrom is an RTP packet of the negotiated VP8 payload type, as the peer sends it.
func rtpFrom(ssrc uint32, seq uint16) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: ssrc, Marker: true},
		Payload: []byte{0x10, 0, 0x9d, 0x01, 0x2a}}).Marshal()
	return b
}

// bigNack is the 1.2 KB NACK: 300 pairs, each asking for 17 packets (more pairs than
// pion marshals, so it is written by hand).
func bigNack() []byte {
	const pairs = 300
	b := make([]byte, 12+4*pairs)
	b[0], b[1] = 0x80|1, 205 // V=2, FMT=1 (generic NACK), RTPFB
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
	binary.BigEndian.PutUint32(b[4:], 5)
	binary.BigEndian.PutUint32(b[8:], 1)
	for i := range pairs {
		binary.BigEndian.PutUint16(b[12+4*i:], uint16(i%40))
		binary.BigEndian.PutUint16(b[14+4*i:], 0xffff)
	}
	return b
}

// processed waits until the endpoint has read everything peer sent before: the stream reads its
// socket in order, so a marker RTP packet reaching the graph means the datagrams before it were handled.
func processed(t *testing.T, peer *udpPeer, port int, col *collector, seq uint16) {
	t.Helper()
	before := col.packets.Load()
	peer.send(t, port, rtpFrom(77, seq))
	waitFor(t, "the marker packet in the graph", func() bool { return col.packets.Load() > before })
}

// A NACK from an address that is not the peer's makes nothing be sent: today's code answered the
// 1.2 KB NACK with thousands of retransmissions toward the SDP address (an amplifier).
func TestNackFromStrangerIsIgnored(t *testing.T) {
	peer := newUDPPeer(t, "127.0.0.1")
	stranger := newUDPPeer(t, "127.0.0.2")
	ep, src, col := hostileSetup(t, peer, "")
	port := ep.LocalPorts()[0]
	sendBig(src, 0, 40)
	waitFor(t, "40 packets at the peer", func() bool { return peer.packets.Load() >= 40 })
	stranger.send(t, port, bigNack())
	processed(t, peer, port, col, 1)
	if got := peer.packets.Load() - 40; got != 0 {
		t.Fatalf("a stranger's NACK made %d retransmissions toward the peer", got)
	}
}

// The peer itself repeating the big NACK gets no more retransmitted bytes than the budget allows
// (half of what was sent).
func TestNackFloodIsBounded(t *testing.T) {
	peer := newUDPPeer(t, "127.0.0.1")
	ep, src, col := hostileSetup(t, peer, "")
	port := ep.LocalPorts()[0]
	sendBig(src, 0, 40)
	waitFor(t, "40 packets at the peer", func() bool { return peer.packets.Load() >= 40 })
	sentBytes := peer.bytes.Load()
	for range 10 {
		peer.send(t, port, bigNack())
	}
	processed(t, peer, port, col, 1)
	resent, resentBytes := peer.packets.Load()-40, peer.bytes.Load()-sentBytes
	t.Logf("10 NACKs of %d bytes: %d retransmissions, %d bytes", len(bigNack()), resent, resentBytes)
	if resentBytes > sentBytes/2 {
		t.Fatalf("%d retransmissions (%d bytes) for 40 packets of %d bytes", resent, resentBytes, sentBytes)
	}
	if resent == 0 {
		t.Fatal("the peer's NACKs were not answered at all")
	}
}

// With comedia, the stream learns its peer from the first valid packet; one spoofed packet from
// another address does not redirect it (today's code sent the stream to the spoofer).
func TestComediaLearnsOnce(t *testing.T) {
	peer := newUDPPeer(t, "127.0.0.1")
	spoofer := newUDPPeer(t, "127.0.0.2")
	ep, src, col := hostileSetup(t, peer, "a=direction:active\r\n")
	port := ep.LocalPorts()[0]
	processed(t, peer, port, col, 1) // learnt
	// Nothing the peer sends may follow the spoofed packet (it would win the address back), so give
	// the spoofed packet a moment to reach the graph, as it did before the fix.
	before := col.packets.Load()
	spoofer.send(t, port, rtpFrom(66, 500))
	for deadline := time.Now().Add(300 * time.Millisecond); time.Now().Before(deadline) && col.packets.Load() == before; {
		time.Sleep(5 * time.Millisecond)
	}
	sendBig(src, 0, 20)
	waitFor(t, "20 packets at the peer", func() bool { return peer.packets.Load() >= 20 })
	if n := spoofer.packets.Load(); n != 0 {
		t.Fatalf("the spoofer got %d packets", n)
	}
}

// Transport-cc feedback, which an RtpEndpoint never negotiates, is left out before pion parses the
// peer's RTCP: this 52-byte one claims 12,336 received packets, and pion allocated 22,602 times
// (1.1 MB, ~5 ms of CPU) before it found it short. The receiver report sent with it still counts.
func TestTransportCCFromPeerIsNotParsed(t *testing.T) {
	peer := newUDPPeer(t, "127.0.0.1")
	st := sentVideoStream(t, videoOffer(peer.port()))
	tcc := append([]byte{0x8f, 0xcd, 0x00, 0x0c}, bytes.Repeat([]byte{0x30}, 48)...)
	tcc[14], tcc[30] = 0x58, 0xa8
	rr, _ := (&rtcp.ReceiverReport{SSRC: 7}).Marshal()
	compound := append(rr, tcc...)
	from := peer.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	dec := make([]byte, 0, maxPacket+100)
	before := st.ep.lastActivity.Load()
	if allocs := testing.AllocsPerRun(20, func() { st.handleRTCP(compound, from, dec) }); allocs > 100 {
		t.Fatalf("%.0f allocations for a %d-byte RTCP datagram", allocs, len(compound))
	}
	if st.ep.lastActivity.Load() == before {
		t.Fatal("the receiver report in front of the transport-cc feedback was not taken")
	}
	pli, _ := (&rtcp.PictureLossIndication{MediaSSRC: 1}).Marshal()
	pkts, err := rtcp.Unmarshal(withoutTransportCC(append(compound, pli...)))
	if err != nil || len(pkts) != 2 {
		t.Fatalf("the packets around transport-cc feedback: %v, %v", pkts, err)
	}
}
