package elements_test

import (
	"encoding/json"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/internal/testpeer"
)

// TestFilterWorkerCrash: the GStreamer worker of a GStreamerFilter dies (SIGKILL); the filter raises
// Error with type WORKER_CRASHED, the WebRtcEndpoint in front of it keeps its loopback flowing, and
// releasing the filter works.
func TestFilterWorkerCrash(t *testing.T) {
	needFilters(t, "videoflip")
	if gst.Workers() == 0 {
		t.Skip("GStreamer runs in-process")
	}
	ctx, c, pipeline := setup(t)
	loop, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer loop.Close()
	if err := loop.Connect(ctx, c, pipeline, true); err != nil {
		t.Fatal(err)
	}
	if err := loop.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	loop.StartMedia()
	if err := loop.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}

	before := gst.WorkerPIDs()
	filter, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline, "command": "videoflip method=horizontal-flip"})
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, p := range gst.WorkerPIDs() {
		if !slices.Contains(before, p) {
			pid = p
		}
	}
	if pid == 0 {
		t.Fatal("the filter has no worker of its own")
	}
	errs := make(chan map[string]any, 4)
	if err := c.Subscribe(ctx, filter, "Error", func(ev client.Event) {
		var d map[string]any
		json.Unmarshal(ev.Data, &d)
		select {
		case errs <- d:
		default:
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, loop.Endpoint, "connect", map[string]any{"sink": filter}, nil); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	var ev map[string]any
	select {
	case ev = <-errs:
	case <-ctx.Done():
		t.Fatal("no Error event")
	}
	t.Logf("Error event %v after the kill: %v", time.Since(killed).Round(time.Millisecond), ev)
	if ev["type"] != "WORKER_CRASHED" || !strings.Contains(ev["description"].(string), "GStreamer worker crashed: signal: killed") {
		t.Errorf("Error event = %v", ev)
	}
	n0 := loop.FramesReceived.Load()
	waitUntil(ctx, t, "30 more loopback frames", func() bool { return loop.FramesReceived.Load() >= n0+30 })
	if err := c.Release(ctx, filter); err != nil {
		t.Errorf("release the crashed filter: %v", err)
	}
	if slices.Contains(gst.WorkerPIDs(), pid) {
		t.Error("the dead worker is still counted")
	}
}
