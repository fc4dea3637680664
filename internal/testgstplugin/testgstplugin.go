// Package testgstplugin builds, for tests, a GStreamer plugin whose elements crash the process they
// run in (testdata/crash.c): crashtransform (a filter element, property "after"), kmscrashdec (the
// decoder of files starting "KMSCRASH <after>\n", which decodebin picks: a crashing player) and an
// avdec_h264 impostor (a crashing transcoder). The plugin is compiled with gcc and pkg-config once per
// test binary; tests are skipped when the toolchain or the GStreamer headers are missing.
package testgstplugin

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

//go:embed testdata/crash.c
var source []byte

var (
	buildOnce sync.Once
	builtDir  string
	buildErr  error
)

// Build compiles the plugin into a new temporary directory (once per process) and returns that
// directory. The caller removes nothing: the directory lives as long as the test binary's temp files.
func Build() (string, error) {
	buildOnce.Do(func() { builtDir, buildErr = build() })
	return builtDir, buildErr
}

func build() (string, error) {
	for _, tool := range []string{"gcc", "pkg-config"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("%s missing (scripts/install-deps.sh run installs it)", tool)
		}
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "gstreamer-1.0", "gstreamer-base-1.0").Output()
	if err != nil {
		return "", fmt.Errorf("GStreamer development headers missing (libgstreamer1.0-dev, libgstreamer-plugins-base1.0-dev): %v", err)
	}
	dir, err := os.MkdirTemp("", "kms-crash-plugin-")
	if err != nil {
		return "", err
	}
	src := filepath.Join(dir, "crash.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", err
	}
	args := append([]string{"-shared", "-fPIC", "-O2", "-o", filepath.Join(dir, "libgstkmscrashtest.so"), src},
		strings.Fields(string(flags))...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc: %v\n%s", err, out)
	}
	return dir, nil
}

// Need builds the plugin or skips t, saying why.
func Need(t testing.TB) string {
	t.Helper()
	dir, err := Build()
	if err != nil {
		t.Skipf("crashing GStreamer plugin not built: %v", err)
	}
	return dir
}

// Env is the environment that makes GStreamer load the plugin from dir, with a registry cache of its
// own (so the user's cache never lists it). With shadow, the plugin directory is scanned after the
// system's plugins (GStreamer's registry keeps the last feature registered under a name), so its
// avdec_h264 replaces libav's; without, the system's elements keep their names and only the
// plugin's own elements are added.
func Env(dir string, shadow bool) []string {
	if !shadow {
		return []string{"GST_PLUGIN_PATH=" + dir, "GST_REGISTRY=" + filepath.Join(dir, "registry.bin")}
	}
	system := os.Getenv("GST_PLUGIN_SYSTEM_PATH")
	if system == "" {
		out, _ := exec.Command("pkg-config", "--variable=pluginsdir", "gstreamer-1.0").Output()
		system = strings.TrimSpace(string(out))
	}
	return []string{"GST_PLUGIN_PATH=" + system, "GST_PLUGIN_SYSTEM_PATH=" + dir,
		"GST_REGISTRY=" + filepath.Join(dir, "registry-shadow.bin")}
}

// CrashFile writes a file of the made-up KMSCRASH format that kmscrashdec decodes into grey 30 fps
// frames (one per 4096-byte block read) and crashes after after frames; frames blocks in all.
func CrashFile(dir string, after, frames int) (string, error) {
	name := filepath.Join(dir, fmt.Sprintf("crash-after-%d.kmscrash", after))
	data := make([]byte, 4096*frames)
	copy(data, fmt.Sprintf("KMSCRASH %d\n", after))
	return name, os.WriteFile(name, data, 0o644)
}
