package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"
)

// Row is the figures of one scenario at one N on one server, measured over one window.
type Row struct {
	Server    string  `json:"server"`
	Scenario  string  `json:"scenario"`
	N         int     `json:"n"`         // sessions, subscribers, rooms, or idle endpoints
	Streams   int     `json:"streams"`   // receiving legs (audio + video) during the window
	Endpoints int     `json:"endpoints"` // WebRtcEndpoints (or Janus handles) alive
	WindowS   float64 `json:"window_s"`

	ServerCPUCore      float64 `json:"server_cpu_core"`         // CPU seconds per second (1 = one core)
	CPUSecPerStreamMin float64 `json:"cpu_s_per_stream_minute"` // server CPU seconds per stream-minute
	RSSMB              float64 `json:"rss_mb"`
	RSSPerEndpointKB   float64 `json:"rss_per_endpoint_kb"` // (RSS - RSS when the run began) / endpoints

	PacketsExpected int64   `json:"packets_expected"`
	PacketsLost     int64   `json:"packets_lost"`
	LossPct         float64 `json:"loss_pct"`
	// Video latency: publisher's send to the kernel's receive time at the viewer's socket
	// (latency_method "socket"), or, where the sockets give no receive time, to the viewer's reader
	// ("client"). The client_ figures always go to the reader: the clients' own queueing included.
	LatencyP50ms       float64 `json:"latency_p50_ms"`
	LatencyP99ms       float64 `json:"latency_p99_ms"`
	LatencySamples     uint64  `json:"latency_samples"`
	LatencyMethod      string  `json:"latency_method,omitempty"`
	ClientLatencyP50ms float64 `json:"client_latency_p50_ms,omitempty"`
	ClientLatencyP99ms float64 `json:"client_latency_p99_ms,omitempty"`

	FirstFrameP50ms float64 `json:"first_frame_p50_ms"` // processOffer sent -> first complete video frame received
	FirstFrameP99ms float64 `json:"first_frame_p99_ms"`
	FirstFrameMaxms float64 `json:"first_frame_max_ms"`
	NoMedia         int     `json:"no_media"` // receivers that got no video frame before the window ended

	// The step's signalling (set-up and window), Kurento targets only; router figures with -router-url.
	Requests              int64   `json:"requests,omitempty"`             // Kurento requests sent
	OfferP50ms            float64 `json:"process_offer_p50_ms,omitempty"` // processOffer round trips of the new peers
	OfferP99ms            float64 `json:"process_offer_p99_ms,omitempty"`
	LinkMB                float64 `json:"link_mb,omitempty"` // bytes both ways on the clients' link: media and signalling
	RouterCPUSec          float64 `json:"router_cpu_s,omitempty"`
	RouterCPUmsPerRequest float64 `json:"router_cpu_ms_per_request,omitempty"`
	RouterIOMB            float64 `json:"router_io_mb,omitempty"` // the router's socket reads and writes (clients, nodes, Redis)

	// The server's system calls over the window (perf stat) per packet the receivers got: what it costs
	// the server to forward one packet; send_syscalls are sendto, sendmsg, sendmmsg and write.
	PacketsReceived       int64   `json:"packets_received,omitempty"`
	Syscalls              int64   `json:"syscalls,omitempty"`
	SyscallsPerPacket     float64 `json:"syscalls_per_packet,omitempty"`
	SendSyscallsPerPacket float64 `json:"send_syscalls_per_packet,omitempty"`

	SendKbps    float64 `json:"send_kbps_per_publisher"`
	ToolCPUCore float64 `json:"tool_cpu_core"` // the load tool's own CPU: near 1 means the tool, not the server, is the limit
	Pass        bool    `json:"pass"`          // loss <= max-loss and p99 <= max-p99
	Note        string  `json:"note,omitempty"`
}

type target struct {
	name      string
	pid       int // the server that holds the media: its CPU and RSS are the row's
	kms       *kurento
	jan       *janus
	routerPID int       // the router kms is reached through, if any
	last      stepMarks // counters when the last row ended
}

type runner struct {
	cfg   *config
	fresh map[int]int64 // RSS of each server when the run began
	api   *webrtc.API
	clip  *clip
	log   io.Writer
	rows  []Row
	ramp  []RampResult
}

