package elements_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// participant is one member of a group call built as the Kurento group-call tutorial builds it: one
// outgoing WebRtcEndpoint it publishes to, and one incoming endpoint per other participant.
type participant struct {
	name     string
	out      *testpeer.Peer
	incoming map[string]*testpeer.Peer // by publisher name
}

type room struct {
	t        *testing.T
	ctx      context.Context
	c        *client.Client
	pipeline string
	members  map[string]*participant
}

func (r *room) join(name string) {
	p := &participant{name: name, incoming: map[string]*testpeer.Peer{}}
	out, err := testpeer.New(testpeer.Options{Send: true})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := out.Connect(r.ctx, r.c, r.pipeline, false); err != nil {
		r.t.Fatal(err)
	}
	out.StartMedia()
	p.out = out
	for _, other := range r.members {
		r.subscribe(p, other)
		r.subscribe(other, p)
	}
	r.members[name] = p
}

// subscribe makes viewer receive publisher's media through a new incoming endpoint.
func (r *room) subscribe(viewer, publisher *participant) {
	in, err := testpeer.New(testpeer.Options{Receive: true})
	if err != nil {
		r.t.Fatal(err)
	}
	ep, err := r.c.Create(r.ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": r.pipeline})
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.c.Invoke(r.ctx, publisher.out.Endpoint, "connect", map[string]any{"sink": ep}, nil); err != nil {
		r.t.Fatal(err)
	}
	in.Endpoint = ep
	if err := in.Negotiate(r.ctx, r.c, false); err != nil {
		r.t.Fatal(err)
	}
	viewer.incoming[publisher.name] = in
}

func (r *room) leave(name string) {
	p := r.members[name]
	delete(r.members, name)
	release := func(peer *testpeer.Peer) {
		if err := r.c.Release(r.ctx, peer.Endpoint); err != nil {
			r.t.Fatal(err)
		}
		peer.Close()
	}
	for _, in := range p.incoming {
		release(in)
	}
	for _, other := range r.members {
		release(other.incoming[name])
		delete(other.incoming, name)
	}
	release(p.out)
}

// everyoneSeesEveryone waits until each participant receives video from each other present one.
func (r *room) everyoneSeesEveryone(within time.Duration) error {
	ctx, cancel := context.WithTimeout(r.ctx, within)
	defer cancel()
	for _, viewer := range r.members {
		for name, in := range viewer.incoming {
			if err := in.WaitVideo(ctx); err != nil {
				return fmt.Errorf("%s does not see %s: %w", viewer.name, name, err)
			}
		}
	}
	return nil
}

func openFiles() int {
	entries, _ := os.ReadDir("/proc/self/fd")
	return len(entries)
}

func TestGroupCallJoinAndLeave(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := testserver.Start(t)
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pipeline, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The ICE-TCP listener is opened by the first endpoint that negotiates and stays: open it before
	// counting.
	warm, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	var offer string
	if err := c.Invoke(ctx, warm, "generateOffer", nil, &offer); err != nil {
		t.Fatal(err)
	}
	if err := c.Release(ctx, warm); err != nil {
		t.Fatal(err)
	}
	goroutines, files := runtime.NumGoroutine(), openFiles()
	r := &room{t: t, ctx: ctx, c: c, pipeline: pipeline, members: map[string]*participant{}}
	for _, name := range []string{"ann", "bob", "cid"} {
		r.join(name)
	}
	if err := r.everyoneSeesEveryone(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	r.leave("bob")
	r.join("dee")
	start := time.Now()
	if err := r.everyoneSeesEveryone(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("late joiner seen by all and sees all in %v", time.Since(start))
	r.join("eve")
	if err := r.everyoneSeesEveryone(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ann", "cid", "dee", "eve"} {
		r.leave(name)
	}
	if n := srv.Registry.Len(); n != 2 { // the ServerManager and the pipeline
		t.Errorf("%d objects left after everyone left, want 2", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g, f := runtime.NumGoroutine(), openFiles()
		if g <= goroutines+2 && f <= files {
			t.Logf("goroutines %d -> %d, open files %d -> %d", goroutines, g, files, f)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("leak after everyone left: goroutines %d -> %d, open files %d -> %d\n%s",
				goroutines, g, files, f, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
