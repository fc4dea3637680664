package elements_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// TestDecompressionBombRefused: a peer sends VP8 keyframes whose header claims 16383x16383 (five
// 200-byte packets each) into a WebRtcEndpoint feeding a GStreamerFilter. The endpoint raises one
// Error MEDIA_RESOLUTION_EXCEEDED, nothing reaches the filter's decoder (no frame out, no memory
// growth), and a real clip sent afterwards on the same track flows through the filter.
func TestDecompressionBombRefused(t *testing.T) {
	needFilters(t, "videoflip")
	ctx, c, pipeline := setup(t)
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30")
	frames, err := testmedia.IVFFrames(clip)
	if err != nil {
		t.Fatal(err)
	}

	peer, err := testpeer.New(testpeer.Options{Send: true})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ep := connectPeer(ctx, t, c, pipeline, peer)
	var errorsSeen atomic.Int64
	errs := make(chan map[string]any, 8)
	if err := c.Subscribe(ctx, ep, "Error", func(ev client.Event) {
		errorsSeen.Add(1)
		var d map[string]any
		json.Unmarshal(ev.Data, &d)
		select {
		case errs <- d:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	filter, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline, "command": "videoflip method=horizontal-flip"})
	if err != nil {
		t.Fatal(err)
	}
	sub := newSubscriber(ctx, t, c, pipeline)
	defer sub.close()
	for _, link := range [][2]string{{ep, filter}, {filter, sub.endpoint}} {
		if err := c.Invoke(ctx, link[0], "connect", map[string]any{"sink": link[1]}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	// One packetizer for both phases: the track's sequence numbers run on as a real sender's would.
	pk := rtp.NewPacketizer(200, 0, 0, &codecs.VP8Payloader{}, rtp.NewRandomSequencer(), 90000)
	send := func(frame []byte) {
		for _, p := range pk.Packetize(frame, 3000) {
			if err := peer.WriteVideo(p); err != nil {
				t.Errorf("write: %v", err)
			}
		}
	}
	// A keyframe tag (show_frame, first partition size 0), the start code, 16383x16383, padding.
	bomb := make([]byte, 950)
	copy(bomb, []byte{0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0xff, 0x3f, 0xff, 0x3f})

	rssBefore := rssMB(t)
	var ev map[string]any
	bombs := 0
	for ev == nil {
		send(bomb)
		bombs++
		select {
		case ev = <-errs:
		case <-ctx.Done():
			t.Fatal("no Error event for the oversized keyframes")
		case <-time.After(100 * time.Millisecond):
		}
	}
	// Keep bombing for two seconds: the event is not repeated, nothing comes out of the filter.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); bombs++ {
		send(bomb)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("Error event after %d forged keyframes: %v", bombs, ev)
	if ev["type"] != "MEDIA_RESOLUTION_EXCEEDED" || !strings.Contains(ev["description"].(string), "16383x16383") {
		t.Errorf("Error event = %v", ev)
	}
	if n := errorsSeen.Load(); n != 1 {
		t.Errorf("%d Error events for %d forged keyframes in under 10 s, want 1", n, bombs)
	}
	if n := sub.frames.Load(); n != 0 {
		t.Errorf("the filter put out %d frames from forged keyframes", n)
	}
	rssAfter := rssMB(t)
	t.Logf("RSS %d MB before the forged keyframes, %d MB after", rssBefore, rssAfter)
	if rssAfter-rssBefore > 200 {
		t.Errorf("RSS grew by %d MB: a decoder allocated for the forged size", rssAfter-rssBefore)
	}

	// Then a real 320x240 clip on the same track goes through the filter.
	stop := every30fps(func(i int) { send(frames[i%len(frames)]) })
	defer stop()
	waitUntil(ctx, t, "30 filtered frames of the real clip", func() bool { return sub.frames.Load() >= 30 })
}

// rssMB is the resident memory of this process (the server runs in it), in MB.
func rssMB(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