// RampResult is how far a ramp got.
type RampResult struct {
	Server    string `json:"server"`
	Scenario  string `json:"scenario"`
	ReachedN  int    `json:"reached_n"` // the largest N that passed
	Streams   int    `json:"streams"`
	PerCore   int    `json:"streams_per_core"` // the server is pinned to one core
	StoppedBy string `json:"stopped_by"`
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// runScenario grows a scenario through ns (or ramps it) on one server and measures each step.
func (r *runner) runScenario(ctx context.Context, t *target, name string, s scenario, ns []int) {
	defer func() {
		r.logf("%s %s: tearing down", t.name, name)
		s.close()
		time.Sleep(r.cfg.pause) // let the server release and settle before the next measurement
		if r.cfg.pprofURL != "" && t.kms != nil && r.cfg.pprofAt == "" {
			file := filepath.Join(r.cfg.out, fmt.Sprintf("heap-%s-%s-after.pprof", t.name, name))
			if err := fetch(ctx, r.cfg.pprofURL+"/debug/pprof/heap?gc=1", file); err != nil {
				r.logf("profile: %v", err)
			}
		}
	}()
	before, err := readProc(t.pid)
	if err != nil && t.pid != 0 {
		r.logf("%s: %v", t.name, err)
		return
	}
	prevEps := 0
	if rss, ok := r.fresh[t.pid]; ok {
		before.RSS = rss
	}
	reached, reachedStreams, stopped := 0, 0, "end of steps"
	for _, n := range ns {
		if ctx.Err() != nil {
			stopped = "interrupted"
			break
		}
		joined := len(s.receivers())
		r.logf("%s %s: growing to N=%d", t.name, name, n)
		t0 := time.Now()
		gerr := s.grow(ctx, n)
		r.logf("%s %s: N=%d set up in %.1fs", t.name, name, s.units(), time.Since(t0).Seconds())
		if gerr != nil {
			r.logf("%s %s: set-up error at N=%d: %v", t.name, name, n, gerr)
		}
		r.waitMedia(ctx, s.receivers()[joined:], 10*time.Second)
		row := r.measure(ctx, t, name, s, joined, before.RSS, prevEps)
		row.N = s.units()
		r.signalling(t, &row)
		if gerr != nil {
			row.Note = "set-up error: " + gerr.Error()
			row.Pass = false
		}
		r.logf("%s", rowLine(row))
		if !row.Pass && r.cfg.ramp && gerr == nil && row.NoMedia == 0 {
			// One bad window on a shared machine is not the end of a ramp: measure the same N again.
			r.logf("%s %s: N=%d failed, measuring again", t.name, name, row.N)
			row.Note = "failed; measured again in the next row"
			r.rows = append(r.rows, row)
			row = r.measure(ctx, t, name, s, len(s.receivers()), before.RSS, prevEps)
			row.N = s.units()
			row.Note = "second window at this N"
			r.logf("%s", rowLine(row))
		}
		r.rows = append(r.rows, row)
		if j, ok := s.(joiner); ok && r.cfg.joins > 0 && gerr == nil {
			r.logf("%s %s: %d viewers joining one at a time", t.name, name, r.cfg.joins)
			jr := r.joins(ctx, t, s, j, r.cfg.joins)
			r.logf("%s", rowLine(jr))
			r.rows = append(r.rows, jr)
		}
		if !row.Pass {
			stopped = fmt.Sprintf("loss %.2f%%, p99 %.1f ms at N=%d", row.LossPct, row.LatencyP99ms, row.N)
			if gerr != nil {
				stopped = "set-up error at N=" + fmt.Sprint(n)
			}
			if r.cfg.ramp {
				break
			}
		} else {
			reached, reachedStreams = row.N, row.Streams
		}
	}
	if r.cfg.ramp && t.pid != 0 {
		r.ramp = append(r.ramp, RampResult{Server: t.name, Scenario: name, ReachedN: reached, Streams: reachedStreams,
			PerCore: reachedStreams, StoppedBy: stopped})
	}
}

// toolBound is the load tool's CPU (of its one core) above which a window measures the tool as much
// as the server.
const toolBound = 0.8

// waitMedia waits until every new receiver has a video frame, or the timeout.
func (r *runner) waitMedia(ctx context.Context, ps []*peer, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		all := true
		for _, p := range ps {
			if p.firstFrame.Load() == 0 {
				all = false
				break
			}
		}
		if all {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(r.cfg.settle)
}

type counts struct{ expected, received int64 }

func snapshot(ps []*peer) map[*peer]counts {
	m := make(map[*peer]counts, len(ps))
	for _, p := range ps {
		m[p] = counts{p.video.expected.Load() + p.audio.expected.Load(), p.video.received.Load() + p.audio.received.Load()}
	}
	return m
}

// measure measures one window. RSS per endpoint is (RSS - rssBefore) / (endpoints - prevEps);
// runScenario gives the server's RSS when the run began and 0: an upper bound, since whatever an
// earlier scenario left in the heap counts too.
func (r *runner) measure(ctx context.Context, t *target, name string, s scenario, joined int, rssBefore int64, prevEps int) Row {
	recv := s.receivers()
	pubs := map[*publisher]int64{}
	for _, p := range s.peers() {
		if p.pub != nil {
			pubs[p.pub] = p.pub.bytes.Load()
		}
	}
	hist, client := &histogram{}, &histogram{}
	r.cfg.hst.latency.Store(hist)
	r.cfg.hst.client.Store(client)
	var prof chan struct{}
	if r.cfg.pprofURL != "" && t.kms != nil && (r.cfg.pprofAt == "" || r.cfg.pprofAt == fmt.Sprintf("%s:%d", name, s.units())) {
		prof = make(chan struct{})
		go func() {
			defer close(prof)
			file := filepath.Join(r.cfg.out, fmt.Sprintf("cpu-%s-%s-%d.pprof", t.name, name, s.units()))
			if err := fetchProfile(ctx, r.cfg.pprofURL, r.cfg.window, file); err != nil {
				r.logf("profile: %v", err)
			}
		}()
	}
	sys := startSyscallCount(t.pid)
	start := snapshot(recv)
	srv0, _ := readProc(t.pid)
	tool0, _ := readProc(osPID)
	t0 := time.Now()
	select {
	case <-time.After(r.cfg.window):
	case <-ctx.Done():
	}
	win := time.Since(t0).Seconds()
	srv1, _ := readProc(t.pid)
	tool1, _ := readProc(osPID)
	end := snapshot(recv)
	var sysTotal, sysSend int64
	if sys != nil {
		var err error
		if sysTotal, sysSend, err = sys.stop(); err != nil {
			r.logf("syscalls: %v", err)
		}
	}
	if prof != nil {
		<-prof
		r.saveProfiles(ctx, fmt.Sprintf("%s-%s-%d", t.name, name, s.units()))
	}

	row := Row{Server: t.name, Scenario: name, Streams: len(recv), Endpoints: s.endpoints(), WindowS: win}
	row.ServerCPUCore = (srv1.CPU - srv0.CPU) / win
	if len(recv) > 0 {
		row.CPUSecPerStreamMin = (srv1.CPU - srv0.CPU) / (float64(len(recv)) * win / 60)
	}
	row.ToolCPUCore = (tool1.CPU - tool0.CPU) / win
	row.RSSMB = float64(srv1.RSS) / (1 << 20)
	if row.Endpoints > prevEps {
		row.RSSPerEndpointKB = float64(srv1.RSS-rssBefore) / 1024 / float64(row.Endpoints-prevEps)
	}
	if t.pid == 0 { // no server: the direct baseline
		row.ServerCPUCore, row.CPUSecPerStreamMin, row.RSSMB, row.RSSPerEndpointKB = -1, -1, -1, -1
	}
	for _, p := range recv {
		e := end[p].expected - start[p].expected
		got := end[p].received - start[p].received
		row.PacketsExpected += e
		row.PacketsReceived += got
		if e > got {
			row.PacketsLost += e - got
		}
	}
	if row.PacketsExpected > 0 {
		row.LossPct = 100 * float64(row.PacketsLost) / float64(row.PacketsExpected)
	}
	if sysTotal > 0 && row.PacketsReceived > 0 {
		row.Syscalls = sysTotal
		row.SyscallsPerPacket = float64(sysTotal) / float64(row.PacketsReceived)
		row.SendSyscallsPerPacket = float64(sysSend) / float64(row.PacketsReceived)
	}
	row.ClientLatencyP50ms, row.ClientLatencyP99ms = client.quantile(0.5), client.quantile(0.99)
	row.LatencyMethod = "socket"
	if hist.total() == 0 {
		hist, row.LatencyMethod = client, "client"
	}
	row.LatencyP50ms, row.LatencyP99ms, row.LatencySamples = hist.quantile(0.5), hist.quantile(0.99), hist.total()
	var ff []float64
	for _, p := range recv[joined:] {
		if f := p.firstFrame.Load(); f != 0 {
			ff = append(ff, float64(f-p.start.Load())/1e6)
		} else {
			row.NoMedia++
		}
	}
	slices.Sort(ff)
	row.FirstFrameP50ms, row.FirstFrameP99ms = percentile(ff, 0.5), percentile(ff, 0.99)
	if len(ff) > 0 {
		row.FirstFrameMaxms = ff[len(ff)-1]
	}
	var sent float64
	for pub, b0 := range pubs {
		sent += float64(pub.bytes.Load()-b0) * 8 / 1000 / win
	}
	if len(pubs) > 0 {
		row.SendKbps = sent / float64(len(pubs))
	}
	if row.ToolCPUCore > toolBound {
		row.Note = fmt.Sprintf("the load tool used %.2f of its core: figures may be the tool's limit", row.ToolCPUCore)
	}
	row.Pass = row.NoMedia == 0 && row.PacketsExpected > 0 && row.LossPct <= r.cfg.maxLoss &&
		row.LatencyP99ms >= 0 && row.LatencyP99ms <= r.cfg.maxP99
	return row
}

// idle measures the RSS of idle endpoints: created and negotiated (processOffer + gatherCandidates,
// or a Janus handle with an answer) but with no peer connecting.
func (r *runner) idle(ctx context.Context, t *target, n int) {
	if n <= 0 {
		return
	}
	p, err := newPeer(r.api, r.clip, true, true, nil, r.cfg.hst)
	if err != nil {
		r.logf("idle: %v", err)
		return
	}
	offer, err := p.offer()
	p.close()
	if err != nil {
		r.logf("idle: %v", err)
		return
	}
	before, err := readProc(t.pid)
	if err != nil {
		r.logf("idle: %v", err)
		return
	}
	var release []func()
	var mu = make(chan struct{}, 1)
	add := func(f func()) { mu <- struct{}{}; release = append(release, f); <-mu }
	t0 := time.Now()
	err = parallel(ctx, 0, n, setupWorkers, func(ctx context.Context, i int) error {
		if t.kms != nil {
			c := t.kms.conn()
			pipe, err := c.Create(ctx, "MediaPipeline", nil)
			if err != nil {
				return err
			}
			add(func() { c.Release(context.Background(), pipe) })
			ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipe})
			if err != nil {
				return err
			}
			if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": offer}, nil); err != nil {
				return err
			}
			return c.Invoke(ctx, ep, "gatherCandidates", nil, nil)
		}
		h, err := t.jan.attach(ctx, echoTest)
		if err != nil {
			return err
		}
		add(func() { t.jan.detach(context.Background(), h) })
		_, err = t.jan.offerAnswer(ctx, h, offer)
		return err
	})
	setup := time.Since(t0)
	time.Sleep(r.cfg.pause)
	after, _ := readProc(t.pid)
	row := Row{Server: t.name, Scenario: "idle", N: n, Endpoints: n, RSSMB: float64(after.RSS) / (1 << 20),
		RSSPerEndpointKB: float64(after.RSS-before.RSS) / 1024 / float64(n), FirstFrameP50ms: -1, FirstFrameP99ms: -1,
		LatencyP50ms: -1, LatencyP99ms: -1, Pass: err == nil,
		Note: fmt.Sprintf("created+negotiated in %.1fs", setup.Seconds())}
	if err != nil {
		row.Note = err.Error()
	}
	r.rows = append(r.rows, row)
	r.logf("%s idle: %d endpoints, RSS %.1f MB -> %.1f MB, %.0f KB each", t.name, n,
		float64(before.RSS)/(1<<20), row.RSSMB, row.RSSPerEndpointKB)
	for _, f := range release {
		f()
	}
	time.Sleep(r.cfg.pause)
}

