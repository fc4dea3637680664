package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/protocol"
)

// limited starts a server with the default limits changed by change.
func limited(t *testing.T, change func(*config.Limits)) (*server, *refusals) {
	t.Helper()
	ref := &refusals{}
	s := start(t, options{setup: func(reg *objects.Registry, ps *protocol.Server) {
		l := config.DefaultLimits()
		change(&l)
		ps.Limits = l
		ps.Refused = ref.add
		reg.SetLimits(objects.Limits{Sessions: l.MaxSessions, Pipelines: l.MaxPipelines, ElementsPerPipeline: l.MaxElementsPerPipeline})
		reg.SetRefused(ref.add)
	}})
	return s, ref
}

// wantLimit checks that an error is the 40009 of a limit, naming its setting.
func wantLimit(t *testing.T, what string, err *rpcErr, setting string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want 40009 naming %s", what, setting)
	}
	if err.Code != 40009 || err.Data["type"] != "NOT_ENOUGH_RESOURCES" || !strings.Contains(err.Message, setting) {
		t.Fatalf("%s: %s, want 40009 NOT_ENOUGH_RESOURCES naming %s", what, err.Raw, setting)
	}
}

// TestObjectLimits: sessions, pipelines, elements per pipeline and operations per transaction each
// answer 40009 when reached, counted, while another client keeps working.
func TestObjectLimits(t *testing.T) {
	s, ref := limited(t, func(l *config.Limits) {
		l.MaxSessions, l.MaxPipelines, l.MaxElementsPerPipeline, l.MaxTransactionRequests = 3, 2, 3, 4
	})
	a, b, c := dial(t, s.URL), dial(t, s.URL), dial(t, s.URL)
	pa, _ := a.pipelineWith(3)
	_, err := a.call("create", map[string]any{"type": "PassThrough", "constructorParams": map[string]any{"mediaPipeline": pa}})
	wantLimit(t, "4th element", err, "maxElementsPerPipeline")

	pb := b.create("MediaPipeline", nil)
	_, err = c.call("create", map[string]any{"type": "MediaPipeline"})
	wantLimit(t, "3rd pipeline", err, "maxPipelines")

	c.create("PassThrough", map[string]any{"mediaPipeline": pb}) // c's session is the 3rd
	d := dial(t, s.URL)
	_, err = d.call("describe", map[string]any{"object": pb})
	wantLimit(t, "4th session", err, "maxSessions")

	ops := []any{}
	for i := range 5 {
		ops = append(ops, map[string]any{"jsonrpc": "2.0", "id": i, "method": "describe", "params": map[string]any{"object": pb}})
	}
	_, err = b.call("transaction", map[string]any{"operations": ops})
	wantLimit(t, "transaction of 5", err, "maxTransactionRequests")
	b.ok("transaction", map[string]any{"operations": ops[:4]})

	// Others keep working; released room is usable again.
	b.create("PassThrough", map[string]any{"mediaPipeline": pb})
	a.ok("release", map[string]any{"object": pa})
	c.create("MediaPipeline", nil)
	for _, reason := range []string{"elements", "pipelines", "sessions", "transaction_requests"} {
		if ref.count(reason) == 0 {
			t.Errorf("refusal %q not counted", reason)
		}
	}
}

// TestConnectionLimits: a connection over the total or per-address limit gets a JSON-RPC 40009 and a
// 1013 close; closing one makes room.
func TestConnectionLimits(t *testing.T) {
	for _, setting := range []string{"maxConnections", "maxConnectionsPerAddress"} {
		s, ref := limited(t, func(l *config.Limits) {
			if setting == "maxConnections" {
				l.MaxConnections = 2
			} else {
				l.MaxConnectionsPerAddr = 2
			}
		})
		first := dial(t, s.URL)
		dial(t, s.URL)
		// A generous deadline: in the full suite on two loaded cores the refusal took over 5 s once.
		ctx, cancel := context.WithTimeout(context.Background(), 6*replyTimeout)
		ws, _, err := websocket.Dial(ctx, s.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, data, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("over %s: no message: %v", setting, err)
		}
		_, e := decodeReply(t, msgOf(t, data))
		wantLimit(t, "over "+setting, e, setting)
		if _, _, err := ws.Read(ctx); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
			t.Errorf("over %s: closed with %v, want 1013", setting, err)
		}
		ws.CloseNow()
		cancel()
		first.close()
		waitFor(t, replyTimeout, "a place freed", func() bool { return s.Proto.Connections() == 1 })
		dial(t, s.URL).ok("ping", nil)
		reason := map[string]string{"maxConnections": "connections", "maxConnectionsPerAddress": "connections_per_address"}[setting]
		if ref.count(reason) != 1 {
			t.Errorf("%s refusals counted: %v", setting, ref.reasons)
		}
	}
}

// msgOf decodes a frame as the harness does.
func msgOf(t *testing.T, data []byte) msg {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("undecodable %s", data)
	}
	return msg{Raw: data, M: m}
}

