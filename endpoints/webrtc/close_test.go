package webrtc

import (
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/media"
	"github.com/pion/webrtc/v4"
)

func newTestEndpoint(t testing.TB) (*Endpoint, *media.Pipeline) {
	p := media.NewPipeline()
	el := p.NewElement(nil, func(media.Event) {})
	return New(el, slog.New(slog.DiscardHandler)), p
}

func remoteOffer(t testing.TB) (*webrtc.PeerConnection, string) {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pc, offer.SDP
}

// Close while processOffer, gatherCandidates and addIceCandidate run: no deadlock, no panic, nothing
// left running, and the endpoint refuses to negotiate afterwards.
func TestCloseDuringNegotiation(t *testing.T) {
	settings := Settings{IncludeLoopback: true, CertificateKeyType: "ECDSA"}
	// Warm-up: the certificate cache and pion's lazily started state.
	ep, pl := newTestEndpoint(t)
	pc, offer := remoteOffer(t)
	if _, err := ep.ProcessOffer(offer, settings); err != nil {
		t.Fatal(err)
	}
	ep.Close()
	pc.Close()
	pl.Close()
	time.Sleep(100 * time.Millisecond)
	base := runtime.NumGoroutine()

	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20 {
			ep, pl := newTestEndpoint(t)
			pc, offer := remoteOffer(t)
			var wg sync.WaitGroup
			wg.Add(3)
			go func() {
				defer wg.Done()
				ep.ProcessOffer(offer, settings) // succeeds or fails: either is fine
			}()
			go func() {
				defer wg.Done()
				ep.GatherCandidates()
			}()
			go func() {
				defer wg.Done()
				ep.AddIceCandidate("candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "0", 0)
			}()
			time.Sleep(time.Duration(rand.IntN(20*(i%5+1))) * time.Millisecond)
			ep.Close()
			wg.Wait()
			if _, err := ep.ProcessOffer(offer, settings); err == nil {
				t.Errorf("round %d: processOffer after Close succeeded", i)
			}
			if err := ep.GatherCandidates(); err == nil {
				t.Errorf("round %d: gatherCandidates after Close succeeded", i)
			}
			pc.Close()
			pl.Close()
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		buf := make([]byte, 1<<20)
		t.Fatalf("deadlock:\n%s", buf[:runtime.Stack(buf, true)])
	}
	var n int
	if !pollUntil(10*time.Second, func() bool { n = runtime.NumGoroutine(); return n <= base }) {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines %d, baseline %d\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
