// Package isolation measures what running GStreamer in worker processes costs (issue 12): the server's
// CPU per transcoded stream and per filtered stream, and the latency through the transcoder or the
// filter, with KMS_GST_WORKERS=in-process (GStreamer inside the server, as before workers), element
// (a worker per pipeline) and pool:2, in one run. `make bench-workers` runs it and keeps the table in
// bench/results/workers/ (bench/README.md).
//
// Each mode gets a server of its own (the built binary, so that its CPU is its own and its workers'
// only), and all of a scenario's servers stream at once. A stream is a publisher (pion, a real VP8
// clip at 30 fps) → WebRtcEndpoint → either an RtpEndpoint whose peer takes H.264 only (the server
// transcodes VP8 → H.264) or a GStreamerFilter (videoflip: decode, flip, encode VP8) → an RtpEndpoint
// taking VP8; the RTP peer is a UDP socket of the benchmark.
//
// CPU: utime + stime of the server and all its descendants (the workers) per stream, over the whole
// window and over each of its rounds: the ratio to in-process is the median of the rounds' ratios,
// with their range. threads.txt splits each server's CPU and context switches by thread name.
// Latency: the publisher stamps each frame's RTP timestamp with its send time; the server's output
// timestamps are those plus a constant, which the benchmark finds from gaps it puts in the stream
// (every second it holds a frame back for 200 ms, with the timestamps going on as for a real pause,
// so the decoders lose nothing). Latency = arrival of the frame's last packet − send time, over the
// whole path (WebRTC in, GStreamer, RTP out): the modes differ only by the GStreamer hop.
package isolation

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	pionrtp "github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// Knobs (environment): ISOLATION_STREAMS streams per mode and scenario (2 transcode, 1 filter: every
// mode streams at once, and three modes × two filters would overload two cores), ISOLATION_WINDOW
// measured seconds (60), ISOLATION_ROUNDS windows it is cut into (6), ISOLATION_MODES
// (in-process,element,pool:2; mode@path runs another build of the server in that mode, an A/B of
// two builds over the same rounds), ISOLATION_SCENARIOS (transcode,filter), ISOLATION_OUT a directory for
// table.txt, threads.txt and results.json, ISOLATION_PERF a directory for perf samples.
type knobs struct {
	streams   map[string]int
	window    time.Duration
	rounds    int
	modes     []string
	scenarios []string
}

func readKnobs() knobs {
	k := knobs{streams: map[string]int{"transcode": 2, "filter": 1}, window: 60 * time.Second, rounds: 6,
		modes: []string{"in-process", "element", "pool:2"}, scenarios: []string{"transcode", "filter"}}
	if n, err := strconv.Atoi(os.Getenv("ISOLATION_STREAMS")); err == nil && n > 0 {
		k.streams = map[string]int{"transcode": n, "filter": n}
	}
	if s, err := strconv.Atoi(os.Getenv("ISOLATION_WINDOW")); err == nil && s > 0 {
		k.window = time.Duration(s) * time.Second
	}
	if n, err := strconv.Atoi(os.Getenv("ISOLATION_ROUNDS")); err == nil && n > 0 {
		k.rounds = n
	}
	if v := os.Getenv("ISOLATION_MODES"); v != "" {
		k.modes = strings.Split(v, ",")
	}
	if v := os.Getenv("ISOLATION_SCENARIOS"); v != "" {
		k.scenarios = strings.Split(v, ",")
	}
	return k
}

const (
	settle    = 3 * time.Second // after every stream has media, before the window
	pauseEach = 30              // frames between two held-back frames
	pauseFor  = 200 * time.Millisecond
)

// result is one mode × scenario.
type result struct {
	Mode       string    `json:"mode"`
	Scenario   string    `json:"scenario"`
	Streams    int       `json:"streams"`
	WindowS    float64   `json:"window_s"`
	CPUPerStrm float64   `json:"cpu_core_per_stream"` // cores (1.0 = one core busy) per stream, over the whole window
	Rounds     []float64 `json:"cpu_core_per_stream_rounds"`
	// Ratio to in-process: the median of the rounds' ratios (each round measures every mode over the
	// same seconds) and their range, the spread a single figure hides.
	Ratio      float64 `json:"cpu_ratio_median,omitempty"`
	RatioMin   float64 `json:"cpu_ratio_min,omitempty"`
	RatioMax   float64 `json:"cpu_ratio_max,omitempty"`
	Workers    int     `json:"workers"` // worker processes during the window
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	Samples    int     `json:"latency_samples"`
	FramesOut  int64   `json:"frames_out"`        // frames the RTP peers received in the window
	CPUPerFrm  float64 `json:"cpu_ms_per_frame"`  // server CPU per frame delivered: comparable when a loaded machine makes pipelines drop
	Load1      float64 `json:"load_average_1min"` // the machine's, at the end of the window (others' work adds noise)
}

