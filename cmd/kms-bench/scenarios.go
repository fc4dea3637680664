package main

import (
	"context"
	"fmt"
	"sync"

	"github.com/kurento-go/kms/client"
	"github.com/pion/webrtc/v4"
)

// scenario is one topology that grows unit by unit (a session, a subscriber, a room) and keeps what
// it made until close.
type scenario interface {
	grow(ctx context.Context, n int) error // add units until there are n
	units() int
	streams() int   // receiving legs (one audio + one video each)
	endpoints() int // server-side endpoints or handles
	receivers() []*peer
	peers() []*peer
	close()
}

type base struct {
	api  *webrtc.API
	clip *clip
	hst  *histograms

	mu    sync.Mutex
	all   []*peer
	recv  []*peer
	n     int
	eps   int
	rel   []func()
	fails int
}

// echo adds a peer that sends and receives its own media back through one server-side endpoint,
// negotiated by negotiate; release frees what the server side holds if the peer cannot be made.
func (b *base) echo(release func(), what string, negotiate func(*peer) error) error {
	p, err := newPeer(b.api, b.clip, true, true, nil, b.hst)
	if err != nil {
		release()
		return err
	}
	b.add(p, true, 1, release)
	if err := negotiate(p); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	p.startMedia()
	return nil
}

// recount records how many receivers a grow step left, and passes its error on.
func (b *base) recount(err error) error {
	b.mu.Lock()
	b.n = len(b.recv)
	b.mu.Unlock()
	return err
}

func (b *base) add(p *peer, receiver bool, endpoints int, release func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p != nil {
		b.all = append(b.all, p)
	}
	if receiver {
		b.recv = append(b.recv, p)
	}
	b.eps += endpoints
	if release != nil {
		b.rel = append(b.rel, release)
	}
}

func (b *base) units() int { b.mu.Lock(); defer b.mu.Unlock(); return b.n }
func (b *base) streams() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.recv)
}
func (b *base) endpoints() int { b.mu.Lock(); defer b.mu.Unlock(); return b.eps }
func (b *base) receivers() []*peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*peer(nil), b.recv...)
}
func (b *base) peers() []*peer {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*peer(nil), b.all...)
}

func (b *base) close() {
	b.mu.Lock()
	all, rel := b.all, b.rel
	b.all, b.recv, b.rel = nil, nil, nil
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Go(p.close)
	}
	wg.Wait()
	for _, r := range rel {
		r()
	}
}

// parallel runs f for units from..to-1 with a few workers; the first error wins.
func parallel(ctx context.Context, from, to, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		})
	}
feed:
	for i := from; i < to; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	return first
}

const setupWorkers = 8

// kmsLoopback: N hello-world sessions, each a pipeline with one WebRtcEndpoint connected to itself.
type kmsLoopback struct {
	base
	k *kurento
}

func (s *kmsLoopback) grow(ctx context.Context, n int) error {
	err := parallel(ctx, s.units(), n, setupWorkers, func(ctx context.Context, i int) error {
		c := s.k.conn()
		ep, release, err := openLoopback(ctx, c)
		if err != nil {
			return err
		}
		return s.echo(release, fmt.Sprintf("session %d", i), func(p *peer) error { return s.k.negotiate(ctx, c, ep, p) })
	})
	return s.recount(err)
}

// openLoopback creates a pipeline with one WebRtcEndpoint connected to itself (the hello-world
// tutorial); release frees the pipeline.
func openLoopback(ctx context.Context, c *client.Client) (ep string, release func(), err error) {
	pipe, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		return "", nil, err
	}
	release = func() { c.Release(context.Background(), pipe) }
	if ep, err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipe}); err == nil {
		err = c.Invoke(ctx, ep, "connect", map[string]any{"sink": ep}, nil)
	}
	if err != nil {
		release()
		return "", nil, err
	}
	return ep, release, nil
}

// openViewer creates a WebRtcEndpoint in pipe that receives what src sends.
func openViewer(ctx context.Context, c *client.Client, pipe, src string) (string, error) {
	ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
	if err != nil {
		return "", err
	}
	return ep, c.Invoke(ctx, src, "connect", map[string]any{"sink": ep}, nil)
}

// janusLoopback: N EchoTest handles.
type janusLoopback struct {
	base
	j *janus
}

