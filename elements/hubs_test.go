package elements_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// hubSetup is a pipeline with a hub, and peers whose endpoints are wired to ports of it.
type hubSetup struct {
	t        *testing.T
	ctx      context.Context
	c        *client.Client
	pipeline string
	hub      string
}

func newHubSetup(t *testing.T, ctx context.Context, hubType string) *hubSetup {
	srv := testserver.Start(t)
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	h := &hubSetup{t: t, ctx: ctx, c: c}
	if h.pipeline, err = c.Create(ctx, "MediaPipeline", nil); err != nil {
		t.Fatal(err)
	}
	if h.hub, err = c.Create(ctx, hubType, map[string]any{"mediaPipeline": h.pipeline}); err != nil {
		t.Fatal(err)
	}
	return h
}

// peer makes a peer whose endpoint sends into a new port and receives what the hub routes to it.
func (h *hubSetup) peer(send bool) (*testpeer.Peer, string) {
	t, ctx, c := h.t, h.ctx, h.c
	p, err := testpeer.New(testpeer.Options{Send: send, Receive: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": h.pipeline})
	if err != nil {
		t.Fatal(err)
	}
	port, err := c.Create(ctx, "HubPort", map[string]any{"hub": h.hub})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{ep, port}, {port, ep}} {
		if err := c.Invoke(ctx, pair[0], "connect", map[string]any{"sink": pair[1]}, nil); err != nil {
			t.Fatal(err)
		}
	}
	p.Endpoint = ep
	if err := p.Negotiate(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	if send {
		p.StartMedia()
	}
	return p, port
}

func TestDispatcherOneToManyBroadcastsTheSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := newHubSetup(t, ctx, "DispatcherOneToMany")
	presenter, presenterPort := h.peer(true)
	viewer1, _ := h.peer(false)
	if err := h.c.Invoke(ctx, h.hub, "setSource", map[string]any{"source": presenterPort}, nil); err != nil {
		t.Fatal(err)
	}
	viewer2, _ := h.peer(false) // joins after setSource
	for i, v := range []*testpeer.Peer{viewer1, viewer2, presenter} {
		if err := v.WaitVideo(ctx); err != nil {
			t.Fatalf("peer %d: %v", i, err)
		}
	}
	if err := h.c.Invoke(ctx, h.hub, "removeSource", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	before := viewer1.VideoPackets.Load()
	time.Sleep(time.Second)
	if after := viewer1.VideoPackets.Load(); after != before {
		t.Fatalf("viewer still receives after removeSource: %d -> %d packets", before, after)
	}
}

func TestDispatcherRoutesOnePortToAnother(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h := newHubSetup(t, ctx, "Dispatcher")
	a, portA := h.peer(true)
	b, portB := h.peer(false)
	if err := h.c.Invoke(ctx, h.hub, "connect", map[string]any{"source": portA, "sink": portB}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if a.VideoPackets.Load() != 0 {
		t.Fatalf("port A was not routed anything, but its peer received %d packets", a.VideoPackets.Load())
	}
	if err := h.c.Invoke(ctx, h.hub, "connect", map[string]any{"source": portA, "sink": h.hub}, nil); err == nil {
		t.Fatal("connecting to a non-port succeeded")
	}
}

// TestCompositeMixesForEveryPort: the Composite tutorial's wiring (each WebRtcEndpoint connected to
// its own HubPort both ways): every peer receives the mixed video and audio; releasing the Composite
// stops its pipeline.
func TestCompositeMixesForEveryPort(t *testing.T) {
	needFilters(t, "compositor", "audiomixer")
	// Each join rebuilds the mixing pipeline twice (the port, then its video in the grid); on a
	// loaded machine a rebuild takes seconds and the mix runs at a frame a second or less: a
	// generous deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	h := newHubSetup(t, ctx, "Composite")
	if _, err := h.c.Create(ctx, "Composite", map[string]any{"mediaPipeline": h.pipeline, "width": -1}); err == nil {
		t.Error("a Composite of width -1 was created")
	}
	var peers []*testpeer.Peer
	for i := 0; i < 3; i++ {
		p, _ := h.peer(true)
		peers = append(peers, p)
	}
	// A second of the mix at its 15 fps and of its audio at 50 packets a second, for every peer.
	waitUntil(ctx, t, "15 mixed frames and 25 audio packets at every peer", func() bool {
		for _, p := range peers {
			if p.FramesReceived.Load() < 15 || p.AudioReceived.Load() < 25 {
				return false
			}
		}
		return true
	})
	for i, p := range peers {
		t.Logf("peer %d: %d mixed frames, %d audio packets", i, p.FramesReceived.Load(), p.AudioReceived.Load())
	}
	if err := h.c.Release(ctx, h.hub); err != nil {
		t.Fatal(err)
	}
	// Released, the mix stops: neither video nor audio for a second and a half (it sends 65 packets a
	// second); what was already on its way may still arrive.
	received := func() int64 { return peers[0].VideoPackets.Load() + peers[0].AudioReceived.Load() }
	last, since := received(), time.Now()
	waitUntil(ctx, t, "the mix to stop after the Composite was released", func() bool {
		if n := received(); n != last {
			last, since = n, time.Now()
		}
		return time.Since(since) > 1500*time.Millisecond
	})
}

// TestAlphaBlendingPlacesPorts: the master port's video fills the output and another port's goes
// where setPortProperties puts it (the lower right quarter), over it.
func TestAlphaBlendingPlacesPorts(t *testing.T) {
	needFilters(t, "compositor", "audiomixer")
	ctx, c, pipeline := setup(t)
	blend, err := c.Create(ctx, "AlphaBlending", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	port := func() string {
		p, err := c.Create(ctx, "HubPort", map[string]any{"hub": blend})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	master, other := port(), port()
	clip := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=red:s=320x240:r=30", "-vf",
		"drawbox=x=0:y=0:w=80:h=240:color=blue:t=fill,drawbox=x=0:y=0:w=320:h=60:color=green:t=fill")
	white := testmedia.VP8Clip(t, "-f", "lavfi", "-i", "color=c=white:s=320x240:r=30")
	pubMaster, stopMaster := publisher(ctx, t, c, pipeline, clip)
	defer stopMaster()
	pubOther, stopOther := publisher(ctx, t, c, pipeline, white)
	defer stopOther()
	sub := newSubscriber(ctx, t, c, pipeline)
	defer sub.close()
	for _, link := range [][2]string{{pubMaster, master}, {pubOther, other}, {master, sub.endpoint}} {
		if err := c.Invoke(ctx, link[0], "connect", map[string]any{"sink": link[1]}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Invoke(ctx, blend, "setMaster", map[string]any{"source": master, "zOrder": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, blend, "setPortProperties", map[string]any{"relativeX": 0.5, "relativeY": 0.5, "zOrder": 2,
		"relativeWidth": 0.5, "relativeHeight": 0.5, "port": other}, nil); err != nil {
		t.Fatal(err)
	}
	// The layout settles once both ports' video reached the mixer: poll the latest frame until it
	// shows every region, and report the last frame's mismatches if it never does.
	want := []struct {
		x, y  int
		color string
	}{{100, 300, "blue"}, {300, 220, "red"}, {400, 60, "green"}, {600, 450, "white"}}
	var wrong []string
	for {
		n := sub.frames.Load()
		waitUntil(ctx, t, "30 more blended frames", func() bool { return sub.frames.Load() >= n+30 })
		got := sub.snapshot(t, 800, 600)
		wrong = wrong[:0]
		for _, w := range want {
			if c := testmedia.ColorAt(got, 800, w.x, w.y); c != w.color {
				wrong = append(wrong, fmt.Sprintf("pixel (%d,%d) is %s, want %s", w.x, w.y, c, w.color))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if deadline, _ := ctx.Deadline(); time.Until(deadline) < 5*time.Second {
			t.Fatalf("the blended frames never showed the layout: %s", strings.Join(wrong, "; "))
		}
	}
}
