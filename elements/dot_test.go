package elements_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// renderDot runs Graphviz on a DOT document and fails the test if it does not render cleanly.
func renderDot(t *testing.T, what, dot string) {
	t.Helper()
	cmd := exec.Command("dot", "-Tsvg")
	cmd.Stdin = strings.NewReader(dot)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil || errb.Len() > 0 || !bytes.Contains(out.Bytes(), []byte("</svg>")) {
		t.Fatalf("%s: dot -Tsvg: %v\n%s\n--- document:\n%s", what, err, errb.String(), dot)
	}
}

// TestGstreamerDot: a WebRtcEndpoint sending real VP8 through a GStreamerFilter into a recorder. The
// pipeline's DOT holds the filter's real GStreamer graph and the pure-Go endpoints with their links,
// and renders with Graphviz; an element's DOT is its own part; details change the GStreamer part;
// dumpGstreamerDot writes into GST_DEBUG_DUMP_DOT_DIR.
func TestGstreamerDot(t *testing.T) {
	needFilters(t, "videoflip")
	if _, err := exec.LookPath("dot"); err != nil {
		t.Skip("graphviz (dot) not installed")
	}
	dumpDir := t.TempDir()
	t.Setenv("GST_DEBUG_DUMP_DOT_DIR", dumpDir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, c, pipeline := testserver.Connect(t, testserver.Start(t).URL, 60*time.Second)

	peer, err := testpeer.NewClip(testpeer.ClipOptions{Video: testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=s=320x240:r=30")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if peer.Endpoint, err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline}); err != nil {
		t.Fatal(err)
	}
	filter, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": pipeline, "command": "videoflip method=horizontal-flip"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline,
		"uri": "file://" + filepath.Join(t.TempDir(), "dot.webm"), "mediaProfile": "WEBM_VIDEO_ONLY"})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{peer.Endpoint, filter}, {filter, rec}} {
		if err := c.Invoke(ctx, pair[0], "connect", map[string]any{"sink": pair[1]}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Invoke(ctx, rec, "record", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.Negotiate(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	getDot := func(obj string, params map[string]any) string {
		t.Helper()
		var s string
		if err := c.Invoke(ctx, obj, "getGstreamerDot", params, &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// The media reaches the recorder through the filter: every part has its codec.
	var whole string
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var flowing bool
		if err := c.Invoke(ctx, rec, "isMediaFlowingIn", map[string]any{"mediaType": "VIDEO"}, &flowing); err != nil {
			t.Fatal(err)
		}
		whole = getDot(pipeline, nil)
		if flowing && strings.Count(whole, "video/VP8 90000") >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no video through the filter to the recorder; DOT:\n%s", whole)
		}
	}
	renderDot(t, "pipeline", whole)
	for _, want := range []string{"cluster_" + peer.Endpoint, "cluster_" + filter, "cluster_" + rec,
		"GstVideoFlip", "vp8dec", "pion PeerConnection", "recorder (Go muxer)", `label="VIDEO"`} {
		if !strings.Contains(whole, want) {
			t.Errorf("pipeline DOT lacks %q", want)
		}
	}

	own := getDot(filter, nil)
	renderDot(t, "filter", own)
	if !strings.Contains(own, "GstVideoFlip") || strings.Contains(own, "cluster_"+rec) || strings.Contains(own, "pion PeerConnection") {
		t.Errorf("the filter's DOT is not its own part:\n%s", own)
	}
	if !strings.Contains(own, "RecorderEndpoint "+rec) {
		t.Errorf("the filter's DOT does not show what it feeds:\n%s", own)
	}

	// SHOW_STATES marks the GStreamer elements' states ("[>]" for PLAYING); SHOW_MEDIA_TYPE does not
	// (GStreamer's legend explains the marks in both).
	noLegend := regexp.MustCompile(`(?m)^.*Legend.*$`)
	states := noLegend.ReplaceAllString(getDot(filter, map[string]any{"details": "SHOW_STATES"}), "")
	mediaType := noLegend.ReplaceAllString(getDot(filter, map[string]any{"details": "SHOW_MEDIA_TYPE"}), "")
	renderDot(t, "SHOW_MEDIA_TYPE", mediaType)
	if !strings.Contains(states, "[>]") || strings.Contains(mediaType, "[>]") {
		t.Errorf("details not honoured: SHOW_STATES has [>]: %v, SHOW_MEDIA_TYPE has it: %v\n%s",
			strings.Contains(states, "[>]"), strings.Contains(mediaType, "[>]"), mediaType)
	}

	if err := c.Invoke(ctx, pipeline, "dumpGstreamerDot", nil, nil); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dumpDir, "*.dot"))
	if len(files) != 1 || !strings.HasSuffix(files[0], "-"+strings.ReplaceAll(pipeline, "/", "_")+".dot") {
		t.Fatalf("dumped files %v, want one named after the pipeline", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	renderDot(t, "dumped", string(b))
}
