package tests

import (
	"runtime"
	"testing"
	"time"
)

// TestCreateReleaseLoopLeaks creates and releases, over the protocol, 1,000 pipelines each with two
// connected PassThroughs (one of them subscribed to), and checks that goroutines and heap come back to
// their baseline.
func TestCreateReleaseLoopLeaks(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	round := func() {
		p, els := c.pipelineWith(2)
		c.ok("subscribe", map[string]any{"object": els[0], "type": "ElementConnected"})
		c.invoke(els[0], "connect", map[string]any{"sink": els[1]})
		c.ok("release", map[string]any{"object": p})
		c.drainEvents()
	}
	for range 50 { // warm up pools, maps and the connection's buffers
		round()
	}
	goroutines0, heap0 := settle()

	start := time.Now()
	const n = 1000
	for range n {
		round()
	}
	elapsed := time.Since(start)
	if got := s.Reg.Len(); got != 1 {
		t.Fatalf("%d objects left, want only the ServerManager", got)
	}

	var goroutines1 int
	var heap1 uint64
	deadline := time.Now().Add(5 * time.Second)
	for {
		goroutines1, heap1 = settle()
		if goroutines1 <= goroutines0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d rounds in %v; goroutines %d -> %d; heap %d KiB -> %d KiB", n, elapsed, goroutines0, goroutines1, heap0>>10, heap1>>10)
	if goroutines1 > goroutines0 {
		t.Fatalf("goroutines grew from %d to %d", goroutines0, goroutines1)
	}
	const margin = 1 << 20
	if heap1 > heap0+margin {
		t.Fatalf("heap grew from %d KiB to %d KiB (margin %d KiB)", heap0>>10, heap1>>10, margin>>10)
	}
}

// settle collects garbage and reads the goroutine count and live heap.
func settle() (int, uint64) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}
