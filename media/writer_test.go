package media

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
)

// A peer whose write blocks (a TCP transport that stopped taking data) neither holds up the source
// nor the other peers: it loses packets, counted, and is offered a keyframe only once it takes
// packets again.
func TestBlockedPeerDropsAlone(t *testing.T) {
	release := make(chan struct{})
	var fast atomic.Int64
	var mu sync.Mutex
	var slowSeqs []uint16
	source, senders := fanout(t, 2, nil)
	var keyframes atomic.Int64
	source.SetKeyframeRequester(func() { keyframes.Add(1) })
	codec := Codec{MimeType: "video/VP8", ClockRate: 90000}
	senders[0].Bind(1, 96, codec, func(*rtp.Header, []byte) error { fast.Add(1); return nil })
	senders[1].SetBlockingWrites(true)
	senders[1].Bind(2, 96, codec, func(h *rtp.Header, _ []byte) error {
		<-release
		mu.Lock()
		slowSeqs = append(slowSeqs, h.SequenceNumber)
		mu.Unlock()
		return nil
	})
	p := vp8Packet()
	const n = 2000 // far beyond the queue
	for i := 0; i < n; i++ {
		p.SequenceNumber++
		p.Timestamp += 3000
		p.Payload[1] = 0x01 // delta frames after the first
		if i == 0 {
			p.Payload[1] = 0x00
		}
		source.WriteRTP(p) // returns although one peer's write blocks
		if i%8 == 7 {
			settle(t, senders[0]) // frames come as bursts, not all at once
		}
	}
	settle(t, senders[0])
	if got := fast.Load(); got != n {
		t.Fatalf("the other peer got %d of %d packets", got, n)
	}
	slow := senders[1]
	if d := slow.Stats.LagDropped.Load(); d < n-videoQueueLen-1 {
		t.Fatalf("the blocked peer dropped %d packets, want at least %d", d, n-videoQueueLen-1)
	}
	if k := keyframes.Load(); k != 0 {
		t.Fatalf("%d keyframe requests while the peer was still blocked", k)
	}
	close(release)
	settle(t, slow)
	p.SequenceNumber++
	p.Timestamp += 3000
	source.WriteRTP(p)
	settle(t, slow)
	if k := keyframes.Load(); k != 1 {
		t.Fatalf("%d keyframe requests once the peer took packets again, want 1", k)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(slowSeqs); i++ {
		if int16(slowSeqs[i]-slowSeqs[i-1]) <= 0 {
			t.Fatalf("the blocked peer got sequence number %d after %d", slowSeqs[i], slowSeqs[i-1])
		}
	}
}

// A sender linked to a running source starts at the last keyframe its cache holds, without asking
// the producer for one.
func TestJoinFromCache(t *testing.T) {
	source, _ := fanout(t, 0, nil)
	source.EnableCache()
	var keyframes atomic.Int64
	source.SetKeyframeRequester(func() { keyframes.Add(1) })
	p := vp8Packet()
	write := func(key bool) {
		p.SequenceNumber++
		p.Timestamp += 3000
		p.Payload[1] = 0x01
		if key {
			p.Payload[1] = 0x00
		}
		p.Payload[3] = byte(p.SequenceNumber)
		source.WriteRTP(p)
	}
	for i := 0; i < 50; i++ {
		write(i%20 == 0) // keyframes at 2, 22, 42 (the packet starts at 1)
	}
	pl := source.flow.element.pipeline
	sink := pl.NewElement(nil, nil)
	s := sink.NewSender(Video, DefaultPad)
	sink.SetInputs(inputsOf{Video: s})
	var got []byte
	var mu sync.Mutex
	s.Bind(9, 96, Codec{MimeType: "video/VP8", ClockRate: 90000}, func(h *rtp.Header, payload []byte) error {
		mu.Lock()
		got = append(got, payload[3])
		mu.Unlock()
		return nil
	})
	if err := Connect(source.flow.element, sink, Video, DefaultPad, DefaultPad); err != nil {
		t.Fatal(err)
	}
	write(false) // packet 52: the join sends 42..51 first
	settle(t, s)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 11 || got[0] != 42 || got[10] != 52 {
		t.Fatalf("the new peer got packets %v, want 42 to 52", got)
	}
	if k := keyframes.Load(); k != 0 {
		t.Fatalf("%d keyframe requests for a join the cache could serve", k)
	}
}

// References stay valid across a resize of the cache, and one to an overwritten slot says so.
func TestCacheReferences(t *testing.T) {
	c := NewPacketCache(false)
	p := &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: 7}, Payload: []byte{1, 2, 3}}
	first := c.Store(p, false)
	p.Payload = make([]byte, 900) // larger slots: a new ring
	p.SequenceNumber = 1
	second := c.Store(p, false)
	if first.ring == second.ring {
		t.Fatal("the ring was not replaced for a larger payload")
	}
	var cp cachedPacket
	buf := make([]byte, maxSlotPayload)
	if !first.ring.read(0, first.gen, buf, &cp) || len(cp.payload) != 3 || cp.ts != 7 {
		t.Fatalf("a reference into the old ring no longer reads its packet: %+v", cp)
	}
	var got rtp.Packet
	if !c.Get(0, buf, &got) || len(got.Payload) != 3 {
		t.Fatal("the packet stored before the resize is not served")
	}
	for seq := 2; seq < 2+minAudioSlots; seq++ { // around the ring: slot 1 is written again
		p.SequenceNumber = uint16(seq)
		c.Store(p, false)
	}
	if second.ring.read(1, second.gen, buf, &cp) {
		t.Fatal("a reference to an overwritten slot still reads")
	}
}
