package elements

import (
	"time"

	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/processing"
	"github.com/kurento-go/kms/videosampler"
	"github.com/kurento-go/kms/videosampler/pb"
)

// videoSampler is the VideoSampler class of KMS's extras module: a filter element whose images go
// to a gRPC service.
type videoSampler struct {
	*filterElement
	sampler *videosampler.Sampler
}

// Close stops the pipeline, then the deliveries.
func (v *videoSampler) Close() {
	v.filterElement.Close()
	v.sampler.Close()
}

func (d *definer) defineVideoSampler() {
	d.r.Define("VideoSampler", objects.Class{New: func(b *objects.Base, a objects.Args) (objects.Object, error) {
		if a.Int("framePeriod") <= 0 {
			return nil, kerr.New(kerr.IllegalParam, "framePeriod must be a positive number of milliseconds")
		}
		if a.Int("width") < 0 || a.Int("height") < 0 {
			return nil, kerr.New(kerr.IllegalParam, "width and height must not be negative")
		}
		if err := videosampler.CheckEncoding(a.String("imageEncoding")); err != nil {
			return nil, kerr.New(kerr.IllegalParam, "%v", err)
		}
		v := &videoSampler{}
		cfg := videosampler.Config{
			Period:      time.Duration(a.Int("framePeriod")) * time.Millisecond,
			Width:       a.Int("width"),
			Height:      a.Int("height"),
			Encoding:    a.String("imageEncoding"),
			EndpointURL: a.String("endpointUrl"),
			Metadata:    a.String("metadata"),
			PipelineID:  b.PipelineID(),
			Tags: func() []*pb.Tag {
				var out []*pb.Tag
				for _, t := range b.Tags() {
					out = append(out, &pb.Tag{Key: t[0], Value: t[1]})
				}
				return out
			},
			Delivered: func(ok bool) { b.Emit("SampleImageDelivered", map[string]any{"delivered": ok}) },
		}
		var err error
		v.filterElement, err = d.newFilterElementWith(b, nil, func(e *media.Element, pc processing.Config) (*processing.Filter, error) {
			cfg.Log = pc.Log
			s, err := videosampler.New(e, cfg)
			if err != nil {
				return nil, err
			}
			v.sampler = s
			return s.Filter(), nil
		})
		if err != nil {
			return nil, err
		}
		return v, nil
	}})
}
