package elements_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/internal/testserver"
)

// TestURIAllowList: with allow-lists, RecorderEndpoint file:///etc/x and escapes by "..", a symbolic
// link or a percent-encoded path are refused at create with 40107; whatever the lists say, the
// recorder never writes over a device, /proc or a symbolic link; PlayerEndpoint is held to its own
// schemes and directories.
func TestURIAllowList(t *testing.T) {
	dir := t.TempDir()
	srv := testserver.StartWith(t, func(c *config.Config) {
		c.Access.Recorder = config.URIPolicy{Schemes: []string{"file"}, PathPrefixes: []string{dir}}
		c.Access.Player = config.URIPolicy{Schemes: []string{"file", "rtsp"}, PathPrefixes: []string{dir}}
	})
	ctx, c, pipeline := testserver.Connect(t, srv.URL, 30*time.Second)
	if err := os.Symlink("/etc", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link.webm")); err != nil {
		t.Fatal(err)
	}
	refused := func(class, uri, why string) {
		t.Helper()
		_, err := c.Create(ctx, class, map[string]any{"mediaPipeline": pipeline, "uri": uri})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != 40107 || !strings.Contains(ce.Message, why) {
			t.Errorf("%s %s: %v, want 40107 saying %q", class, uri, err, why)
		}
	}
	refused("RecorderEndpoint", "file:///etc/x", "not under an allowed directory")
	refused("RecorderEndpoint", "file://"+dir+"/../../etc/x", "not under an allowed directory")
	refused("RecorderEndpoint", "file://"+dir+"/%2E%2E/%2E%2E/etc/x", "not under an allowed directory")
	refused("RecorderEndpoint", "file://"+dir+"/out/x", "not under an allowed directory")
	refused("RecorderEndpoint", "file://"+dir+"/link.webm", "not a regular file")
	refused("RecorderEndpoint", "http://example.invalid/x", `scheme "http" is not allowed`)
	refused("PlayerEndpoint", "file:///etc/shadow", "not under an allowed directory")
	refused("PlayerEndpoint", "http://127.0.0.1:1/x", `scheme "http" is not allowed`)

	if _, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + dir + "/sub/../ok.webm"}); err != nil {
		t.Errorf("recorder in the allowed directory: %v", err)
	}
	if _, err := c.Create(ctx, "PlayerEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + dir + "/clip.webm"}); err != nil {
		t.Errorf("player in the allowed directory: %v", err)
	}
}

// TestRecorderRegularFilesOnly: with no allow-list (KMS's default), the recorder still refuses the
// server's own descriptors, devices and symbolic links.
func TestRecorderRegularFilesOnly(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, c, pipeline := testserver.Connect(t, srv.URL, 30*time.Second)
	link := filepath.Join(t.TempDir(), "link.webm")
	os.Symlink("/etc/hostname", link)
	for _, uri := range []string{"file:///proc/self/fd/1", "file:///dev/null", "file:///tmp/../proc/self/environ", "file://" + link, "file:///sys/kernel/x"} {
		_, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": uri})
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != 40107 || !strings.Contains(ce.Message, "not a regular file") {
			t.Errorf("%s: %v, want 40107 not a regular file", uri, err)
		}
	}
}
