package media

import "math"

// DefaultEncoderBitrate is KMS's encoderBitrate: what an encoder aims at when nothing says otherwise.
const DefaultEncoderBitrate = 300000

// EncoderBitrate is an element's setting for the encoders of its media (transcoders, filters): Target
// when the sinks of the encoded media say nothing, what they take otherwise, always within Min and Max
// (bps; 0 = no bound). These are MediaElement's encoderBitrate, minEncoderBitrate and maxEncoderBitrate.
type EncoderBitrate struct{ Target, Min, Max int }

// For is the encoder's target given what its sinks take (bps, 0 = no opinion).
func (b EncoderBitrate) For(sinks uint64) int {
	t := b.Target
	if sinks > 0 {
		t = int(min(sinks, math.MaxInt32))
	}
	if t <= 0 {
		t = DefaultEncoderBitrate
	}
	if b.Min > 0 && t < b.Min {
		t = b.Min
	}
	if b.Max > 0 && t > b.Max {
		t = b.Max
	}
	return t
}

// SetEncoderBitrate sets the element's encoder bitrate; running encoders follow within a second.
func (e *Element) SetEncoderBitrate(b EncoderBitrate) { e.encoder.Store(&b) }

// EncoderBitrate is the element's encoder bitrate setting.
func (e *Element) EncoderBitrate() EncoderBitrate {
	if b := e.encoder.Load(); b != nil {
		return *b
	}
	return EncoderBitrate{Target: DefaultEncoderBitrate}
}

// EncoderBitrate is the setting of the element the source belongs to, for encoders of its media.
func (s *Source) EncoderBitrate() EncoderBitrate {
	if e := s.flow.element; e != nil {
		return e.EncoderBitrate()
	}
	return EncoderBitrate{Target: DefaultEncoderBitrate}
}
