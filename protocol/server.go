// Package protocol is the Kurento Protocol transport: JSON-RPC 2.0 over WebSocket, KMS's session rules
// (injection, binding, garbage collection), transactions and event delivery. It knows nothing about
// media; it drives a Backend.
package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
)

// Server serves the Kurento Protocol on HTTP connections that upgrade to WebSocket.
type Server struct {
	// Path is the WebSocket path without its leading slash ("kurento").
	Path string
	// GCPeriod is the garbage collector period; sessions without a connection expire after 1 to 2 periods.
	GCPeriod time.Duration
	Log      *slog.Logger
	// OnRequest, when set (before serving), is told of every answered request: its method ("" when
	// unreadable), its JSON-RPC error code (0 on success) and how long it took. For metrics.
	OnRequest func(method string, code int, took time.Duration)

	dispatcher dispatcher

	mu       sync.Mutex
	bound    map[string]*conn // session id -> its current connection
	conns    map[*conn]struct{}
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
	dropped  atomic.Int64
	gcTicker *time.Ticker
}

// NewServer makes a server over a backend.
func NewServer(backend Backend, path string, gcPeriod time.Duration, log *slog.Logger) *Server {
	return &Server{
		Path:       path,
		GCPeriod:   gcPeriod,
		Log:        log,
		dispatcher: dispatcher{backend: backend, serverID: uuid.NewString()},
		bound:      map[string]*conn{},
		conns:      map[*conn]struct{}{},
		done:       make(chan struct{}),
	}
}

// Start runs the session garbage collector until Close. As in KMS, the collector runs every period
// and the transport marks the sessions that have a live connection every period/4, so that objects
// live while their session's socket is open and 1 to 2 periods after it closed.
func (s *Server) Start() {
	tick := s.GCPeriod / 4
	if tick <= 0 {
		tick = time.Second
	}
	s.gcTicker = time.NewTicker(tick)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		n := 0
		for {
			select {
			case <-s.done:
				return
			case <-s.gcTicker.C:
				// Collect before marking: a session whose socket was open at the previous pass got
				// marked then, so it survives this pass and expires at the next one.
				if n++; n%4 == 0 {
					s.dispatcher.backend.CollectGarbage()
				}
				s.keepConnectedAlive()
			}
		}
	}()
}

// keepConnectedAlive marks every session that has a live connection in use.
func (s *Server) keepConnectedAlive() {
	s.mu.Lock()
	sids := make([]string, 0, len(s.bound))
	for sid := range s.bound {
		sids = append(sids, sid)
	}
	s.mu.Unlock()
	for _, sid := range sids {
		_ = s.dispatcher.backend.KeepAlive(sid) // sessions not known yet are fine
	}
}

// Connections is the number of open WebSocket connections. It takes the server's lock, so it also
// tells that the server is not stuck.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close closes every connection and stops the collector.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	if s.gcTicker != nil {
		s.gcTicker.Stop()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	// A request being handled (the release that made the process stop, say) is answered first.
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case c.busy <- struct{}{}: // no request in flight, and none starts
			case <-time.After(shutdownGrace):
			}
			c.shutdown()
		}()
	}
	wg.Wait()
	s.wg.Wait()
}

// shutdownGrace bounds how long Close waits for a request in flight.
const shutdownGrace = 2 * time.Second

// ServeHTTP answers like KMS's websocketpp endpoint: 426 for plain HTTP, 500 for the Docker health
// check's incomplete handshake, otherwise a WebSocket on any path that is closed with 1002 when the
// path is not the configured one.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !headerHas(r.Header, "Upgrade", "websocket") || !headerHas(r.Header, "Connection", "upgrade") {
		// websocketpp without an HTTP handler: not a WebSocket handshake.
		w.Header().Set("Upgrade", "websocket")
		w.WriteHeader(http.StatusUpgradeRequired)
		return
	}
	if r.Header.Get("Sec-WebSocket-Version") == "" {
		// websocketpp takes a handshake without a version for the hixie-76 draft and fails it with 500;
		// the official image's healthchecker.sh relies on exactly that status.
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has written the HTTP error
	}
	// KMS compares the raw resource, one leading '/' and the query string removed.
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	if path != s.Path {
		ws.Close(websocket.StatusProtocolError, "Invalid path")
		return
	}
	c := &conn{server: s, ws: ws, out: make(chan []byte, sendQueue), closing: make(chan struct{}), busy: make(chan struct{}, 1)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	c.serve(r.Context())
	s.mu.Lock()
	delete(s.conns, c)
	for sid, bc := range s.bound {
		if bc == c {
			delete(s.bound, sid)
		}
	}
	s.mu.Unlock()
}

func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, part := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// bind makes c the connection of the session, so that the session's events go there. A session has at
// most one connection (the latest) and a connection one session. A new binding marks the session in
// use, as KMS's transport does.
func (s *Server) bind(sid string, c *conn) {
	s.mu.Lock()
	if prev := c.currentSession(); prev != "" && s.bound[prev] == c {
		delete(s.bound, prev)
	}
	if old := s.bound[sid]; old != nil && old != c {
		old.setSession("")
	}
	s.bound[sid] = c
	c.setSession(sid)
	s.mu.Unlock()
	_ = s.dispatcher.backend.KeepAlive(sid) // a session not known yet is fine
}

