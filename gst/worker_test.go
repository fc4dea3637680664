package gst

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst/workerconf"
)

// needWorkers skips tests of the worker machinery when the package runs in-process.
func needWorkers(t *testing.T) {
	t.Helper()
	need(t)
	if inProcess() {
		t.Skip("in-process mode has no workers")
	}
}

// withSettings runs the test with other worker settings, restoring them at its end.
func withSettings(t *testing.T, change func(*workerconf.Settings)) {
	old := settings()
	s := old
	change(&s)
	confMu.Lock()
	conf = s
	confMu.Unlock()
	t.Cleanup(func() {
		confMu.Lock()
		conf = old
		confMu.Unlock()
	})
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc")
	}
	return len(ents)
}

// watchCrash returns the first worker error a pipeline reports, with its arrival time.
func watchCrash(p *Pipeline) <-chan *Error {
	ch := make(chan *Error, 1)
	p.OnMessage(func(m Message) {
		if m.Type == MessageError && errors.Is(m.Err, ErrWorkerCrashed) {
			select {
			case ch <- m.Err:
			default:
			}
		}
	})
	return ch
}

// TestWorkerKilled: a worker killed with SIGKILL mid-stream is reported within a second, its
// pipeline's calls fail with ErrClosed, Push with ErrFlow, and nothing of it stays in the server.
func TestWorkerKilled(t *testing.T) {
	needWorkers(t)
	run := func() (killedAt time.Time, got *Error, p *Pipeline) {
		p, err := NewPipeline("appsrc name=in is-live=true format=time caps=application/x-test ! queue ! appsink name=out sync=false")
		if err != nil {
			t.Fatal(err)
		}
		crashed := watchCrash(p)
		out := make(chan struct{}, 100)
		if err := p.HandleSink("out", func([]byte, time.Duration) {
			select {
			case out <- struct{}{}:
			default:
			}
		}); err != nil {
			t.Fatal(err)
		}
		src, _ := p.AppSrc("in")
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		stopPush := make(chan struct{})
		pushed := make(chan error, 1)
		go func() { // media keeps flowing while the worker dies
			var err error
			for err == nil {
				select {
				case <-stopPush:
					pushed <- nil
					return
				default:
				}
				err = src.Push([]byte("packet"))
				time.Sleep(time.Millisecond)
			}
			pushed <- err
		}()
		select {
		case <-out:
		case <-time.After(10 * time.Second):
			t.Fatal("no media through the worker")
		}
		killedAt = time.Now()
		syscall.Kill(p.WorkerPID(), syscall.SIGKILL)
		select {
		case got = <-crashed:
		case <-time.After(10 * time.Second):
			t.Fatal("no worker error")
		}
		select {
		case err := <-pushed:
			if !errors.Is(err, ErrFlow) {
				t.Errorf("Push after the crash: %v, want ErrFlow", err)
			}
		case <-time.After(10 * time.Second):
			close(stopPush)
			t.Error("Push kept succeeding after the crash")
		}
		select {
		case <-p.SinkEnded("out"):
		case <-time.After(10 * time.Second):
			t.Error("SinkEnded not closed")
		}
		if err := p.Set("out", "sync", "true"); !errors.Is(err, ErrClosed) || !errors.Is(err, ErrWorkerCrashed) {
			t.Errorf("Set after the crash: %v, want ErrClosed and ErrWorkerCrashed", err)
		}
		p.Close()
		return killedAt, got, p
	}
	run() // warm up: the utility worker, the first exec
	settle()
	g0, f0, w0 := runtime.NumGoroutine(), openFDs(t), Workers()
	killedAt, got, _ := run()
	delay := time.Since(killedAt)
	t.Logf("reported in %v: %s", delay.Round(time.Millisecond), got.Message)
	if !strings.Contains(got.Message, "GStreamer worker crashed: signal: killed") || got.Domain != DomainWorker {
		t.Errorf("error = %+v", got)
	}
	waitFor(t, func() bool { return Workers() == w0 && Live() == 0 })
	settle()
	if g, f := runtime.NumGoroutine(), openFDs(t); g > g0 || f > f0 {
		t.Errorf("after a crash: goroutines %d -> %d, fds %d -> %d", g0, g, f0, f)
	}
	if WorkerCrashes()["signal"] < 2 {
		t.Errorf("crashes = %v", WorkerCrashes())
	}
}

