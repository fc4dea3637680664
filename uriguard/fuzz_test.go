package uriguard_test

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kurento-go/kms/endpoints/player"
	"github.com/kurento-go/kms/endpoints/recorder"
	"github.com/kurento-go/kms/uriguard"
)

// uriSeeds are what applications send (kurento tutorials' file:///tmp/x.webm, a bare name under
// defaultPath, rtsp and http) and the known ways out of a directory; "$A" stands for the allowed
// directory.
var uriSeeds = []string{
	"file://$A/x.webm", "x.webm", "rec/sub/x.mp4", "file://localhost$A/x.webm", "FILE:$A/x.webm",
	"rtsp://127.0.0.1:8554/cam", "http://127.0.0.1/x.webm", "https://user:pw@example.invalid/up?x=1",
	"file://$A/../../etc/passwd", "file://$A/%2E%2E/%2e%2e/etc/x", "file://$A%2F..%2F..%2Fetc%2Fx",
	"file://$A/out/x", "file://$A/up/x", "file://$A/sub/../x.webm", "file://$A/x?/../../../../etc/passwd",
	"file://$A/x#/../../etc", "file://host/etc/x", "file:relative/x", "../../../etc/x", "file://$A/x%00/../..",
	"file://$A/%3F/..%2F../x", "file:///etc/x;$A/y",
}

// launchString reads the quoted value that follows prefix in a gst-launch description, as
// gst_parse_launch does ("..." with backslash escapes); ok only when the value ends the description.
func launchString(desc, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(desc, prefix+`"`)
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		switch rest[i] {
		case '\\':
			if i+1 < len(rest) {
				i++
				b.WriteByte(rest[i])
			}
		case '"':
			return b.String(), i == len(rest)-1
		default:
			b.WriteByte(rest[i])
		}
	}
	return "", false
}

// FuzzURI resolves and checks fuzzed PlayerEndpoint/RecorderEndpoint URIs against an allow-list of
// one directory (which holds a symbolic link out of it and one to its parent), as elements does at
// create. Nothing panics; the player's pipeline description hands uridecodebin the accepted URI and
// nothing more (no way out of its quotes); and a file URI the policy accepts never escapes: the
// path it checked is clean, absolute and under the directory, also with its directories' links
// resolved; the recorder writes that very path; and the file GStreamer's filesrc would open for
// the player (the URI read as GLib's g_filename_from_uri reads it) is that same path.
func FuzzURI(f *testing.F) {
	root, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	allowed, outside := filepath.Join(root, "allowed"), filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(allowed, "sub"), filepath.Join(allowed, "rec", "sub"), outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(allowed, "out")); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink("..", filepath.Join(allowed, "up")); err != nil {
		f.Fatal(err)
	}
	for i, s := range uriSeeds {
		f.Add(s, uint8(i))
	}
	defaultPaths := []string{"file://" + allowed, "file://" + allowed + "/", "file:///var/lib/kurento"}
	policies := []uriguard.Policy{
		{Schemes: []string{"file"}, PathPrefixes: []string{allowed}},
		{Schemes: []string{"file", "rtsp", "http", "https"}, PathPrefixes: []string{allowed + "/", filepath.Join(root, "nothing")}},
	}
	f.Fuzz(func(t *testing.T, uri string, pick uint8) {
		uri = strings.ReplaceAll(uri, "$A", allowed)
		u, err := recorder.ResolveURI(uri, defaultPaths[int(pick)%len(defaultPaths)])
		if err != nil {
			return
		}
		if err := policies[int(pick>>4)%len(policies)].Check(u); err != nil {
			return
		}
		head := player.URIHead(u.String())("")
		if got, ok := launchString(head, "uridecodebin name="+player.DecoderName+" uri="); !ok || got != u.String() {
			t.Fatalf("%q: the player's pipeline %q gives uridecodebin the uri %q, not %q", uri, head, got, u.String())
		}
		if u.Scheme != "file" {
			return
		}
		if u.Path != path.Clean(u.Path) || !strings.HasPrefix(u.Path, "/") {
			t.Fatalf("%q: accepted as %q, which is not clean and absolute", uri, u.Path)
		}
		if !under(u.Path, allowed) {
			t.Fatalf("%q: accepted as %q, outside %s", uri, u.Path, allowed)
		}
		if real, err := filepath.EvalSymlinks(filepath.Dir(u.Path)); err == nil && !under(filepath.Join(real, filepath.Base(u.Path)), allowed) {
			t.Fatalf("%q: accepted as %q, which leads to %s", uri, u.Path, real)
		}
		if opened, err := glibFilename(u.String()); err == nil && opened != u.Path {
			t.Fatalf("%q: checked %q, but the player (uri %q) reads %q", uri, u.Path, u.String(), opened)
		}
	})
}

func under(file, dir string) bool { return file == dir || strings.HasPrefix(file, dir+"/") }

// glibFilename reads a file URI as GLib's g_filename_from_uri does for GStreamer's filesrc: an
// optional "//host" (filesrc takes none but localhost), no '#' anywhere, and the rest
// percent-decoded as a whole, '?' included, refusing an escaped '/' or NUL.
func glibFilename(uri string) (string, error) {
	if len(uri) < 6 || !strings.EqualFold(uri[:6], "file:/") {
		return "", errors.New("not a file URI")
	}
	rest := uri[5:]
	if strings.Contains(rest, "#") {
		return "", errors.New("a local file URI may not include a #")
	}
	if strings.HasPrefix(rest, "//") {
		host, p, ok := strings.Cut(rest[2:], "/")
		if !ok {
			return "", errors.New("no path")
		}
		if host != "" && host != "localhost" {
			return "", errors.New("filesrc takes no host but localhost")
		}
		rest = "/" + p
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] != '%' {
			b.WriteByte(rest[i])
			continue
		}
		if i+2 >= len(rest) {
			return "", errors.New("a truncated escape")
		}
		c, err := strconv.ParseUint(rest[i+1:i+3], 16, 8)
		if err != nil || c == 0 || c == '/' {
			return "", errors.New("an invalid escape")
		}
		b.WriteByte(byte(c))
		i += 2
	}
	return b.String(), nil
}

// TestGlibFilename pins the reading of file URIs that FuzzURI's oracle relies on.
func TestGlibFilename(t *testing.T) {
	for uri, want := range map[string]string{
		"file:///tmp/a%20b.webm":       "/tmp/a b.webm",
		"file://localhost/tmp/x":       "/tmp/x",
		"file:/tmp/x?y":                "/tmp/x?y",
		"file:///tmp/x%3F/../../etc/y": "/tmp/x?/../../etc/y",
	} {
		if got, err := glibFilename(uri); err != nil || got != want {
			t.Errorf("%s: %q, %v; want %q", uri, got, err, want)
		}
	}
	for _, uri := range []string{"file:///tmp/x#y", "file://host/tmp/x", "file:///tmp/%2F", "file:///tmp/%00", "file:///tmp/%4", "http://x/y"} {
		if got, err := glibFilename(uri); err == nil {
			t.Errorf("%s: read as %q, want an error", uri, got)
		}
	}
}
