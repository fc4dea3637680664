package processing

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
)

// MixerConfig is the output of a mixing hub (KMS's default: 800x600 at 15 fps) and where each
// port's video goes in it.
type MixerConfig struct {
	Width, Height, Framerate int
	// Layout places the video of the ports that send some; nil is the Composite's grid.
	Layout Layout
	// AudioOnly leaves the ports' video to the hub, which routes it without decoding (a Mixer):
	// the pipeline mixes audio only.
	AudioOnly bool
	// Hears tells whether the port sink hears the port source in its mix; nil is everyone else
	// (a Composite's mix-minus). Relayout applies a change.
	Hears func(sink, source *media.Element) bool
	Log   *slog.Logger
	// OnError receives the Error events of the hub (its mixing worker died, or was restarted).
	OnError func(media.ErrorEvent)
}

// Tile is where a port's video goes in the mix, in pixels; higher Z is drawn over lower. A zero
// width hides the port.
type Tile struct{ X, Y, W, H, Z int }

// Layout places the video of ports (the HubPort elements that send video, in join order) in a mix
// of width x height.
type Layout func(width, height int, ports []*media.Element) []Tile

// GridLayout is the Composite's: KMS's grid of ceil(sqrt(n)) columns, filled row by row.
func GridLayout(width, height int, ports []*media.Element) []Tile {
	cols, rows := 1, 1
	for cols*cols < len(ports) {
		cols++
	}
	if len(ports) > 0 {
		rows = (len(ports) + cols - 1) / cols
	}
	w, h := width/cols, height/rows
	out := make([]Tile, len(ports))
	for k := range ports {
		out[k] = Tile{X: (k % cols) * w, Y: (k / cols) * h, W: w, H: h, Z: 1}
	}
	return out
}

// mixerActive is how recently a port's video must have come for the port to have a place in the grid.
const mixerActive = 2 * time.Second

// Mixer is the media of a Composite hub: the video of the ports that send video, laid out in a grid
// as KMS lays it out (ceil(sqrt(n)) columns), encoded once and sent out of every port; and for each
// port the audio of all the other ports mixed. Joins and leaves rebuild the GStreamer pipeline (a
// short freeze for everyone, as the grid changes anyway); the outputs keep one continuous RTP stream
// across rebuilds.
type Mixer struct {
	cfg    MixerConfig
	bounds func() media.EncoderBitrate

	mu     sync.Mutex
	ports  []*mixPort
	run    atomic.Pointer[mixRun] // read by the inputs without m.mu: a rebuild must not stall them
	layout string                 // the video ports of the running pipeline, by their index
	closed bool
	stop   chan struct{}
	done   chan struct{}
	// kick asks the watch goroutine for a rebuild. Starting a pipeline takes from tens of
	// milliseconds to seconds on a loaded machine; joins and leaves must not wait for it, and a burst
	// of them coalesces into one rebuild.
	kick chan struct{}

	restarts  Restarts
	restarted *gst.Error // a crash whose restart the next rebuild reports
}

// mixPort is one HubPort of the Composite.
type mixPort struct {
	el   *media.Element
	in   [2]*mixInput // by media.Audio, media.Video
	outs [2]*continuousOutput
}

