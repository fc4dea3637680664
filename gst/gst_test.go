package gst

import (
	"bytes"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func need(t testing.TB, factories ...string) {
	t.Helper()
	if err := Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	for _, f := range factories {
		if !HasElement(f) {
			t.Skipf("GStreamer element %q missing (install its plugin package)", f)
		}
	}
}

func TestParseError(t *testing.T) {
	need(t)
	_, err := NewPipeline("nosuchelement ! fakesink")
	var pe *ParseError
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "nosuchelement") {
		t.Fatalf("err = %v, want a ParseError naming the element", err)
	}
	_, err = NewPipeline("fakesrc nosuchprop=1 ! fakesink")
	if !errors.As(err, &pe) || !strings.Contains(pe.Message, "nosuchprop") {
		t.Fatalf("err = %v, want a ParseError naming the property", err)
	}
	if _, err := ParseElement("videoflip ! videoconvert"); !errors.Is(err, ErrNotSingle) {
		t.Fatalf("two elements: err = %v", err)
	}
	e, err := ParseElement("videoflip method=horizontal-flip")
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind() != KindVideo {
		t.Errorf("videoflip kind = %v", e.Kind())
	}
	e.Close()
	if e, err := ParseElement("volume volume=0.5"); err != nil || e.Kind() != KindAudio {
		t.Errorf("volume: %v %v", e, err)
	}
}

