// Package testserver runs the whole Kurento server in-process for tests: configuration defaults, the
// object registry with every element class, and the protocol on an httptest server.
package testserver

import (
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/elements"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/protocol"
)

// Server is a running in-process server.
type Server struct {
	URL      string
	Registry *objects.Registry
}

// Start runs a server until the test ends. env holds extra KMS_* settings ("KMS_MIN_PORT=40000").
func Start(t testing.TB, env ...string) *Server {
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
	level := slog.LevelWarn
	if os.Getenv("KMS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	reg := objects.NewRegistry(api.MustLoad(), objects.ServerManagerInfo{Started: time.Now()}, log)
	elements.Define(reg, cfg)
	srv := protocol.NewServer(reg, "kurento", time.Minute, log)
	reg.SetNotifier(srv)
	srv.Start()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
		reg.ReleaseAll()
	})
	return &Server{URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/kurento", Registry: reg}
}
