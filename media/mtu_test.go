package media

import (
	"bytes"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// sent is what a peer behind a sender's write receives, copied.
type sent struct{ pkts []rtp.Packet }

func (s *sent) write(h *rtp.Header, payload []byte) error {
	s.pkts = append(s.pkts, rtp.Packet{Header: *h, Payload: append([]byte(nil), payload...)})
	return nil
}

// mtuSender is a source feeding one sender of codec mime, bound to out, with the given MTU.
func mtuSender(t *testing.T, mime string, mtu int, out *sent) (*Source, *Sender) {
	p := NewPipeline()
	t.Cleanup(p.Close)
	src := p.NewElement(nil, nil)
	source := src.Source(Video, DefaultPad)
	source.SetCodec(&Codec{MimeType: mime, ClockRate: 90000})
	sink := p.NewElement(nil, nil)
	s := sink.NewSender(Video, DefaultPad)
	sink.SetInputs(inputsOf{Video: s})
	if err := Connect(src, sink, Video, DefaultPad, DefaultPad); err != nil {
		t.Fatal(err)
	}
	s.Bind(1234, 96, Codec{MimeType: mime, ClockRate: 90000}, out.write)
	s.SetMTU(mtu)
	return source, s
}

// checkMTU fails when a packet the peer got, marshalled, is larger than mtu or the sequence numbers
// are not consecutive.
func checkMTU(t *testing.T, out *sent, mtu int) {
	t.Helper()
	for i, p := range out.pkts {
		if n := p.MarshalSize(); n > mtu {
			t.Errorf("packet %d is %d bytes, mtu %d", i, n, mtu)
		}
		if i > 0 && p.SequenceNumber != out.pkts[i-1].SequenceNumber+1 {
			t.Errorf("packet %d has sequence number %d after %d", i, p.SequenceNumber, out.pkts[i-1].SequenceNumber)
		}
	}
}

// A VP8 frame larger than the MTU reaches the peer in packets within it, which a VP8 depacketiser
// puts back together: the same frame, the start bit on the first, the marker on the last.
func TestSenderSplitsVP8AboveMTU(t *testing.T) {
	var out sent
	source, _ := mtuSender(t, "video/VP8", 500, &out)
	frame := make([]byte, 1097)
	for i := range frame {
		frame[i] = byte(i)
	}
	frame[0] = 0x10 // keyframe (P bit 0) of a 1100-byte payload with a 3-byte descriptor
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 3000, SSRC: 42, Marker: true}}
	p.Payload = append([]byte{0x90, 0x80, 0x05}, frame...) // X, S; I: picture id 5
	writeSettled(t, source, p)
	p2 := *p
	p2.SequenceNumber, p2.Timestamp = 2, 6000
	p2.Payload = append([]byte{0x90, 0x80, 0x06}, 0x01, 0x02)
	writeSettled(t, source, &p2)

	checkMTU(t, &out, 500)
	if len(out.pkts) != 4 {
		t.Fatalf("peer got %d packets, want 3 fragments and the small packet", len(out.pkts))
	}
	var got []byte
	for i, pkt := range out.pkts[:3] {
		var d codecs.VP8Packet
		payload, err := d.Unmarshal(pkt.Payload)
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if d.S != boolBit(i == 0) || d.PictureID != 5 || pkt.Marker != (i == 2) {
			t.Errorf("fragment %d: S=%d picture id %d marker %v", i, d.S, d.PictureID, pkt.Marker)
		}
		got = append(got, payload...)
	}
	if !bytes.Equal(got, frame) {
		t.Errorf("the reassembled frame differs from the one sent")
	}
	if len(out.pkts[3].Payload) != 5 || !out.pkts[3].Marker {
		t.Errorf("the packet within the MTU was changed: %d bytes", len(out.pkts[3].Payload))
	}
}

// A fragment the peer lost and NACKs comes again, byte for byte, cut from the cached source packet;
// without this a peer behind a small MTU could not recover any packet that was split.
func TestSenderResendsFragment(t *testing.T) {
	var out sent
	source, sender := mtuSender(t, "video/VP8", 500, &out)
	source.EnableCache()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 3000, SSRC: 42, Marker: true}}
	p.Payload = append([]byte{0x90, 0x80, 0x05, 0x10}, make([]byte, 1096)...)
	for i := range p.Payload[4:] {
		p.Payload[4+i] = byte(i)
	}
	writeSettled(t, source, p)
	if len(out.pkts) != 3 {
		t.Fatalf("peer got %d packets, want 3 fragments", len(out.pkts))
	}
	first := out.pkts
	for i, want := range first {
		if !sender.Resend(want.SequenceNumber) {
			t.Fatalf("fragment %d (seq %d) was not resent", i, want.SequenceNumber)
		}
		got := out.pkts[len(out.pkts)-1]
		if !bytes.Equal(got.Payload, want.Payload) || got.Marker != want.Marker || got.Timestamp != want.Timestamp {
			t.Errorf("fragment %d resent as %d bytes marker %v, first sent as %d bytes marker %v",
				i, len(got.Payload), got.Marker, len(want.Payload), want.Marker)
		}
	}
}

func boolBit(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// H.264 NAL units larger than the MTU, sent whole or as FU-A fragments, reach the peer as FU-A
// fragments within it, which an H.264 depacketiser puts back together.
func TestSenderSplitsH264AboveMTU(t *testing.T) {
	var out sent
	source, _ := mtuSender(t, "video/H264", 400, &out)
	nal := make([]byte, 1000)
	for i := range nal {
		nal[i] = byte(i * 7)
	}
	nal[0] = 0x65 // IDR slice
	seq := uint16(1)
	send := func(payload []byte, marker bool) {
		writeSettled(t, source, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 3000, SSRC: 42, Marker: marker}, Payload: payload})
		seq++
	}
	send(nal, false)
	// The same NAL unit again, as two FU-A fragments of 1200 bytes' MTU.
	fu := func(start, end bool, part []byte) []byte {
		h := byte(0x05)
		if start {
			h |= 0x80
		}
		if end {
			h |= 0x40
		}
		return append([]byte{0x7c, h}, part...)
	}
	send(fu(true, false, nal[1:600]), false)
	send(fu(false, true, nal[600:]), true)

	checkMTU(t, &out, 400)
	var d codecs.H264Packet
	var nals [][]byte
	for _, pkt := range out.pkts {
		b, err := d.Unmarshal(pkt.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 {
			nals = append(nals, bytes.TrimPrefix(b, []byte{0, 0, 0, 1}))
		}
	}
	if len(nals) != 2 || !bytes.Equal(nals[0], nal) || !bytes.Equal(nals[1], nal) {
		t.Fatalf("the peer reassembled %d NAL units, want the 2 sent intact", len(nals))
	}
	if last := out.pkts[len(out.pkts)-1]; !last.Marker {
		t.Errorf("the marker is not on the last fragment")
	}
}
