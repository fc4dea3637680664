package media

import (
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// rtcpSeeds are feedback packets as browsers send them: NACK, PLI, REMB, RR with a report block, and
// a transport-wide CC feedback.
func rtcpSeeds() [][]byte {
	var out [][]byte
	for _, pkts := range [][]rtcp.Packet{
		{&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 1234, Nacks: []rtcp.NackPair{{PacketID: 3, LostPackets: 0xffff}}}},
		{&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 1234, FractionLost: 30, TotalLost: 12, LastSequenceNumber: 70000, Jitter: 90, LastSenderReport: 0x12345678, Delay: 655}}},
			&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1.5e6, SSRCs: []uint32{1234}}},
		{&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 1234}, &rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: 1234, FIR: []rtcp.FIREntry{{SSRC: 1234, SequenceNumber: 1}}}},
		{&rtcp.SenderReport{SSRC: 1, NTPTime: 0xe0000000_80000000, RTPTime: 90000, PacketCount: 10, OctetCount: 1000,
			Reports: []rtcp.ReceptionReport{{SSRC: 1234, LastSequenceNumber: 9}}}},
		{&rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 1234, BaseSequenceNumber: 5, PacketStatusCount: 3, ReferenceTime: 10, FbPktCount: 1,
			PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 3}},
			RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}}}},
	} {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzFeedback runs fuzzed RTCP from a peer through a sender's feedback handling (NACK from the
// packet cache, REMB, receiver reports) after a burst of sent packets. Nothing panics and a sender
// resends each packet at most maxResends times (the receiving side: rtpengine's FuzzIncomingFeedback).
func FuzzFeedback(f *testing.F) {
	for _, s := range rtcpSeeds() {
		f.Add(s)
	}
	// One thread while it runs: waiting for the writer is then a yield to it, not a spin beside it
	// on another thread that has to be woken.
	procs := runtime.GOMAXPROCS(1)
	f.Cleanup(func() { runtime.GOMAXPROCS(procs) })
	f.Fuzz(func(t *testing.T, feedback []byte) {
		resent := map[uint16]int{}
		source, senders := fanout(t, 1, func(h *rtp.Header, payload []byte) error {
			resent[h.SequenceNumber]++
			return nil
		})
		source.EnableCache()
		s := senders[0]
		p := vp8Packet()
		// One burst, then one wait for the writer: the queue (videoQueueLen) takes all 40, and waiting
		// for the writer after each packet was most of the target's time.
		for i := range 40 {
			p.SequenceNumber = uint16(65520 + i) // across the wrap
			p.Timestamp += 3000
			source.WriteRTP(p)
		}
		settle(t, s)
		clear(resent)
		pkts, err := rtcp.Unmarshal(feedback)
		if err == nil {
			for range 2 { // a peer repeating itself
				for _, pkt := range pkts {
					switch pkt := pkt.(type) {
					case *rtcp.TransportLayerNack:
						s.HandleNACK(pkt)
					case *rtcp.ReceiverEstimatedMaximumBitrate:
						s.OnREMB(uint64(pkt.Bitrate))
					case *rtcp.ReceiverReport:
						for _, r := range pkt.Reports {
							s.OnReceiverReport(r, time.Now())
						}
					case *rtcp.SenderReport:
						for _, r := range pkt.Reports {
							s.OnReceiverReport(r, time.Now())
						}
					}
				}
			}
		}
		for seq, n := range resent {
			if n > maxResends {
				t.Fatalf("packet %d resent %d times", seq, n)
			}
		}
		s.Bandwidth()
	})
}
