//go:build !kmsfuzz

package webrtc_test

import (
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

const (
	tagA = 1 // frames of presenter A
	tagB = 2 // frames of presenter B
)

// One presenter, 20 viewers: every viewer gets at least 95% of the presenter's frames. Then one viewer
// is moved to another presenter at runtime: it gets a keyframe of the new presenter within 1 s and its
// stream goes on without a sequence-number jump.
func TestOneToManyTwentyViewers(t *testing.T) {
	const viewers = 20
	s := newSession(t, 50*time.Second)

	presenterA, presenterB := s.endpoint(), s.endpoint()
	peerA := s.peer(testpeer.Options{Send: true, Tag: tagA})
	peerB := s.peer(testpeer.Options{Send: true, Tag: tagB})
	s.negotiate(peerA, presenterA)
	s.negotiate(peerB, presenterB)
	peerA.StartMedia()
	peerB.StartMedia()

	// Viewers are set up as the one2many tutorial does: create, connect, then processOffer.
	eps := make([]string, viewers)
	peers := make([]*testpeer.Peer, viewers)
	for i := range eps {
		eps[i] = s.endpoint()
		s.connect(presenterA, eps[i], "")
		peers[i] = s.peer(testpeer.Options{Receive: true})
	}
	var wg sync.WaitGroup
	errs := make(chan error, viewers)
	sem := make(chan struct{}, 4)
	for i := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p := peers[i]
			p.Endpoint = eps[i]
			if err := p.Negotiate(s.ctx, s.c, false); err != nil {
				errs <- err
				return
			}
			if err := p.WaitConnected(s.ctx); err != nil {
				errs <- err
				return
			}
			if err := p.WaitVideo(s.ctx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Steady state: compare what A sent and what each viewer got over the same window. Both counters
	// are read within microseconds; what is in flight at either end is at most a frame.
	const window = 4 * time.Second
	sent0 := peerA.FramesSent.Load()
	got0 := make([]int64, viewers)
	for i, p := range peers {
		got0[i] = p.FramesFrom(tagA)
	}
	time.Sleep(window)
	sent := peerA.FramesSent.Load() - sent0
	worst := 1.0
	for i, p := range peers {
		got := p.FramesFrom(tagA) - got0[i]
		ratio := float64(got) / float64(sent)
		worst = min(worst, ratio)
		if ratio < 0.95 {
			t.Errorf("viewer %d: got %d of %d frames (%.1f%%)", i, got, sent, 100*ratio)
		}
		if p.AudioReceived.Load() == 0 {
			t.Errorf("viewer %d: no audio", i)
		}
		if j := p.SeqJumps.Load(); j != 0 {
			t.Errorf("viewer %d: %d sequence number jumps", i, j)
		}
		if p.FramesFrom(tagB) != 0 {
			t.Errorf("viewer %d: got frames of presenter B", i)
		}
	}
	t.Logf("%d viewers, %d frames sent in %v, worst viewer got %.1f%%", viewers, sent, window, 100*worst)
	if sent < 60 {
		t.Fatalf("presenter sent only %d frames in %v", sent, window)
	}

	// Move viewer 0 from A to B.
	v := peers[0]
	jumps := v.SeqJumps.Load()
	if err := s.c.Invoke(s.ctx, presenterA, "disconnect", map[string]any{"sink": eps[0]}, nil); err != nil {
		t.Fatal(err)
	}
	keys0 := v.KeyframesFrom(tagB)
	switched := time.Now()
	s.connect(presenterB, eps[0], "")
	if !poll(3*time.Second, func() bool { return v.KeyframesFrom(tagB) > keys0 }) {
		t.Fatalf("no keyframe from presenter B within 3 s of the switch")
	}
	delay := time.Duration(v.LastKeyframe.Load() - switched.UnixNano())
	t.Logf("keyframe of the new presenter %v after the switch", delay.Round(time.Millisecond))
	if delay > time.Second {
		t.Errorf("keyframe of the new presenter came %v after the switch, want <= 1s", delay)
	}
	fromB := v.FramesFrom(tagB)
	fromA := v.FramesFrom(tagA)
	time.Sleep(time.Second)
	if n := v.FramesFrom(tagB) - fromB; n < 20 {
		t.Errorf("after the switch, %d frames of B in 1 s", n)
	}
	if n := v.FramesFrom(tagA) - fromA; n != 0 {
		t.Errorf("after the switch, %d frames of A still arrive", n)
	}
	if j := v.SeqJumps.Load() - jumps; j != 0 {
		t.Errorf("the switch made %d sequence number jumps", j)
	}
	// The others still watch A.
	if n := peers[1].FramesFrom(tagA); n == 0 {
		t.Errorf("viewer 1 lost presenter A")
	}
}
