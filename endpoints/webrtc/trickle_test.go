//go:build !kmsfuzz

package webrtc_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/ice/v4"
)

const (
	trickleMinPort = 47310
	trickleMaxPort = 47349
)

// Trickle ICE as Kurento applications drive it: candidates only after gatherCandidates, each with a
// port inside KMS_MIN_PORT..KMS_MAX_PORT, then IceGatheringDone; the ICE and connection events in a
// sane order. gatherCandidates works before and after processOffer.
func TestTrickleICE(t *testing.T) {
	for _, tc := range []struct {
		name        string
		gatherFirst bool
	}{{"GatherAfterOffer", false}, {"GatherBeforeOffer", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, 20*time.Second, "KMS_MIN_PORT=47310", "KMS_MAX_PORT=47349")
			ep := s.endpoint()
			r := s.recorder()
			r.subscribe(s, ep, "IceCandidateFound", "IceGatheringDone", "IceComponentStateChanged",
				"NewCandidatePairSelected", "MediaStateChanged", "ConnectionStateChanged", "MediaFlowOutStateChanged")
			p := s.peer(testpeer.Options{Send: true, Receive: true, GatherFirst: tc.gatherFirst})
			p.Endpoint = ep
			if err := p.Negotiate(s.ctx, s.c, true); err != nil {
				t.Fatal(err)
			}
			done, err := r.wait(s.ctx, "IceGatheringDone", isEvent(ep, "IceGatheringDone", nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.WaitConnected(s.ctx); err != nil {
				t.Fatal(err)
			}
			p.StartMedia()
			if _, err := r.wait(s.ctx, "MediaFlowOut FLOWING", isEvent(ep, "MediaFlowOutStateChanged", map[string]string{"state": "FLOWING"})); err != nil {
				t.Fatal(err)
			}
			if _, err := r.wait(s.ctx, "MediaStateChanged", isEvent(ep, "MediaStateChanged", nil)); err != nil {
				t.Fatal(err)
			}

			cands := r.all(isEvent(ep, "IceCandidateFound", nil))
			if len(cands) == 0 {
				t.Fatal("no IceCandidateFound")
			}
			for _, ev := range cands {
				c, _ := ev.Data["candidate"].(map[string]any)
				line, _ := c["candidate"].(string)
				mid, _ := c["sdpMid"].(string)
				if _, ok := c["sdpMLineIndex"].(float64); !ok || mid == "" {
					t.Errorf("candidate without sdpMid/sdpMLineIndex: %v", c)
				}
				cand, err := ice.UnmarshalCandidate(line)
				if err != nil {
					t.Errorf("candidate %q: %v", line, err)
					continue
				}
				if cand.Port() < trickleMinPort || cand.Port() > trickleMaxPort {
					t.Errorf("candidate %q: port %d outside %d..%d", line, cand.Port(), trickleMinPort, trickleMaxPort)
				}
				if ev.At.After(done.At) {
					t.Errorf("candidate %q reported after IceGatheringDone", line)
				}
			}
			if n := len(r.all(isEvent(ep, "IceGatheringDone", nil))); n != 1 {
				t.Errorf("%d IceGatheringDone events, want 1", n)
			}
			t.Logf("%d candidates, e.g. %v", len(cands), cands[0].Data["candidate"])

			var local string
			if err := s.c.Invoke(s.ctx, ep, "getLocalSessionDescriptor", nil, &local); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(local, "a=candidate:") {
				t.Errorf("local SDP has no candidates after gathering:\n%s", local)
			}

			// The order KMS documents: GATHERING, CONNECTING, CONNECTED; the pair is selected and ICE
			// connected before the media state says CONNECTED.
			var states []string
			for _, ev := range r.all(isEvent(ep, "IceComponentStateChanged", nil)) {
				states = append(states, ev.str("state"))
			}
			if want := []string{"GATHERING", "CONNECTING", "CONNECTED"}; !isSubsequence(want, states) {
				t.Errorf("IceComponentStateChanged states %v, want %v in this order", states, want)
			}
			pair, err := r.wait(s.ctx, "NewCandidatePairSelected", isEvent(ep, "NewCandidatePairSelected", nil))
			if err != nil {
				t.Fatal(err)
			}
			cp, _ := pair.Data["candidatePair"].(map[string]any)
			if l, _ := cp["localCandidate"].(string); !strings.HasPrefix(l, "candidate:") {
				t.Errorf("NewCandidatePairSelected local candidate %q", l)
			}
			media := r.all(isEvent(ep, "MediaStateChanged", nil))
			conn := r.all(isEvent(ep, "ConnectionStateChanged", nil))
			if len(media) != 1 || media[0].str("oldState") != "DISCONNECTED" || media[0].str("newState") != "CONNECTED" {
				t.Errorf("MediaStateChanged events %v, want one DISCONNECTED -> CONNECTED", media)
			}
			if len(conn) != 1 || conn[0].str("newState") != "CONNECTED" {
				t.Errorf("ConnectionStateChanged events %v, want one -> CONNECTED", conn)
			}
			iceConnected, _ := r.wait(s.ctx, "ICE CONNECTED", isEvent(ep, "IceComponentStateChanged", map[string]string{"state": "CONNECTED"}))
			if len(media) > 0 && (media[0].At.Before(pair.At) || media[0].At.Before(iceConnected.At)) {
				t.Errorf("MediaStateChanged(CONNECTED) came before NewCandidatePairSelected or ICE CONNECTED")
			}
		})
	}
}

// isSubsequence tells whether want appears in got in order (other items may come between).
func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// Before gatherCandidates no candidate is reported, however long the endpoint has been gathering.
func TestNoCandidatesBeforeGatherCandidates(t *testing.T) {
	s := newSession(t, 20*time.Second)
	ep := s.endpoint()
	r := s.recorder()
	r.subscribe(s, ep, "IceCandidateFound", "IceGatheringDone")
	p := s.peer(testpeer.Options{Receive: true})
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	var answer string
	if err := s.c.Invoke(s.ctx, ep, "processOffer", map[string]any{"offer": offer.SDP}, &answer); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(answer, "a=candidate:") {
		t.Errorf("the answer carries candidates before gatherCandidates")
	}
	time.Sleep(500 * time.Millisecond) // pion gathers host candidates in milliseconds
	if n := len(r.all(nil)); n != 0 {
		t.Fatalf("%d events before gatherCandidates", n)
	}
	if err := s.c.Invoke(s.ctx, ep, "gatherCandidates", nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.wait(s.ctx, "IceGatheringDone", isEvent(ep, "IceGatheringDone", nil)); err != nil {
		t.Fatal(err)
	}
	if n := len(r.all(isEvent(ep, "IceCandidateFound", nil))); n == 0 {
		t.Fatal("held-back candidates were not released by gatherCandidates")
	}
	// A second call is harmless and reports nothing new.
	before := len(r.all(nil))
	if err := s.c.Invoke(s.ctx, ep, "gatherCandidates", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if after := len(r.all(nil)); after != before {
		t.Errorf("second gatherCandidates reported %d more events", after-before)
	}
}
