package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kurento-go/kms/internal/testserver"
)

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
	buildDir  string
)

// TestMain removes the binary built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binary builds cmd/kurento-media-server once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kms-protocol-test-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "kurento-media-server")
		goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goTool); err != nil {
			goTool = "go"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", builtBin, "github.com/kurento-go/kms/cmd/kurento-media-server")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

// process is a running server binary.
type process struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{}
	err    error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cleanEnv is the test's environment without the variables the server reads.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "KMS_") || strings.HasPrefix(kv, "KURENTO_") || strings.HasPrefix(kv, "GST_") {
			continue
		}
		env = append(env, kv)
	}
	return append(append(env, "GST_DEBUG=3,Kurento*:4", "GST_DEBUG_NO_COLOR=1"), extra...)
}

func runBinary(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = env
	cmd.Dir = t.TempDir()
	p := &process{cmd: cmd, out: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// wait returns the exit code, failing the test if the process runs longer than d.
func (p *process) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("still running after %v; output:\n%s", d, p.out)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

func writeConf(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "kurento.conf.json")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// waitServing waits until a ping on url is answered.
func waitServing(t *testing.T, p *process, url string) *client {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ws, _, err := websocket.Dial(ctx, url, nil)
		cancel()
		if err == nil {
			ws.CloseNow()
			return dial(t, url)
		}
		select {
		case <-p.exited:
			t.Fatalf("server exited (%v); output:\n%s", p.err, p.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not serving %s: %v; output:\n%s", url, err, p.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBinaryStartStop: a kurento.conf.json on another port and path, the Docker image's
// KMS_MIN_PORT/KMS_MAX_PORT, serving, then SIGTERM releases everything and exits 0.
func TestBinaryStartStop(t *testing.T) {
	port := testserver.FreePort(t)
	conf := writeConf(t, fmt.Sprintf(`{
  "metadata": {"zone": "test"},
  "mediaServer": {
    "resources": {"garbageCollectorPeriod": 240, "exceptionLimit": 0.8},
    "net": {"websocket": {"port": %d, "path": "kms-test", "threads": 4}}
  }
}`, port))
	p := runBinary(t, cleanEnv("KMS_MIN_PORT=40000", "KMS_MAX_PORT=40100"), "-f", conf)
	c := waitServing(t, p, fmt.Sprintf("ws://127.0.0.1:%d/kms-test", port))
	if got := c.invoke("manager_ServerManager", "getMetadata", nil); got != `{"zone":"test"}` {
		t.Fatalf("metadata %v", got)
	}
	pipe, _ := c.pipelineWith(2)
	c.ok("subscribe", map[string]any{"object": "manager_ServerManager", "type": "ObjectDestroyed"})

	// The default path is not served on this server.
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/kurento", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusProtocolError {
		t.Fatalf("wrong path: %v", err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM; output:\n%s", code, p.out)
	}
	t.Logf("exited %v after SIGTERM", time.Since(sent))
	// Everything was released before exiting: the pipeline and its elements were announced on the
	// still open connection, and the log counts them.
	got := map[string]bool{}
	for len(got) < 3 {
		select {
		case m := <-c.events:
			got[m.M["params"].(map[string]any)["value"].(map[string]any)["data"].(map[string]any)["objectId"].(string)] = true
		case <-time.After(replyTimeout):
			t.Fatalf("ObjectDestroyed events before exit: %v", got)
		}
	}
	if !got[pipe] {
		t.Fatalf("pipeline not announced as destroyed: %v", got)
	}
	if out := p.out.String(); !strings.Contains(out, "Kurento Media Server stopped released=3") {
		t.Fatalf("no orderly shutdown in the log:\n%s", out)
	}
}

// TestBinaryConfigErrors: an invalid value stops start-up with a message naming the key and where it
// came from, and a non-zero exit.
func TestBinaryConfigErrors(t *testing.T) {
	okConf := writeConf(t, fmt.Sprintf(`{"mediaServer":{"net":{"websocket":{"port":%d}}}}`, testserver.FreePort(t)))
	badConf := writeConf(t, `{"mediaServer":{"net":{"websocket":{"port":"abc"}}}}`)
	cases := []struct {
		name  string
		env   []string
		conf  string
		wants []string
	}{
		{"KMS_MIN_PORT=abc", []string{"KMS_MIN_PORT=abc"}, okConf, []string{"KMS_MIN_PORT", "minPort"}},
		{"KMS_MAX_PORT below KMS_MIN_PORT", []string{"KMS_MIN_PORT=50000", "KMS_MAX_PORT=40000"}, okConf, []string{"KMS_MIN_PORT", "KMS_MAX_PORT"}},
		{"port abc in the json", nil, badConf, []string{badConf, "mediaServer.net.websocket.port", `"abc"`}},
		{"unparseable json", nil, writeConf(t, `{"mediaServer": {`), []string{"kurento.conf.json"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := runBinary(t, cleanEnv(tc.env...), "-f", tc.conf)
			if code := p.wait(t, 10*time.Second); code == 0 {
				t.Fatalf("exit code 0; output:\n%s", p.out)
			}
			for _, w := range tc.wants {
				if !strings.Contains(p.out.String(), w) {
					t.Fatalf("output does not name %q:\n%s", w, p.out)
				}
			}
		})
	}
}

// TestBinaryVersion: -v / --version print the version and exit 0 without serving.
func TestBinaryVersion(t *testing.T) {
	for _, flag := range []string{"-v", "--version"} {
		p := runBinary(t, cleanEnv(), flag, "-f", "/nonexistent/kurento.conf.json")
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("%s: exit %d\n%s", flag, code, p.out)
		}
		if !strings.Contains(p.out.String(), "Kurento Media Server version: 7.3.0") {
			t.Fatalf("%s output:\n%s", flag, p.out)
		}
	}
}

// TestBinaryKillLimit: with mediaServer.resources.killLimit, a server whose last object is released
// while it is over the limit stops itself in an orderly way (exit 0), as KMS does.
func TestBinaryKillLimit(t *testing.T) {
	port := testserver.FreePort(t)
	conf := writeConf(t, fmt.Sprintf(`{"mediaServer":{"resources":{"killLimit":1e-9},"net":{"websocket":{"port":%d}}}}`, port))
	p := runBinary(t, cleanEnv(), "-f", conf)
	c := waitServing(t, p, fmt.Sprintf("ws://127.0.0.1:%d/kurento", port))
	pipe, _ := c.pipelineWith(1)
	select {
	case <-p.exited:
		t.Fatalf("stopped while objects existed:\n%s", p.out)
	case <-time.After(100 * time.Millisecond):
	}
	c.ok("release", map[string]any{"object": pipe})
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Fatalf("exit %d:\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "kill limit") {
		t.Fatalf("no reason in the log:\n%s", p.out)
	}
}
