// Package videosampler is the media side of KMS's VideoSampler (the extras module): a video filter
// that keeps one frame every period, scales it if asked, encodes it as an image and delivers the
// images to a gRPC service (package pb). Its video output is the sampled video, as KMS's.
package videosampler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/processing"
	"github.com/kurento-go/kms/videosampler/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Config is a VideoSampler's constructor parameters and what it needs of its element.
type Config struct {
	Period        time.Duration
	Width, Height int    // 0 keeps the source's; one of them alone keeps the aspect ratio
	Encoding      string // an ImageEncoding name: PNG, JPEG, BMP, PBM, PPM
	// EndpointURL is the gRPC target ("host:port"); "" delivers nothing, as KMS.
	EndpointURL string
	Metadata    string
	PipelineID  string
	// Tags gives the element's tags at each delivery.
	Tags func() []*pb.Tag
	// Delivered is called after each delivery attempt, with its outcome (SampleImageDelivered).
	Delivered func(ok bool)
	Log       *slog.Logger
}

// encoders are the GStreamer encoders of the ImageEncoding values.
var encoders = map[string]string{
	"PNG":  "pngenc snapshot=false",
	"JPEG": "jpegenc",
	"BMP":  "avenc_bmp",
	"PBM":  "avenc_pbm",
	"PPM":  "avenc_ppm",
}

// ErrEncoding is returned for an ImageEncoding whose encoder this server lacks.
var ErrEncoding = errors.New("image encoding not available")

// CheckEncoding tells whether images can be encoded as the named ImageEncoding here.
func CheckEncoding(name string) error {
	enc, ok := encoders[strings.ToUpper(name)]
	if !ok || !gst.HasElement(strings.Fields(enc)[0]) {
		return fmt.Errorf("%w: %s", ErrEncoding, name)
	}
	return nil
}

// deliverTimeout bounds one gRPC call: a stuck service must not pile images up.
const deliverTimeout = 5 * time.Second

// imagesName is the appsink of the image branch.
const imagesName = "vs_images"

// Sampler is a running VideoSampler.
type Sampler struct {
	cfg    Config
	filter *processing.Filter
	conn   *grpc.ClientConn
	client pb.ImageDeliverClient
	images chan []byte // to the delivery goroutine; full means an image is dropped
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

// describe is the sampling bin: rate and size first, then the sampled video both goes on (the
// element's output) and is encoded into images.
func describe(cfg Config, enc string) string {
	caps := fmt.Sprintf("video/x-raw,framerate=1000/%d", cfg.Period.Milliseconds())
	if cfg.Width > 0 {
		caps += fmt.Sprintf(",width=%d", cfg.Width)
	}
	if cfg.Height > 0 {
		caps += fmt.Sprintf(",height=%d", cfg.Height)
	}
	if cfg.Width > 0 || cfg.Height > 0 {
		caps += ",pixel-aspect-ratio=1/1"
	}
	return fmt.Sprintf("videorate ! videoscale ! capsfilter caps=\"%s\" ! tee name=vs_tee ! "+
		"queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0  "+
		"vs_tee. ! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! videoconvert ! %s ! "+
		"appsink name=%s sync=false async=false max-buffers=2 drop=true", caps, enc, imagesName)
}

// New starts sampling the video connected into e.
func New(e *media.Element, cfg Config) (*Sampler, error) {
	if cfg.Period <= 0 {
		return nil, fmt.Errorf("framePeriod must be positive")
	}
	if cfg.Width < 0 || cfg.Height < 0 {
		return nil, fmt.Errorf("width and height must not be negative")
	}
	if err := CheckEncoding(cfg.Encoding); err != nil {
		return nil, err
	}
	enc := encoders[strings.ToUpper(cfg.Encoding)]
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	bin, err := gst.ParseBin(describe(cfg, enc))
	if err != nil {
		return nil, err
	}
	s := &Sampler{cfg: cfg, images: make(chan []byte, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.EndpointURL != "" {
		// As KMS: a target gRPC cannot use is no error, the images are simply not delivered.
		if s.conn, err = grpc.NewClient(cfg.EndpointURL, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
			cfg.Log.Warn("VideoSampler: gRPC endpoint unusable, no image will be delivered", "url", cfg.EndpointURL, "err", err)
		} else {
			s.client = pb.NewImageDeliverClient(s.conn)
		}
	}
	s.filter, err = processing.NewFilter(e, processing.Config{Type: media.Video, Element: bin, Log: cfg.Log,
		Setup: func(p *gst.Pipeline) error { return p.HandleSink(imagesName, s.onImage) }})
	if err != nil {
		if s.conn != nil {
			s.conn.Close()
		}
		return nil, err
	}
	go s.deliver()
	return s, nil
}

// Filter is the GStreamer side, for getGstreamerDot.
func (s *Sampler) Filter() *processing.Filter { return s.filter }

// onImage runs on the appsink goroutine: it hands the image over without waiting.
func (s *Sampler) onImage(data []byte, _ time.Duration) {
	if s.client == nil {
		return
	}
	img := append([]byte(nil), data...)
	select {
	case s.images <- img:
	default: // the previous image is still being delivered: this one is dropped
	}
}

func (s *Sampler) deliver() {
	defer close(s.done)
	for {
		select {
		case <-s.stop:
			return
		case img := <-s.images:
			s.send(img)
		}
	}
}

func (s *Sampler) send(img []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), deliverTimeout)
	defer cancel()
	go func() { // Close cancels a call in progress
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req := &pb.SampleImage{
		Codec:      strings.ToUpper(s.cfg.Encoding),
		Data:       img,
		Timestamp:  time.Now().Format("Mon Jan _2 15:04:05 2006"), // C's ctime(), as KMS
		PipelineId: s.cfg.PipelineID,
		Metadata:   s.cfg.Metadata,
	}
	if s.cfg.Tags != nil {
		req.Tags = s.cfg.Tags()
	}
	_, err := s.client.DeliverImage(ctx, req)
	if err != nil {
		s.cfg.Log.Warn("VideoSampler: image not delivered", "url", s.cfg.EndpointURL, "err", err)
	}
	if s.cfg.Delivered != nil {
		s.cfg.Delivered(err == nil)
	}
}

// Close stops sampling and delivering.
func (s *Sampler) Close() {
	s.once.Do(func() {
		s.filter.Close()
		close(s.stop)
		<-s.done
		if s.conn != nil {
			s.conn.Close()
		}
	})
}
