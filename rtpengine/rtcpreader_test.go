package rtpengine

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/pion/rtcp"
)

// RTCPReader gives what rtcp.Unmarshal gives for the types Feedback serves, skips the others, and
// allocates nothing once its packets are made.
func TestRTCPReaderMatchesUnmarshal(t *testing.T) {
	block := rtcp.ReceptionReport{SSRC: 7, FractionLost: 3, TotalLost: 10, LastSequenceNumber: 999, Jitter: 5}
	full := []rtcp.Packet{
		&rtcp.SenderReport{SSRC: 1, NTPTime: 1 << 40, RTPTime: 90000, PacketCount: 5, OctetCount: 500, Reports: []rtcp.ReceptionReport{block, block}},
		&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{block}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 2, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "cname"}}}}},
		&rtcp.PictureLossIndication{SenderSSRC: 2, MediaSSRC: 1},
		&rtcp.FullIntraRequest{SenderSSRC: 2, MediaSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 1, SequenceNumber: 4}}},
		&rtcp.TransportLayerNack{SenderSSRC: 2, MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{10, 12, 40})},
		&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 2, Bitrate: 500000, SSRCs: []uint32{1, 3}},
		&rtcp.Goodbye{Sources: []uint32{2}},
	}
	short := []rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{block}},
		&rtcp.TransportLayerNack{SenderSSRC: 2, MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{10})},
	}
	var r RTCPReader
	for _, compound := range [][]rtcp.Packet{full, short, full} {
		raw, err := rtcp.Marshal(compound)
		if err != nil {
			t.Fatal(err)
		}
		want, err := rtcp.Unmarshal(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Read(raw)
		if err != nil {
			t.Fatal(err)
		}
		var served []rtcp.Packet
		for _, p := range want {
			if _, skipped := p.(*rtcp.SourceDescription); !skipped {
				served = append(served, p)
			}
		}
		if len(got) != len(served) {
			t.Fatalf("read %d packets, want %d: %v", len(got), len(served), got)
		}
		for i := range got {
			a, _ := got[i].Marshal()
			b, _ := served[i].Marshal()
			if !bytes.Equal(a, b) {
				t.Fatalf("packet %d: read %+v, rtcp.Unmarshal %+v", i, got[i], served[i])
			}
		}
	}
	raw, _ := rtcp.Marshal(full[:7]) // a BYE makes its list
	if allocs := testing.AllocsPerRun(100, func() { r.Read(raw) }); allocs != 0 {
		t.Fatalf("%.1f allocations per compound", allocs)
	}
	remb, _ := full[6].Marshal()
	remb[16] = 3 // SSRCs said, 2 given
	for _, bad := range [][]byte{raw[:len(raw)-3], raw[:10], {0x81, 201, 0, 9, 0, 0, 0, 2}, remb} {
		if _, want := rtcp.Unmarshal(bad); want == nil {
			t.Fatalf("rtcp.Unmarshal took %x", bad)
		}
		if _, err := r.Read(bad); err == nil {
			t.Fatalf("read %x without an error", bad)
		}
	}
}

// On damaged compounds RTCPReader never panics, and wherever rtcp.Unmarshal accepts one it reads
// the same packets of the types it serves (it may accept more: it does not check the types it
// skips).
func TestRTCPReaderDamagedCompounds(t *testing.T) {
	block := rtcp.ReceptionReport{SSRC: 7, FractionLost: 3, LastSequenceNumber: 999}
	raw, err := rtcp.Marshal([]rtcp.Packet{
		&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{block}},
		&rtcp.TransportLayerNack{SenderSSRC: 2, MediaSSRC: 1, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{10, 12})},
		&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 2, Bitrate: 500000, SSRCs: []uint32{1}},
		&rtcp.PictureLossIndication{SenderSSRC: 2, MediaSSRC: 1},
		&rtcp.FullIntraRequest{SenderSSRC: 2, MediaSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 1}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var r RTCPReader
	buf := make([]byte, len(raw))
	for range 20000 {
		copy(buf, raw)
		b := buf[:1+rng.IntN(len(raw))]
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		want, werr := rtcp.Unmarshal(b)
		got, err := r.Read(b)
		if werr != nil {
			continue
		}
		if err != nil {
			t.Fatalf("%x: rtcp.Unmarshal read it, RTCPReader: %v", b, err)
		}
		i := 0
		for _, p := range want {
			switch p.(type) {
			case *rtcp.SenderReport, *rtcp.ReceiverReport, *rtcp.PictureLossIndication, *rtcp.FullIntraRequest,
				*rtcp.TransportLayerNack, *rtcp.ReceiverEstimatedMaximumBitrate, *rtcp.Goodbye:
			default:
				continue
			}
			if i == len(got) {
				t.Fatalf("%x: %T not read", b, p)
			}
			x, _ := got[i].Marshal()
			y, _ := p.Marshal()
			if !bytes.Equal(x, y) {
				t.Fatalf("%x: read %+v, rtcp.Unmarshal %+v", b, got[i], p)
			}
			i++
		}
		if i != len(got) {
			t.Fatalf("%x: read %d packets, rtcp.Unmarshal %d of the types served", b, len(got), i)
		}
	}
}
