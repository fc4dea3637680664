package webrtc_test

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

// A viewer joining a running stream starts at the last keyframe the server keeps: it decodes its
// first frames and the presenter gets no keyframe request for the join.
func TestJoinStartsFromCachedKeyframe(t *testing.T) {
	s := newSession(t, 40*time.Second)
	presenter := s.endpoint()
	pub := s.peer(testpeer.Options{Send: true, Tag: tagA, PacketsPerFrame: 3})
	s.negotiate(pub, presenter)
	pub.StartMedia()
	// A first viewer, so the stream runs through the pipeline as in a one-to-many.
	first := s.endpoint()
	s.connect(presenter, first, "")
	firstPeer := s.peer(testpeer.Options{Receive: true})
	s.negotiate(firstPeer, first)
	for firstPeer.DecodedFrames.Load() < 60 { // two keyframes and more since
		if err := s.ctx.Err(); err != nil {
			t.Fatal("the first viewer decodes nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for i := 0; i < 3; i++ {
		plis := pub.KeyframeRequests.Load()
		ep := s.endpoint()
		s.connect(presenter, ep, "")
		p := s.peer(testpeer.Options{Receive: true})
		s.negotiate(p, ep)
		for p.DecodedFrames.Load() < 5 {
			if err := s.ctx.Err(); err != nil {
				t.Fatalf("joining viewer %d decodes nothing", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := pub.KeyframeRequests.Load() - plis; got != 0 {
			t.Errorf("joining viewer %d: the presenter got %d keyframe requests", i, got)
		}
		if p.KeyframesRecv.Load() == 0 {
			t.Errorf("joining viewer %d decoded without a keyframe", i)
		}
	}
}
