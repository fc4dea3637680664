package crash

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/gst/workerconf"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/kurento-go/kms/processing"
	"github.com/kurento-go/kms/videosampler/pb"
	"google.golang.org/grpc"
)

// restartScene needs the crash plugin and the GStreamer elements named, turns --gst-worker-restart
// on for the test (the other worker settings as the environment says), and starts a server with a
// client scene on it.
func restartScene(t *testing.T, elements ...string) *scene {
	needCrashPlugin(t, elements...)
	conf, err := workerconf.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	conf.Restart = true
	gst.Configure(conf, nil)
	t.Cleanup(func() {
		conf.Restart = false
		gst.Configure(conf, nil)
	})
	srv := testserver.Start(t, "KMS_METRICS_ADDRESS=127.0.0.1:0")
	s := newScene(t, srv)
	s.opsURL = srv.OpsURL
	return s
}

// restartsMetric is kms_gst_worker_restarts_total{element} as the server's /metrics says it (0
// before the first restart of that kind).
func (s *scene) restartsMetric(element string) float64 {
	s.t.Helper()
	resp, err := http.Get(s.opsURL + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	prefix := `kms_gst_worker_restarts_total{element="` + element + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// killNewWorker kills (SIGKILL) the one live worker not among basePIDs: a crash as the server sees it.
func killNewWorker(t *testing.T, basePIDs []int) {
	t.Helper()
	var fresh []int
	for _, p := range gst.WorkerPIDs() {
		if !slices.Contains(basePIDs, p) {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) != 1 {
		t.Fatalf("workers %v beside the baseline %v, want one", fresh, basePIDs)
	}
	if err := syscall.Kill(fresh[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
}

// count is the number of Error events of type typ recorded so far.
func (s *scene) count(typ string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.errors {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestFilterRestart: with --gst-worker-restart, a GStreamerFilter whose element (crashtransform
// after=60) crashes its worker is rebuilt in a new one. The application set the element's "once"
// property with setElementProperty (crash only while the marker file does not exist): the rebuilt
// element must get it again, or it crashes a second time 60 frames later. The filter raises Error
// WORKER_CRASHED, then WORKER_RESTARTED; the viewer behind the filter gets three seconds of frames
// again, with no second crash; releasing gives the workers back.
func TestFilterRestart(t *testing.T) {
	s := restartScene(t)
	baseWorkers := gst.Workers()
	marker := filepath.Join(t.TempDir(), "crashed")

	filter, sub := s.filterChain("crashtransform after=60", func(filter string) {
		s.invoke(filter, "setElementProperty", map[string]any{"propertyName": "once", "propertyValue": marker}, nil)
	})
	crash := s.waitError(filter, "WORKER_CRASHED", time.Now().Add(crashTimeout))
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("the element crashed without its once property: %v", err)
	}
	restarted := s.waitError(filter, "WORKER_RESTARTED", time.Now().Add(crashTimeout))
	if !restarted.at.After(crash.at) {
		t.Errorf("WORKER_RESTARTED (%v) before WORKER_CRASHED (%v)", restarted.at, crash.at)
	}
	if restarted.Description == "" || restarted.ErrorCode != crash.ErrorCode {
		t.Errorf("WORKER_RESTARTED event %+v, want a description and the crash's errorCode %d", restarted, crash.ErrorCode)
	}
	t.Logf("crashed: %q; restarted %v later: %q", crash.Description, restarted.at.Sub(crash.at).Round(time.Millisecond), restarted.Description)

	from := sub.FramesReceived.Load()
	const want = 90 // three seconds of video, past the 60 frames after which a bare rebuilt element crashes
	waitFor(t, "frames through the rebuilt filter", 30*time.Second, func() bool {
		return sub.FramesReceived.Load()-from >= want
	})
	t.Logf("%d frames at the viewer after the restart", sub.FramesReceived.Load()-from)
	if n := s.count("WORKER_CRASHED"); n != 1 {
		t.Errorf("%d WORKER_CRASHED events, want 1: the rebuilt element lost the property set on it", n)
	}

	if err := s.c.Release(s.ctx, filter); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the filter's worker gone", 10*time.Second, func() bool { return gst.Workers() <= baseWorkers })
}

// TestFilterCrashLoop: with --gst-worker-restart, a filter whose element crashes every time
// (after 10 frames) is rebuilt processing.MaxRestarts times, then no more: the last WORKER_CRASHED
// says it is not restarted again, no WORKER_RESTARTED follows it, and no worker is left for it.
func TestFilterCrashLoop(t *testing.T) {
	s := restartScene(t)
	baseWorkers := gst.Workers()

	filter, _ := s.filterChain("crashtransform after=10")
	crashes := processing.MaxRestarts + 1
	waitFor(t, "the crash loop to reach the cap", 90*time.Second, func() bool { return s.count("WORKER_CRASHED") >= crashes })
	if n := s.count("WORKER_RESTARTED"); n != processing.MaxRestarts {
		t.Errorf("%d WORKER_RESTARTED events, want %d", n, processing.MaxRestarts)
	}
	s.mu.Lock()
	last := s.errors[len(s.errors)-1]
	types := make([]string, len(s.errors))
	for i, e := range s.errors {
		types[i] = e.Type
	}
	s.mu.Unlock()
	t.Logf("events: %v; last: %q", types, last.Description)
	if last.Type != "WORKER_CRASHED" || !strings.Contains(last.Description, "not restarted") {
		t.Errorf("last event %+v, want WORKER_CRASHED saying it is not restarted", last)
	}
	// Given up: the filter's worker is gone and stays gone.
	waitFor(t, "no worker left for the filter", 10*time.Second, func() bool { return gst.Workers() <= baseWorkers })
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if n := s.count("WORKER_CRASHED") + s.count("WORKER_RESTARTED"); n != crashes+processing.MaxRestarts {
			t.Fatalf("%d events after giving up, want %d", n, crashes+processing.MaxRestarts)
		}
		if n := gst.Workers(); n > baseWorkers {
			t.Fatalf("%d workers after giving up, baseline %d: the filter was rebuilt", n, baseWorkers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.c.Release(s.ctx, filter); err != nil {
		t.Fatal(err)
	}
}

// TestPlayerRestart: with --gst-worker-restart, a PlayerEndpoint playing a 20 s WebM clip whose
// worker is killed (SIGKILL from the test: the decoders of a real clip do not crash) plays on in a
// new worker from where it was: Error WORKER_CRASHED, then WORKER_RESTARTED, the position right
// after is not back at the start, it goes on advancing, the viewer gets frames again and the state
// stays START.
func TestPlayerRestart(t *testing.T) {
	s := restartScene(t, "uridecodebin", "matroskademux")
	clip := testmedia.Clip(t, t.TempDir(), "clip.webm", 20*time.Second, testmedia.WebMArgs...)
	basePIDs := gst.WorkerPIDs()

	player := s.create("PlayerEndpoint", map[string]any{"uri": "file://" + clip})
	s.watchErrors(player)
	sub := s.viewer(player)
	s.invoke(player, "play", nil, nil)
	position := func() time.Duration {
		var ms int64
		s.invoke(player, "getPosition", nil, &ms)
		return time.Duration(ms) * time.Millisecond
	}
	waitFor(t, "3 s of playing", 30*time.Second, func() bool { return position() >= 3*time.Second })
	before := position()
	killNewWorker(t, basePIDs)
	crash := s.waitError(player, "WORKER_CRASHED", time.Now().Add(crashTimeout))
	restarted := s.waitError(player, "WORKER_RESTARTED", time.Now().Add(crashTimeout))
	resumed := position()
	t.Logf("at %v when killed; %v right after the restart (%v after the crash)", before, resumed, restarted.at.Sub(crash.at).Round(time.Millisecond))
	if resumed < before-time.Second {
		t.Errorf("position %v after the restart, want about %v: the player started over", resumed, before)
	}
	from := sub.FramesReceived.Load()
	waitFor(t, "the player going on", 30*time.Second, func() bool {
		return position() >= resumed+2*time.Second && sub.FramesReceived.Load()-from >= 30
	})
	var state string
	s.invoke(player, "getState", nil, &state)
	if state != "START" {
		t.Errorf("state %s after the restart, want START", state)
	}
	if err := s.c.Release(s.ctx, player); err != nil {
		t.Fatal(err)
	}
}

// TestCompositeRestart: with --gst-worker-restart, a Composite whose mixing worker is killed
// (SIGKILL from the test) raises Error WORKER_CRASHED then WORKER_RESTARTED on the hub, and the mix
// (black with no sender) reaches the port's viewer again.
func TestCompositeRestart(t *testing.T) {
	s := restartScene(t, "compositor", "audiomixer", "videotestsrc")
	basePIDs := gst.WorkerPIDs()
	hub := s.create("Composite", nil)
	s.watchErrors(hub)
	port := s.create("HubPort", map[string]any{"hub": hub})
	sub := s.viewer(port)
	waitFor(t, "the mix at the viewer", 30*time.Second, func() bool { return sub.FramesReceived.Load() >= 15 })
	killNewWorker(t, basePIDs)
	crash := s.waitError(hub, "WORKER_CRASHED", time.Now().Add(crashTimeout))
	restarted := s.waitError(hub, "WORKER_RESTARTED", time.Now().Add(crashTimeout))
	t.Logf("restarted %v after the crash: %q", restarted.at.Sub(crash.at).Round(time.Millisecond), restarted.Description)
	from := sub.FramesReceived.Load()
	waitFor(t, "the mix at the viewer after the restart", 30*time.Second, func() bool { return sub.FramesReceived.Load()-from >= 30 })
	if err := s.c.Release(s.ctx, hub); err != nil {
		t.Fatal(err)
	}
}

// imageCounter is the gRPC service of an application receiving a VideoSampler's images.
type imageCounter struct {
	pb.UnimplementedImageDeliverServer
	n atomic.Int64
}

func (c *imageCounter) DeliverImage(context.Context, *pb.SampleImage) (*pb.Empty, error) {
	c.n.Add(1)
	return &pb.Empty{}, nil
}

// TestVideoSamplerRestart: with --gst-worker-restart, a VideoSampler (JPEG every 100 ms to a real
// gRPC service) whose worker is killed raises Error WORKER_CRASHED then WORKER_RESTARTED, the
// service gets images again from the rebuilt pipeline (its image sink set up again), /metrics counts
// one more filter restart in kms_gst_worker_restarts_total, and releasing gives the worker back.
func TestVideoSamplerRestart(t *testing.T) {
	s := restartScene(t, "videorate", "videoscale", "jpegenc")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	images := &imageCounter{}
	grpcServer := grpc.NewServer()
	pb.RegisterImageDeliverServer(grpcServer, images)
	go grpcServer.Serve(lis)
	t.Cleanup(grpcServer.Stop)
	baseWorkers, basePIDs := gst.Workers(), gst.WorkerPIDs()

	sampler := s.publishInto("VideoSampler", map[string]any{"framePeriod": 100, "imageEncoding": "JPEG",
		"imageDeliveryMethod": "GRPC", "endpointUrl": lis.Addr().String()})
	waitFor(t, "images before the crash", 30*time.Second, func() bool { return images.n.Load() >= 5 })
	restartsBefore := s.restartsMetric("filter")
	killNewWorker(t, basePIDs)
	crash := s.waitError(sampler, "WORKER_CRASHED", time.Now().Add(crashTimeout))
	restarted := s.waitError(sampler, "WORKER_RESTARTED", time.Now().Add(crashTimeout))
	if !restarted.at.After(crash.at) || restarted.ErrorCode != crash.ErrorCode {
		t.Errorf("WORKER_RESTARTED %+v after WORKER_CRASHED %+v, want it later with the crash's errorCode", restarted, crash)
	}
	from := images.n.Load()
	waitFor(t, "images from the rebuilt sampler", 30*time.Second, func() bool { return images.n.Load()-from >= 10 })
	t.Logf("restarted %v after the crash; %d images since", restarted.at.Sub(crash.at).Round(time.Millisecond), images.n.Load()-from)
	if n := s.restartsMetric("filter") - restartsBefore; n != 1 {
		t.Errorf("kms_gst_worker_restarts_total{element=\"filter\"} went up by %v, want 1", n)
	}
	if err := s.c.Release(s.ctx, sampler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sampler's worker gone", 10*time.Second, func() bool { return gst.Workers() <= baseWorkers })
}