// BenchmarkIsolation runs, per scenario, one server per mode with its streams all at once and
// measures them over the same seconds: load from elsewhere on the machine hits every mode alike, so
// the ratios hold on a busy machine where runs one after another swing by ±20 %.
func BenchmarkIsolation(b *testing.B) {
	testmedia.NeedFFmpeg(b)
	k := readKnobs()
	bin := buildServer(b)
	clip := testmedia.VP8Clip(b, "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30")
	frames, err := testmedia.IVFFrames(clip)
	if err != nil {
		b.Fatal(err)
	}
	var results []result
	var threads strings.Builder
	for _, scenario := range k.scenarios {
		b.Run(scenario, func(b *testing.B) {
			var runs []*modeRun
			for _, mode := range k.modes {
				mbin, mname := bin, mode
				if i := strings.Index(mode, "@"); i > 0 {
					mname, mbin = mode[:i], mode[i+1:]
				}
				runs = append(runs, setup(b, startServer(b, mbin, mname), mode, scenario, frames, k.streams[scenario]))
			}
			measure(b, runs, k.window, k.rounds)
			for _, r := range runs {
				results = append(results, r.res)
				fmt.Fprintf(&threads, "%s, %s (%d streams):\n%s\n", r.res.Mode, scenario, r.res.Streams, r.threads)
				b.ReportMetric(r.res.CPUPerStrm*100, strings.ReplaceAll(r.res.Mode, ":", "")+"-cpu%/stream")
			}
		})
	}
	table := render(results)
	b.Log("\n" + table + "\nCPU by thread name over the window (x264/vpx threads are named after the element thread that started them):\n" + threads.String())
	if dir := os.Getenv("ISOLATION_OUT"); dir != "" {
		js, _ := json.MarshalIndent(results, "", "  ")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644)
		os.WriteFile(filepath.Join(dir, "table.txt"), []byte(table), 0o644)
		os.WriteFile(filepath.Join(dir, "threads.txt"), []byte(threads.String()), 0o644)
	}
}

// render is the table, with each worker mode's ratio to in-process.
func render(rs []result) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-10s %-9s %7s %12s %10s %8s %9s %13s %12s %8s %5s  %s\n", "mode", "scenario", "streams", "cpu%/stream",
		"cpu ms/fr", "workers", "fps/strm", "latency p50", "latency p99", "samples", "load",
		"vs in-process: cpu/stream median of rounds [min–max], cpu/frame, p50")
	for _, r := range rs {
		ratio := "-"
		for _, base := range rs {
			if base.Mode == "in-process" && base.Scenario == r.Scenario && r.Mode != "in-process" && base.CPUPerFrm > 0 {
				ratio = fmt.Sprintf("×%.2f [%.2f–%.2f], ×%.2f, %+.1f ms", r.Ratio, r.RatioMin, r.RatioMax,
					r.CPUPerFrm/base.CPUPerFrm, r.LatencyP50-base.LatencyP50)
			}
		}
		fps := float64(r.FramesOut) / r.WindowS / float64(max(r.Streams, 1))
		fmt.Fprintf(&sb, "%-10s %-9s %7d %12.1f %10.2f %8d %9.1f %10.1f ms %9.1f ms %8d %5.1f  %s\n", r.Mode, r.Scenario,
			r.Streams, r.CPUPerStrm*100, r.CPUPerFrm, r.Workers, fps, r.LatencyP50, r.LatencyP99, r.Samples, r.Load1, ratio)
	}
	return sb.String()
}

func buildServer(b *testing.B) string {
	bin := filepath.Join(b.TempDir(), "kurento-media-server")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kurento-media-server")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type server struct {
	url string
	pid int
}

