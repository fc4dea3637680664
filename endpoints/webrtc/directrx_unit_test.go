package webrtc

import (
	"bytes"
	"net/netip"
	"sync"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// rxPeer is the peer's side of a direct receive path: its write context, and ours bound to it.
type rxPeer struct {
	t     *testing.T
	send  *srtp.Context
	rx    *directRx
	table *rxTable
	from  netip.AddrPort
	seq   uint16
}

const (
	rxTestSSRC = 0x1111
	rxTestRTX  = 0x2222
	rxTestPT   = 96
)

func newRxPeer(t *testing.T, roc uint32) (*rxPeer, *rxRing) {
	t.Helper()
	key, salt := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{9}, 12)
	profile := srtp.ProtectionProfileAeadAes128Gcm
	send, err := srtp.CreateContext(key, salt, profile)
	if err != nil {
		t.Fatal(err)
	}
	p := &rxPeer{t: t, send: send, rx: &directRx{}, table: &rxTable{}, from: netip.MustParseAddrPort("127.0.0.1:4000")}
	var cfg srtp.Config
	cfg.Profile, cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt = profile, key, salt
	p.rx.keys(&cfg, false)
	p.rx.table = p.table
	p.table.set(p.from, p.rx)
	ring := p.rx.bind(rxTestSSRC, rxTestRTX, rxTestPT, roc, true)
	if ring == nil {
		t.Fatal("bind refused")
	}
	return p, ring
}

// packet is an SRTP packet of ssrc with a payload of n bytes, the next sequence number.
func (p *rxPeer) packet(ssrc uint32, payload []byte) []byte {
	p.t.Helper()
	p.seq++
	h := rtp.Header{Version: 2, PayloadType: rxTestPT, SequenceNumber: p.seq, Timestamp: 1, SSRC: ssrc}
	plain, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		p.t.Fatal(err)
	}
	out, err := p.send.EncryptRTP(nil, plain, nil)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

func nextPacket(t *testing.T, ring *rxRing) *rtp.Packet {
	t.Helper()
	if ring.head.Load() == ring.tail.Load() {
		t.Fatal("nothing in the ring")
	}
	b, _, _ := ring.next()
	var p rtp.Packet
	if err := p.Unmarshal(bytes.Clone(b)); err != nil {
		t.Fatal(err)
	}
	ring.release()
	return &p
}

// The socket's filter takes the peer's SRTP of a bound SSRC and nothing else: STUN, RTCP, other
// addresses and SSRCs not bound stay pion's. A packet that fails authentication or replays is
// taken and dropped (counted), never handed on.
func TestDirectRxFilter(t *testing.T) {
	p, ring := newRxPeer(t, 0)
	media := p.packet(rxTestSSRC, []byte{1, 2, 3})
	if !p.table.filter(media, p.from) {
		t.Fatal("the peer's SRTP of a bound SSRC was not taken")
	}
	if got := nextPacket(t, ring); got.SequenceNumber != p.seq || !bytes.Equal(got.Payload, []byte{1, 2, 3}) {
		t.Fatalf("decrypted %+v", got)
	}
	other := netip.MustParseAddrPort("127.0.0.1:4001")
	stun := append([]byte{0, 1, 0, 0}, make([]byte, 16)...)
	rtcp := []byte{0x80, 200, 0, 6, 0, 0, 0x11, 0x11, 0, 0, 0, 0}
	for name, c := range map[string]struct {
		b    []byte
		from netip.AddrPort
	}{
		"another address":   {p.packet(rxTestSSRC, []byte{1}), other},
		"an SSRC not bound": {p.packet(0x3333, []byte{1}), p.from},
		"STUN":              {stun, p.from},
		"RTCP":              {rtcp, p.from},
		"short":             {media[:8], p.from},
	} {
		if p.table.filter(c.b, c.from) {
			t.Errorf("%s: taken, want pion's", name)
		}
	}
	_, rejected0 := DirectRxDropped()
	bad := p.packet(rxTestSSRC, []byte{4, 5, 6})
	bad[len(bad)-1] ^= 1
	if !p.table.filter(bad, p.from) || !p.table.filter(media, p.from) {
		t.Fatal("a forged or replayed packet of a bound SSRC went to pion")
	}
	if _, rejected := DirectRxDropped(); rejected-rejected0 != 2 || ring.head.Load() != ring.tail.Load() {
		t.Fatalf("rejected %d, ring %d bytes; want both rejected, nothing queued", rejected-rejected0, ring.head.Load()-ring.tail.Load())
	}
	good := p.packet(rxTestSSRC, []byte{7})
	if !p.table.filter(good, p.from) || nextPacket(t, ring).SequenceNumber != p.seq {
		t.Fatal("the stream did not go on after the forged packets")
	}
}

// A retransmission on the RTX SSRC comes out of the ring as the packet it repairs; a padding-only
// RTX packet (a bandwidth probe) is dropped.
func TestDirectRxUnwrapsRTX(t *testing.T) {
	p, ring := newRxPeer(t, 0)
	if !p.table.filter(p.packet(rxTestRTX, []byte{0x12, 0x34, 9, 8}), p.from) {
		t.Fatal("RTX not taken")
	}
	got := nextPacket(t, ring)
	if got.SSRC != rxTestSSRC || got.SequenceNumber != 0x1234 || got.PayloadType != rxTestPT || !bytes.Equal(got.Payload, []byte{9, 8}) {
		t.Fatalf("unwrapped %+v payload %v", got.Header, got.Payload)
	}
	p.table.filter(p.packet(rxTestRTX, []byte{0x12}), p.from)
	if ring.head.Load() != ring.tail.Load() {
		t.Fatal("a probe reached the ring")
	}
}

