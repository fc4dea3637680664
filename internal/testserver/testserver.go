// Package testserver runs the whole Kurento server in-process for tests: configuration defaults, the
// object registry with every element class, and the protocol on an httptest server.
package testserver

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/elements"
	"github.com/kurento-go/kms/internal/guard"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/ops"
	"github.com/kurento-go/kms/protocol"
)

// Server is a running in-process server.
type Server struct {
	URL      string
	Registry *objects.Registry
	// Ops is the operations listener, when KMS_METRICS_ADDRESS is among the settings
	// ("KMS_METRICS_ADDRESS=127.0.0.1:0"); OpsURL is its http:// base.
	Ops    *ops.Server
	OpsURL string
}

// Start runs a server until the test ends. env holds extra KMS_* settings ("KMS_MIN_PORT=40000").
func Start(t testing.TB, env ...string) *Server {
	t.Helper()
	return StartWith(t, nil, env...)
}

// StartWith is Start with configure, when not nil, changing the loaded configuration before the
// element classes are defined.
func StartWith(t testing.TB, configure func(*config.Config), env ...string) *Server {
	t.Helper()
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	cfg, err := config.Load([]string{"-f", t.TempDir() + "/kurento.conf.json"}, func(k string) string { return vars[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	if configure != nil {
		configure(cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("KMS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	reg := objects.NewRegistry(api.MustLoad(), objects.ServerManagerInfo{Started: time.Now()}, log)
	elements.Define(reg, cfg)
	srv := protocol.NewServer(reg, "kurento", time.Minute, log)
	reg.SetNotifier(srv)
	out := &Server{Registry: reg}
	if addr := cfg.Observe.MetricsAddress; addr != "" {
		out.Ops = ops.ForServer(cfg, reg, srv, log)
	}
	if err := guard.Apply(cfg, reg, srv, out.Ops); err != nil {
		t.Fatal(err)
	}
	if out.Ops != nil {
		if err := out.Ops.Listen(cfg.Observe.MetricsAddress); err != nil {
			t.Fatalf("metrics address: %v", err)
		}
		out.OpsURL = "http://" + out.Ops.Addr()
	}
	srv.Start()
	hs := httptest.NewServer(srv)
	out.URL = "ws" + strings.TrimPrefix(hs.URL, "http") + "/kurento"
	t.Cleanup(func() {
		if out.Ops != nil {
			out.Ops.Shutdown(context.Background())
		}
		hs.Close()
		srv.Close()
		reg.ReleaseAll()
	})
	return out
}

// Session is an in-process server, a client dialed to it and a MediaPipeline created through it.
type Session struct {
	*Server
	Ctx      context.Context
	Client   *client.Client
	Pipeline string
}

// StartSession starts a server (env as Start takes it), dials it and creates a pipeline; ctx ends
// after timeout or with the test.
func StartSession(t testing.TB, timeout time.Duration, env ...string) *Session {
	t.Helper()
	srv := Start(t, env...)
	ctx, c, pipeline := Connect(t, srv.URL, timeout)
	return &Session{Server: srv, Ctx: ctx, Client: c, Pipeline: pipeline}
}

// Connect dials the server at url and creates a MediaPipeline; the context ends after timeout or
// with the test, and the client is closed when the test ends.
func Connect(t testing.TB, url string, timeout time.Duration) (context.Context, *client.Client, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	c, err := client.Dial(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	pipeline, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c, pipeline
}
