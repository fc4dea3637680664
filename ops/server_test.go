package ops_test

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/metrics"
	"github.com/kurento-go/kms/ops"
)

func start(t *testing.T) *ops.Server {
	t.Helper()
	s := ops.New(metrics.New(), slog.New(slog.DiscardHandler))
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	return s
}

func get(t *testing.T, s *ops.Server, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.Addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestProbes: readiness failures fail /readyz with their reasons and leave /healthz alone; health
// failures fail both; a check that never answers (a deadlocked event loop) fails within its deadline.
func TestProbes(t *testing.T) {
	s := start(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, body := get(t, s, p); code != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("%s = %d %q, want 200 ok", p, code, body)
		}
	}
	draining := true
	s.AddReadiness("draining", ops.Bool(func() bool { return draining }, "the server is draining"))
	s.AddReadiness("limits", func() error { return errors.New("max_pipelines reached") })
	code, body := get(t, s, "/readyz")
	if code != 503 || !strings.Contains(body, "draining: the server is draining") || !strings.Contains(body, "limits: max_pipelines reached") {
		t.Fatalf("/readyz = %d %q, want 503 naming both reasons", code, body)
	}
	if code, _ := get(t, s, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d while only readiness fails", code)
	}

	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	s.AddHealth("registry", ops.Responds(func() { <-stuck }))
	began := time.Now()
	code, body = get(t, s, "/healthz")
	if code != 503 || !strings.Contains(body, "registry: no answer") {
		t.Fatalf("/healthz with a stuck loop = %d %q, want 503 naming the registry", code, body)
	}
	if took := time.Since(began); took > 10*time.Second {
		t.Fatalf("/healthz took %v with a stuck check", took)
	}
	if code, _ := get(t, s, "/readyz"); code != 503 {
		t.Fatalf("/readyz = %d while unhealthy", code)
	}
}

// TestGuard: the guard (access control) wraps /metrics and mounted pages, never the probes.
func TestGuard(t *testing.T) {
	s := start(t)
	s.Handle("GET /inspector/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "page") }))
	s.SetGuard(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer good" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	for _, p := range []string{"/metrics", "/inspector/"} {
		if code, _ := get(t, s, p); code != http.StatusUnauthorized {
			t.Fatalf("%s without a token = %d, want 401", p, code)
		}
	}
	req, _ := http.NewRequest("GET", "http://"+s.Addr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer good")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "kms_pipelines 0") {
		t.Fatalf("/metrics with a token = %d, want 200 with kms_pipelines", resp.StatusCode)
	}
	if code, _ := get(t, s, "/healthz"); code != 200 {
		t.Fatalf("/healthz behind the guard = %d, want 200 (probes stay open)", code)
	}
}
