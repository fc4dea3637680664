package media

import (
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// Latency measurement (MediaPipeline latencyStats). A source stamps the time each packet entered the
// pipeline (its producer's write; a pass-through or hub port passes its upstream's stamp on); the
// sink pads average the time it took to reach them (inputLatency), and the senders the time until
// it left toward their peer (E2ELatency). Off, it costs the packet path one atomic load, and never
// allocates.

// latencyAlpha is the weight of a new sample in the moving average, KMS's KMS_STATS_ALPHA.
const latencyAlpha = 0.25

// epoch is the origin of the monotonic clock the stamps are taken on.
var epoch = time.Now()

func monotonic() int64 { return int64(time.Since(epoch)) }

// SetLatencyStats turns latency measurement on or off for the whole pipeline; turned on, the
// averages start over.
func (p *Pipeline) SetLatencyStats(on bool) {
	if on && !p.latency.Load() {
		p.latencySince.Store(monotonic())
	}
	p.latency.Store(on)
}

// LatencyStats tells whether latencies are measured.
func (p *Pipeline) LatencyStats() bool { return p.latency.Load() }

// latencyAvg is a moving average of latencies, in nanoseconds, updated by one goroutine at a time
// (the packet goroutine of the source feeding the pad) and read by getStats.
type latencyAvg struct {
	avg  atomic.Uint64 // float64 bits
	last atomic.Int64  // monotonic time of the last sample, 0 before any
}

func (l *latencyAvg) add(d, now int64) {
	if d < 0 {
		d = 0
	}
	avg := float64(d)
	if l.last.Load() != 0 {
		avg = float64(d)*latencyAlpha + math.Float64frombits(l.avg.Load())*(1-latencyAlpha)
	}
	l.avg.Store(math.Float64bits(avg))
	l.last.Store(now)
}

// value is the average, and whether there was a sample since the measurement was turned on.
func (l *latencyAvg) value(since int64) (float64, bool) {
	if last := l.last.Load(); last == 0 || last < since {
		return 0, false
	}
	return math.Float64frombits(l.avg.Load()), true
}

// latencySampling: one packet in latencySampling is measured, which keeps the clock reads (a
// syscall on some virtual machines) off most packets; 30 fps video still gives ~20 samples a second.
const latencySampling = 8

// stamp records when the packet being written entered the pipeline, for the packets measured (0 on
// the others). Called by the source's writer before delivering.
func (s *Source) stamp() {
	if s.latency == nil || !s.latency.Load() {
		return
	}
	if up := s.upstream.Load(); up != nil {
		s.arrival.Store(up.arrival.Load()) // a pass-through re-emits: the packet entered upstream
		return
	}
	if s.stamped++; s.stamped%latencySampling != 0 {
		if s.arrival.Load() != 0 {
			s.arrival.Store(0)
		}
		return
	}
	s.arrival.Store(monotonic())
}

// arrivalStamp is when the packet src is delivering entered the pipeline, 0 when not measured.
func (s *Source) arrivalStamp() int64 {
	if s.latency == nil || !s.latency.Load() {
		return 0
	}
	return s.arrival.Load()
}

// MarkFrom records that a packet of src crossed the sink pad: flow, and latency when measured.
func (f *FlowMeter) MarkFrom(src *Source) {
	f.Mark()
	if at := src.arrivalStamp(); at != 0 {
		now := monotonic()
		f.input.add(now-at, now)
	}
}

// markSent records the end-to-end latency of a packet of src sent to the peer.
func (f *FlowMeter) markSent(src *Source) {
	if at := src.arrivalStamp(); at != 0 {
		now := monotonic()
		f.e2e.add(now-at, now)
	}
}

// LatencyStat is one average latency of an element, as KMS's MediaLatencyStat.
type LatencyStat struct {
	Name string
	Type Type
	Avg  float64 // nanoseconds
}

// Latencies are the element's average latencies while measured: from entering the pipeline to its
// sink pads (input, named as KMS names sink pads), and to leaving toward its peer (e2e, for the
// senders of endpoints). Both are empty when latencyStats is off.
func (e *Element) Latencies() (input, e2e []LatencyStat) {
	p := e.pipeline
	if !p.latency.Load() {
		return nil, nil
	}
	since := p.latencySince.Load()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.meters {
		if f.element != e || !f.in || f.typ == Data {
			continue
		}
		name := strings.ToLower(f.typ.String()) + "_" + f.pad
		if avg, ok := f.input.value(since); ok {
			input = append(input, LatencyStat{Name: "sink_" + name, Type: f.typ, Avg: avg})
		}
		if avg, ok := f.e2e.value(since); ok {
			e2e = append(e2e, LatencyStat{Name: name, Type: f.typ, Avg: avg})
		}
	}
	return input, e2e
}
