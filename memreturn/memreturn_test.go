package memreturn_test

import (
	"context"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/kurento-go/kms/memreturn"
)

// TestResidentMemoryReturnsAfterBurst makes a burst of big JSON-RPC answers (getTags with a 4 MB tag
// value, many at once through the real protocol), stops, and expects the process's resident memory
// back near where it was before, as a server that just survived a hostile client should be.
func TestResidentMemoryReturnsAfterBurst(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	released := make(chan [2]uint64, 8)
	go memreturn.Run(ctx, time.Second, func(before, after uint64) { released <- [2]uint64{before, after} })

	// One connection per worker: a connection may queue only so many answer bytes.
	type worker struct {
		ctx      context.Context
		client   *client.Client
		pipeline string
	}
	const workers, calls = 16, 8
	owner := testserver.StartSession(t, 5*time.Minute)
	value := strings.Repeat("x", 4<<20)
	if err := owner.Client.Invoke(owner.Ctx, owner.Pipeline, "addTag", map[string]any{"key": "big", "value": value}, nil); err != nil {
		t.Fatal(err)
	}
	value = ""
	var ws []worker
	for range workers {
		ctx, c, _ := testserver.Connect(t, owner.URL, 5*time.Minute)
		ws = append(ws, worker{ctx, c, owner.Pipeline})
	}
	baseline := residentMiB(t)

	// The answers stay live until the burst ends, as answers queued for a client that does not read.
	var mu sync.Mutex
	var held [][]map[string]any
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for _, w := range ws {
		wg.Go(func() {
			for range calls {
				var tags []map[string]any
				if err := w.client.Invoke(w.ctx, w.pipeline, "getTags", nil, &tags); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				held = append(held, tags)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	held = nil
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// The hostile clients go away; what their connections buffered is garbage now.
	for _, w := range ws {
		w.client.Close()
	}
	peak := residentMiB(t)
	t.Logf("resident: %d MiB before, %d MiB after the burst", baseline, peak)
	if peak < baseline+200 {
		t.Skipf("the burst grew the process by only %d MiB: nothing to return", peak-baseline)
	}

	// A bound well under the burst's growth: the heap's live part is small again, the rest must go.
	bound := baseline + 100
	start := time.Now()
	deadline := start.Add(30 * time.Second)
	for {
		rss := residentMiB(t)
		if rss <= bound {
			t.Logf("resident %d MiB (bound %d) after %v", rss, bound, time.Since(start).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("resident memory still %d MiB %v after the burst (before %d, peak %d, bound %d)",
				rss, time.Since(start).Round(time.Second), baseline, peak, bound)
		}
		select {
		case r := <-released:
			t.Logf("released: runtime held %d MiB, %d MiB after", r[0]>>20, r[1]>>20)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// TestGCPercent: without GOGC the server collects at GCPercent; GOGC, when set, is left as the
// runtime took it.
func TestGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	if got := memreturn.SetGCPercent(func(string) string { return "" }); got != memreturn.GCPercent {
		t.Errorf("without GOGC: %d, want %d", got, memreturn.GCPercent)
	}
	if now := debug.SetGCPercent(80); now != memreturn.GCPercent {
		t.Errorf("the runtime collects at %d, want %d", now, memreturn.GCPercent)
	}
	// GOGC=80 as the runtime would have read it at start.
	gogc := func(k string) string {
		if k == "GOGC" {
			return "80"
		}
		return ""
	}
	if got := memreturn.SetGCPercent(gogc); got != 80 {
		t.Errorf("with GOGC=80: %d", got)
	}
	if now := debug.SetGCPercent(100); now != 80 {
		t.Errorf("GOGC=80 overridden: the runtime collects at %d", now)
	}
}

func residentMiB(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kib >> 10
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}
