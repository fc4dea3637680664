package tests

import (
	"regexp"
	"slices"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestSessionInjection replays kurento-client's start-up (PROTOCOL.md §8): ping, describe of the
// manager without sessionId (creates the session), create without sessionId (lands in the same
// session thanks to injection), ping without params (carries the session).
func TestSessionInjection(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	c.send(`{"jsonrpc":"2.0","id":0,"method":"ping","params":{"interval":5000}}`)
	if m := c.reply(); string(m.Raw) != `{"id":0,"jsonrpc":"2.0","result":{"value":"pong"}}` {
		t.Fatalf("first ping: %s", m.Raw)
	}
	d := c.ok("describe", map[string]any{"object": "manager_ServerManager"})
	sid, _ := d["sessionId"].(string)
	if !uuidRE.MatchString(sid) {
		t.Fatalf("sessionId %q is not a lowercase UUID", sid)
	}
	if d["type"] != "ServerManager" || d["qualifiedType"] != "kurento.ServerManager" || !slices.Equal(anyStrings(d["hierarchy"]), []string{"kurento.MediaObject"}) {
		t.Fatalf("describe manager: %v", d)
	}
	cr := c.ok("create", map[string]any{"type": "MediaPipeline", "properties": map[string]any{}})
	if cr["sessionId"] != sid {
		t.Fatalf("create without sessionId got session %v, want the connection's %s", cr["sessionId"], sid)
	}
	if p := c.ok("ping", nil); p["sessionId"] != sid || p["value"] != "pong" {
		t.Fatalf("ping after: %v", p)
	}
	info := c.invoke("manager_ServerManager", "getInfo", nil)
	if info == nil {
		t.Fatal("no info")
	}
	if got := s.Reg.Sessions(); !slices.Equal(got, []string{sid}) {
		t.Fatalf("sessions %v, want only %s", got, sid)
	}
	// An explicit other sessionId wins over the connection's and creates that session.
	o := c.ok("create", map[string]any{"type": "MediaPipeline", "sessionId": "explicit-session"})
	if o["sessionId"] != "explicit-session" || !s.Reg.HasSession("explicit-session") {
		t.Fatalf("explicit session: %v", o)
	}
	// ... and the connection now belongs to it (binding follows the last result).
	if p := c.ok("ping", nil); p["sessionId"] != "explicit-session" {
		t.Fatalf("ping after explicit session: %v", p)
	}
	// Errors carry no sessionId and do not bind.
	e := dial(t, s.URL)
	_, err := e.call("describe", map[string]any{"object": "nope"})
	if err == nil || err.Data["sessionId"] != nil {
		t.Fatalf("describe nope: %v", err)
	}
	if p := e.ok("ping", nil); p["sessionId"] != nil {
		t.Fatalf("a failed request bound the connection: %v", p)
	}
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestConnect covers §4.2: new sessions, resuming, 40007, events moving to the new socket.
func TestConnect(t *testing.T) {
	s := start(t, options{})
	a := dial(t, s.URL)
	r := a.ok("connect", nil)
	sid, _ := r["sessionId"].(string)
	serverID, _ := r["serverId"].(string)
	if !uuidRE.MatchString(sid) || !uuidRE.MatchString(serverID) || len(r) != 2 {
		t.Fatalf("connect: %v", r)
	}
	// connect does not register the session: it becomes known when it references an object (KMS).
	if s.Reg.HasSession(sid) {
		t.Fatal("connect registered the session")
	}
	p, els := a.pipelineWith(1)
	if !s.Reg.HasSession(sid) {
		t.Fatal("create did not register the session")
	}
	sub := a.ok("subscribe", map[string]any{"object": els[0], "type": "ElementConnected"})
	if sub["sessionId"] != sid || !uuidRE.MatchString(sub["value"].(string)) {
		t.Fatalf("subscribe: %v", sub)
	}

	// Another socket takes the session over: same serverId, events go there now.
	b := dial(t, s.URL)
	r2 := b.ok("connect", map[string]any{"sessionId": sid})
	if r2["sessionId"] != sid || r2["serverId"] != serverID {
		t.Fatalf("connect {sessionId}: %v", r2)
	}
	b2 := b.create("PassThrough", map[string]any{"mediaPipeline": p})
	b.invoke(els[0], "connect", map[string]any{"sink": b2, "mediaType": "AUDIO"})
	ev := b.event()
	if ev["type"] != "ElementConnected" || ev["object"] != els[0] {
		t.Fatalf("event on the new socket: %v", ev)
	}
	a.noEvent(100 * time.Millisecond)
	// The old socket lost its session: a request without sessionId there gets a new one.
	if got := a.ok("describe", map[string]any{"object": p}); got["sessionId"] == sid {
		t.Fatal("the old socket still injects the moved session")
	}

	// Unknown session: 40007, and the socket stays unbound.
	c := dial(t, s.URL)
	c.fail("connect", map[string]any{"sessionId": "3f2504e0-4f89-41d3-9a0c-0305e82c3301"}, 40007, "Invalid session")
	if p := c.ok("ping", nil); p["sessionId"] != nil {
		t.Fatalf("failed connect bound the socket: %v", p)
	}
	n := c.ok("connect", map[string]any{})["sessionId"]
	if n == sid || !uuidRE.MatchString(n.(string)) {
		t.Fatalf("connect {} after a failure: %v", n)
	}
}

// TestSubscriptions: delivery once per (session, object, type); unsubscribe; per-session delivery;
// event shape (§4.6, §5).
func TestSubscriptions(t *testing.T) {
	s := start(t, options{})
	a := dial(t, s.URL)
	p, els := a.pipelineWith(2)
	src, sink := els[0], els[1]
	sub1 := a.ok("subscribe", map[string]any{"object": src, "type": "ElementConnected"})["value"].(string)
	sub2 := a.ok("subscribe", map[string]any{"object": src, "type": "ElementConnected"})["value"].(string)
	if sub1 == sub2 {
		t.Fatal("two subscriptions, one id")
	}
	b := dial(t, s.URL)
	b.ok("subscribe", map[string]any{"object": src, "type": "ElementConnected"})

	a.invoke(src, "connect", map[string]any{"sink": sink, "mediaType": "VIDEO"})
	for _, c := range []*client{a, b} {
		ev := c.event()
		data := ev["data"].(map[string]any)
		if ev["object"] != src || ev["type"] != "ElementConnected" || data["source"] != src || data["sink"] != sink ||
			data["mediaType"] != "VIDEO" || data["sourceMediaDescription"] != "default" || data["sinkMediaDescription"] != "default" ||
			data["type"] != "ElementConnected" {
			t.Fatalf("event: %v", ev)
		}
		if ts, ok := data["timestampMillis"].(string); !ok || len(ts) < 13 {
			t.Fatalf("timestampMillis must be a string of ms: %v", data["timestampMillis"])
		}
		if tags, ok := data["tags"].([]any); !ok || len(tags) != 0 {
			t.Fatalf("tags: %v", data["tags"])
		}
		c.noEvent(100 * time.Millisecond) // once, not once per subscription
	}

	// Removing one of two subscriptions keeps delivery; removing both stops it.
	a.ok("unsubscribe", map[string]any{"object": src, "subscription": sub1})
	a.invoke(src, "connect", map[string]any{"sink": sink, "mediaType": "AUDIO"})
	a.event()
	a.noEvent(50 * time.Millisecond)
	// An unsubscribe naming another object does not remove the subscription (KMS matches both).
	a.ok("unsubscribe", map[string]any{"object": p, "subscription": sub2})
	a.invoke(src, "connect", map[string]any{"sink": sink, "mediaType": "DATA"})
	a.event()
	a.ok("unsubscribe", map[string]any{"object": src, "subscription": sub2})
	a.invoke(src, "disconnect", map[string]any{"sink": sink})
	a.invoke(src, "connect", map[string]any{"sink": sink, "mediaType": "VIDEO"})
	a.noEvent(100 * time.Millisecond)
	b.drainEvents()

	// Tags appear in events when sendTagsInEvents is set.
	b.invoke(src, "addTag", map[string]any{"key": "room", "value": "r1"})
	b.invoke(src, "setSendTagsInEvents", map[string]any{"sendTagsInEvents": true})
	b.invoke(src, "connect", map[string]any{"sink": sink, "mediaType": "AUDIO"})
	data := b.event()["data"].(map[string]any)
	tags := data["tags"].([]any)
	if len(tags) != 1 {
		t.Fatalf("tags in event: %v", data)
	}
	tag := tags[0].(map[string]any)
	if tag["__module__"] != "kurento" || tag["__type__"] != "Tag" || tag["key"] != "room" || tag["value"] != "r1" {
		t.Fatalf("tag: %v", tag)
	}
}

// TestObjectEvents: ObjectCreated / ObjectDestroyed from the ServerManager, one ObjectDestroyed per
// object of a released subtree, ElementDisconnected when an element goes (§4.3, §4.7, §5).
func TestObjectEvents(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	c.ok("subscribe", map[string]any{"object": "manager_ServerManager", "type": "ObjectCreated"})
	c.ok("subscribe", map[string]any{"object": "manager_ServerManager", "type": "ObjectDestroyed"})
	p, els := c.pipelineWith(2)
	for _, id := range append([]string{p}, els...) {
		ev := c.event()
		data := ev["data"].(map[string]any)
		if ev["type"] != "ObjectCreated" || ev["object"] != "manager_ServerManager" || data["object"] != id || data["source"] != "manager_ServerManager" {
			t.Fatalf("ObjectCreated: %v", ev)
		}
		if _, has := data["type"]; has {
			t.Fatalf("ObjectCreated data has no type field: %v", data)
		}
	}
	// Releasing one element disconnects it: its source reports ElementDisconnected.
	c.invoke(els[0], "connect", map[string]any{"sink": els[1], "mediaType": "VIDEO"})
	c.ok("subscribe", map[string]any{"object": els[0], "type": "ElementDisconnected"})
	c.ok("release", map[string]any{"object": els[1]})
	got := map[string]bool{}
	for range 2 {
		ev := c.event()
		switch ev["type"] {
		case "ElementDisconnected":
			if ev["data"].(map[string]any)["sink"] != els[1] {
				t.Fatalf("ElementDisconnected: %v", ev)
			}
		case "ObjectDestroyed":
			if ev["data"].(map[string]any)["objectId"] != els[1] {
				t.Fatalf("ObjectDestroyed: %v", ev)
			}
		}
		got[ev["type"].(string)] = true
	}
	if !got["ElementDisconnected"] || !got["ObjectDestroyed"] {
		t.Fatalf("events after releasing the sink: %v", got)
	}
	// Releasing the pipeline destroys it and what is left inside, each announced once.
	c.ok("release", map[string]any{"object": p})
	destroyed := map[string]int{}
	for range 2 {
		ev := c.event()
		if ev["type"] != "ObjectDestroyed" {
			t.Fatalf("want ObjectDestroyed: %v", ev)
		}
		destroyed[ev["data"].(map[string]any)["objectId"].(string)]++
	}
	if destroyed[p] != 1 || destroyed[els[0]] != 1 {
		t.Fatalf("destroyed %v", destroyed)
	}
	c.noEvent(100 * time.Millisecond)
	if s.Reg.Len() != 1 {
		t.Fatalf("%d objects left", s.Reg.Len())
	}
}

// TestOwnership covers ref-counting (§3, §4.9, §4.10): co-owners by describe/ref, unref, closeSession
// with and without release, and the subscriptions that go with a session.
func TestOwnership(t *testing.T) {
	s := start(t, options{})
	a := dial(t, s.URL)
	p, els := a.pipelineWith(1)
	sa := a.ok("ping", nil)["sessionId"].(string)

	// closeSession without release: objects only A holds are released.
	a.send(`{"jsonrpc":"2.0","id":50,"method":"closeSession"}`)
	if m := a.reply(); string(m.Raw) != `{"id":50,"jsonrpc":"2.0","result":null}` {
		t.Fatalf("closeSession: %s", m.Raw)
	}
	if exists(s, p) || exists(s, els[0]) {
		t.Fatal("closeSession kept objects nobody holds")
	}
	a.fail("keepAlive", map[string]any{}, 40007, "Invalid session")

	// A co-owner by describe keeps objects alive.
	a = dial(t, s.URL)
	p, els = a.pipelineWith(1)
	b := dial(t, s.URL)
	b.ok("describe", map[string]any{"object": els[0]}) // refs the element and its pipeline
	sb := b.ok("ping", nil)["sessionId"].(string)
	a.ok("closeSession", nil)
	if !exists(s, p) || !exists(s, els[0]) {
		t.Fatal("closeSession released objects another session holds")
	}
	// unref by the last owner releases; unref of unknown objects is fine.
	b.ok("unref", map[string]any{"object": p})
	if exists(s, p) || exists(s, els[0]) {
		t.Fatal("unref by the last owner kept the objects")
	}

	// ref: explicit co-ownership; closeSession release:true releases even shared objects.
	a = dial(t, s.URL)
	p, _ = a.pipelineWith(1)
	if r := b.ok("ref", map[string]any{"object": p, "sessionId": sb}); r["sessionId"] != sb {
		t.Fatalf("ref: %v", r)
	}
	a.ok("closeSession", map[string]any{"release": true})
	if exists(s, p) {
		t.Fatal("closeSession release:true kept a shared pipeline")
	}
	_ = sa

	// unref drops the session's subscriptions on the object (KMS erases its event handlers).
	a = dial(t, s.URL)
	p, els = a.pipelineWith(2)
	b.ok("subscribe", map[string]any{"object": els[0], "type": "ElementConnected"})
	b.ok("unref", map[string]any{"object": els[0]})
	a.invoke(els[0], "connect", map[string]any{"sink": els[1]})
	b.noEvent(100 * time.Millisecond)
	if !exists(s, els[0]) {
		t.Fatal("unref by a co-owner released the element")
	}
	// keepAlive of a known session.
	if r := a.ok("keepAlive", nil); r["sessionId"] == nil {
		t.Fatalf("keepAlive: %v", r)
	}
}

// TestGarbageCollector: objects live while their session's socket is open, and are released 1 to 2
// periods after it closed; connect with the old session before that resumes it; after it, 40007.
func TestGarbageCollector(t *testing.T) {
	const period = 300 * time.Millisecond
	s := start(t, options{gcPeriod: period})

	// Kept while connected, without any request.
	a := dial(t, s.URL)
	p, els := a.pipelineWith(1)
	sid := a.ok("ping", nil)["sessionId"].(string)
	time.Sleep(3 * period)
	if !exists(s, p) || !exists(s, els[0]) {
		t.Fatal("objects expired while the socket was open")
	}
	// Dropped socket: gone after 1-2 periods.
	a.close()
	dropped := time.Now()
	waitFor(t, 3*period, "the session's objects to be collected", func() bool { return !exists(s, p) })
	if d := time.Since(dropped); d < period*9/10 || d > 2*period+period/2 {
		t.Fatalf("collected %v after the drop, want between %v and %v", d, period, 2*period)
	}
	if exists(s, els[0]) || s.Reg.HasSession(sid) {
		t.Fatal("the element or the session survived")
	}
	c := dial(t, s.URL)
	c.fail("connect", map[string]any{"sessionId": sid}, 40007, "Invalid session")

	// Resuming before expiry: the objects stay, now kept by the new socket.
	a = dial(t, s.URL)
	p, _ = a.pipelineWith(0)
	sid = a.ok("ping", nil)["sessionId"].(string)
	a.close()
	time.Sleep(period / 2)
	b := dial(t, s.URL)
	if r := b.ok("connect", map[string]any{"sessionId": sid}); r["sessionId"] != sid {
		t.Fatalf("connect: %v", r)
	}
	time.Sleep(3 * period)
	if !exists(s, p) {
		t.Fatal("a resumed session expired while connected")
	}
	// A session used only through requests on someone else's socket lives while it is used.
	if got := b.invoke(p, "getName", nil); got != p {
		t.Fatalf("getName: %v", got)
	}
	// The ServerManager is never collected.
	time.Sleep(2 * period)
	if !exists(s, "manager_ServerManager") {
		t.Fatal("ServerManager collected")
	}
}

// TestResourceLimit: over exceptionLimit of the fd/thread limits, create fails with 40009.
func TestResourceLimit(t *testing.T) {
	s := start(t, options{exceptionLimit: 1e-9}) // the limit rounds down to 0 files
	c := dial(t, s.URL)
	_, err := c.call("create", map[string]any{"type": "MediaPipeline"})
	// Threads are checked first; where RLIMIT_NPROC is unlimited the files limit trips.
	if err == nil || err.Code != 40009 || err.Data["type"] != "NOT_ENOUGH_RESOURCES" ||
		(err.Message != "Reached KMS threads limit: 0" && err.Message != "Reached KMS files limit: 0") {
		t.Fatalf("create over the limit: %v", err)
	}
	// Other methods still work, and unknown factories are reported first (KMS checks after the lookup).
	c.fail("create", map[string]any{"type": "Nope"}, 40108, "Factory 'Nope' not found")
	c.ok("describe", map[string]any{"object": "manager_ServerManager"})

	ok := start(t, options{exceptionLimit: 0.8})
	dial(t, ok.URL).pipelineWith(1)
}
