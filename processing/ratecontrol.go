package processing

import (
	"strings"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
)

// encName is the name of the video encoder in the filter and transcoder pipelines.
const encName = "kms_enc"

// rateCheckPeriod is how often an encoder's target is brought in line with its sinks.
const rateCheckPeriod = time.Second

// rateControl keeps a video encoder's target on what the sinks of its output take (their REMB and
// bandwidth limits), within the bounds of the element whose encoder bitrate applies. It runs on the
// pipeline's sink goroutine, once a second.
type rateControl struct {
	pipe    *gst.Pipeline
	prop    string // x264enc's "bitrate" is in kb/s, vpx encoders' "target-bitrate" in b/s
	kbps    bool
	bounds  func() media.EncoderBitrate
	sinks   func() uint64 // what the sinks of the encoded media take (bps, 0: no opinion)
	current int
	checked time.Time
}

// newRateControl controls the encoder of an output codec; nil for audio.
func newRateControl(pipe *gst.Pipeline, mime string, sinks func() uint64, bounds func() media.EncoderBitrate) *rateControl {
	if !strings.HasPrefix(strings.ToLower(mime), "video/") {
		return nil
	}
	rc := &rateControl{pipe: pipe, prop: "target-bitrate", bounds: bounds, sinks: sinks}
	if strings.EqualFold(mime, "video/H264") {
		rc.prop, rc.kbps = "bitrate", true
	}
	rc.current = bounds().For(0)
	return rc
}

func (rc *rateControl) unit(bps int) int {
	if rc.kbps {
		return max(bps/1000, 1)
	}
	return bps
}

// check sets a new target when the sinks' opinion or the element's bounds moved by more than 5%.
func (rc *rateControl) check(now time.Time) {
	if rc == nil || now.Sub(rc.checked) < rateCheckPeriod {
		return
	}
	rc.checked = now
	target := rc.bounds().For(rc.sinks())
	if d := target - rc.current; d*20 > rc.current || -d*20 > rc.current {
		if rc.pipe.SetValue(encName, rc.prop, rc.unit(target)) == nil {
			rc.current = target
		}
	}
}
