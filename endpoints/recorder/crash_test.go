//go:build !kmsfuzz

package recorder_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
)

// TestCrashSafety records WEBM (VP8+Opus) and MP4 (H.264+Opus) with the real server binary, kills it
// with SIGKILL after 5 s of recording, and reads both files with ffprobe: each must hold at least
// 4 s. A killed Matroska recording has no Duration (it is written at the end), so its length is the
// end of its last packet; fragmented MP4 gets a duration from its fragments.
func TestCrashSafety(t *testing.T) {
	t.Parallel()
	vp8, h264, opus := clipFiles(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "kurento-media-server")
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	bctx, bcancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer bcancel()
	build := exec.CommandContext(bctx, "go", "build", "-o", bin, "./cmd/kurento-media-server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, "kurento.conf.json")
	os.WriteFile(conf, []byte(fmt.Sprintf(`{"mediaServer":{"net":{"websocket":{"port":%d,"path":"kurento"}}}}`, port)), 0o644)
	var logs bytes.Buffer
	srv := exec.Command(bin, "-f", conf)
	srv.Stdout, srv.Stderr = &logs, &logs
	srv.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			srv.Process.Kill()
			srv.Wait()
		}
		if t.Failed() {
			t.Logf("server output:\n%s", logs.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	var c *client.Client
	if !waitFor(10*time.Second, func() bool {
		c, err = client.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/kurento", port))
		return err == nil
	}) {
		t.Fatalf("server not up: %v", err)
	}
	defer c.Close()
	pipeline, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	webm := newRecording(t, ctx, c, ev, pipeline, publish(t, ctx, c, pipeline, testpeer.ClipOptions{Video: vp8, Audio: opus}),
		"file://"+dir+"/killed.webm", "WEBM", "audio:opus", "video:vp8")
	mp4 := newRecording(t, ctx, c, ev, pipeline, publish(t, ctx, c, pipeline, testpeer.ClipOptions{Video: h264, Audio: opus}),
		"file://"+dir+"/killed.mp4", "MP4", "audio:opus", "video:h264")
	webm.record(t, ctx, c)
	mp4.record(t, ctx, c)
	time.Sleep(5 * time.Second)
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	killed = true

	for _, r := range []*recording{webm, mp4} {
		p := ffprobe(t, r.file)
		d, how := p.duration(), "format duration"
		if math.IsNaN(d) {
			d, how = p.lastPacketEnd(), "last packet end"
		}
		t.Logf("%s after SIGKILL at 5 s: %s %.3f s (last packet end %.3f s); streams %v", filepath.Base(r.file), how, d, p.lastPacketEnd(), p.codecs())
		if got := p.codecs(); fmt.Sprint(got) != fmt.Sprint(r.wantCodecs) {
			t.Errorf("%s: streams %v, want %v", r.file, got, r.wantCodecs)
		}
		if d < 4 {
			t.Errorf("%s: %.3f s readable after the crash, want at least 4 s", r.file, d)
		}
	}
}
