// Package protocol is the Kurento Protocol transport: JSON-RPC 2.0 over WebSocket, KMS's session rules
// (injection, binding, garbage collection), transactions and event delivery. It knows nothing about
// media; it drives a Backend.
package protocol

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"
	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/kerr"
	"golang.org/x/time/rate"
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
	// Limits bound the connections and what each may send or make the server hold; set before serving.
	Limits config.Limits
	// Verifier, when set, turns access control on: the upgrade needs a valid token.
	Verifier *auth.Verifier
	// Refused, when set, is told the reason of each refusal by a limit or access rule (for metrics).
	Refused func(reason string)

	dispatcher dispatcher

	mu       sync.Mutex
	bound    map[string]*conn // session id -> its current connection
	conns    map[*conn]struct{}
	perAddr  map[string]int // open connections by source address
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup
	dropped  atomic.Int64
	gcTicker *time.Ticker
}

// NewServer makes a server over a backend.
func NewServer(backend Backend, path string, gcPeriod time.Duration, log *slog.Logger) *Server {
	s := &Server{
		Path:     path,
		GCPeriod: gcPeriod,
		Log:      log,
		Limits:   config.DefaultLimits(),
		bound:    map[string]*conn{},
		conns:    map[*conn]struct{}{},
		perAddr:  map[string]int{},
		done:     make(chan struct{}),
	}
	s.dispatcher = dispatcher{backend: backend, serverID: uuid.NewString(), limits: &s.Limits, refused: s.refuse}
	return s
}

func (s *Server) refuse(reason string) {
	if s.Refused != nil {
		s.Refused(reason)
	}
}

// limitError is the answer to a request refused by a limit: KMS's 40009 NOT_ENOUGH_RESOURCES.
func limitError(format string, args ...any) error {
	return kerr.New(kerr.NotEnoughResources, format, args...)
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
	var claims *auth.Claims
	if s.Verifier != nil {
		c, err := s.Verifier.Check(r)
		if err != nil {
			s.refuse("auth_" + auth.Reason(err))
			auth.Unauthorized(w, err)
			return
		}
		claims = c
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
	c := &conn{server: s, ws: ws, out: make(chan []byte, sendQueue), closing: make(chan struct{}),
		busy: make(chan struct{}, 1), claims: claims}
	if n := s.Limits.RequestsPerSecond; n > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(n), 2*n)
	}
	addr := sourceAddress(r)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.Close(websocket.StatusGoingAway, "server shutting down")
		return
	}
	if err := s.admitConnection(addr); err != nil {
		s.mu.Unlock()
		refuseConnection(ws, err)
		return
	}
	s.conns[c] = struct{}{}
	s.perAddr[addr]++
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	c.serve(r.Context())
	s.mu.Lock()
	delete(s.conns, c)
	if s.perAddr[addr]--; s.perAddr[addr] <= 0 {
		delete(s.perAddr, addr)
	}
	for sid, bc := range s.bound {
		if bc == c {
			delete(s.bound, sid)
		}
	}
	s.mu.Unlock()
}

// admitConnection applies the connection limits; the caller holds s.mu.
func (s *Server) admitConnection(addr string) error {
	if max := s.Limits.MaxConnections; max > 0 && len(s.conns) >= max {
		s.refuse("connections")
		return limitError("Too many connections: the server takes at most %d (mediaServer.limits.maxConnections)", max)
	}
	if max := s.Limits.MaxConnectionsPerAddr; max > 0 && s.perAddr[addr] >= max {
		s.refuse("connections_per_address")
		return limitError("Too many connections from %s: at most %d (mediaServer.limits.maxConnectionsPerAddress)", addr, max)
	}
	return nil
}

// refuseConnection tells a client over a limit why, as a JSON-RPC error, and closes with 1013 Try
// Again Later.
func refuseConnection(ws *websocket.Conn, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if msg, e := json.Marshal(errorResponse(nil, err)); e == nil {
		ws.Write(ctx, websocket.MessageText, msg)
	}
	ws.Close(websocket.StatusTryAgainLater, "too many connections")
}

