package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtp"
)

// A keyframe counts as the first frame once every packet from its start to its marker is in, in
// whatever order they came; a delta frame, or a keyframe with a packet missing, does not.
func TestFrameCheck(t *testing.T) {
	pkt := func(seq uint16, ts uint32, marker bool, start, key bool) *rtp.Packet {
		desc := byte(0)
		if start {
			desc = 0x10 // S bit, partition 0
		}
		first := byte(0x01) // P bit: a delta frame
		if key {
			first = 0x00
		}
		return &rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: ts, Marker: marker}, Payload: []byte{desc, first, 0, 0}}
	}
	for _, tc := range []struct {
		name string
		pkts []*rtp.Packet
		want []bool
	}{
		{"in order", []*rtp.Packet{pkt(10, 1, false, true, true), pkt(11, 1, false, false, false), pkt(12, 1, true, false, false)},
			[]bool{false, false, true}},
		{"reordered", []*rtp.Packet{pkt(10, 1, false, true, true), pkt(12, 1, true, false, false), pkt(11, 1, false, false, false)},
			[]bool{false, false, true}},
		{"one missing", []*rtp.Packet{pkt(10, 1, false, true, true), pkt(12, 1, true, false, false), pkt(13, 2, true, true, false)},
			[]bool{false, false, false}},
		{"delta frame", []*rtp.Packet{pkt(10, 1, false, true, false), pkt(11, 1, true, false, false)},
			[]bool{false, false}},
		{"seq wraps", []*rtp.Packet{pkt(65535, 1, false, true, true), pkt(0, 1, true, false, false)},
			[]bool{false, true}},
		{"start sent again", []*rtp.Packet{pkt(10, 1, false, true, true), pkt(11, 1, true, false, false), pkt(10, 1, false, true, true)},
			[]bool{false, true, true}},
		{"single packet", []*rtp.Packet{pkt(7, 1, true, true, true)}, []bool{true}},
	} {
		var f frameCheck
		for i, p := range tc.pkts {
			if got := f.complete(p); got != tc.want[i] {
				t.Errorf("%s: packet %d: complete = %v, want %v", tc.name, i, got, tc.want[i])
			}
		}
	}
}

// The allocations per packet come from the benchmark's own allocs/datagram when it reports one (the
// peers' output may share its line), else from allocs/op.
func TestMaxAllocs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bench.txt")
	out := "BenchmarkForwardTo100Viewers-2   \tpeers: PASS\n" +
		"  200000\t     32101 ns/op\t         0.2109 allocs/datagram\t      11 B/op\t       0 allocs/op\n" +
		"BenchmarkSourceToSenders/sinks=1-2  1000  50 ns/op  0 B/op  0 allocs/op\n"
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, ok := maxAllocs(file); !ok || got != 0.2109 {
		t.Errorf("maxAllocs = %v, %v; want 0.2109, true", got, ok)
	}
	if _, ok := maxAllocs(filepath.Join(t.TempDir(), "missing")); ok {
		t.Error("a missing file gave a figure")
	}
}
