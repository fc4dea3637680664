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

// TestElementsCrash runs each crashing element in gst-launch-1.0 (its own fault handler off), with
// the shadowing environment (one registry scan), and expects the process to die of SIGSEGV: the
// pipeline that names avdec_h264 gets the impostor. Elements the plugin does not name stay the
// system's: a pipeline through vp8dec plays to the end.
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
		crash          bool
	}{
		{"crashtransform", "videotestsrc ! crashtransform after=10 ! fakesink", true},
		{"kmscrashdec", "uridecodebin uri=file://" + file + " ! fakesink", true},
		{"avdec_h264 impostor", h264, true},
		{"system vp8dec", "videotestsrc num-buffers=30 ! vp8enc deadline=1 ! vp8dec ! fakesink", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command("gst-launch-1.0", append([]string{"--no-fault", "-q"}, strings.Fields(c.pipeline)...)...)
			cmd.Env = append(os.Environ(), Env(dir, true)...)
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
