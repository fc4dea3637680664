package processing

import (
	"image"
	icolor "image/color"
	"slices"
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
	withRestart(t)
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

// withRestart turns --gst-worker-restart on for the test (the other worker settings as the
// environment says); in-process GStreamer has no worker to lose, so the test is skipped.
func withRestart(t *testing.T) {
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
}

// workerEvents records the WORKER_CRASHED and WORKER_RESTARTED events of an element, in order.
type workerEvents struct {
	mu    sync.Mutex
	types []string
}

func (w *workerEvents) add(ev media.Event) {
	if ev, ok := ev.(media.ErrorEvent); ok && (ev.Type == WorkerCrashed || ev.Type == WorkerRestarted) {
		w.mu.Lock()
		w.types = append(w.types, ev.Type)
		w.mu.Unlock()
	}
}

func (w *workerEvents) list() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.types)
}

// TestFaceOverlayRestart: with --gst-worker-restart, a FaceOverlay (a real face photo as VP8, a
// magenta image over the face's middle) whose worker is killed raises WORKER_CRASHED then
// WORKER_RESTARTED, runs in a new worker, counts one more filter restart
// (kms_gst_worker_restarts_total), and its new pipeline finds the face and draws the image it had
// over it again: frames come out with the face's middle magenta.
func TestFaceOverlayRestart(t *testing.T) {
	needGst(t, "facedetect", "videoconvert", "videoscale", "tee")
	if FaceModel() == "" {
		t.Skip("no face model: install opencv-data")
	}
	withRestart(t)
	clip := testmedia.VP8Clip(t, "-loop", "1", "-i", "testdata/face.jpg", "-vf", "scale=320:240,format=yuv420p")
	_, img := solidPNG(t, 40, 30, magenta)
	var events workerEvents
	var fo *FaceOverlay
	r := startOverlay(t, clip, func(e *media.Element) (*Filter, error) {
		var err error
		if fo, err = NewFaceOverlay(e, Config{}); err != nil {
			return nil, err
		}
		return fo.Filter, nil
	}, events.add)
	defer r.finish()
	if err := fo.SetImage(img, Placement{X: 0.25, Y: 0.25, Width: 0.5, Height: 0.5}); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(30, func() bool { return fo.Drawn() >= 10 })
	restartsBefore := WorkerRestarts()["filter"]
	pid := fo.Pipeline().WorkerPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r.waitFrames(0, func() bool { return len(events.list()) >= 2 })
	if got := events.list(); !slices.Equal(got, []string{WorkerCrashed, WorkerRestarted}) {
		t.Fatalf("events %v, want %s then %s", got, WorkerCrashed, WorkerRestarted)
	}
	if now := fo.Pipeline().WorkerPID(); now == pid || now == 0 {
		t.Fatalf("worker %d after the restart, was %d", now, pid)
	}
	if n := WorkerRestarts()["filter"] - restartsBefore; n != 1 {
		t.Errorf("%d filter restarts counted, want 1", n)
	}
	r.waitFrames(30, func() bool { return fo.Drawn() >= 10 }) // the new overlay's count
	r.waitFrames(10, nil)
	box := image.Rect(118, 80, 190, 152).Inset(6) // the face's middle, as in TestFaceOverlayOnFace
	if share := magentaShare(r.snapshot(320, 240), 320, box); share < 0.9 {
		t.Errorf("after the restart only %.2f of the face's middle is magenta", share)
	}
}