// TestLargeBuffers: buffers far above one media packet cross both ways whole (fragmented).
func TestLargeBuffers(t *testing.T) {
	need(t)
	p, err := NewPipeline("appsrc name=in format=time caps=application/x-test ! queue ! appsink name=out sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got := make(chan []byte, 4)
	p.HandleSink("out", func(data []byte, _ time.Duration) { got <- bytes.Clone(data) })
	src, _ := p.AppSrc("in")
	src.SetBlocking()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1, 65536, 300_000, 3 << 20} {
		want := bytes.Repeat([]byte{byte(size)}, size)
		want[0], want[size-1] = 7, 9
		if err := src.Push(want); err != nil {
			t.Fatal(err)
		}
		select {
		case b := <-got:
			if !bytes.Equal(b, want) {
				t.Fatalf("%d bytes: got %d bytes back, not the same", size, len(b))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d bytes: nothing back", size)
		}
	}
}

// TestEndOfStreamAfterBuffers: an end of stream right after a burst of buffers reaches the sink
// after all of them (an upload's last chunks must not be cut off by its end).
func TestEndOfStreamAfterBuffers(t *testing.T) {
	need(t)
	p, err := NewPipeline("appsrc name=in format=time caps=application/x-test ! queue ! appsink name=out sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var got atomic.Int64
	p.HandleSink("out", func(data []byte, _ time.Duration) { got.Add(1) })
	src, _ := p.AppSrc("in")
	src.SetBlocking()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	const buffers = 300
	chunk := make([]byte, 100_000) // two frames each on the media socket
	for i := 0; i < buffers; i++ {
		if err := src.Push(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := src.EndOfStream(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.SinkEnded("out"):
	case <-time.After(20 * time.Second):
		t.Fatal("the sink never reached the end of stream")
	}
	if n := got.Load(); n != buffers {
		t.Errorf("the sink got %d buffers before the end of stream, want %d", n, buffers)
	}
}

// TestFullSocketDrops: a worker that does not read makes Push drop, never wait.
func TestFullSocketDrops(t *testing.T) {
	needWorkers(t)
	// The appsrc blocks once its small queue is full, and so does the worker's reader: a slow sink.
	p, err := NewPipeline("appsrc name=in block=true max-bytes=1000 format=time caps=application/x-test ! " +
		"identity sleep-time=100000 ! fakesink")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src, _ := p.AppSrc("in")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 1200)
	for i := 0; i < 20000 && src.Dropped() == 0; i++ {
		if err := src.Push(pkt); err != nil {
			t.Fatal(err)
		}
	}
	if src.Dropped() == 0 {
		t.Fatal("20000 packets into a worker that reads none, and none dropped")
	}
	t.Logf("dropped after the socket filled: %d", src.Dropped())
}

// TestMemoryLimit: a worker allocating beyond its memory limit is killed, and the reason reported.
func TestMemoryLimit(t *testing.T) {
	needWorkers(t)
	withSettings(t, func(s *workerconf.Settings) { s.Mode, s.MemoryLimit = workerconf.PerElement, 300<<20 })
	// 4000x4000 RGBA frames (64 MB each) piling up in a queue that a slow sink drains.
	p, err := NewPipeline("videotestsrc ! video/x-raw,format=RGBA,width=4000,height=4000 ! " +
		"queue max-size-buffers=100 max-size-bytes=0 max-size-time=0 ! identity sleep-time=1000000 ! fakesink sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	crashed := watchCrash(p)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-crashed:
		t.Logf("%s", e.Message)
		if !strings.Contains(e.Message, "memory limit 300 MiB exceeded") {
			t.Errorf("reason = %q", e.Message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker was not stopped")
	}
}

// TestCPULimit: a worker spinning above its CPU limit for the grace period is killed and reported.
func TestCPULimit(t *testing.T) {
	needWorkers(t)
	withSettings(t, func(s *workerconf.Settings) { s.Mode, s.CPULimit = workerconf.PerElement, 0.05 })
	old := cpuGrace
	cpuGrace = 2
	defer func() { cpuGrace = old }()
	p, err := NewPipeline("videotestsrc is-live=false ! fakesink")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	crashed := watchCrash(p)
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-crashed:
		t.Logf("%s", e.Message)
		if !strings.Contains(e.Message, "CPU limit 0.05 cores exceeded") {
			t.Errorf("reason = %q", e.Message)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the worker was not stopped")
	}
	if WorkerCrashes()["cpu_limit"] == 0 {
		t.Errorf("crashes = %v", WorkerCrashes())
	}
}

// TestPushPartAtJoinsFrames: packets pushed with PushPartAt reach the appsink whole and in order
// with their timestamps, whether the frame ends with PushAt of its timestamp, a push of another
// timestamp sends them on, or they fill more than a datagram.
func TestPushPartAtJoinsFrames(t *testing.T) {
	need(t)
	p, err := NewPipeline("appsrc name=in is-live=true format=time caps=application/x-test ! queue ! appsink name=out sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src, err := p.AppSrc("in")
	if err != nil {
		t.Fatal(err)
	}
	type buffer struct {
		data string
		pts  time.Duration
	}
	var mu sync.Mutex
	var got []buffer
	if err := p.HandleSink("out", func(data []byte, pts time.Duration) {
		mu.Lock()
		got = append(got, buffer{string(data), pts})
		mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	var want []buffer
	push := func(part bool, data string, pts time.Duration) {
		t.Helper()
		push := src.PushAt
		if part {
			push = src.PushPartAt
		}
		if err := push([]byte(data), pts); err != nil {
			t.Fatal(err)
		}
		want = append(want, buffer{data, pts})
	}
	for frame := range 20 {
		pts := time.Duration(frame) * 40 * time.Millisecond
		for i := range 3 {
			push(true, fmt.Sprintf("frame %d part %d", frame, i), pts)
		}
		if frame%2 == 0 { // else its last packet was lost: the next frame's first sends the parts on
			push(false, fmt.Sprintf("frame %d last", frame), pts)
		}
	}
	big := strings.Repeat("x", 30000) // three of these fill more than a datagram
	for i := range 3 {
		push(true, fmt.Sprint(i)+big, time.Second)
	}
	push(false, "end", time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("got %d buffers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("buffer %d = %.20q at %v, want %.20q at %v", i, got[i].data, got[i].pts, want[i].data, want[i].pts)
		}
	}
	if src.Dropped() != 0 {
		t.Errorf("%d buffers dropped", src.Dropped())
	}
}
