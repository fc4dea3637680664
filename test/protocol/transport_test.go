package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// rawHTTP sends one HTTP/1.1 request over TCP and returns the status code, so that headers go out
// exactly as written (net/http would add or refuse some of them).
func rawHTTP(t *testing.T, addr, request string) (int, http.Header, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, replyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(replyTimeout))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// TestHealthProbe: the official image's healthchecker.sh request (Connection + Upgrade, no
// Sec-WebSocket-Key/Version) must get 500, a plain GET 426 (PROTOCOL.md §1, CONFIG.md §4).
func TestHealthProbe(t *testing.T) {
	s := start(t, options{})
	healthcheck := "GET /kurento HTTP/1.1\r\nHost: " + s.Addr + "\r\nUser-Agent: curl/7.81.0\r\nAccept: */*\r\n" +
		"Connection: Upgrade\r\nUpgrade: websocket\r\nOrigin: 127.0.0.1\r\n\r\n"
	if code, _, _ := rawHTTP(t, s.Addr, healthcheck); code != 500 {
		t.Fatalf("healthcheck request: HTTP %d, want 500", code)
	}
	for _, path := range []string{"/kurento", "/", "/other"} {
		resp, err := http.Get("http://" + s.Addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUpgradeRequired || len(body) != 0 {
			t.Fatalf("plain GET %s: HTTP %d %q, want 426 and no body", path, resp.StatusCode, body)
		}
	}
	// Upgrade without Connection: Upgrade is not a handshake either.
	if code, _, _ := rawHTTP(t, s.Addr, "GET /kurento HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"); code != 426 {
		t.Fatalf("Upgrade without Connection: HTTP %d, want 426", code)
	}
	// Version 13 without a key: 400 (websocketpp).
	bad := "GET /kurento HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if code, _, _ := rawHTTP(t, s.Addr, bad); code != 400 {
		t.Fatalf("handshake without key: HTTP %d, want 400", code)
	}
	// And the server still works.
	if r := dial(t, s.URL).ok("ping", nil); r["value"] != "pong" {
		t.Fatalf("ping: %v", r)
	}
}

// TestPathCheck: the handshake succeeds on any path; a path other than the configured one is closed
// with 1002 "Invalid path"; a query string is ignored.
func TestPathCheck(t *testing.T) {
	s := start(t, options{})
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	for _, path := range []string{"/other", "/", "/kurento/x", "/Kurento"} {
		ws, _, err := websocket.Dial(ctx, "ws://"+s.Addr+path, nil)
		if err != nil {
			t.Fatalf("%s: the handshake should succeed: %v", path, err)
		}
		_, _, err = ws.Read(ctx)
		var ce websocket.CloseError
		if !errorsAs(err, &ce) || ce.Code != websocket.StatusProtocolError || ce.Reason != "Invalid path" {
			t.Fatalf("%s: got %v, want close 1002 \"Invalid path\"", path, err)
		}
		ws.CloseNow()
	}
	c := dial(t, s.URL+"?access_token=abc&x=1")
	if r := c.ok("ping", nil); r["value"] != "pong" {
		t.Fatalf("ping with a query string: %v", r)
	}
}

func errorsAs(err error, ce *websocket.CloseError) bool {
	if err == nil {
		return false
	}
	c := websocket.CloseStatus(err)
	if c == -1 {
		return false
	}
	*ce = websocket.CloseError{Code: c}
	if i := strings.Index(err.Error(), "reason = "); i >= 0 {
		ce.Reason = strings.Trim(err.Error()[i+len("reason = "):], `"`)
	}
	return true
}

// TestBinaryFrames: kurento-client sends requests in binary frames; they are answered (in text).
func TestBinaryFrames(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte(`{"jsonrpc":"2.0","id":3,"method":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if m := c.reply(); string(m.Raw) != `{"id":3,"jsonrpc":"2.0","result":{"value":"pong"}}` {
		t.Fatalf("reply %s", m.Raw)
	}
}

// TestOrdering: one connection's requests run one at a time and are answered in order, a slow call
// delaying only its own connection.
func TestOrdering(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	other := dial(t, s.URL)
	p, _ := c.pipelineWith(0)
	start := time.Now()
	c.send(`{"jsonrpc":"2.0","id":100,"method":"invoke","params":{"object":"manager_ServerManager","operation":"getUsedCpu","operationParams":{"interval":300}}}`)
	const n = 50
	for i := range n {
		c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"invoke","params":{"object":"%s","operation":"addTag","operationParams":{"key":"k%02d","value":"v"}}}`, 101+i, p, i))
	}
	// Another connection is not held up by the slow call.
	other.ok("ping", nil)
	if d := time.Since(start); d > 250*time.Millisecond {
		t.Fatalf("another connection waited %v for a ping", d)
	}
	for i := range n + 1 {
		m := c.reply()
		if m.M["id"] != json.Number(fmt.Sprint(100+i)) {
			t.Fatalf("reply %d out of order: %s", i, m.Raw)
		}
		if i == 0 && time.Since(start) < 280*time.Millisecond {
			t.Fatalf("getUsedCpu(300) answered after %v", time.Since(start))
		}
	}
	// The tags were added in request order.
	tags := c.invoke(p, "getTags", nil).([]any)
	if len(tags) != n {
		t.Fatalf("%d tags", len(tags))
	}
}

// TestHalfClose: a client that ends the TCP connection without a close frame gets the server's side
// closed too (no CLOSE-WAIT; kurento-client waits for that FIN before reconnecting).
func TestHalfClose(t *testing.T) {
	s := start(t, options{})
	conn, err := net.DialTimeout("tcp", s.Addr, replyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(replyTimeout))
	io.WriteString(conn, "GET /kurento HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	conn.(*net.TCPConn).CloseWrite()
	start := time.Now()
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("the server did not close its side: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the server closed its side after %v", d)
	}
}