// sourceAddress is the client's IP address, without the port.
func sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
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
	if !c.reserve(len(msg)) {
		return
	}
	select {
	case c.out <- msg:
	default:
		c.queued.Add(-int64(len(msg)))
		if s.dropped.Add(1)%100 == 1 {
			s.Log.Warn("connection too slow, dropping events", "session", sid, "dropped", s.dropped.Load())
		}
	}
}

// sendQueue bounds the number of messages one connection may have waiting to be written; Limits'
// MaxQueuedBytes bounds their size.
const sendQueue = 1024

// writeTimeout bounds one frame write, so that a stuck peer cannot hold its connection forever.
const writeTimeout = 10 * time.Second

// tooBigFactor: a request this many times over the size limit is not even read to its end; the
// connection is closed (1009) instead of answered.
const tooBigFactor = 4

// conn is one WebSocket connection. Its requests are executed one at a time, in order: the next frame
// is read only when the previous request has been answered.
type conn struct {
	server    *Server
	ws        *websocket.Conn
	out       chan []byte
	closing   chan struct{} // closed by shutdown
	closeOnce sync.Once
	busy      chan struct{} // holds a token while a request is handled and its answer queued
	claims    *auth.Claims  // the token's, nil when access control is off
	limiter   *rate.Limiter // requests per second; nil = no limit
	queued    atomic.Int64  // bytes in out

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
	c.ws.SetReadLimit(int64(c.server.Limits.MaxMessageBytes) * tooBigFactor)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		defer cancel() // a failed write ends the connection, unblocking the reader
		c.writeLoop(ctx)
	}()
	defer func() { <-writerDone }()
	defer cancel()
	for {
		data, err := c.read(ctx)
		var resp []byte
		switch {
		case errors.Is(err, errTooBig):
			max := c.server.Limits.MaxMessageBytes
			c.server.refuse("message_size")
			resp, _ = json.Marshal(errorResponse(nil, limitError(
				"Request too large: more than %d bytes (mediaServer.limits.maxMessageSize)", max)))
		case err != nil:
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
		if resp == nil {
			resp = c.handle(data)
		}
		if resp != nil {
			if !c.reserve(len(resp)) {
				return
			}
			select {
			case c.out <- resp:
			case <-ctx.Done():
				return
			}
		}
		<-c.busy
	}
}

var errTooBig = errors.New("request over the size limit")

// read reads one request, up to the size limit; a larger one is read away and reported as errTooBig.
// With an idle timeout, a connection that sends nothing for that long is closed.
func (c *conn) read(ctx context.Context) ([]byte, error) {
	if idle := c.server.Limits.IdleTimeout; idle > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, idle)
		defer cancel()
	}
	// Binary frames are requests too: websocketpp hands any payload to the handler, and
	// kurento-client's websocket-stream sends binary frames.
	_, r, err := c.ws.Reader(ctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			c.server.refuse("idle_timeout")
		}
		return nil, err
	}
	max := c.server.Limits.MaxMessageBytes
	data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > max {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return nil, err
		}
		return nil, errTooBig
	}
	return data, nil
}

// reserve counts a message into the connection's queued bytes; over the limit, the connection (a
// client that does not read) is closed instead, and the server keeps its memory.
func (c *conn) reserve(n int) bool {
	max := int64(c.server.Limits.MaxQueuedBytes)
	if max <= 0 || c.queued.Add(int64(n)) <= max {
		return true
	}
	c.queued.Add(-int64(n))
	c.server.refuse("queued_bytes")
	c.server.Log.Warn("closing a connection that does not read its answers", "queuedBytes", c.queued.Load(), "limit", max)
	c.ws.CloseNow()
	return false
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
		defer c.queued.Add(-int64(len(msg)))
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
	} else if c.limiter != nil && !c.limiter.Allow() {
		c.server.refuse("request_rate")
		resp = errorResponse(requestID(msg), limitError(
			"Too many requests: at most %d per second (mediaServer.limits.maxRequestsPerSecond)", c.server.Limits.RequestsPerSecond))
	} else {
		resp, _ = c.server.dispatcher.process(msg, c.currentSession(), c.claims)
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

// requestID is the id of a request, for an answer given without processing it.
func requestID(msg any) any {
	if req, ok := msg.(object); ok {
		switch id := req["id"].(type) {
		case object, []any:
		default:
			return id
		}
	}
	return nil
}