// Notify sends an event to the session's connection, if it has one. Events of sessions without a
// connection are dropped, as in KMS. It never blocks: a connection too slow to take events loses them.
func (s *Server) Notify(sid string, msg []byte) {
	s.mu.Lock()
	c := s.bound[sid]
	s.mu.Unlock()
	if c == nil {
		return
	}
	select {
	case c.out <- msg:
	default:
		if s.dropped.Add(1)%100 == 1 {
			s.Log.Warn("connection too slow, dropping events", "session", sid, "dropped", s.dropped.Load())
		}
	}
}

// sendQueue bounds what one connection may have waiting to be written.
const sendQueue = 1024

// writeTimeout bounds one frame write, so that a stuck peer cannot hold its connection forever.
const writeTimeout = 10 * time.Second

// maxMessage bounds one request; SDPs and transactions stay far below it.
const maxMessage = 16 << 20

// conn is one WebSocket connection. Its requests are executed one at a time, in order: the next frame
// is read only when the previous request has been answered.
type conn struct {
	server    *Server
	ws        *websocket.Conn
	out       chan []byte
	closing   chan struct{} // closed by shutdown
	closeOnce sync.Once
	busy      chan struct{} // holds a token while a request is handled and its answer queued

	mu      sync.Mutex
	session string
}

func (c *conn) setSession(sid string) {
	c.mu.Lock()
	c.session = sid
	c.mu.Unlock()
}

func (c *conn) currentSession() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session
}

func (c *conn) serve(ctx context.Context) {
	// However the connection ends (a FIN without a close frame, say), close our side too, so that no
	// socket stays in CLOSE-WAIT: kurento-client waits for that before it reconnects.
	defer c.ws.CloseNow()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ws.SetReadLimit(maxMessage)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer cancel() // a failed write ends the connection, unblocking the reader
		c.writeLoop(ctx)
	}()
	defer func() { <-writerDone }()
	defer cancel()
	for {
		// Binary frames are requests too: websocketpp hands any payload to the handler, and
		// kurento-client's websocket-stream sends binary frames.
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			if !isNormalClose(err) {
				c.server.Log.Debug("connection closed", "err", err)
			}
			return
		}
		select {
		case c.busy <- struct{}{}:
		case <-ctx.Done():
			return
		}
		resp := c.handle(data)
		if resp != nil {
			select {
			case c.out <- resp:
			case <-ctx.Done():
				return
			}
		}
		<-c.busy
	}
}

func isNormalClose(err error) bool {
	s := websocket.CloseStatus(err)
	return s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway || errors.Is(err, context.Canceled)
}

// shutdown makes the writer send what is queued (the events of the final release, say), then close
// the connection with 1001 Going Away.
func (c *conn) shutdown() { c.closeOnce.Do(func() { close(c.closing) }) }

func (c *conn) writeLoop(ctx context.Context) {
	write := func(msg []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		if err := c.ws.Write(wctx, websocket.MessageText, msg); err != nil {
			c.ws.CloseNow()
			return false
		}
		return true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.closing:
			for {
				select {
				case msg := <-c.out:
					if !write(msg) {
						return
					}
					continue
				default:
				}
				break
			}
			c.ws.Close(websocket.StatusGoingAway, "server shutting down")
			return
		case msg := <-c.out:
			if !write(msg) {
				return
			}
		}
	}
}

// handle executes one request and returns the encoded response, binding the connection to the
// session the response names.
func (c *conn) handle(data []byte) []byte {
	log := c.server.Log
	var resp object
	start := time.Now()
	msg, err := decode(data)
	if err != nil {
		log.Debug("unparseable request", "err", err)
		resp = object{"jsonrpc": "2.0", "id": nil, "error": object{"code": -32700, "message": "Parse error."}}
	} else if _, isBatch := msg.([]any); isBatch {
		resp = errorResponse(nil, invalidRequest)
	} else {
		resp, _ = c.server.dispatcher.process(msg, c.currentSession())
	}
	if c.server.OnRequest != nil {
		c.server.OnRequest(methodOf(msg), codeOf(resp), time.Since(start))
	}
	if resp == nil {
		return nil
	}
	if result, ok := resp["result"].(object); ok {
		if sid, ok := result["sessionId"].(string); ok && sid != "" && sid != c.currentSession() {
			c.server.bind(sid, c)
		}
	}
	out, err := json.Marshal(resp)
	if err != nil {
		log.Error("cannot encode response", "err", err)
		out, _ = json.Marshal(errorResponse(resp["id"], err))
	}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		log.Debug("request", "in", string(data), "out", string(out))
	}
	return out
}

// methodOf is the method a decoded request names, "" when none.
func methodOf(msg any) string {
	if req, ok := msg.(object); ok {
		m, _ := req["method"].(string)
		return m
	}
	return ""
}

// codeOf is the error code of a response, 0 when it is a success or there is none.
func codeOf(resp object) int {
	if e, ok := resp["error"].(object); ok {
		if code, ok := e["code"].(int); ok {
			return code
		}
	}
	return 0
}
