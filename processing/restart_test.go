package processing

import (
	icolor "image/color"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/gst/workerconf"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/media"
)

// TestRestartBudget: without the option nothing restarts and nothing needs saying; a limit kill is
// never restarted; crashes restart MaxRestarts times within RestartWindow, then not (saying why),
// and again once the oldest restart has left the window.
func TestRestartBudget(t *testing.T) {
	crash := &gst.Error{Domain: gst.DomainWorker, Code: 1}
	limit := &gst.Error{Domain: gst.DomainWorker, Code: 2}
	t0 := time.Unix(1000, 0)
	var r Restarts
	if ok, why := r.allow(false, crash, t0); ok || why != "" {
		t.Errorf("option off: %v %q, want no restart and no reason", ok, why)
	}
	if ok, why := r.allow(true, limit, t0); ok || why == "" {
		t.Errorf("limit kill: %v %q, want no restart with a reason", ok, why)
	}
	for i := range MaxRestarts {
		if ok, why := r.allow(true, crash, t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("crash %d: not restarted (%s)", i+1, why)
		}
	}
	ok, why := r.allow(true, crash, t0.Add(10*time.Second))
	if ok || !strings.Contains(why, "not restarted") {
		t.Errorf("crash past the budget: %v %q, want no restart, saying so", ok, why)
	}
	if ok, why := r.allow(true, crash, t0.Add(RestartWindow)); !ok {
		t.Errorf("a window after the first restart: not restarted (%s)", why)
	}
}

// TestImageOverlayRestart: with --gst-worker-restart, an ImageOverlay whose worker is killed is
// rebuilt in a new worker with the image it had: the frames coming out show it again, where it was.
func TestImageOverlayRestart(t *testing.T) {
	needGst(t, "videoconvert", "capsfilter")
	conf, err := workerconf.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if conf.Mode == workerconf.InProcess {
		t.Skip("in-process: no worker to lose")
	}
	conf.Restart = true
	gst.Configure(conf, nil)
	t.Cleanup(func() {
		conf.Restart = false
		gst.Configure(conf, nil)
	})
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30")
	_, blue := solidPNG(t, 16, 16, icolor.NRGBA{0, 0, 255, 255})
	var restarted []media.ErrorEvent
	var mu sync.Mutex
	io, r := startImageOverlay(t, clip, func(ev media.Event) {
		if ev, ok := ev.(media.ErrorEvent); ok && ev.Type == WorkerRestarted {
			mu.Lock()
			restarted = append(restarted, ev)
			mu.Unlock()
		}
	})
	defer r.finish()
	if err := io.Add("blue", blue, Placement{X: 0, Y: 0, Width: 0.5, Height: 0.5}); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(30, func() bool { return io.Drawn() >= 10 })
	pid := io.Pipeline().WorkerPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(0, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(restarted) > 0
	})
	if now := io.Pipeline().WorkerPID(); now == pid || now == 0 {
		t.Fatalf("worker %d after the restart, was %d", now, pid)
	}
	r.waitFrames(30, func() bool { return io.Drawn() >= 10 }) // the new overlay's count
	checkSpots(t, "after the restart", r.snapshot(320, 240), []spot{{80, 60, "blue"}, {240, 180, "red"}})
}
