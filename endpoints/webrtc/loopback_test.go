package webrtc_test

import (
	"context"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

func TestLoopbackEchoesMedia(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pipeline, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if err := peer.Connect(ctx, c, pipeline, true); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	peer.StartMedia()
	if err := peer.WaitVideo(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	sent, got, audio := peer.FramesSent.Load(), peer.FramesReceived.Load(), peer.AudioReceived.Load()
	t.Logf("frames sent %d, received %d, audio packets %d, seq jumps %d", sent, got, audio, peer.SeqJumps.Load())
	if got < sent/2 || audio == 0 {
		t.Fatalf("loopback: sent %d frames, got %d back and %d audio packets", sent, got, audio)
	}
}
