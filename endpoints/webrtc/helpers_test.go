//go:build !kmsfuzz

package webrtc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// session is one in-process server, one client connected to it and one pipeline.
type session struct {
	t        testing.TB
	ctx      context.Context
	c        *client.Client
	pipeline string
	srv      *testserver.Server
}

// newSession starts a server (env as testserver.Start takes it) and gives the test a hard deadline.
func newSession(t testing.TB, timeout time.Duration, env ...string) *session {
	t.Helper()
	ss := testserver.StartSession(t, timeout, env...)
	return &session{t: t, ctx: ss.Ctx, c: ss.Client, pipeline: ss.Pipeline, srv: ss.Server}
}

// endpoint creates a WebRtcEndpoint in the session's pipeline.
func (s *session) endpoint() string {
	s.t.Helper()
	ep, err := s.c.Create(s.ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": s.pipeline})
	if err != nil {
		s.t.Fatalf("create WebRtcEndpoint: %v", err)
	}
	return ep
}

// connect links src to sink; mediaType "" connects every type.
func (s *session) connect(src, sink, mediaType string) {
	s.t.Helper()
	params := map[string]any{"sink": sink}
	if mediaType != "" {
		params["mediaType"] = mediaType
	}
	if err := s.c.Invoke(s.ctx, src, "connect", params, nil); err != nil {
		s.t.Fatalf("connect %s -> %s: %v", src, sink, err)
	}
}

// peer makes a test peer closed at the end of the test.
func (s *session) peer(opts testpeer.Options) *testpeer.Peer {
	s.t.Helper()
	p, err := testpeer.New(opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(p.Close)
	return p
}

// negotiate signals p through the existing endpoint ep and waits for DTLS.
func (s *session) negotiate(p *testpeer.Peer, ep string) {
	s.t.Helper()
	p.Endpoint = ep
	if err := p.Negotiate(s.ctx, s.c, false); err != nil {
		s.t.Fatalf("negotiate %s: %v", ep, err)
	}
	if err := p.WaitConnected(s.ctx); err != nil {
		s.t.Fatalf("%s: %v", ep, err)
	}
}

// event is one Kurento event as a test sees it.
type event struct {
	Object string
	Type   string
	Data   map[string]any
	At     time.Time
}

func (e event) str(field string) string { v, _ := e.Data[field].(string); return v }

// recorder keeps the events of the objects it subscribed to, in arrival order. It listens on a
// connection of its own: a client has one handler per object and event type, and the test peers
// subscribe to IceCandidateFound on the session's connection.
type recorder struct {
	c      *client.Client
	mu     sync.Mutex
	events []event
	notify chan struct{}
}

func (s *session) recorder() *recorder {
	s.t.Helper()
	c, err := client.Dial(s.ctx, s.srv.URL)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { c.Close() })
	return &recorder{c: c, notify: make(chan struct{}, 1)}
}

func (r *recorder) subscribe(s *session, object string, types ...string) {
	s.t.Helper()
	for _, typ := range types {
		err := r.c.Subscribe(s.ctx, object, typ, func(ev client.Event) {
			var data map[string]any
			json.Unmarshal(ev.Data, &data)
			r.mu.Lock()
			r.events = append(r.events, event{Object: ev.Object, Type: ev.Type, Data: data, At: time.Now()})
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		})
		if err != nil {
			s.t.Fatalf("subscribe %s %s: %v", object, typ, err)
		}
	}
}

// all returns the events matching f.
func (r *recorder) all(f func(event) bool) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if f == nil || f(e) {
			out = append(out, e)
		}
	}
	return out
}

// wait returns the first event matching f, waiting for it until ctx ends.
func (r *recorder) wait(ctx context.Context, what string, f func(event) bool) (event, error) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if got := r.all(f); len(got) > 0 {
			return got[0], nil
		}
		select {
		case <-ctx.Done():
			return event{}, fmt.Errorf("no %s: %w", what, ctx.Err())
		case <-r.notify:
		case <-tick.C:
		}
	}
}

func isEvent(object, typ string, fields map[string]string) func(event) bool {
	return func(e event) bool {
		if e.Object != object || e.Type != typ {
			return false
		}
		for k, v := range fields {
			if e.str(k) != v {
				return false
			}
		}
		return true
	}
}

// errorCode is the Kurento error code of err, 0 if it is not a server error.
func errorCode(err error) int {
	var e *client.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

// poll waits until cond holds or d passes.
func poll(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