func (s *janusLoopback) grow(ctx context.Context, n int) error {
	err := parallel(ctx, s.units(), n, setupWorkers, func(ctx context.Context, i int) error {
		h, err := s.j.attach(ctx, echoTest)
		if err != nil {
			return err
		}
		release := func() { s.j.detach(context.Background(), h) }
		return s.echo(release, fmt.Sprintf("handle %d", i), func(p *peer) error { return s.j.negotiate(ctx, h, p) })
	})
	return s.recount(err)
}

const (
	echoTest  = "janus.plugin.echotest"
	videoRoom = "janus.plugin.videoroom"
)

// janusOneToMany: one VideoRoom room with one publisher and N subscribers, each subscriber a handle
// and a PeerConnection of its own, as the one2many tutorial's viewers are on our server.
type janusOneToMany struct {
	base
	j          *janus
	room, feed int64
	pub        *peer
}

func (s *janusOneToMany) grow(ctx context.Context, n int) error {
	if s.pub == nil {
		p, room, feeds, err := s.openRoom(ctx, s.j, 1)
		if err != nil {
			return err
		}
		s.pub, s.room, s.feed = p[0], room, feeds[0]
	}
	err := parallel(ctx, s.units(), n, setupWorkers, func(ctx context.Context, i int) error {
		_, err := s.subscribe(ctx, s.j, s.room, s.feed, s.pub.pub)
		if err != nil {
			return fmt.Errorf("viewer %d: %w", i, err)
		}
		return nil
	})
	return s.recount(err)
}

// openRoom creates a VideoRoom room with m publishers sending the clip; the room is destroyed and
// the handles detached on close.
func (b *base) openRoom(ctx context.Context, j *janus, m int) (pubs []*peer, room int64, feeds []int64, err error) {
	for i := range m {
		h, err := j.attach(ctx, videoRoom)
		if err != nil {
			return nil, 0, nil, err
		}
		b.add(nil, false, 1, func() { j.detach(context.Background(), h) })
		if i == 0 {
			if room, err = j.createRoom(ctx, h, m); err != nil {
				return nil, 0, nil, err
			}
			b.add(nil, false, 0, func() { j.destroyRoom(context.Background(), h, room) })
		}
		p, err := newPeer(b.api, b.clip, true, false, nil, b.hst)
		if err != nil {
			return nil, 0, nil, err
		}
		b.add(p, false, 0, nil)
		feed, err := j.publish(ctx, h, room, p)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("publisher %d: %w", i, err)
		}
		p.startMedia()
		pubs, feeds = append(pubs, p), append(feeds, feed)
	}
	return pubs, room, feeds, nil
}

// subscribe adds a receiving peer on a new VideoRoom handle subscribed to feed; release detaches it.
func (b *base) subscribe(ctx context.Context, j *janus, room, feed int64, ref *publisher) (*peer, error) {
	h, err := j.attach(ctx, videoRoom)
	if err != nil {
		return nil, err
	}
	p, err := newPeer(b.api, b.clip, false, true, ref, b.hst)
	if err != nil {
		j.detach(context.Background(), h)
		return nil, err
	}
	b.add(p, true, 1, func() { j.detach(context.Background(), h) })
	return p, j.subscribe(ctx, h, room, feed, p)
}

// janusGroup: VideoRoom rooms of M participants, each publishing on a handle of its own and receiving
// every other participant on one handle each, as kmsGroup.
type janusGroup struct {
	base
	j *janus
	m int
}

func (s *janusGroup) grow(ctx context.Context, n int) error {
	return parallel(ctx, s.units(), n, 2, func(ctx context.Context, room int) error {
		pubs, id, feeds, err := s.openRoom(ctx, s.j, s.m)
		if err != nil {
			return fmt.Errorf("room %d: %w", room, err)
		}
		for i := range s.m {
			for k := range s.m {
				if i == k {
					continue
				}
				if _, err := s.subscribe(ctx, s.j, id, feeds[k], pubs[k].pub); err != nil {
					return fmt.Errorf("room %d viewer %d of %d: %w", room, i, k, err)
				}
			}
		}
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
		return nil
	})
}

// kmsOneToMany: one presenter WebRtcEndpoint connected to N viewer WebRtcEndpoints (the one2many
// tutorial).
type kmsOneToMany struct {
	base
	k         *kurento
	pipe, pep string
	pub       *peer
}