// startServer runs the binary with KMS_GST_WORKERS=mode on a free port until the benchmark ends.
func startServer(b *testing.B, bin, mode string) *server {
	dir := b.TempDir()
	port := testserver.FreePort(b)
	conf := fmt.Sprintf(`{"mediaServer":{"net":{"websocket":{"port":%d,"path":"kurento"}}}}`, port)
	if err := os.WriteFile(filepath.Join(dir, "kurento.conf.json"), []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", filepath.Join(dir, "kurento.conf.json"))
	cmd.Env = append(os.Environ(), "KMS_GST_WORKERS="+mode, "GST_DEBUG=1")
	cmd.Dir = dir
	if testing.Verbose() {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	url := fmt.Sprintf("ws://127.0.0.1:%d/kurento", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c, err := client.Dial(ctx, url)
		cancel()
		if err == nil {
			c.Close()
			return &server{url: url, pid: cmd.Process.Pid}
		}
		if time.Now().After(deadline) {
			b.Fatalf("server (%s) not up: %v", mode, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// modeRun is one server's streams of a scenario, and what was measured of them.
type modeRun struct {
	srv     *server
	outs    []*rtpPeer
	pubs    []*publisher
	res     result
	threads string
}

// setup builds streams streams of the scenario on srv; the benchmark's cleanup releases them.
func setup(b *testing.B, srv *server, mode, scenario string, frames [][]byte, streams int) *modeRun {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.Dial(ctx, srv.url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	m := &modeRun{srv: srv, res: result{Mode: mode, Scenario: scenario, Streams: streams}}
	for range streams {
		pipeline, err := c.Create(ctx, "MediaPipeline", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Release(context.Background(), pipeline) })
		pub := newPublisher(b, frames)
		b.Cleanup(pub.close)
		create := func(typ string, extra map[string]any) string {
			p := map[string]any{"mediaPipeline": pipeline}
			for k, v := range extra {
				p[k] = v
			}
			id, err := c.Create(ctx, typ, p)
			if err != nil {
				b.Fatalf("create %s: %v", typ, err)
			}
			return id
		}
		ep := create("WebRtcEndpoint", nil)
		codec := "VP8"
		last := ep
		if scenario == "transcode" {
			codec = "H264"
		} else {
			filter := create("GStreamerFilter", map[string]any{"command": "videoflip method=horizontal-flip"})
			invoke(b, ctx, c, ep, "connect", map[string]any{"sink": filter})
			last = filter
		}
		out := newRTPPeer(b, pub)
		rtpEp := create("RtpEndpoint", nil)
		var answer string
		if err := c.Invoke(ctx, rtpEp, "processOffer", map[string]any{"offer": out.offer(codec)}, &answer); err != nil {
			b.Fatal(err)
		}
		invoke(b, ctx, c, last, "connect", map[string]any{"sink": rtpEp})
		pub.peer.Endpoint = ep
		if err := pub.peer.Negotiate(ctx, c, false); err != nil {
			b.Fatal(err)
		}
		m.outs, m.pubs = append(m.outs, out), append(m.pubs, pub)
	}
	return m
}

// measure starts every publisher, waits for media on every stream, settles, and measures all runs
// over rounds consecutive windows that cover window: each round reads every server's CPU at its
// start and end, so the rounds' ratios compare modes over the same seconds.
func measure(b *testing.B, runs []*modeRun, window time.Duration, rounds int) {
	for _, m := range runs {
		for _, p := range m.pubs {
			p.start()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range runs {
		for _, o := range m.outs {
			for o.frames.Load() == 0 {
				if time.Now().After(deadline) {
					b.Fatalf("%s %s: a stream got no media within 30 s", m.res.Mode, m.res.Scenario)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	time.Sleep(settle) // a benchmark's warm-up, not a test's wait
	threads0 := make([]map[string]map[int]threadStat, len(runs))
	cpu := make([][]time.Duration, len(runs)) // per run, the CPU at each round's boundary
	stopPerf := make([]func(), len(runs))
	for i, m := range runs {
		for _, o := range m.outs {
			o.startWindow()
		}
		threads0[i] = threadSnapshot(m.srv.pid)
		stopPerf[i] = perfRecord(b, m.srv.pid, m.res.Mode+"-"+m.res.Scenario)
		cpu[i] = []time.Duration{treeCPU(m.srv.pid)}
	}
	start := time.Now()
	for r := 1; r <= rounds; r++ {
		time.Sleep(time.Until(start.Add(window * time.Duration(r) / time.Duration(rounds))))
		for i, m := range runs {
			cpu[i] = append(cpu[i], treeCPU(m.srv.pid))
		}
	}
	took := time.Since(start)
	round := took.Seconds() / float64(rounds)
	var load float64
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load, _ = strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	}
	for i, m := range runs {
		stopPerf[i]()
		m.threads = threadReport(threads0[i], threadSnapshot(m.srv.pid), took.Seconds())
		r := &m.res
		r.WindowS, r.Load1, r.Workers = took.Seconds(), load, len(descendants(m.srv.pid))
		total := cpu[i][rounds] - cpu[i][0]
		r.CPUPerStrm = total.Seconds() / took.Seconds() / float64(r.Streams)
		for j := 1; j <= rounds; j++ {
			r.Rounds = append(r.Rounds, (cpu[i][j]-cpu[i][j-1]).Seconds()/round/float64(r.Streams))
		}
		var lat []float64
		for _, o := range m.outs {
			l, n := o.take()
			lat = append(lat, l...)
			r.FramesOut += n
		}
		if r.FramesOut > 0 {
			r.CPUPerFrm = float64(total.Microseconds()) / 1000 / float64(r.FramesOut)
		}
		slices.Sort(lat)
		if len(lat) > 0 {
			r.LatencyP50, r.LatencyP99, r.Samples = lat[len(lat)/2], lat[len(lat)*99/100], len(lat)
		}
	}
	for _, m := range runs {
		if base := runs[0].res; base.Mode == "in-process" && m != runs[0] {
			m.res.Ratio, m.res.RatioMin, m.res.RatioMax = ratios(m.res.Rounds, base.Rounds)
		}
	}
}

// ratios is the median, minimum and maximum of the per-round ratios of a to base.
func ratios(a, base []float64) (median, lo, hi float64) {
	var rs []float64
	for i := range min(len(a), len(base)) {
		if base[i] > 0 {
			rs = append(rs, a[i]/base[i])
		}
	}
	if len(rs) == 0 {
		return 0, 0, 0
	}
	slices.Sort(rs)
	median = rs[len(rs)/2]
	if len(rs)%2 == 0 {
		median = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return median, rs[0], rs[len(rs)-1]
}

func invoke(b *testing.B, ctx context.Context, c *client.Client, obj, op string, params map[string]any) {
	if err := c.Invoke(ctx, obj, op, params, nil); err != nil {
		b.Fatalf("%s: %v", op, err)
	}
}

// publisher sends the clip in real time, holding one frame back for pauseFor every pauseEach frames;
// it remembers when it sent each RTP timestamp.
type publisher struct {
	peer   *testpeer.Peer
	track  *webrtc.TrackLocalStaticRTP
	pz     pionrtp.Packetizer
	frames [][]byte
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	sent   map[uint32]time.Time // RTP timestamp → send time
	resume []uint32             // timestamps of the held-back frames
}

func newPublisher(b *testing.B, frames [][]byte) *publisher {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		b.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pub")
	if err != nil {
		b.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		b.Fatal(err)
	}
	go func() { // RTCP must be read; the clip has a keyframe every second, PLIs need no answer
		for {
			if _, _, err := sender.ReadRTCP(); err != nil {
				return
			}
		}
	}()
	pz := pionrtp.NewPacketizer(1200, 96, 1, &codecs.VP8Payloader{EnablePictureID: true}, pionrtp.NewRandomSequencer(), 90000)
	return &publisher{peer: &testpeer.Peer{PC: pc}, track: track, pz: pz, frames: frames, stop: make(chan struct{}),
		sent: map[uint32]time.Time{}}
}

func (p *publisher) start() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		frame := time.Second / 30
		next := time.Now()
		for i := 0; ; i++ {
			d := frame
			if i%pauseEach == pauseEach-1 {
				d += pauseFor // the next frame's timestamp and send time are that much later
			}
			select {
			case <-p.stop:
				return
			case <-time.After(time.Until(next)):
			}
			pkts := p.pz.Packetize(p.frames[i%len(p.frames)], uint32(d.Seconds()*90000+0.5))
			if len(pkts) == 0 {
				continue
			}
			p.mu.Lock()
			p.sent[pkts[0].Timestamp] = time.Now()
			if i%pauseEach == 0 && i > 0 {
				p.resume = append(p.resume, pkts[0].Timestamp)
			}
			p.mu.Unlock()
			for _, pkt := range pkts {
				p.track.WriteRTP(pkt)
			}
			next = next.Add(d)
		}
	}()
}

func (p *publisher) close() {
	close(p.stop)
	p.wg.Wait()
	p.peer.PC.Close()
}

// rtpPeer is the RtpEndpoint's peer: a UDP socket noting when each frame (RTP timestamp) arrived.
type rtpPeer struct {
	conn    *net.UDPConn
	pub     *publisher
	frames  atomic.Int64
	mu      sync.Mutex
	arrived []arrival
	window  time.Time // start of the measured window
}

type arrival struct {
	ts   uint32
	at   time.Time
	jump bool // after a timestamp gap as long as a held-back frame's
}

func newRTPPeer(b *testing.B, pub *publisher) *rtpPeer {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	o := &rtpPeer{conn: conn, pub: pub}
	go o.read()
	return o
}

func (o *rtpPeer) offer(codec string) string {
	port := o.conn.LocalAddr().(*net.UDPAddr).Port
	fmtp := ""
	if codec == "H264" {
		fmtp = "a=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n"
	}
	return fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=bench\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video %d RTP/AVP 96\r\na=rtpmap:96 %s/90000\r\n%sa=recvonly\r\n", port, codec, fmtp)
}

// read notes the complete frames (marker bit), and which follow a gap of at least a held-back frame.
func (o *rtpPeer) read() {
	buf := make([]byte, 1600)
	var p pionrtp.Packet
	var lastTS uint32
	var have bool
	gap := uint32(pauseFor.Seconds() * 90000)
	for {
		n, err := o.conn.Read(buf)
		if err != nil {
			return
		}
		now := time.Now()
		if p.Unmarshal(buf[:n]) != nil || !p.Marker {
			continue
		}
		d := p.Timestamp - lastTS
		o.frames.Add(1)
		o.mu.Lock()
		o.arrived = append(o.arrived, arrival{ts: p.Timestamp, at: now, jump: have && d >= gap && d < 90000})
		o.mu.Unlock()
		lastTS, have = p.Timestamp, true
	}
}

func (o *rtpPeer) startWindow() {
	o.mu.Lock()
	o.window = time.Now()
	o.mu.Unlock()
}

// take returns the latencies (ms) of the frames that arrived in the window, and their number. The
// server's timestamps are the publisher's plus a constant (the RTP sender's offset, the pipeline's
// base): that constant is the one most frames after a gap agree on when matched with a held-back
// frame sent less than a second before (a frame dropped next to a gap gives a wrong candidate now and
// then, never the same one twice). The pipeline's nanosecond timestamps round a frame's timestamp
// down by a tick now and then, so a frame is matched within a few ticks (frames are 3000 apart).
func (o *rtpPeer) take() ([]float64, int64) {
	o.mu.Lock()
	arrived, window := slices.Clone(o.arrived), o.window
	o.mu.Unlock()
	o.pub.mu.Lock()
	defer o.pub.mu.Unlock()
	votes := map[uint32]int{}
	for _, a := range arrived {
		if !a.jump {
			continue
		}
		for _, ts := range o.pub.resume {
			if s := o.pub.sent[ts]; !s.After(a.at) && a.at.Sub(s) < time.Second {
				votes[a.ts-ts]++
			}
		}
	}
	var offset uint32
	best := 0
	for c, n := range votes {
		if n > best {
			offset, best = c, n
		}
	}
	var lat []float64
	var n int64
	for _, a := range arrived {
		if a.at.Before(window) {
			continue
		}
		n++
		if best < 2 {
			continue
		}
		for _, d := range []uint32{0, 1, ^uint32(0), 2, ^uint32(1), 3, ^uint32(2)} { // 0, ±1, ±2, ±3 ticks
			if s, ok := o.pub.sent[a.ts-offset+d]; ok {
				lat = append(lat, float64(a.at.Sub(s).Microseconds())/1000)
				break
			}
		}
	}
	return lat, n
}

// treeCPU is the CPU time of pid and all its descendants.
func treeCPU(pid int) time.Duration {
	var ticks int64
	for _, p := range append(descendants(pid), pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		ut, _ := strconv.ParseInt(f[11], 10, 64) // utime, stime: fields 14 and 15
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// descendants lists the processes below pid.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q != 0; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