// The rollover counter pion's context reached may be one more than the reader saw (a wrap
// between): the first packet tells, and the stream decrypts.
func TestDirectRxRolloverOneAhead(t *testing.T) {
	p, ring := newRxPeer(t, 0)
	p.send.SetROC(rxTestSSRC, 1)
	p.seq = 10
	if !p.table.filter(p.packet(rxTestSSRC, []byte{1}), p.from) || nextPacket(t, ring).SequenceNumber != 11 {
		t.Fatal("the first packet after a wrap did not decrypt")
	}
	if roc, _ := p.rx.ctx.ROC(rxTestSSRC); roc != 1 {
		t.Fatalf("rollover counter %d, want 1", roc)
	}
}

// A reader that does not keep up loses packets, counted; the socket's goroutine never waits and
// nothing grows.
func TestDirectRxRingFullDrops(t *testing.T) {
	p, ring := newRxPeer(t, 0)
	full0, _ := DirectRxDropped()
	payload := make([]byte, 1100)
	n := 2 * len(ring.buf) / len(payload)
	for range n {
		if !p.table.filter(p.packet(rxTestSSRC, payload), p.from) {
			t.Fatal("not taken")
		}
	}
	full, _ := DirectRxDropped()
	if full-full0 == 0 || full-full0 >= uint64(n) {
		t.Fatalf("%d of %d dropped", full-full0, n)
	}
	for ring.head.Load() != ring.tail.Load() {
		nextPacket(t, ring)
	}
	size := len(ring.buf)
	if !ring.grow.Load() {
		t.Fatal("a ring found full is not to grow")
	}
	ring.double() // what next does when it finds the ring empty
	if len(ring.buf) != 2*size {
		t.Fatalf("the ring grew from %d to %d bytes", size, len(ring.buf))
	}
	if !p.table.filter(p.packet(rxTestSSRC, payload), p.from) || nextPacket(t, ring).SequenceNumber != p.seq {
		t.Fatal("the ring did not take packets again once read")
	}
}

// Taking a packet from the socket to the reader allocates nothing, nor does dropping a replay; a
// forged one costs pion's error value (garbage, nothing kept).
func TestDirectRxAllocatesNothing(t *testing.T) {
	p, ring := newRxPeer(t, 0)
	pkts := make([][]byte, 200)
	for i := range pkts {
		pkts[i] = p.packet(rxTestSSRC, make([]byte, 1000))
	}
	i := 0
	allocs := testing.AllocsPerRun(len(pkts)-1, func() {
		p.table.filter(pkts[i], p.from)
		ring.next()
		ring.release()
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per packet", allocs)
	}
	// Replays (retransmissions of packets that were only late): the newest, one inside the replay
	// window, one older than it. Dropped before decryption, counted, and at no cost.
	_, rejected0 := DirectRxDropped()
	replays := [][]byte{pkts[len(pkts)-1], pkts[len(pkts)-10], pkts[len(pkts)-100]}
	if allocs := testing.AllocsPerRun(100, func() {
		for _, b := range replays {
			p.table.filter(b, p.from)
		}
	}); allocs != 0 {
		t.Fatalf("%.1f allocations per 3 replays", allocs)
	}
	if _, rejected := DirectRxDropped(); rejected-rejected0 != 3*101 || ring.head.Load() != ring.tail.Load() {
		t.Fatalf("%d replays rejected, want %d, nothing queued", rejected-rejected0, 3*101)
	}
	// A packet that is late but new is taken.
	late := [2][]byte{p.packet(rxTestSSRC, []byte{1}), p.packet(rxTestSSRC, []byte{2})}
	for _, b := range [][]byte{late[1], late[0]} {
		p.table.filter(b, p.from)
	}
	if a, b := nextPacket(t, ring).SequenceNumber, nextPacket(t, ring).SequenceNumber; a != p.seq || b != p.seq-1 {
		t.Fatalf("late packets came out as %d, %d; want %d, %d", a, b, p.seq, p.seq-1)
	}
	garbage := bytes.Clone(pkts[0])
	garbage[20] ^= 0xff
	if allocs := testing.AllocsPerRun(100, func() { p.table.filter(garbage, p.from) }); allocs > 2 {
		t.Fatalf("%.1f allocations per forged packet", allocs)
	}
}

// The reader's side of the ring: a closed ring gives what it holds, then reports the end.
func TestRxRingClose(t *testing.T) {
	r := newRxRing(256, 256)
	r.mu = &sync.Mutex{}
	for i := range 3 {
		b, ok := r.reserve(10)
		if !ok {
			t.Fatal("no room")
		}
		b[0] = byte(i)
		r.commit(10, int64(i))
	}
	r.close()
	for i := range 3 {
		b, at, ok := r.next()
		if !ok || b[0] != byte(i) || at != int64(i) || len(b) != 10 {
			t.Fatalf("record %d: %v %d %v", i, b, at, ok)
		}
		r.release()
	}
	if _, _, ok := r.next(); ok {
		t.Fatal("a closed, empty ring gave a record")
	}
}

// CPUTime is cpuTime for the package's external benchmarks.
var CPUTime = cpuTime