// TestRoundTrip pushes buffers through appsrc ! queue ! appsink and gets them back in order.
func TestRoundTrip(t *testing.T) {
	need(t)
	p, err := NewPipeline("appsrc name=in is-live=true format=time do-timestamp=true caps=application/x-test ! queue ! appsink name=out sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src, err := p.AppSrc("in")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]byte
	done := make(chan struct{})
	const n = 200
	if err := p.HandleSink("out", func(data []byte, pts time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, bytes.Clone(data))
		if len(got) == n {
			close(done)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := src.Push([]byte("packet " + strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("got %d of %d buffers", len(got), n)
	}
	for i, b := range got {
		if string(b) != "packet "+strconv.Itoa(i) {
			t.Fatalf("buffer %d = %q", i, b)
		}
	}
}

func TestRuntimeError(t *testing.T) {
	need(t)
	p, err := NewPipeline("appsrc name=in format=time caps=video/x-raw,format=I420,width=16,height=16,framerate=30/1 ! capsfilter caps=video/x-raw,width=8 ! fakesink")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := make(chan Message, 16)
	p.OnMessage(func(m Message) { msgs <- m })
	src, _ := p.AppSrc("in")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	src.Push(make([]byte, 16*16*3/2))
	select {
	case m := <-msgs:
		if m.Type != MessageError || m.Err == nil || m.Err.Domain != DomainStream {
			t.Fatalf("message = %+v %+v", m, m.Err)
		}
		t.Logf("error: %v", m.Err)
	case <-time.After(10 * time.Second):
		t.Fatal("no error message")
	}
	// Pushing after the error is an error value, not a crash.
	for i := 0; i < 5; i++ {
		src.Push(make([]byte, 16*16*3/2))
	}
}

func TestProperties(t *testing.T) {
	need(t, "videotestsrc")
	p, err := NewPipeline("videotestsrc name=v num-buffers=5 ! fakesink name=s")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, c := range []struct{ prop, val string }{{"pattern", "ball"}, {"is-live", "true"}, {"num-buffers", "42"}} {
		if err := p.Set("v", c.prop, c.val); err != nil {
			t.Fatalf("set %s: %v", c.prop, err)
		}
	}
	if v, err := p.Get("v", "pattern"); err != nil || v != "ball" {
		t.Errorf("pattern = %v, %v", v, err)
	}
	if v, _ := p.Get("v", "is-live"); v != true {
		t.Errorf("is-live = %v", v)
	}
	if v, _ := p.Get("v", "num-buffers"); v != int64(42) {
		t.Errorf("num-buffers = %#v", v)
	}
	var pe *PropertyError
	if err := p.Set("v", "num-buffers", "many"); !errors.As(err, &pe) || pe.Reason != BadValue {
		t.Errorf("bad value: %v", err)
	} else {
		t.Log(err)
	}
	if err := p.Set("v", "nope", "1"); !errors.As(err, &pe) || pe.Reason != NoSuchProperty {
		t.Errorf("no property: %v", err)
	}
	if err := p.Set("x", "nope", "1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("no element: %v", err)
	}
}

func TestElementMessage(t *testing.T) {
	need(t, "audiotestsrc", "level")
	p, err := NewPipeline("audiotestsrc is-live=true ! level interval=20000000 post-messages=true ! fakesink")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := startWatching(t, p)
	select {
	case m := <-msgs:
		if m.Type != MessageElement || m.Name != "level" {
			t.Fatalf("message = %+v", m)
		}
		rms, ok := m.Fields["rms"].([]any)
		if !ok || len(rms) == 0 {
			t.Fatalf("rms = %#v", m.Fields["rms"])
		}
		if _, ok := rms[0].(float64); !ok {
			t.Fatalf("rms[0] = %#v", rms[0])
		}
		t.Logf("level fields: %v", m.Fields)
	case <-time.After(10 * time.Second):
		t.Fatal("no element message")
	}
}

// TestForceKeyUnit asks an encoder for a keyframe through its appsink.
func TestForceKeyUnit(t *testing.T) {
	need(t, "videotestsrc", "vp8enc")
	p, err := NewPipeline("videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! vp8enc deadline=1 keyframe-max-dist=100000 ! appsink name=out sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var mu sync.Mutex
	frames, keys := 0, 0
	p.HandleSink("out", func(data []byte, _ time.Duration) {
		mu.Lock()
		frames++
		if data[0]&1 == 0 {
			keys++
		}
		mu.Unlock()
	})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return frames, keys }
	waitFor(t, func() bool { f, _ := count(); return f >= 10 })
	_, k0 := count()
	if err := p.ForceKeyUnit("out"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { _, k := count(); return k > k0 })
	f, k := count()
	t.Logf("frames %d keyframes %d (before request %d)", f, k, k0)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func rssKiB(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// TestNoLeaks creates and destroys 100 pipelines that carry data and checks that goroutines and
// RSS come back near their baseline.
func TestNoLeaks(t *testing.T) {
	need(t, "vp8enc", "vp8dec")
	run := func(i int) {
		p, err := NewPipeline("appsrc name=in is-live=true format=time do-timestamp=true caps=video/x-raw,format=I420,width=64,height=48,framerate=30/1 ! vp8enc deadline=1 ! vp8dec ! appsink name=out sync=false")
		if err != nil {
			t.Fatal(err)
		}
		src, _ := p.AppSrc("in")
		got := make(chan struct{}, 1)
		p.HandleSink("out", func([]byte, time.Duration) {
			select {
			case got <- struct{}{}:
			default:
			}
		})
		p.OnMessage(func(m Message) {
			if m.Type == MessageError {
				t.Errorf("pipeline %d: %v", i, m.Err)
			}
		})
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		frame := make([]byte, 64*48*3/2)
		for j := 0; j < 3; j++ {
			src.Push(frame)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("pipeline %d: no output", i)
		}
		p.Close()
	}
	for i := 0; i < 10; i++ { // warm up: plugin loading, thread pools, allocator arenas
		run(i)
	}
	settle()
	g0, r0 := runtime.NumGoroutine(), rssKiB(t)
	start := time.Now()
	for i := 0; i < 100; i++ {
		run(i)
	}
	elapsed := time.Since(start)
	settle()
	g1, r1 := runtime.NumGoroutine(), rssKiB(t)
	t.Logf("100 pipelines in %v; goroutines %d -> %d; RSS %d KiB -> %d KiB (%+d KiB); live pipelines %d",
		elapsed.Round(time.Millisecond), g0, g1, r0, r1, r1-r0, Live())
	if g1 > g0 {
		t.Errorf("goroutines %d -> %d", g0, g1)
	}
	if Live() != 0 {
		t.Errorf("%d pipelines not closed", Live())
	}
	if r1-r0 > 20<<10 {
		t.Errorf("RSS grew by %d KiB", r1-r0)
	}
}

func settle() {
	for i := 0; i < 3; i++ {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPushAllocs: pushing a packet costs no Go allocation.
func TestPushAllocs(t *testing.T) {
	need(t)
	p, err := NewPipeline("appsrc name=in format=time caps=application/x-rtp ! fakesink sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	src, _ := p.AppSrc("in")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 1200)
	allocs := testing.AllocsPerRun(1000, func() { src.Push(pkt) })
	t.Logf("bridge Push: %.1f Go allocations per packet", allocs)
	if allocs > 0 {
		t.Errorf("Push allocates %.1f times per packet", allocs)
	}
}

func BenchmarkPush(b *testing.B) {
	need(b)
	p, err := NewPipeline("appsrc name=in format=time caps=application/x-rtp ! fakesink sync=false")
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	src, _ := p.AppSrc("in")
	p.Start()
	pkt := make([]byte, 1200)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src.Push(pkt)
	}
}

// TestHTTPReadByCurl: http(s) URIs are read by curlhttpsrc, not by the souphttpsrc that crashes.
func TestHTTPReadByCurl(t *testing.T) {
	need(t, "uridecodebin", "curlhttpsrc")
	p, err := NewPipeline("uridecodebin uri=http://127.0.0.1:9/missing.webm ! fakesink")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	msgs := startWatching(t, p)
	for {
		select {
		case m := <-msgs:
			if m.Type != MessageError {
				continue
			}
			if !strings.Contains(m.Err.Debug, "GstCurlHttpSrc") {
				t.Fatalf("the http source is not curlhttpsrc: %v", m.Err)
			}
			return
		case <-time.After(10 * time.Second):
			t.Fatal("no error for an unreachable http uri")
		}
	}
}

// startWatching starts the pipeline with its bus messages going to the returned channel (the newest
// dropped when it is full).
func startWatching(t *testing.T, p *Pipeline) <-chan Message {
	t.Helper()
	msgs := make(chan Message, 64)
	p.OnMessage(func(m Message) {
		select {
		case msgs <- m:
		default:
		}
	})
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	return msgs
}
