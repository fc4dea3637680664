package elements_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// TestMixerEachHearsTheOthers: three peers each send a tone of their own into a port of a Mixer,
// and the application connects every port to the two others for AUDIO, as KMS's Mixer wants. Each
// peer then hears both other tones, and not its own.
func TestMixerEachHearsTheOthers(t *testing.T) {
	needFilters(t, "audiomixer", "opusenc", "opusdec", "rtpopusdepay")
	_, c, pipeline := testserver.Connect(t, testserver.Start(t).URL, 90*time.Second)
	ctx := t.Context()
	mixer, err := c.Create(ctx, "Mixer", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	tones := []float64{440, 1000, 2500}
	var peers []*testpeer.Peer
	var ports, heard []string
	for i, f := range tones {
		heard = append(heard, filepath.Join(t.TempDir(), fmt.Sprintf("heard%d.ogg", i)))
		p, err := testpeer.NewClip(testpeer.ClipOptions{Audio: testmedia.ToneOgg(t, int(f)), AudioOut: heard[i]})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		if p.Endpoint, err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline}); err != nil {
			t.Fatal(err)
		}
		port, err := c.Create(ctx, "HubPort", map[string]any{"hub": mixer})
		if err != nil {
			t.Fatal(err)
		}
		for _, pair := range [][2]string{{p.Endpoint, port}, {port, p.Endpoint}} {
			if err := c.Invoke(ctx, pair[0], "connect", map[string]any{"sink": pair[1]}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Negotiate(ctx, c, false); err != nil {
			t.Fatal(err)
		}
		peers, ports = append(peers, p), append(ports, port)
	}
	for i := range ports {
		for j := range ports {
			if i == j {
				continue
			}
			if err := c.Invoke(ctx, mixer, "connect", map[string]any{"media": "AUDIO", "source": ports[j], "sink": ports[i]}, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range peers {
		if err := p.WaitConnected(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// 50 packets a second: wait for 4 s of the mix at every peer, then stop (which ends the files).
	var base [3]int64
	for i, p := range peers {
		base[i] = p.AudioReceived.Load()
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		done := true
		for i, p := range peers {
			done = done && p.AudioReceived.Load() >= base[i]+200
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("peers received %d, %d, %d audio packets", peers[0].AudioReceived.Load(), peers[1].AudioReceived.Load(), peers[2].AudioReceived.Load())
		}
	}
	for _, p := range peers {
		p.Close()
	}
	for i := range peers {
		pcm := testmedia.PCM(t, heard[i])
		if len(pcm) < 48000*2 {
			t.Fatalf("peer %d: %d samples heard", i, len(pcm))
		}
		last := pcm[len(pcm)-48000*3/2:] // the last 1.5 s: the mix is set up by then
		var levels []float64
		for _, f := range tones {
			levels = append(levels, testmedia.ToneLevel(last, f))
		}
		t.Logf("peer %d (sends %.0f Hz) hears levels %.4f", i, tones[i], levels)
		for j, l := range levels {
			switch {
			case j == i && l > 0.01:
				t.Errorf("peer %d hears its own %.0f Hz tone (level %.4f)", i, tones[j], l)
			case j != i && l < 0.03:
				t.Errorf("peer %d does not hear the %.0f Hz tone of peer %d (level %.4f)", i, tones[j], j, l)
			}
		}
	}
}
