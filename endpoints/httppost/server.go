// Package httppost is the media side of HttpPostEndpoint: media uploaded with an HTTP POST to the
// endpoint's URL on the embedded HTTP server is decoded and played into the element's source pads,
// like a PlayerEndpoint plays a file (see endpoints/player).
package httppost

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kurento-go/kms/config"
)

// Server is the embedded HTTP server of the HttpEndpoints: one per listening address in the process,
// started by the first endpoint that needs it and kept until the process ends (as KMS's).
type Server struct {
	ln        net.Listener
	srv       *http.Server
	announced string // host of the URLs handed out
	port      int

	mu       sync.RWMutex
	handlers map[string]http.Handler
}

var (
	serversMu sync.Mutex
	servers   = map[string]*Server{}
)

// Shared returns the server for the configuration, starting it on first use. Port 0 listens on any
// free port (tests); the URLs carry the port actually bound.
func Shared(cfg config.HttpEndpoint) (*Server, error) {
	addr := net.JoinHostPort(cfg.ServerAddress, strconv.Itoa(cfg.Port))
	serversMu.Lock()
	defer serversMu.Unlock()
	if s := servers[addr]; s != nil {
		return s, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, handlers: map[string]http.Handler{},
		announced: announcedHost(cfg)}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	servers[addr] = s
	return s, nil
}

// announcedHost is the host of the URLs: announcedAddress, else a specific serverAddress, else the
// first non-loopback IPv4 address of the machine (loopback when there is none).
func announcedHost(cfg config.HttpEndpoint) string {
	if cfg.AnnouncedAddress != "" {
		return cfg.AnnouncedAddress
	}
	if ip := net.ParseIP(cfg.ServerAddress); cfg.ServerAddress != "" && (ip == nil || !ip.IsUnspecified()) {
		return cfg.ServerAddress
	}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
}

// Register serves h at a new random path; the returned function removes it.
func (s *Server) Register(h http.Handler) (path string, unregister func()) {
	path = uuid.NewString()
	s.mu.Lock()
	s.handlers[path] = h
	s.mu.Unlock()
	return path, func() {
		s.mu.Lock()
		delete(s.handlers, path)
		s.mu.Unlock()
	}
}

// URL is the address of a registered path as the clients must use it.
func (s *Server) URL(path string) string {
	return "http://" + net.JoinHostPort(s.announced, strconv.Itoa(s.port)) + "/" + path
}

// ServeHTTP dispatches a request to the endpoint that owns its path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.handlers[strings.Trim(r.URL.Path, "/")]
	s.mu.RUnlock()
	if h == nil {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// ErrBusy is the answer to a POST while another upload to the same endpoint is running.
var ErrBusy = errors.New("httppost: an upload is already running")