func rowLine(r Row) string {
	return fmt.Sprintf("%-6s %-9s N=%-4d streams=%-4d cpu=%.2f core  %.3f cpu-s/stream-min  rss=%.0fMB (%.0f KB/ep)  loss=%.2f%%  lat p50=%.2fms p99=%.2fms (%d)  first=%.0f/%.0fms  nomedia=%d  send=%.0fkb/s  tool=%.2f core",
		r.Server, r.Scenario, r.N, r.Streams, r.ServerCPUCore, r.CPUSecPerStreamMin, r.RSSMB, r.RSSPerEndpointKB, r.LossPct,
		r.LatencyP50ms, r.LatencyP99ms, r.LatencySamples, r.FirstFrameP50ms, r.FirstFrameP99ms, r.NoMedia, r.SendKbps, r.ToolCPUCore)
}

// fetchProfile saves a CPU profile of the server taken over d.
func fetchProfile(ctx context.Context, base string, d time.Duration, file string) error {
	return fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, max(1, int(d.Seconds()))), file)
}

// saveProfiles saves the heap and goroutine profiles of our server and its runtime.MemStats (the
// tail of the heap profile's text form): the heap profile alone misses goroutine stacks and the
// collector's headroom, which RSS holds too.
func (r *runner) saveProfiles(ctx context.Context, suffix string) {
	for _, kind := range []string{"heap", "goroutine"} {
		if err := fetch(ctx, r.cfg.pprofURL+"/debug/pprof/"+kind, filepath.Join(r.cfg.out, kind+"-"+suffix+".pprof")); err != nil {
			r.logf("profile: %v", err)
		}
	}
	text, err := get(ctx, r.cfg.pprofURL+"/debug/pprof/heap?debug=1")
	if err == nil {
		if i := bytes.Index(text, []byte("# runtime.MemStats")); i >= 0 {
			text = text[i:]
		}
		err = os.WriteFile(filepath.Join(r.cfg.out, "memstats-"+suffix+".txt"), text, 0o644)
	}
	if err != nil {
		r.logf("profile: %v", err)
	}
}

func fetch(ctx context.Context, url, file string) error {
	body, err := get(ctx, url)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, body, 0o644)
}

func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}
