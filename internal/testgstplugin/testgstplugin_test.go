package testgstplugin

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestElementsCrash runs each crashing element in gst-launch-1.0 (its own fault handler off) and
// expects the process to die of SIGSEGV; with the shadowing environment, the pipeline that names
// avdec_h264 gets the impostor, and without it libav's decoder plays the same stream to the end.
func TestElementsCrash(t *testing.T) {
	dir := Need(t)
	if _, err := exec.LookPath("gst-launch-1.0"); err != nil {
		t.Skip("gst-launch-1.0 missing")
	}
	file, err := CrashFile(t.TempDir(), 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	h264 := "videotestsrc num-buffers=60 ! x264enc ! h264parse ! avdec_h264 ! fakesink"
	for _, c := range []struct {
		name, pipeline string
		shadow, crash  bool
	}{
		{"crashtransform", "videotestsrc ! crashtransform after=10 ! fakesink", false, true},
		{"kmscrashdec", "uridecodebin uri=file://" + file + " ! fakesink", false, true},
		{"avdec_h264 impostor", h264, true, true},
		{"system avdec_h264", h264, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !c.crash && exec.Command("gst-inspect-1.0", "avdec_h264").Run() != nil {
				t.Skip("libav's avdec_h264 missing")
			}
			cmd := exec.Command("gst-launch-1.0", append([]string{"--no-fault", "-q"}, strings.Fields(c.pipeline)...)...)
			cmd.Env = append(os.Environ(), Env(dir, c.shadow)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			crashed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGSEGV
			if crashed != c.crash {
				t.Fatalf("crashed by SIGSEGV: %v, want %v (%v)\n%s", crashed, c.crash, err, out)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "registry-shadow.bin")); err != nil {
		t.Errorf("the shadowing environment did not use its own registry cache: %v", err)
	}
}
