// Package ops is the operations listener (--metrics-address): Prometheus metrics, liveness and
// readiness probes, and whatever read-only pages are mounted on it (the inspector). It is a listener
// of its own because operators firewall the Kurento port and expose operations internally.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/metrics"
)

// Check is one health or readiness condition: nil when it holds, else why not.
type Check func() error

// Server serves /metrics, /healthz, /readyz and the handlers mounted with Handle.
type Server struct {
	Metrics *metrics.Set
	log     *slog.Logger
	mux     *http.ServeMux

	mu        sync.Mutex
	health    map[string]Check
	readiness map[string]Check
	guard     func(http.Handler) http.Handler

	srv *http.Server
	ln  net.Listener
}

// New makes the server; nothing listens until Listen.
func New(m *metrics.Set, log *slog.Logger) *Server {
	s := &Server{Metrics: m, log: log, mux: http.NewServeMux(),
		health: map[string]Check{}, readiness: map[string]Check{}}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { s.probe(w, s.health, nil) })
	s.mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { s.probe(w, s.health, s.readiness) })
	s.Handle("GET /metrics", m.Handler())
	return s
}

// AddHealth adds a liveness condition: /healthz (and /readyz) fail while it fails.
func (s *Server) AddHealth(name string, c Check) { s.add(s.health, name, c) }

// AddReadiness adds a condition for taking new pipelines: /readyz fails while it fails (draining,
// over a limit, no free ports, ...).
func (s *Server) AddReadiness(name string, c Check) { s.add(s.readiness, name, c) }

func (s *Server) add(set map[string]Check, name string, c Check) {
	s.mu.Lock()
	set[name] = c
	s.mu.Unlock()
}

// SetGuard sets what wraps every handler but the probes (access control, say). Set it before Listen.
func (s *Server) SetGuard(g func(http.Handler) http.Handler) {
	s.mu.Lock()
	s.guard = g
	s.mu.Unlock()
}

// Handle mounts a handler (pattern as http.ServeMux takes it); the guard applies to it.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		g := s.guard
		s.mu.Unlock()
		if g != nil {
			g(h).ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// ServeHTTP serves the operations endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// checkTimeout bounds one check: a check that hangs (a stuck lock) is itself the failure.
const checkTimeout = 2 * time.Second

// probe runs the checks of the sets and answers 200 "ok", or 503 with one line per failing check.
func (s *Server) probe(w http.ResponseWriter, sets ...map[string]Check) {
	s.mu.Lock()
	checks := map[string]Check{}
	for _, set := range sets {
		for name, c := range set {
			checks[name] = c
		}
	}
	s.mu.Unlock()
	var failed []string
	for name, err := range runChecks(checks) {
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", name, err))
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) > 0 {
		sort.Strings(failed)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(failed, "\n"))
		return
	}
	fmt.Fprintln(w, "ok")
}

// runChecks runs the checks concurrently, each within checkTimeout.
func runChecks(checks map[string]Check) map[string]error {
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(checks))
	for name, c := range checks {
		go func() { results <- result{name, c()} }()
	}
	out := make(map[string]error, len(checks))
	timeout := time.NewTimer(checkTimeout)
	defer timeout.Stop()
	for range checks {
		select {
		case r := <-results:
			out[r.name] = r.err
		case <-timeout.C:
			for name := range checks {
				if _, done := out[name]; !done {
					out[name] = errors.New("no answer within " + checkTimeout.String())
				}
			}
			return out
		}
	}
	return out
}

// Listen opens the listener on addr (HOST:PORT) and serves it in the background until Shutdown.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("operations listener failed", "err", err)
		}
	}()
	s.log.Info("operations listener", "metrics", "http://"+ln.Addr().String()+"/metrics",
		"inspector", "http://"+ln.Addr().String()+"/inspector/")
	return nil
}

// Addr is the listening address, once Listen succeeded.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops the listener, letting requests in flight finish until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}
