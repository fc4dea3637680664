package elements_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
)

// latencyLists returns the inputLatency and E2ELatency lists of an element's own getStats entry.
func latencyLists(ctx context.Context, t *testing.T, c *client.Client, id string) (input, e2e []map[string]any) {
	t.Helper()
	var raw map[string]json.RawMessage
	if err := c.Invoke(ctx, id, "getStats", nil, &raw); err != nil {
		t.Fatalf("getStats: %v", err)
	}
	var own struct {
		Input []map[string]any `json:"inputLatency"`
		E2E   []map[string]any `json:"E2ELatency"`
	}
	if err := json.Unmarshal(raw[id], &own); err != nil {
		t.Fatalf("getStats entry %s: %v", raw[id], err)
	}
	return own.Input, own.E2E
}

// plausible tells whether every entry of a latency list is an audio or video average between 0
// and one second (KMS reports nanoseconds), and one of them is video.
func plausible(list []map[string]any) bool {
	video := false
	for _, l := range list {
		avg, _ := l["avg"].(float64)
		if avg <= 0 || avg >= 1e9 || l["name"] == "" || (l["type"] != "AUDIO" && l["type"] != "VIDEO") {
			return false
		}
		video = video || l["type"] == "VIDEO"
	}
	return video
}

// TestLatencyStats: a publisher's WebRtcEndpoint feeds two subscribers' (one to many). With the
// pipeline's latencyStats off, getStats of a subscriber's endpoint has empty latency lists; on, its
// inputLatency and E2ELatency list audio and video averages between 0 and 1 s; off again, empty.
func TestLatencyStats(t *testing.T) {
	ctx, c, pipeline := setup(t)
	pub, err := testpeer.New(testpeer.Options{Send: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pubEp := connectPeer(ctx, t, c, pipeline, pub)
	var subs []string
	for range 2 {
		sub, err := testpeer.New(testpeer.Options{Receive: true})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		ep := connectPeer(ctx, t, c, pipeline, sub)
		if err := c.Invoke(ctx, pubEp, "connect", map[string]any{"sink": ep}, nil); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, ep)
		defer func() {
			if err := sub.WaitVideo(ctx); err != nil {
				t.Errorf("a subscriber received no video: %v", err)
			}
		}()
	}
	pub.StartMedia()

	var on bool
	if err := c.Invoke(ctx, pipeline, "getLatencyStats", nil, &on); err != nil || on {
		t.Fatalf("getLatencyStats = %v, %v; want false by default", on, err)
	}
	waitUntil(ctx, t, "video at the subscribers' endpoints", func() bool {
		var flowing bool
		c.Invoke(ctx, subs[1], "isMediaFlowingIn", map[string]any{"mediaType": "VIDEO"}, &flowing)
		return flowing
	})
	if in, e2e := latencyLists(ctx, t, c, subs[0]); len(in) != 0 || len(e2e) != 0 {
		t.Fatalf("latencyStats off, yet lists: %v %v", in, e2e)
	}

	if err := c.Invoke(ctx, pipeline, "setLatencyStats", map[string]any{"latencyStats": true}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ep := range subs {
		waitUntil(ctx, t, "plausible latencies in getStats", func() bool {
			in, e2e := latencyLists(ctx, t, c, ep)
			return plausible(in) && plausible(e2e)
		})
	}
	in, e2e := latencyLists(ctx, t, c, subs[0])
	t.Logf("inputLatency %v, E2ELatency %v", in, e2e)

	if err := c.Invoke(ctx, pipeline, "setLatencyStats", map[string]any{"latencyStats": false}, nil); err != nil {
		t.Fatal(err)
	}
	if in, e2e := latencyLists(ctx, t, c, subs[0]); len(in) != 0 || len(e2e) != 0 {
		t.Fatalf("latencyStats off again, yet lists: %v %v", in, e2e)
	}
}