// NewMixer starts a Composite's mixing; bounds gives the Composite's encoder bitrate.
func NewMixer(cfg MixerConfig, bounds func() media.EncoderBitrate) *Mixer {
	if cfg.Width <= 0 || cfg.Height <= 0 {
		cfg.Width, cfg.Height = 800, 600
	}
	if cfg.Framerate <= 0 {
		cfg.Framerate = 15
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Layout == nil {
		cfg.Layout = GridLayout
	}
	if cfg.Hears == nil {
		cfg.Hears = func(sink, source *media.Element) bool { return sink != source }
	}
	m := &Mixer{cfg: cfg, bounds: bounds, stop: make(chan struct{}), done: make(chan struct{}), kick: make(chan struct{}, 1)}
	go m.watch()
	return m
}

// AddPort makes el (a HubPort element) a port: what is connected into it is mixed, and the mix
// comes out of its source pads.
func (m *Mixer) AddPort(el *media.Element) {
	p := &mixPort{el: el}
	for _, t := range m.types() {
		p.in[t] = newMixInput(m, p, t)
		p.outs[t] = &continuousOutput{src: el.Source(t, media.DefaultPad), ssrc: rand.Uint32()}
		p.outs[t].src.SetCodec(mixCodec(t))
	}
	if !m.cfg.AudioOnly {
		p.outs[media.Video].src.EnableCache()
		p.outs[media.Video].src.SetKeyframeRequester(m.requestKeyframe)
	}
	m.mu.Lock()
	m.ports = append(m.ports, p)
	m.mu.Unlock()
	for _, t := range m.types() {
		media.Tap(el, t, p.in[t])
	}
	m.requestRebuild()
}

// types are the media types the mixer mixes.
func (m *Mixer) types() []media.Type {
	if m.cfg.AudioOnly {
		return []media.Type{media.Audio}
	}
	return []media.Type{media.Audio, media.Video}
}

// Relayout applies a change of the layout's own settings (an AlphaBlending's master or port
// properties).
func (m *Mixer) Relayout() { m.requestRebuild() }

// requestRebuild has the pipeline rebuilt for the current ports and layout, soon and without waiting.
func (m *Mixer) requestRebuild() {
	select {
	case m.kick <- struct{}{}:
	default: // a rebuild is already asked for; it will see this change too
	}
}

// RemovePort takes el out of the mix.
func (m *Mixer) RemovePort(el *media.Element) {
	m.mu.Lock()
	var gone *mixPort
	for i, p := range m.ports {
		if p.el == el {
			gone = p
			m.ports = append(m.ports[:i:i], m.ports[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
	if gone == nil {
		return
	}
	for _, t := range m.types() {
		media.Untap(el, t, gone.in[t])
		gone.in[t].conv.Link(nil)
	}
	if !m.cfg.AudioOnly {
		gone.outs[media.Video].src.SetKeyframeRequester(nil)
	}
	m.requestRebuild()
}

// Close stops the mixing.
func (m *Mixer) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	run := m.run.Swap(nil)
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	if run != nil {
		run.close()
	}
}

// watch rebuilds the pipeline when asked and when a port starts or stops sending video, so that the
// grid holds the ports that show something. It is the only goroutine that rebuilds.
func (m *Mixer) watch() {
	defer close(m.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.kick:
			m.rebuild()
		case <-t.C:
			m.mu.Lock()
			changed := !m.closed && m.videoLayout(time.Now()) != m.layout
			m.mu.Unlock()
			if changed {
				m.rebuild()
			}
		}
	}
}

// videoLayout names the ports whose video came recently; the caller holds m.mu.
func (m *Mixer) videoLayout(now time.Time) string {
	var b strings.Builder
	for i, p := range m.ports {
		if in := p.in[media.Video]; in != nil && now.Sub(time.Unix(0, in.lastAt.Load())) < mixerActive {
			fmt.Fprintf(&b, "%d,", i)
		}
	}
	return b.String()
}

// workerCrashed reports a dead mixing worker and, with --gst-worker-restart, mixes again in a new one.
func (m *Mixer) workerCrashed(e *gst.Error) {
	restart, why := m.restarts.Allow(e)
	if m.cfg.OnError != nil {
		m.cfg.OnError(CrashedEvent(e, "mixer", why))
	}
	if !restart {
		return
	}
	m.mu.Lock()
	m.restarted = e
	m.mu.Unlock()
	m.requestRebuild()
}

// rebuild replaces the pipeline with one for the current ports. Only the watch goroutine calls it, so
// rebuilds never overlap, and m.mu is not held while the new pipeline starts: ports come and go
// meanwhile, and the next rebuild (asked for by their change) picks them up.
func (m *Mixer) rebuild() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	layout := m.videoLayout(time.Now())
	ports := append([]*mixPort(nil), m.ports...)
	var video []int
	var els []*media.Element
	for i, p := range ports {
		if strings.Contains(","+layout, fmt.Sprintf(",%d,", i)) {
			video = append(video, i)
			els = append(els, p.el)
		}
	}
	restarted := m.restarted
	m.restarted = nil
	m.mu.Unlock()

	var shown []shownVideo
	for k, pl := range m.cfg.Layout(m.cfg.Width, m.cfg.Height, els) {
		if pl.W > 0 && pl.H > 0 {
			shown = append(shown, shownVideo{port: video[k], at: pl})
		}
	}

	var run *mixRun
	if len(ports) > 0 {
		var err error
		if run, err = startMixRun(m, ports, shown); err != nil {
			m.cfg.Log.Error("composite pipeline", "err", err)
		}
	}

	m.mu.Lock()
	if m.closed { // Close came while the pipeline started: it is nobody's
		m.mu.Unlock()
		if run != nil {
			run.close()
		}
		return
	}
	old := m.run.Swap(run)
	m.layout = layout
	m.mu.Unlock()
	if old != nil {
		old.close()
	}
	if restarted != nil && run != nil && m.cfg.OnError != nil {
		m.cfg.OnError(RestartedEvent(restarted, "mixer"))
	}
	for _, p := range ports {
		if in := p.in[media.Video]; in != nil {
			in.requestKeyframe() // the new decoders start on a keyframe
		}
	}
}

// Dot is the GStreamer graph of the running mixing pipeline ("" when none runs).
func (m *Mixer) Dot(details uint) string {
	if run := m.run.Load(); run != nil {
		return run.pipe.Dot(details)
	}
	return ""
}

func (m *Mixer) requestKeyframe() {
	if run := m.run.Load(); run != nil {
		_ = run.pipe.ForceKeyUnit("vout")
	}
}

func mixCodec(t media.Type) *media.Codec {
	if t == media.Audio {
		return Opus
	}
	return VP8
}

// mixInput is a sink pad of a port: its packets go to the port's appsrc in the running pipeline,
// through a transcoder when they are not VP8 or Opus.
type mixInput struct {
	m      *Mixer
	port   *mixPort
	kind   media.Type
	cur    atomic.Pointer[media.Source]
	lastAt atomic.Int64 // unix nanos of the last packet
	conv   media.Converter

	mu  sync.Mutex // two sources may overlap for a packet during a switch
	buf [1600]byte
}

func newMixInput(m *Mixer, p *mixPort, t media.Type) *mixInput {
	in := &mixInput{m: m, port: p, kind: t}
	want := mixCodec(t)
	in.conv = media.Converter{
		Accepts: func(c *media.Codec) bool { return strings.EqualFold(c.MimeType, want.MimeType) },
		Target:  func(media.Type) media.Codec { return *want },
		Deliver: in.push,
	}
	return in
}

func (in *mixInput) WriteRTP(src *media.Source, p *rtp.Packet) {
	if in.cur.Load() != src || !in.conv.Direct(src) {
		return
	}
	if acceptable(&in.conv, src) {
		in.push(src, p)
	}
}

func (in *mixInput) SetSource(src *media.Source) {
	in.cur.Store(src)
	in.conv.Link(src)
}

// push hands a packet to the running pipeline, stamped there on arrival: a live mixer places its
// inputs on the pipeline's clock.
func (in *mixInput) push(_ *media.Source, p *rtp.Packet) {
	in.lastAt.Store(time.Now().UnixNano())
	run := in.m.run.Load()
	if run == nil {
		return
	}
	idx, ok := run.index[in.port]
	src := run.input(idx, in.kind)
	if !ok || src == nil {
		return
	}
	in.mu.Lock()
	n, err := p.MarshalTo(in.buf[:])
	if err == nil && n > 1 {
		in.buf[1] = in.buf[1]&0x80 | filterPT(in.kind)
		_ = src.Push(in.buf[:n])
	}
	in.mu.Unlock()
}

func (in *mixInput) requestKeyframe() {
	if !in.conv.RequestKeyframe() {
		if src := in.cur.Load(); src != nil {
			src.RequestKeyframe()
		}
	}
}

// mixRun is one GStreamer pipeline of the mixer, for a fixed set of ports.
type mixRun struct {
	pipe   *gst.Pipeline
	inputs map[string]*gst.AppSrc
	index  map[*mixPort]int
	vpkt   rtp.Packet   // the video sink goroutine's
	rate   *rateControl // the video sink goroutine's
	apkts  []rtp.Packet
}

func (r *mixRun) input(idx int, t media.Type) *gst.AppSrc {
	return r.inputs[inputName(idx, t)]
}

func inputName(idx int, t media.Type) string {
	if t == media.Audio {
		return fmt.Sprintf("ain_%d", idx)
	}
	return fmt.Sprintf("vin_%d", idx)
}

// shownVideo is a port whose video is in the mix, and where.
type shownVideo struct {
	port int // index in the run's ports
	at   Tile
}

// describeMix is the pipeline: the shown video over a black background that keeps the output going,
// and per port a mix of the other ports' audio over silence.
func describeMix(cfg MixerConfig, ports []*mixPort, video []shownVideo, bitrate int) string {
	var parts []string
	if !cfg.AudioOnly {
		parts = describeVideoMix(cfg, video, bitrate)
	}
	nports := len(ports)
	const audioRaw = "audio/x-raw,rate=48000,channels=2"
	for i := 0; i < nports; i++ {
		parts = append(parts, fmt.Sprintf("appsrc name=%s is-live=true do-timestamp=true format=time max-bytes=1000000 leaky-type=downstream "+
			"caps=\"application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=%d\" ! "+
			"rtpopusdepay ! opusdec plc=true ! audioconvert ! audioresample ! %s ! tee name=atee_%d allow-not-linked=true",
			inputName(i, media.Audio), filterAudioPT, audioRaw, i))
		parts = append(parts, fmt.Sprintf("audiomixer name=amix_%d latency=200000000 ! audioconvert ! opusenc bitrate=32000 ! "+
			"rtpopuspay pt=%d mtu=1200 ! appsink name=aout_%d sync=false async=false max-buffers=200 drop=true", i, filterAudioPT, i))
		parts = append(parts, fmt.Sprintf("audiotestsrc is-live=true wave=silence ! %s ! amix_%d.", audioRaw, i))
	}
	for i := 0; i < nports; i++ {
		for j := 0; j < nports; j++ {
			if cfg.Hears(ports[j].el, ports[i].el) {
				parts = append(parts, fmt.Sprintf("atee_%d. ! queue leaky=downstream max-size-time=200000000 ! amix_%d.", i, j))
			}
		}
	}
	return strings.Join(parts, "  ")
}

// describeVideoMix is the video part of the pipeline: the shown video over a black background.
func describeVideoMix(cfg MixerConfig, video []shownVideo, bitrate int) []string {
	var parts []string
	raw := fmt.Sprintf("video/x-raw,width=%d,height=%d,framerate=%d/1", cfg.Width, cfg.Height, cfg.Framerate)
	mix := "compositor name=vmix background=black latency=200000000 sink_0::zorder=0"
	for k, v := range video {
		mix += fmt.Sprintf(" sink_%d::xpos=%d sink_%d::ypos=%d sink_%d::zorder=%d", k+1, v.at.X, k+1, v.at.Y, k+1, v.at.Z+1)
	}
	parts = append(parts, mix+" ! "+raw+" ! videoconvert ! vp8enc name="+encName+" deadline=1 cpu-used=8 lag-in-frames=0 end-usage=cbr "+
		fmt.Sprintf("target-bitrate=%d keyframe-max-dist=%d error-resilient=default threads=2 ! ", bitrate, 4*cfg.Framerate)+
		fmt.Sprintf("rtpvp8pay pt=%d mtu=1200 picture-id-mode=15-bit ! appsink name=vout sync=false async=false max-buffers=200 drop=true", filterVideoPT))
	parts = append(parts, "videotestsrc is-live=true pattern=black ! "+raw+" ! vmix.sink_0")
	for k, v := range video {
		parts = append(parts, fmt.Sprintf("appsrc name=%s is-live=true do-timestamp=true format=time max-bytes=4000000 leaky-type=downstream "+
			"caps=\"application/x-rtp,media=video,clock-rate=90000,encoding-name=VP8,payload=%d\" ! "+
			"rtpvp8depay request-keyframe=true wait-for-keyframe=true ! vp8dec ! videoconvert ! videoscale add-borders=true ! "+
			"video/x-raw,width=%d,height=%d,pixel-aspect-ratio=1/1 ! queue leaky=downstream max-size-buffers=2 max-size-bytes=0 max-size-time=0 ! vmix.sink_%d",
			inputName(v.port, media.Video), filterVideoPT, v.at.W, v.at.H, k+1))
	}
	return parts
}

func startMixRun(m *Mixer, ports []*mixPort, video []shownVideo) (*mixRun, error) {
	b := m.bounds()
	desc := describeMix(m.cfg, ports, video, b.For(0))
	pipe, err := gst.NewPipeline(desc)
	if err != nil {
		return nil, err
	}
	r := &mixRun{pipe: pipe, inputs: map[string]*gst.AppSrc{}, index: map[*mixPort]int{}, apkts: make([]rtp.Packet, len(ports))}
	for i, p := range ports {
		r.index[p] = i
	}
	names := []string{}
	for _, v := range video {
		names = append(names, inputName(v.port, media.Video))
	}
	for i := range ports {
		names = append(names, inputName(i, media.Audio))
	}
	for _, name := range names {
		src, err := pipe.AppSrc(name)
		if err != nil {
			pipe.Close()
			return nil, err
		}
		r.inputs[name] = src
	}
	if !m.cfg.AudioOnly {
		if err := r.handleVideo(m, ports); err != nil {
			pipe.Close()
			return nil, err
		}
	}
	for i, p := range ports {
		i, p := i, p
		if err := pipe.HandleSink(fmt.Sprintf("aout_%d", i), func(data []byte, _ time.Duration) {
			if r.apkts[i].Unmarshal(data) == nil {
				p.outs[media.Audio].write(r, &r.apkts[i])
			}
		}); err != nil {
			pipe.Close()
			return nil, err
		}
	}
	pipe.OnMessage(func(msg gst.Message) {
		if msg.Type == gst.MessageError {
			m.cfg.Log.Warn("composite pipeline error", "err", msg.Err)
			if errors.Is(msg.Err, gst.ErrWorkerCrashed) {
				m.workerCrashed(msg.Err)
			}
		}
	})
	if err := pipe.Start(); err != nil {
		pipe.Close()
		return nil, err
	}
	return r, nil
}

// handleVideo sends the one encoded mix out of every port.
func (r *mixRun) handleVideo(m *Mixer, ports []*mixPort) error {
	// One encoder for every port: it follows the port whose viewers take the most, as forwarding does.
	r.rate = newRateControl(r.pipe, "video/VP8", func() uint64 {
		var best uint64
		for _, p := range ports {
			best = max(best, p.outs[media.Video].src.SinkBitrate())
		}
		return best
	}, m.bounds)
	return r.pipe.HandleSink("vout", func(data []byte, _ time.Duration) {
		if r.vpkt.Unmarshal(data) != nil {
			return
		}
		for _, p := range ports {
			pkt := r.vpkt
			p.outs[media.Video].write(r, &pkt)
		}
		r.rate.check(time.Now())
	})
}

func (r *mixRun) close() { r.pipe.Close() }
