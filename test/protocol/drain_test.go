package tests

import (
	"fmt"
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testserver"
)

// TestBinaryDrain: SIGTERM to the built binary with --drain-timeout, five sessions with pipelines and
// one recording: /readyz fails at once, new pipelines are refused, the recording goes on until the
// grace period ends, then it is finalized (Stopped delivered, WebM with Cues readable for its whole
// length) and the process exits 0 within the grace period.
func TestBinaryDrain(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	dir := t.TempDir()
	clip := testmedia.Clip(t, dir, "clip.webm", 30*time.Second, testmedia.WebMArgs...)
	port, opsPort := testserver.FreePort(t), testserver.FreePort(t)
	conf := writeConf(t, fmt.Sprintf(`{"mediaServer": {"net": {"websocket": {"port": %d, "path": "kurento"}}}}`, port))
	const grace = 8 * time.Second
	p := runBinary(t, cleanEnv("KMS_DRAIN_TIMEOUT=8"), "-f", conf, "--metrics-address", fmt.Sprintf("127.0.0.1:%d", opsPort))
	url := fmt.Sprintf("ws://127.0.0.1:%d/kurento", port)
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", opsPort)

	rec := waitServing(t, p, url)
	pipeline := rec.create("MediaPipeline", nil)
	player := rec.create("PlayerEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + clip})
	file := filepath.Join(dir, "drained.webm")
	recorder := rec.create("RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + file, "mediaProfile": "WEBM"})
	rec.invoke(player, "connect", map[string]any{"sink": recorder})
	rec.ok("subscribe", map[string]any{"object": recorder, "type": "Stopped"})
	rec.invoke(recorder, "record", nil)
	rec.invoke(player, "play", nil)
	others := make([]*client, 4)
	for i := range others {
		others[i] = dial(t, url)
		others[i].create("MediaPipeline", nil)
	}
	waitFor(t, 10*time.Second, "/readyz ready", func() bool { return status(readyz) == http.StatusOK })
	time.Sleep(3 * time.Second) // some media recorded before the signal

	stopAt := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 2*time.Second, "/readyz failing", func() bool { return status(readyz) == http.StatusServiceUnavailable })
	if _, err := others[0].call("create", map[string]any{"type": "MediaPipeline"}); err == nil || err.Code != 40009 {
		t.Errorf("create while draining: %v, want 40009", err)
	}
	others[1].ok("ping", nil) // existing sessions are still served

	select {
	case m := <-rec.events:
		ev := m.M["params"].(map[string]any)["value"].(map[string]any)
		if ev["type"] != "Stopped" || ev["object"] != recorder {
			t.Errorf("event %v, want the recorder's Stopped", ev)
		}
	case <-time.After(grace + 5*time.Second):
		t.Errorf("no Stopped event at shutdown")
	}
	if code := p.wait(t, grace+10*time.Second); code != 0 {
		t.Fatalf("exit status %d; output:\n%s", code, p.out)
	}
	took := time.Since(stopAt)
	if took < grace-time.Second {
		t.Errorf("exited after %v, before the grace period with a pipeline alive", took)
	}
	recorded := 3*time.Second + took
	d := testmedia.Duration(t, file)
	t.Logf("stopped after %v; recording of %v readable for %v", took, recorded, d)
	if d < recorded-3*time.Second {
		t.Errorf("recording readable for %v, recorded about %v", d, recorded)
	}
	if cues := testmedia.CueTimes(t, file); len(cues) == 0 || cues[len(cues)-1] < d-6*time.Second {
		t.Errorf("cues %v for %v", cues, d)
	}
}

func status(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
