package elements_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/kurento-go/kms/videosampler/pb"
	"google.golang.org/grpc"
)

// imageSink is the gRPC service of an application receiving a VideoSampler's images.
type imageSink struct {
	pb.UnimplementedImageDeliverServer
	mu  sync.Mutex
	got map[string][]received // by metadata
}

type received struct {
	at  time.Time
	img *pb.SampleImage
}

func (s *imageSink) DeliverImage(_ context.Context, img *pb.SampleImage) (*pb.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got[img.Metadata] = append(s.got[img.Metadata], received{time.Now(), img})
	return &pb.Empty{}, nil
}

func (s *imageSink) images(metadata string) []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.got[metadata]...)
}

// TestVideoSamplerDeliversImages: two VideoSamplers on one WebRtcEndpoint sending real 320x240 VP8,
// one scaling to a width of 160 as PNG every 500 ms, one at the source size as JPEG every 300 ms. A
// real gRPC server gets images of those sizes and formats at those periods (±20 %), with the
// metadata, pipeline id and tags, and each delivery is reported by SampleImageDelivered.
func TestVideoSamplerDeliversImages(t *testing.T) {
	needFilters(t, "videorate", "videoscale", "pngenc", "jpegenc")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sink := &imageSink{got: map[string][]received{}}
	srv := grpc.NewServer()
	pb.RegisterImageDeliverServer(srv, sink)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	ctx, c, pipeline := testserver.Connect(t, testserver.Start(t).URL, 90*time.Second)
	peer, err := testpeer.NewClip(testpeer.ClipOptions{Video: testmedia.VP8Clip(t, "-f", "lavfi", "-i", "testsrc=s=320x240:r=30")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if peer.Endpoint, err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline}); err != nil {
		t.Fatal(err)
	}
	type want struct {
		encoding string
		period   time.Duration
		width    int
		w, h     int // of the images
		format   string
	}
	cases := map[string]want{
		"png-cam":  {"PNG", 500 * time.Millisecond, 160, 160, 120, "png"},
		"jpeg-cam": {"JPEG", 300 * time.Millisecond, 0, 320, 240, "jpeg"},
	}
	var delivered sync.Map // sampler id -> count of SampleImageDelivered{delivered:true}
	for meta, w := range cases {
		sampler, err := c.Create(ctx, "VideoSampler", map[string]any{"mediaPipeline": pipeline,
			"framePeriod": w.period.Milliseconds(), "width": w.width, "imageEncoding": w.encoding,
			"imageDeliveryMethod": "GRPC", "endpointUrl": lis.Addr().String(), "metadata": meta})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Invoke(ctx, sampler, "addTag", map[string]any{"key": "room", "value": "r1"}, nil); err != nil {
			t.Fatal(err)
		}
		n := new(int64)
		var mu sync.Mutex
		delivered.Store(sampler, func() int64 { mu.Lock(); defer mu.Unlock(); return *n })
		if err := c.Subscribe(ctx, sampler, "SampleImageDelivered", func(ev client.Event) {
			var data struct{ Delivered bool }
			if json.Unmarshal(ev.Data, &data) == nil && data.Delivered {
				mu.Lock()
				*n++
				mu.Unlock()
			}
		}); err != nil {
			t.Fatal(err)
		}
		if err := c.Invoke(ctx, peer.Endpoint, "connect", map[string]any{"sink": sampler}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := peer.Negotiate(ctx, c, false); err != nil {
		t.Fatal(err)
	}
	const n = 8
	for deadline := time.Now().Add(60 * time.Second); len(sink.images("png-cam")) < n+2 || len(sink.images("jpeg-cam")) < n+2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("images received: png %d, jpeg %d", len(sink.images("png-cam")), len(sink.images("jpeg-cam")))
		}
	}
	for meta, w := range cases {
		got := sink.images(meta)
		got = got[len(got)-n:] // the first ones may come in a burst while the stream starts
		period := got[n-1].at.Sub(got[0].at) / (n - 1)
		t.Logf("%s: %d images, one every %v", meta, len(got), period)
		if period < w.period*8/10 || period > w.period*12/10 {
			t.Errorf("%s: an image every %v, want %v ±20%%", meta, period, w.period)
		}
		for _, r := range got {
			cfg, format, err := image.DecodeConfig(bytes.NewReader(r.img.Data))
			if err != nil {
				t.Fatalf("%s: image does not decode: %v", meta, err)
			}
			if format != w.format || cfg.Width != w.w || cfg.Height != w.h || r.img.Codec != w.encoding {
				t.Fatalf("%s: got a %dx%d %s image (codec %q), want %dx%d %s", meta, cfg.Width, cfg.Height, format, r.img.Codec, w.w, w.h, w.format)
			}
			if r.img.PipelineId != pipeline || r.img.Timestamp == "" || len(r.img.Tags) != 1 || r.img.Tags[0].Key != "room" || r.img.Tags[0].Value != "r1" {
				t.Fatalf("%s: pipelineId %q, timestamp %q, tags %v", meta, r.img.PipelineId, r.img.Timestamp, r.img.Tags)
			}
		}
	}
	delivered.Range(func(id, count any) bool {
		if count.(func() int64)() == 0 {
			t.Errorf("no SampleImageDelivered{delivered: true} from %s", id)
		}
		return true
	})
}
