package elements_test

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testserver"
)

// postServer runs the in-process testserver with the embedded HTTP server of the
// HttpEndpoints on a free loopback port.
func postServer(t *testing.T, timeout time.Duration) (context.Context, *client.Client, string) {
	t.Helper()
	srv := testserver.StartWith(t, func(cfg *config.Config) {
		cfg.Modules.HttpEndpoint = config.HttpEndpoint{ServerAddress: "127.0.0.1", AnnouncedAddress: "127.0.0.1", Port: 0}
	})
	return testserver.Connect(t, srv.URL, timeout)
}

func TestHttpPostEndpointPlaysUpload(t *testing.T) {
	needPlayer(t, "matroskademux", "vp8dec", "opusdec")
	file := testmedia.Clip(t, t.TempDir(), "clip.webm", 3*time.Second, testmedia.WebMArgs...)
	for _, multi := range []bool{false, true} {
		name := map[bool]string{false: "raw-chunked", true: "multipart"}[multi]
		t.Run(name, func(t *testing.T) {
			ctx, c, pipeline := postServer(t, 60*time.Second)
			ep, err := c.Create(ctx, "HttpPostEndpoint", map[string]any{"mediaPipeline": pipeline, "disconnectionTimeout": 1})
			if err != nil {
				t.Fatal(err)
			}
			var url string
			if err := c.Invoke(ctx, ep, "getUrl", nil, &url); err != nil {
				t.Fatal(err)
			}
			ev := watchEvents(ctx, t, c, ep, "EndOfStream", "Error", "MediaSessionStarted", "MediaSessionTerminated")
			peer := viewer(ctx, t, c, pipeline, ep)
			start := time.Now()
			code, body := uploadFile(ctx, t, url, file, multi)
			t.Logf("%s: POST %s -> %d %q after %v", name, url, code, strings.TrimSpace(body), time.Since(start).Round(time.Millisecond))
			if code != http.StatusOK {
				t.Fatalf("POST: %d %s", code, body)
			}
			if err := peer.WaitVideo(ctx); err != nil {
				t.Fatal(err)
			}
			eos := ev.wait(ctx, t, "EndOfStream", 1)
			ev.wait(ctx, t, "MediaSessionStarted", 1)
			ev.wait(ctx, t, "MediaSessionTerminated", 1)
			t.Logf("%s: EndOfStream %v after the POST started; %d video frames, %d audio packets", name,
				eos.at.Sub(start).Round(time.Millisecond), peer.FramesReceived.Load(), peer.AudioReceived.Load())
			if n := peer.FramesReceived.Load(); n < 50 {
				t.Errorf("%d frames received", n)
			}
			if countEvents(ev, "Error") > 0 {
				t.Errorf("errors: %v", ev.list())
			}
		})
	}
}

// uploadFile POSTs a file, chunked, raw or as multipart/form-data.
func uploadFile(ctx context.Context, t *testing.T, url, file string, multi bool) (int, string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe() // no length known: the body goes chunked
	ctype := "video/webm"
	var mw *multipart.Writer
	if multi {
		mw = multipart.NewWriter(pw)
		ctype = mw.FormDataContentType()
	}
	go func() {
		if mw != nil {
			mw.WriteField("name", "clip")
			fw, _ := mw.CreateFormFile("file", filepath.Base(file))
			io.Copy(fw, bytes.NewReader(data))
			pw.CloseWithError(mw.Close())
			return
		}
		for b := data; len(b) > 0; {
			n := min(len(b), 16<<10)
			if _, err := pw.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHttpPostEndpointToRecorder: an uploaded file goes through a RecorderEndpoint into a new file;
// with stopOnEndOfStream, the recording stops by itself at the end of the upload.
func TestHttpPostEndpointToRecorder(t *testing.T) {
	needPlayer(t, "matroskademux", "vp8dec", "opusdec")
	dir := t.TempDir()
	file := testmedia.Clip(t, dir, "clip.webm", 3*time.Second, testmedia.WebMArgs...)
	ctx, c, pipeline := postServer(t, 60*time.Second)
	ep, err := c.Create(ctx, "HttpPostEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "recorded.webm")
	rec, err := c.Create(ctx, "RecorderEndpoint", map[string]any{"mediaPipeline": pipeline, "uri": "file://" + out,
		"mediaProfile": "WEBM", "stopOnEndOfStream": true})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, ep, "connect", map[string]any{"sink": rec}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, rec, "record", nil, nil); err != nil {
		t.Fatal(err)
	}
	ev := watchEvents(ctx, t, c, ep, "EndOfStream", "Error")
	recEv := watchEvents(ctx, t, c, rec, "Stopped")
	var url string
	if err := c.Invoke(ctx, ep, "getUrl", nil, &url); err != nil {
		t.Fatal(err)
	}
	if code, body := uploadFile(ctx, t, url, file, false); code != http.StatusOK {
		t.Fatalf("POST: %d %s", code, body)
	}
	end := ev.wait(ctx, t, "EndOfStream", 1)
	stopped := recEv.wait(ctx, t, "Stopped", 1)
	t.Logf("the recorder stopped %v after the upload's EndOfStream", stopped.at.Sub(end.at).Round(time.Millisecond))
	if d := stopped.at.Sub(end.at); d > 2*time.Second {
		t.Errorf("the recorder stopped %v after the end of the upload", d)
	}
	b, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "csv=p=0", out).CombinedOutput()
	t.Logf("recorded %s: %q", out, b)
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	if !strings.Contains(string(b), "vp8") || !strings.Contains(string(b), "opus") {
		t.Errorf("recording lacks vp8 or opus: %q", b)
	}
	if d := testmedia.Duration(t, out); d < 2*time.Second {
		t.Errorf("recorded %v of a 3 s upload", d)
	}
}
