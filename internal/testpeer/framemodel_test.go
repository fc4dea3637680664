package testpeer

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// A frame missing a packet is given up once 500 ms of wall time and of the stream's time have
// passed, not when only the clock moved (a stall of the process): then its retransmission, late,
// still completes it.
func TestFrameModelGivesUpInStreamTime(t *testing.T) {
	start := time.Now()
	frame := func(m *FrameModel, n int, at time.Duration, skip bool) (decoded int) {
		// frame n: two packets, sequence numbers 2n and 2n+1, a keyframe every 30
		for i := 0; i < 2; i++ {
			if skip && i == 1 {
				continue
			}
			p := &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(2*n + i), Timestamp: uint32(3000 * n), Marker: i == 1},
				Payload: []byte{0x00, 0x01}}
			if i == 0 {
				p.Payload[0] = 0x10
				if n%30 == 0 {
					p.Payload[1] = 0x00
				}
			}
			d, _ := m.Push(p, start.Add(at))
			decoded += d
		}
		return decoded
	}
	lost := func(m *FrameModel, stalled time.Duration) (resent func(at time.Duration) int) {
		for n := 0; n < 5; n++ {
			frame(m, n, time.Duration(n)*33*time.Millisecond, false)
		}
		frame(m, 5, 165*time.Millisecond, true)  // its second packet is lost
		frame(m, 6, 200*time.Millisecond, false) // finds frame 5 incomplete
		// a stall, then a frame: the clock moved by stalled, the stream by 33 ms
		frame(m, 7, 233*time.Millisecond+stalled, false)
		return func(at time.Duration) int {
			d, _ := m.Push(&rtp.Packet{Header: rtp.Header{SequenceNumber: 11, Timestamp: 15000, Marker: true}, Payload: []byte{0x00, 0x01}}, start.Add(at))
			return d
		}
	}
	var stall FrameModel
	if d := lost(&stall, 700*time.Millisecond)(time.Second); d != 3 {
		t.Errorf("retransmission after a 700 ms stall decoded %d frames, want 3 (frames 5-7)", d)
	}
	var gone FrameModel
	resend := lost(&gone, 0)
	decoded := 0
	for n := 8; n < 30; n++ { // 22 more frames over 730 ms
		decoded += frame(&gone, n, time.Duration(n)*33*time.Millisecond, false)
	}
	if decoded != 0 {
		t.Errorf("%d frames decoded after a frame that never completed, before a keyframe", decoded)
	}
	if d := resend(time.Second); d != 0 {
		t.Errorf("a retransmission after the frame was given up decoded %d frames", d)
	}
	if d := frame(&gone, 30, time.Second, false); d != 1 {
		t.Errorf("the next keyframe decoded %d frames, want 1", d)
	}
}
