// Package tests checks the Kurento Protocol server against PROTOCOL.md over real WebSockets: in-process
// servers (httptest + the real object registry) for the protocol, sessions and object model, and the
// built binary for start-up, configuration and signals.
package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/protocol"
)

// replyTimeout bounds every wait for a reply or an event.
const replyTimeout = 5 * time.Second

var schema = api.MustLoad()

// server is an in-process Kurento server on a loopback port.
type server struct {
	URL   string // ws://127.0.0.1:PORT/kurento
	Addr  string // 127.0.0.1:PORT
	Reg   *objects.Registry
	Proto *protocol.Server
}

type options struct {
	gcPeriod       time.Duration // 0 = KMS's 240 s
	exceptionLimit float64       // 0 = no resource check
	// setup, when set, changes the registry and the protocol server (limits, access control)
	// before they serve.
	setup func(*objects.Registry, *protocol.Server)
}

// start runs a server with the core classes only (MediaPipeline, PassThrough, ServerManager), as the
// binary wires them, and stops it when the test ends.
func start(t testing.TB, o options) *server {
	t.Helper()
	if o.gcPeriod == 0 {
		o.gcPeriod = 240 * time.Second
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := objects.NewRegistry(schema, objects.ServerManagerInfo{Started: time.Now()}, log)
	reg.SetExceptionLimit(o.exceptionLimit)
	ps := protocol.NewServer(reg, "kurento", o.gcPeriod, log)
	reg.SetNotifier(ps)
	if o.setup != nil {
		o.setup(reg, ps)
	}
	ps.Start()
	hs := httptest.NewServer(ps)
	t.Cleanup(func() {
		ps.Close()
		hs.Close()
		reg.ReleaseAll()
	})
	addr := strings.TrimPrefix(hs.URL, "http://")
	return &server{URL: "ws://" + addr + "/kurento", Addr: addr, Reg: reg, Proto: ps}
}

// msg is one frame received from the server, decoded, with its raw text.
type msg struct {
	Raw []byte
	M   map[string]any
}

// rpcErr is the error member of a reply.
type rpcErr struct {
	Code    int
	Message string
	Data    map[string]any
	Raw     string
}

func (e *rpcErr) Error() string { return e.Raw }

// client is a raw JSON-RPC connection to the server.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	replies chan msg
	events  chan msg
	done    chan struct{}
	closed  sync.Once

	mu     sync.Mutex
	nextID int
}

func dial(t testing.TB, url string) *client {
	t.Helper()
	return dialWith(t, url, nil)
}

// dialWith is dial with options (headers, say).
func dialWith(t testing.TB, url string, opts *websocket.DialOptions) *client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	ws.SetReadLimit(64 << 20)
	c := &client{t: t, ws: ws, replies: make(chan msg, 1024), events: make(chan msg, 16384), done: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(c.close)
	return c
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			return
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			m = map[string]any{"undecodable": string(data)}
		}
		if m["method"] == "onEvent" {
			select {
			case c.events <- msg{data, m}:
			default: // a test that does not read its events must not block the connection
			}
			continue
		}
		c.replies <- msg{data, m}
	}
}

// close drops the connection abruptly, as a network failure would.
func (c *client) close() {
	c.closed.Do(func() {
		c.ws.CloseNow()
		<-c.done
	})
}

func (c *client) send(raw string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(raw)); err != nil {
		c.t.Fatalf("send %s: %v", raw, err)
	}
}

// reply waits for the next reply (not an event).
func (c *client) reply() msg {
	c.t.Helper()
	select {
	case m := <-c.replies:
		return m
	case <-c.done:
		c.t.Fatalf("connection closed while waiting for a reply")
	case <-time.After(replyTimeout):
		c.t.Fatalf("no reply within %v", replyTimeout)
	}
	return msg{}
}