// TestMessageAndRateLimits: a request over the size limit and requests over the rate are answered
// with 40009 and the connection stays usable; another connection is not slowed.
func TestMessageAndRateLimits(t *testing.T) {
	s, ref := limited(t, func(l *config.Limits) { l.MaxMessageBytes, l.RequestsPerSecond = 4096, 20 })
	c := dial(t, s.URL)
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"%s"}}`, strings.Repeat("x", 8000)))
	_, err := decodeReply(t, c.reply())
	wantLimit(t, "8 kB request", err, "maxMessageSize")
	c.ok("ping", nil)

	other := dial(t, s.URL)
	limitedSeen := 0
	for range 100 {
		if _, err := c.call("ping", nil); err != nil {
			wantLimit(t, "ping flood", err, "maxRequestsPerSecond")
			limitedSeen++
		}
	}
	if limitedSeen == 0 {
		t.Fatalf("100 pings in a row: none refused at 20/s")
	}
	other.ok("ping", nil)
	if ref.count("message_size") != 1 || ref.count("request_rate") != limitedSeen {
		t.Errorf("refusals counted: %v", ref.reasons)
	}
	// The bucket refills: the flooder is served again.
	waitFor(t, replyTimeout, "the rate limit to let requests through", func() bool {
		_, err := c.call("ping", nil)
		return err == nil
	})
}

// TestIdleTimeout: with an idle timeout, a connection that sends nothing is closed; one that keeps
// sending (kurento-client pings) stays.
func TestIdleTimeout(t *testing.T) {
	s, ref := limited(t, func(l *config.Limits) { l.IdleTimeout = 700 * time.Millisecond })
	idle := dial(t, s.URL)
	busy := dial(t, s.URL)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		busy.ok("ping", nil)
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-idle.done:
	case <-time.After(replyTimeout):
		t.Fatalf("idle connection still open")
	}
	busy.ok("ping", nil)
	if ref.count("idle_timeout") != 1 {
		t.Errorf("idle closes counted: %v", ref.reasons)
	}
}

// TestClientThatDoesNotRead is issue 12's memory exhaustion: big answers (tags of 1 MB) asked for
// again and again by a client that never reads. The server closes that connection when its queued
// bytes pass the limit, and serves others meanwhile.
func TestClientThatDoesNotRead(t *testing.T) {
	s, ref := limited(t, func(l *config.Limits) { l.MaxQueuedBytes = 16 << 20 })
	c := dial(t, s.URL)
	p := c.create("MediaPipeline", nil)
	value := strings.Repeat("v", 1<<20)
	for i := range 4 {
		c.invoke(p, "addTag", map[string]any{"key": fmt.Sprint(i), "value": value})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mute, _, err := websocket.Dial(ctx, s.URL, nil) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer mute.CloseNow()
	req := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"invoke","params":{"object":"%s","operation":"getTags"}}`, p)
	sent := 0
	for ; sent < 150; sent++ {
		if err := mute.Write(ctx, websocket.MessageText, []byte(req)); err != nil {
			break // closed by the server
		}
	}
	waitFor(t, 30*time.Second, "the server to close the connection that does not read", func() bool {
		return s.Proto.Connections() == 1
	})
	// The close is counted by the connection's own goroutine as it ends, maybe just after.
	waitFor(t, 5*time.Second, "the close to be counted as queued_bytes", func() bool {
		return ref.count("queued_bytes") == 1
	})
	t.Logf("closed after %d requests of 4 MB answers", sent)
	c.ok("ping", nil)
	c.create("MediaPipeline", nil)
}

// TestReleaseBigPipeline is issue 12's release that blocked everyone: a pipeline with many children,
// each with a subscription, released while another session creates pipelines. Release is linear and
// the registry's lock is never held for the whole teardown, so the other session's creates are
// answered at once (before the fix: seconds, growing with the square of the children).
func TestReleaseBigPipeline(t *testing.T) {
	const children, batch = 20000, 1000 // children, and operations per transaction (a create and a subscribe each)
	s, _ := limited(t, func(l *config.Limits) { l.MaxElementsPerPipeline, l.MaxTransactionRequests = 0, 0 })
	a, b := dial(t, s.URL), dial(t, s.URL)
	p := a.create("MediaPipeline", nil)
	for done := 0; done < children; done += batch / 2 {
		ops := []any{}
		for i := 0; i < batch; i += 2 {
			ops = append(ops,
				map[string]any{"jsonrpc": "2.0", "id": i, "method": "create", "params": map[string]any{
					"type": "PassThrough", "constructorParams": map[string]any{"mediaPipeline": p}}},
				map[string]any{"jsonrpc": "2.0", "id": i + 1, "method": "subscribe", "params": map[string]any{
					"object": fmt.Sprintf("newref:%d", i), "type": "MediaFlowInStateChanged"}})
		}
		a.ok("transaction", map[string]any{"operations": ops})
	}
	released := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		a.ok("release", map[string]any{"object": p})
		released <- time.Since(start)
	}()
	var worst time.Duration
	for {
		start := time.Now()
		q := b.create("MediaPipeline", nil)
		worst = max(worst, time.Since(start))
		b.ok("release", map[string]any{"object": q})
		select {
		case d := <-released:
			t.Logf("release of %d children: %v; another session's create waited at most %v", children, d, worst)
			if worst > 2*time.Second {
				t.Errorf("another session's create waited %v during the release", worst)
			}
			if exists(s, p) || s.Reg.Len() != 1 {
				t.Errorf("objects left: %d", s.Reg.Len())
			}
			return
		default:
		}
	}
}