func (s *kmsOneToMany) grow(ctx context.Context, n int) error {
	if s.pub == nil {
		c := s.k.conn()
		pipe, err := c.Create(ctx, "MediaPipeline", nil)
		if err != nil {
			return err
		}
		s.pipe = pipe
		s.rel = append(s.rel, func() { c.Release(context.Background(), pipe) })
		if s.pep, err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipe}); err != nil {
			return err
		}
		p, err := newPeer(s.api, s.clip, true, false, nil, s.hst)
		if err != nil {
			return err
		}
		s.add(p, false, 1, nil)
		if err := s.k.negotiate(ctx, c, s.pep, p); err != nil {
			return fmt.Errorf("presenter: %w", err)
		}
		p.startMedia()
		s.pub = p
	}
	err := parallel(ctx, s.units(), n, setupWorkers, func(ctx context.Context, i int) error {
		c := s.k.conn()
		ep, err := openViewer(ctx, c, s.pipe, s.pep)
		if err != nil {
			return err
		}
		p, err := newPeer(s.api, s.clip, false, true, s.pub.pub, s.hst)
		if err != nil {
			return err
		}
		s.add(p, true, 1, nil)
		if err := s.k.negotiate(ctx, c, ep, p); err != nil {
			return fmt.Errorf("viewer %d: %w", i, err)
		}
		return nil
	})
	return s.recount(err)
}

// kmsGroup: rooms of M participants shaped as the group-call tutorial: each participant publishes
// on its own WebRtcEndpoint and receives every other participant on one WebRtcEndpoint each.
type kmsGroup struct {
	base
	k *kurento
	m int
}

func (s *kmsGroup) grow(ctx context.Context, n int) error {
	err := parallel(ctx, s.units(), n, 2, func(ctx context.Context, room int) error {
		c := s.k.conn()
		pipe, err := c.Create(ctx, "MediaPipeline", nil)
		if err != nil {
			return err
		}
		s.add(nil, false, 0, func() { c.Release(context.Background(), pipe) })
		outs := make([]string, s.m)
		pubs := make([]*peer, s.m)
		for i := range s.m {
			if outs[i], err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipe}); err != nil {
				return err
			}
			if pubs[i], err = newPeer(s.api, s.clip, true, false, nil, s.hst); err != nil {
				return err
			}
			s.add(pubs[i], false, 1, nil)
			if err := s.k.negotiate(ctx, c, outs[i], pubs[i]); err != nil {
				return fmt.Errorf("room %d publisher %d: %w", room, i, err)
			}
			pubs[i].startMedia()
		}
		for i := range s.m {
			for j := range s.m {
				if i == j {
					continue
				}
				in, err := openViewer(ctx, c, pipe, outs[j])
				if err != nil {
					return err
				}
				p, err := newPeer(s.api, s.clip, false, true, pubs[j].pub, s.hst)
				if err != nil {
					return err
				}
				s.add(p, true, 1, nil)
				if err := s.k.negotiate(ctx, c, in, p); err != nil {
					return fmt.Errorf("room %d viewer %d of %d: %w", room, i, j, err)
				}
			}
		}
		s.mu.Lock()
		s.n++
		s.mu.Unlock()
		return nil
	})
	return err
}

// direct is the baseline without a server: N pairs of the same clients, a publisher sending straight
// to a receiver in this process. Its latency is what the clients themselves add (pacing, SRTP,
// pion's send and receive paths, the kernel), to be read against the servers' figures.
type direct struct {
	base
}

func (s *direct) grow(ctx context.Context, n int) error {
	err := parallel(ctx, s.units(), n, setupWorkers, func(ctx context.Context, i int) error {
		pub, err := newPeer(s.api, s.clip, true, false, nil, s.hst)
		if err != nil {
			return err
		}
		s.add(pub, false, 0, nil)
		sub, err := newPeer(s.api, s.clip, false, true, pub.pub, s.hst)
		if err != nil {
			return err
		}
		s.add(sub, true, 0, nil)
		offer, err := pub.offer()
		if err != nil {
			return err
		}
		answer, err := sub.answerOffer(offer)
		if err != nil {
			return err
		}
		sub.start.Store(nowNS())
		if err := pub.answer(answer); err != nil {
			return err
		}
		pub.startMedia()
		return nil
	})
	return s.recount(err)
}
