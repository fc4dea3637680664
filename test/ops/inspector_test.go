package ops_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// TestInspectorShowsLivePipeline: a pion peer sends a real VP8 clip to a WebRtcEndpoint connected to
// a GStreamerFilter connected to a RecorderEndpoint that records; the inspector page in headless
// Chromium must draw three nodes and two links, and the figures must move while media flows (the
// recorder's input bitrate above zero, and the figures read a few seconds apart differ). A screenshot
// of the page is saved to $KMS_TEST_ARTIFACTS (or the test's temp dir) and its path logged.
func TestInspectorShowsLivePipeline(t *testing.T) {
	browser := os.Getenv("CHROMIUM")
	if browser == "" {
		browser = "chromium"
	}
	browser, err := exec.LookPath(browser)
	if err != nil {
		t.Skip("chromium is not installed (scripts/install-deps.sh test installs it)")
	}
	testmedia.NeedFFmpeg(t)
	start := time.Now()
	s := testserver.StartSession(t, 120*time.Second, "KMS_METRICS_ADDRESS=127.0.0.1:0")
	ctx, c := s.Ctx, s.Client

	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30")
	peer, err := testpeer.NewClip(testpeer.ClipOptions{Video: clip})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if err := peer.Connect(ctx, c, s.Pipeline, false); err != nil {
		t.Fatal(err)
	}
	filter, err := c.Create(ctx, "GStreamerFilter", map[string]any{"mediaPipeline": s.Pipeline, "command": "videoflip method=horizontal-flip"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": s.Pipeline,
		"uri": "file://" + filepath.Join(t.TempDir(), "out.webm"), "mediaProfile": "WEBM_VIDEO_ONLY"})
	if err != nil {
		t.Fatal(err)
	}
	for _, link := range [][2]string{{peer.Endpoint, filter}, {filter, rec}} {
		if err := c.Invoke(ctx, link[0], "connect", map[string]any{"sink": link[1], "mediaType": "VIDEO"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Invoke(ctx, rec, "record", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser),
		chromedp.Flag("headless", "new"), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 800),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	t.Logf("media set up after %v", time.Since(start).Round(time.Millisecond))
	if _, err := chromedp.Run(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	t.Logf("browser up after %v", time.Since(start).Round(time.Millisecond))
	if _, err := chromedp.Run(bctx, chromedp.Navigate(s.OpsURL+"/inspector/")); err != nil {
		t.Fatal(err)
	}

	// The graph: three nodes and two links, in the right places.
	var shape struct {
		Nodes   int
		Links   []string
		Classes []string
	}
	waitPage(t, bctx, "three nodes and two links", `({
		nodes: document.querySelectorAll('#graph .node').length,
		links: [...document.querySelectorAll('#graph .link')].map(l => l.dataset.source + ' -> ' + l.dataset.sink).sort(),
		classes: [...document.querySelectorAll('#graph .node')].map(n => n.dataset.class).sort(),
	})`, &shape, func() bool { return shape.Nodes == 3 && len(shape.Links) == 2 })
	wantLinks := []string{filter + " -> " + rec, peer.Endpoint + " -> " + filter}
	if wantLinks[0] > wantLinks[1] {
		wantLinks[0], wantLinks[1] = wantLinks[1], wantLinks[0]
	}
	if shape.Links[0] != wantLinks[0] || shape.Links[1] != wantLinks[1] {
		t.Fatalf("links %v, want %v", shape.Links, wantLinks)
	}
	t.Logf("inspector draws %v linked as %v", shape.Classes, shape.Links)

	// The figures: the recorder takes media, and what the page shows changes from second to second.
	figures := `[...document.querySelectorAll('#graph .fig')].map(f => f.textContent).join(' | ')`
	recorderIn := `(document.querySelector('#graph .node[data-class="RecorderEndpoint"] [data-fig="bitrateIn"]') || {}).textContent || ''`
	var in string
	rate := regexp.MustCompile(`in ([0-9.]+) (k|M)bps`)
	waitPage(t, bctx, "the recorder's input bitrate above zero", recorderIn, &in, func() bool {
		m := rate.FindStringSubmatch(in)
		v, _ := strconv.ParseFloat(m2(m), 64)
		return v > 0
	})
	first, err := chromedp.Run(bctx, chromedp.Evaluate[string](figures))
	if err != nil {
		t.Fatal(err)
	}
	var later string
	waitPage(t, bctx, "the figures to change", figures, &later, func() bool { return later != first })
	t.Logf("figures: %s\nthen:    %s", first, later)

	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv("KMS_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "inspector.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the inspector: %s", shot)
}

// m2 is the number of a rate match, "" when none.
func m2(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

// waitPage evaluates expr in the page every 250 ms into out until ok, or fails after 30 s.
func waitPage[T any](t *testing.T, ctx context.Context, what, expr string, out *T, ok func() bool) {
	t.Helper()
	began := time.Now()
	defer func() { t.Logf("%s: %v", what, time.Since(began).Round(time.Millisecond)) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err == nil {
			*out = v
		}
		if err == nil && ok() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last reading %+v (err %v)", what, *out, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
