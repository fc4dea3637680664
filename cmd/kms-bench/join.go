package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// joiner is a scenario a viewer can join while it runs (one2many): join adds one receiving peer that
// is not one of the scenario's receivers, and release takes it away again.
type joiner interface {
	join(ctx context.Context) (p *peer, release func(), err error)
}

func (s *kmsOneToMany) join(ctx context.Context) (*peer, func(), error) {
	c := s.k.conn()
	ep, err := openViewer(ctx, c, s.pipe, s.pep)
	if err != nil {
		return nil, nil, err
	}
	p, err := newPeer(s.api, s.clip, false, true, s.pub.pub, s.hst)
	release := func() {
		if p != nil {
			p.close()
		}
		c.Release(context.Background(), ep)
	}
	if err == nil {
		err = s.k.negotiate(ctx, c, ep, p)
	}
	return p, release, err
}

func (s *janusOneToMany) join(ctx context.Context) (*peer, func(), error) {
	h, err := s.j.attach(ctx, videoRoom)
	if err != nil {
		return nil, nil, err
	}
	p, err := newPeer(s.api, s.clip, false, true, s.pub.pub, s.hst)
	release := func() {
		if p != nil {
			p.close()
		}
		s.j.detach(context.Background(), h)
	}
	if err == nil {
		err = s.j.subscribe(ctx, h, s.room, s.feed, p)
	}
	return p, release, err
}

// joins measures viewers joining the running scenario one at a time, apart from the ramp's steps
// (where many join at once): each waits a random part of a second first, so that the joins fall
// evenly over the clip's one-second keyframe interval, then joins, and leaves once it has its first
// complete keyframe (5 s at most). The row's first-frame figures are the joins' (processOffer's
// answer → first complete keyframe).
func (r *runner) joins(ctx context.Context, t *target, s scenario, j joiner, n int) Row {
	row := Row{Server: t.name, Scenario: "join", N: s.units(), Endpoints: s.endpoints(), ServerCPUCore: -1,
		CPUSecPerStreamMin: -1, RSSMB: -1, RSSPerEndpointKB: -1, LatencyP50ms: -1, LatencyP99ms: -1,
		Note: fmt.Sprintf("%d viewers joining one at a time", n)}
	var ff []float64
	for range n {
		select {
		case <-time.After(time.Duration(rand.Int64N(int64(time.Second)))):
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		p, release, err := j.join(ctx)
		if err == nil {
			for deadline := time.Now().Add(5 * time.Second); p.firstFrame.Load() == 0 && time.Now().Before(deadline) && ctx.Err() == nil; {
				time.Sleep(5 * time.Millisecond)
			}
			if f := p.firstFrame.Load(); f != 0 {
				ff = append(ff, float64(f-p.start.Load())/1e6)
			} else {
				row.NoMedia++
			}
		} else {
			row.NoMedia++
			row.Note = "join error: " + err.Error()
		}
		if release != nil {
			release()
		}
	}
	slices.Sort(ff)
	row.FirstFrameP50ms, row.FirstFrameP99ms = percentile(ff, 0.5), percentile(ff, 0.99)
	if len(ff) > 0 {
		row.FirstFrameMaxms = ff[len(ff)-1]
	}
	row.Pass = row.NoMedia == 0 && len(ff) > 0
	return row
}
