//go:build !kmsfuzz

package webrtc_test

import (
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

// MediaFlowOut/In FLOWING per media type once media flows, NOT_FLOWING 2-4 s after the peer stops
// sending, with the data fields KMS sends.
func TestMediaFlowEvents(t *testing.T) {
	s := newSession(t, 30*time.Second)
	presenter, viewer := s.endpoint(), s.endpoint()
	r := s.recorder()
	for _, ep := range []string{presenter, viewer} {
		r.subscribe(s, ep, "MediaFlowInStateChanged", "MediaFlowOutStateChanged")
	}
	s.connect(presenter, viewer, "")
	pp := s.peer(testpeer.Options{Send: true})
	vp := s.peer(testpeer.Options{Receive: true})
	s.negotiate(pp, presenter)
	s.negotiate(vp, viewer)
	pp.StartMedia()

	want := []struct{ ep, event string }{
		{presenter, "MediaFlowOutStateChanged"}, // received from its peer
		{viewer, "MediaFlowInStateChanged"},     // arriving from the pipeline
	}
	for _, w := range want {
		for _, mt := range []string{"AUDIO", "VIDEO"} {
			ev, err := r.wait(s.ctx, w.event+" FLOWING "+mt, isEvent(w.ep, w.event, map[string]string{"state": "FLOWING", "mediaType": mt}))
			if err != nil {
				t.Fatal(err)
			}
			if ev.str("padName") != "default" {
				t.Errorf("%s: padName %q", w.event, ev.str("padName"))
			}
		}
	}
	var flowing bool
	if err := s.c.Invoke(s.ctx, viewer, "isMediaFlowingIn", map[string]any{"mediaType": "VIDEO"}, &flowing); err != nil || !flowing {
		t.Errorf("isMediaFlowingIn(VIDEO) = %v, %v", flowing, err)
	}
	if n := len(r.all(func(e event) bool { return e.str("state") == "NOT_FLOWING" })); n != 0 {
		t.Errorf("%d NOT_FLOWING events while media flows (KMS sends no initial NOT_FLOWING)", n)
	}

	stopped := time.Now()
	pp.StopMedia()
	for _, w := range want {
		for _, mt := range []string{"AUDIO", "VIDEO"} {
			ev, err := r.wait(s.ctx, w.event+" NOT_FLOWING "+mt, isEvent(w.ep, w.event, map[string]string{"state": "NOT_FLOWING", "mediaType": mt}))
			if err != nil {
				t.Fatal(err)
			}
			after := ev.At.Sub(stopped)
			t.Logf("%s %s NOT_FLOWING %v after the peer stopped", w.event, mt, after.Round(10*time.Millisecond))
			if after > 5*time.Second {
				t.Errorf("%s %s NOT_FLOWING %v after media stopped, want 2-4 s", w.event, mt, after)
			}
			if ev.str("padName") != "default" {
				t.Errorf("%s: padName %q", w.event, ev.str("padName"))
			}
		}
	}
	// Exactly one FLOWING and one NOT_FLOWING per pad; the viewer's peer sends nothing, so no Out events.
	for _, w := range want {
		for _, mt := range []string{"AUDIO", "VIDEO"} {
			if n := len(r.all(isEvent(w.ep, w.event, map[string]string{"mediaType": mt}))); n != 2 {
				t.Errorf("%s %s: %d events, want 2", w.event, mt, n)
			}
		}
	}
	if n := len(r.all(isEvent(viewer, "MediaFlowOutStateChanged", nil))); n != 0 {
		t.Errorf("viewer: %d MediaFlowOut events, its peer sends nothing", n)
	}
}

// A connection of one media type carries only that type.
func TestConnectVideoOnly(t *testing.T) {
	s := newSession(t, 20*time.Second)
	presenter, viewer := s.endpoint(), s.endpoint()
	r := s.recorder()
	r.subscribe(s, viewer, "MediaFlowInStateChanged")
	s.connect(presenter, viewer, "VIDEO")
	pp := s.peer(testpeer.Options{Send: true})
	vp := s.peer(testpeer.Options{Receive: true})
	s.negotiate(pp, presenter)
	s.negotiate(vp, viewer)
	pp.StartMedia()
	if err := vp.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if n := vp.AudioReceived.Load(); n != 0 {
		t.Errorf("video-only connection delivered %d audio packets", n)
	}
	if n := vp.FramesReceived.Load(); n < 15 {
		t.Errorf("only %d video frames in a second", n)
	}
	if n := len(r.all(isEvent(viewer, "MediaFlowInStateChanged", map[string]string{"mediaType": "AUDIO"}))); n != 0 {
		t.Errorf("audio flow events on a video-only connection")
	}
}

// An audio-only connection carries only audio.
func TestConnectAudioOnly(t *testing.T) {
	s := newSession(t, 20*time.Second)
	presenter, viewer := s.endpoint(), s.endpoint()
	s.connect(presenter, viewer, "AUDIO")
	pp := s.peer(testpeer.Options{Send: true})
	vp := s.peer(testpeer.Options{Receive: true})
	s.negotiate(pp, presenter)
	s.negotiate(vp, viewer)
	pp.StartMedia()
	if !poll(5*time.Second, func() bool { return vp.AudioReceived.Load() > 20 }) {
		t.Fatalf("audio-only connection: %d audio packets", vp.AudioReceived.Load())
	}
	if n := vp.VideoPackets.Load(); n != 0 {
		t.Errorf("audio-only connection delivered %d video packets", n)
	}
}

// The viewer negotiates before the presenter (connected first, as tutorials do): once the presenter
// sends, the viewer gets its media.
func TestViewerBeforePresenter(t *testing.T) {
	s := newSession(t, 20*time.Second)
	presenter, viewer := s.endpoint(), s.endpoint()
	s.connect(presenter, viewer, "")
	vp := s.peer(testpeer.Options{Receive: true})
	s.negotiate(vp, viewer)
	time.Sleep(200 * time.Millisecond)
	pp := s.peer(testpeer.Options{Send: true})
	s.negotiate(pp, presenter)
	pp.StartMedia()
	if err := vp.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	if !poll(5*time.Second, func() bool { return vp.FramesReceived.Load() >= 30 && vp.AudioReceived.Load() > 0 }) {
		t.Fatalf("viewer got %d frames, %d audio packets", vp.FramesReceived.Load(), vp.AudioReceived.Load())
	}
	if j := vp.SeqJumps.Load(); j != 0 {
		t.Errorf("%d sequence jumps", j)
	}
}