// event waits for the next onEvent notification and returns params.value.
func (c *client) event() map[string]any {
	c.t.Helper()
	select {
	case m := <-c.events:
		return m.M["params"].(map[string]any)["value"].(map[string]any)
	case <-time.After(replyTimeout):
		c.t.Fatalf("no event within %v", replyTimeout)
	}
	return nil
}

// noEvent checks that no notification arrives for a while.
func (c *client) noEvent(wait time.Duration) {
	c.t.Helper()
	select {
	case m := <-c.events:
		c.t.Fatalf("unexpected event %s", m.Raw)
	case <-time.After(wait):
	}
}

func (c *client) drainEvents() {
	for {
		select {
		case <-c.events:
		default:
			return
		}
	}
}

// call sends a request with a fresh id and returns its result, or its error.
func (c *client) call(method string, params map[string]any) (map[string]any, *rpcErr) {
	c.t.Helper()
	c.mu.Lock()
	id := c.nextID
	c.nextID++
	c.mu.Unlock()
	req := map[string]any{"jsonrpc": "2.0", "id": id, "method": method}
	if params != nil {
		req["params"] = params
	}
	b, _ := json.Marshal(req)
	c.send(string(b))
	m := c.reply()
	if got := fmt.Sprint(m.M["id"]); got != fmt.Sprint(id) {
		c.t.Fatalf("%s: reply id %s, want %d: %s", method, got, id, m.Raw)
	}
	return decodeReply(c.t, m)
}

func decodeReply(t testing.TB, m msg) (map[string]any, *rpcErr) {
	t.Helper()
	_, hasResult := m.M["result"]
	e, hasError := m.M["error"]
	if hasResult == hasError {
		t.Fatalf("reply must have exactly one of result/error: %s", m.Raw)
	}
	if m.M["jsonrpc"] != "2.0" {
		t.Fatalf("reply without jsonrpc 2.0: %s", m.Raw)
	}
	if hasError {
		em := e.(map[string]any)
		code, _ := em["code"].(json.Number).Int64()
		re := &rpcErr{Code: int(code), Raw: string(m.Raw)}
		re.Message, _ = em["message"].(string)
		re.Data, _ = em["data"].(map[string]any)
		return nil, re
	}
	r, _ := m.M["result"].(map[string]any)
	return r, nil
}

// ok is call that must succeed.
func (c *client) ok(method string, params map[string]any) map[string]any {
	c.t.Helper()
	r, err := c.call(method, params)
	if err != nil {
		c.t.Fatalf("%s %v: %s", method, params, err.Raw)
	}
	return r
}

// fail is call that must fail with the code and message.
func (c *client) fail(method string, params map[string]any, code int, message string) *rpcErr {
	c.t.Helper()
	r, err := c.call(method, params)
	if err == nil {
		c.t.Fatalf("%s %v: succeeded (%v), want error %d %q", method, params, r, code, message)
	}
	if err.Code != code || err.Message != message {
		c.t.Fatalf("%s %v: got %d %q, want %d %q", method, params, err.Code, err.Message, code, message)
	}
	return err
}

func (c *client) create(typ string, ctor map[string]any) string {
	c.t.Helper()
	p := map[string]any{"type": typ, "properties": map[string]any{}}
	if ctor != nil {
		p["constructorParams"] = ctor
	}
	return c.ok("create", p)["value"].(string)
}

func (c *client) invoke(obj, op string, params map[string]any) any {
	c.t.Helper()
	p := map[string]any{"object": obj, "operation": op}
	if params != nil {
		p["operationParams"] = params
	}
	return c.ok("invoke", p)["value"]
}

// pipelineWith creates a pipeline and n PassThroughs in it.
func (c *client) pipelineWith(n int) (string, []string) {
	c.t.Helper()
	p := c.create("MediaPipeline", nil)
	var els []string
	for range n {
		els = append(els, c.create("PassThrough", map[string]any{"mediaPipeline": p}))
	}
	return p, els
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func exists(s *server, id string) bool {
	_, err := s.Reg.Get(id)
	return err == nil
}
