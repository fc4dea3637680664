package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testserver"
)

// TestShortRun runs the load tool for a few seconds against the in-process server, with N=2 in each
// scenario, so that the tool cannot rot: every receiver must get media back, with its latency matched.
func TestShortRun(t *testing.T) {
	srv := testserver.Start(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var log bytes.Buffer
	err := run(ctx, []string{"-kms-url", srv.URL, "-kms-pid", strconv.Itoa(os.Getpid()), "-client-ip", "127.0.0.1",
		"-video", "../../bench/media/clip.ivf", "-audio", "../../bench/media/clip.ogg",
		"-loopback-n", "2", "-one2many-n", "2", "-joins", "2", "-group-k", "1", "-group-m", "2",
		"-window", "2s", "-settle", "300ms", "-pause", "200ms", "-idle", "2", "-direct", "2", "-conns", "2",
		"-out", out, "-label", "test"}, &log)
	t.Log("\n" + log.String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range res.Rows {
		seen[r.Scenario] = true
		if r.Scenario == "join" {
			// Viewers joining the running one-to-many one at a time, timed to their first keyframe.
			if !r.Pass || r.NoMedia != 0 || r.FirstFrameP50ms <= 0 || r.FirstFrameP99ms < r.FirstFrameP50ms {
				t.Errorf("join row: %+v", r)
			}
			continue
		}
		if r.Scenario == "idle" {
			if r.Endpoints != 2 || r.Note == "" || !r.Pass {
				t.Errorf("idle row: %+v", r)
			}
			continue
		}
		if r.Streams != 2 || r.NoMedia != 0 || r.PacketsExpected == 0 || r.LatencySamples == 0 {
			t.Errorf("%s: want 2 streams with media and latency samples, got %+v", r.Scenario, r)
		}
		// Latency up to the viewer's socket, from the kernel's receive times, and to its reader.
		if r.LatencyMethod != "socket" || r.LatencyP50ms < 0 || r.ClientLatencyP50ms <= 0 {
			t.Errorf("%s: want latency from socket receive times and from the reader, got %+v", r.Scenario, r)
		}
		if r.LossPct > 20 || r.SendKbps < 200 || r.Scenario != "direct" && r.FirstFrameP50ms <= 0 {
			t.Errorf("%s: implausible figures: %+v", r.Scenario, r)
		}
		// Each step's signalling: at least a create and a processOffer per new peer, timed.
		if r.Scenario != "direct" && (r.Requests < 4 || r.OfferP50ms <= 0 || r.OfferP99ms < r.OfferP50ms) {
			t.Errorf("%s: want the step's requests, and processOffer round trips, got %+v", r.Scenario, r)
		}
	}
	for _, s := range []string{"direct", "idle", "loopback", "one2many", "join", "group"} {
		if !seen[s] {
			t.Errorf("no %s row", s)
		}
	}
	// The publishers' RTP took the direct path (direct.go), with the keys of the DTLS handshake,
	// as the DTLS client (our server) and as the server (the direct pairs' publishers).
	// The receivers took RTP on their direct path too.
	if d, p := rtpPaths.direct.Load(), rtpPaths.pion.Load(); d == 0 || p != 0 {
		t.Errorf("RTP sent by the direct path: %d, by pion's: %d; want all direct", d, p)
	}
	if rtpPaths.directRx.Load() == 0 {
		t.Error("no RTP received on the direct path")
	}
	for _, f := range []string{"results.csv", "loopback.png", "one2many.png", "group.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
}
