package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/client"
)

// The soak: a fixed population of sessions for a long time, on a lossy network (bench/run.sh --soak
// puts netem between the namespaces), with viewers leaving and joining all along. Every sample
// interval it records what users would notice (frames a decoder could show, loss left after NACKs,
// joins that get no video) and what operators watch (server CPU, RSS, Go heap, descriptors), and at
// the end the drift of each per hour. See bench/README.md.

type soakConfig struct {
	duration  time.Duration
	sample    time.Duration
	churn     time.Duration // one leave+join every churn
	loopbacks int           // hello-world sessions
	rooms     int           // one-to-many rooms
	viewers   int           // viewers per room
	gctrace   string        // the server's stderr with GODEBUG=gctrace=1, for its live heap
}

// sessions is the number of client PeerConnections the soak keeps up.
func (c soakConfig) sessions() int { return c.loopbacks + c.rooms*(1+c.viewers) }

// SoakSample is one interval of the soak.
type SoakSample struct {
	T         float64 `json:"t_s"`       // end of the interval, seconds since the sessions were up
	Sessions  int     `json:"sessions"`  // client PeerConnections alive
	Receivers int     `json:"receivers"` // of them receiving video
	Joins     int     `json:"joins"`     // joins and leaves so far (churn)
	Leaves    int     `json:"leaves"`

	ServerCPUCore float64 `json:"server_cpu_core"`
	ToolCPUCore   float64 `json:"tool_cpu_core"`
	RSSMB         float64 `json:"rss_mb"`
	HeapMB        float64 `json:"heap_mb"` // live heap after the last GC (gctrace), -1 unknown
	FDs           int     `json:"fds"`
	Threads       int     `json:"threads"`
	Children      int     `json:"child_processes"` // GStreamer workers, when they run out of process

	// Frames over the receivers that were up for the whole interval.
	FramesSent     int64   `json:"frames_sent"`    // by the publishers they watch
	FramesDecoded  int64   `json:"frames_decoded"` // complete and decodable at the receivers
	DeliveredPct   float64 `json:"delivered_pct"`
	VideoExpected  int64   `json:"video_packets_expected"`
	VideoMissing   int64   `json:"video_packets_missing"`   // not there when a later one arrived
	VideoRecovered int64   `json:"video_packets_recovered"` // missing, then arrived (retransmission or late)
	VideoLost      int64   `json:"video_packets_lost"`      // missing and given up
	NACKed         int64   `json:"video_packets_nacked"`    // sequence numbers asked for (each try)
	ResidualPct    float64 `json:"video_residual_loss_pct"` // lost / expected
	AudioExpected  int64   `json:"audio_packets_expected"`
	AudioLost      int64   `json:"audio_packets_lost"`
	AudioLossPct   float64 `json:"audio_loss_pct"` // audio is not repaired
	Retransmitted  int64   `json:"publisher_retransmissions"`
}

// SoakSummary is the whole soak in figures.
type SoakSummary struct {
	DurationS     float64 `json:"duration_s"`
	Sessions      int     `json:"sessions"`
	Joins         int     `json:"joins"`
	Leaves        int     `json:"leaves"`
	SetupErrors   int     `json:"setup_errors"`
	JoinNoMedia   int     `json:"joins_without_video"` // joins that got no frame within 10 s
	FirstFrameP50 float64 `json:"join_first_frame_p50_ms"`
	FirstFrameP99 float64 `json:"join_first_frame_p99_ms"`

	FramesSent      int64   `json:"frames_sent"`
	FramesDecoded   int64   `json:"frames_decoded"`
	DeliveredPct    float64 `json:"delivered_pct"`
	MinDeliveredPct float64 `json:"min_interval_delivered_pct"`
	VideoExpected   int64   `json:"video_packets_expected"`
	VideoMissing    int64   `json:"video_packets_missing"`
	VideoRecovered  int64   `json:"video_packets_recovered"`
	VideoLost       int64   `json:"video_packets_lost"`
	NACKed          int64   `json:"video_packets_nacked"`
	RecoveredPct    float64 `json:"recovered_pct"` // recovered / missing
	ResidualPct     float64 `json:"video_residual_loss_pct"`
	AudioLossPct    float64 `json:"audio_loss_pct"`

	ServerCPUMean float64 `json:"server_cpu_core_mean"`
	ToolCPUMean   float64 `json:"tool_cpu_core_mean"`
	RSSBeforeMB   float64 `json:"rss_before_mb"` // before the first session
	RSSSteadyMB   float64 `json:"rss_steady_mb"` // first sample after warm-up
	RSSEndMB      float64 `json:"rss_end_mb"`    // last sample with the sessions up
	RSSMaxMB      float64 `json:"rss_max_mb"`
	RSSAfterMB    float64 `json:"rss_after_mb"` // after every session was released
	HeapSteadyMB  float64 `json:"heap_steady_mb"`
	HeapEndMB     float64 `json:"heap_end_mb"`
	HeapAfterMB   float64 `json:"heap_after_mb"`
	FDsBefore     int     `json:"fds_before"`
	FDsEnd        int     `json:"fds_end"`
	FDsAfter      int     `json:"fds_after"`

	// Drift per hour: least-squares slope over the samples after warm-up.
	WarmupS            float64 `json:"warmup_s"`
	RSSDriftMBh        float64 `json:"rss_drift_mb_per_h"`
	HeapDriftMBh       float64 `json:"heap_drift_mb_per_h"`
	CPUDriftCoreh      float64 `json:"cpu_drift_core_per_h"`
	FDDriftPerh        float64 `json:"fd_drift_per_h"`
	DeliveredDriftPerh float64 `json:"delivered_drift_pct_per_h"`
}

// SoakResults is what a soak writes (soak.json).
type SoakResults struct {
	Label   string `json:"label"`
	Date    string `json:"date"`
	Note    string `json:"note,omitempty"`
	Machine string `json:"machine"`
	Config  struct {
		Duration  string `json:"duration"`
		Sample    string `json:"sample"`
		Churn     string `json:"churn"`
		Loopbacks int    `json:"loopbacks"`
		Rooms     int    `json:"rooms"`
		Viewers   int    `json:"viewers_per_room"`
	} `json:"config"`
	Summary SoakSummary  `json:"summary"`
	Samples []SoakSample `json:"samples"`
}

// soakLeg is one client PeerConnection of the soak and what frees its server side.
type soakLeg struct {
	p       *peer
	release func()
	joined  time.Time
}

type soakRoom struct {
	c         *client.Client
	pipe, pep string
	pub       *peer
	viewers   []*soakLeg
}

type soakRun struct {
	r   *runner
	k   *kurento
	cfg soakConfig

	mu        sync.Mutex
	rooms     []*soakRoom
	loops     []*soakLeg
	joins     []*soakLeg // churn joins, for their first frame
	nJoins    int
	nLeaves   int
	setupErrs int
	heap      heapReader
}

func (s *soakRun) newPeer(send, receive bool, ref *publisher) (*peer, error) {
	p, err := newPeer(s.r.api, s.r.clip, send, receive, ref, s.r.cfg.hst)
	if err != nil {
		return nil, err
	}
	if receive {
		p.withRepair()
	}
	return p, nil
}

func (s *soakRun) openLoop(ctx context.Context) (*soakLeg, error) {
	c := s.k.conn()
	ep, release, err := openLoopback(ctx, c)
	if err != nil {
		return nil, err
	}
	p, err := s.newPeer(true, true, nil)
	if err != nil {
		release()
		return nil, err
	}
	leg := &soakLeg{p: p, release: release, joined: time.Now()}
	if err := s.k.negotiate(ctx, c, ep, p); err != nil {
		leg.close()
		return nil, fmt.Errorf("loopback: %w", err)
	}
	p.startMedia()
	return leg, nil
}

func (s *soakRun) openRoom(ctx context.Context) (*soakRoom, error) {
	c := s.k.conn()
	pipe, err := c.Create(ctx, "MediaPipeline", nil)
	if err != nil {
		return nil, err
	}
	rm := &soakRoom{c: c, pipe: pipe}
	if rm.pep, err = c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipe}); err == nil {
		if rm.pub, err = s.newPeer(true, false, nil); err == nil {
			if err = s.k.negotiate(ctx, c, rm.pep, rm.pub); err != nil {
				rm.pub.close()
			}
		}
	}
	if err != nil {
		c.Release(context.Background(), pipe)
		return nil, fmt.Errorf("presenter: %w", err)
	}
	rm.pub.startMedia()
	return rm, nil
}

func (s *soakRun) openViewer(ctx context.Context, rm *soakRoom) (*soakLeg, error) {
	ep, err := openViewer(ctx, rm.c, rm.pipe, rm.pep)
	release := func() { rm.c.Release(context.Background(), ep) }
	if err != nil {
		if ep != "" {
			release()
		}
		return nil, err
	}
	p, err := s.newPeer(false, true, rm.pub.pub)
	if err != nil {
		release()
		return nil, err
	}
	leg := &soakLeg{p: p, release: release, joined: time.Now()}
	if err := s.k.negotiate(ctx, rm.c, ep, p); err != nil {
		leg.close()
		return nil, fmt.Errorf("viewer: %w", err)
	}
	return leg, nil
}

func (l *soakLeg) close() {
	l.p.close()
	l.release()
}

// setUp opens the rooms, then the loopbacks and the viewers a few at a time.
func (s *soakRun) setUp(ctx context.Context) error {
	for range s.cfg.rooms {
		rm, err := s.openRoom(ctx)
		if err != nil {
			return err
		}
		s.rooms = append(s.rooms, rm)
	}
	return parallel(ctx, 0, s.cfg.loopbacks+s.cfg.rooms*s.cfg.viewers, setupWorkers, func(ctx context.Context, i int) error {
		if i < s.cfg.loopbacks {
			leg, err := s.openLoop(ctx)
			if err != nil {
				return err
			}
			s.mu.Lock()
			s.loops = append(s.loops, leg)
			s.mu.Unlock()
			return nil
		}
		rm := s.rooms[(i-s.cfg.loopbacks)%s.cfg.rooms]
		leg, err := s.openViewer(ctx, rm)
		if err != nil {
			return err
		}
		s.mu.Lock()
		rm.viewers = append(rm.viewers, leg)
		s.mu.Unlock()
		return nil
	})
}

// churnOnce makes one leg leave and a new one join in its place: a viewer of a random room, or
// every fourth time a loopback session. A failed join is counted and the population shrinks by one.
func (s *soakRun) churnOnce(ctx context.Context, n int) {
	s.mu.Lock()
	var old *soakLeg
	var rm *soakRoom
	if n%4 == 3 && len(s.loops) > 0 {
		i := rand.IntN(len(s.loops))
		old = s.loops[i]
		s.loops = slices.Delete(s.loops, i, i+1)
	} else if len(s.rooms) > 0 {
		rm = s.rooms[rand.IntN(len(s.rooms))]
		if len(rm.viewers) > 0 {
			i := rand.IntN(len(rm.viewers))
			old = rm.viewers[i]
			rm.viewers = slices.Delete(rm.viewers, i, i+1)
		}
	}
	if old != nil {
		s.nLeaves++
	}
	s.mu.Unlock()
	if old != nil {
		old.close()
	}
	var leg *soakLeg
	var err error
	if rm != nil {
		leg, err = s.openViewer(ctx, rm)
	} else {
		leg, err = s.openLoop(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			s.setupErrs++
			s.r.logf("soak: join failed: %v", err)
		}
		return
	}
	s.nJoins++
	s.joins = append(s.joins, leg)
	if rm != nil {
		rm.viewers = append(rm.viewers, leg)
	} else {
		s.loops = append(s.loops, leg)
	}
}

// receivers lists the legs receiving video, with the publisher each watches.
func (s *soakRun) receivers() (legs []*soakLeg, sessions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	legs = append(legs, s.loops...)
	for _, rm := range s.rooms {
		legs = append(legs, rm.viewers...)
	}
	return legs, len(legs) + len(s.rooms)
}

func (s *soakRun) tearDown() {
	s.mu.Lock()
	legs := append([]*soakLeg(nil), s.loops...)
	rooms := s.rooms
	for _, rm := range rooms {
		legs = append(legs, rm.viewers...)
	}
	s.loops, s.rooms = nil, nil
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range legs {
		wg.Go(l.close)
	}
	wg.Wait()
	for _, rm := range rooms {
		rm.pub.close()
		rm.c.Release(context.Background(), rm.pipe)
	}
}

// legCounts is a receiver's counters at one moment.
type legCounts struct {
	ready                           bool // had video at that moment
	decoded, sent                   int64
	expected, recovered, lost, nack int64
	audioExp, audioRecv             int64
}

func countsOf(l *soakLeg) legCounts {
	p := l.p
	st := &p.rx.Stats
	return legCounts{ready: p.firstFrame.Load() != 0, decoded: p.decoded.Load(), sent: p.ref.frames.Load(),
		expected: int64(st.Expected.Load()), recovered: int64(st.Recovered.Load()), lost: int64(st.GivenUp.Load()),
		nack: int64(st.NACKedPackets.Load()), audioExp: p.audio.expected.Load(), audioRecv: p.audio.received.Load()}
}

// serverState is what the soak reads of the server process.
type serverState struct {
	proc     procStat
	fds      int
	threads  int
	children int
}

func readServer(pid int) serverState {
	ps, _ := readProc(pid)
	st := serverState{proc: ps}
	if es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		st.fds = len(es)
	}
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, t := range tasks {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		st.children += len(strings.Fields(string(b)))
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		if m := regexp.MustCompile(`(?m)^Threads:\s+(\d+)`).FindSubmatch(b); m != nil {
			st.threads, _ = strconv.Atoi(string(m[1]))
		}
	}
	return st
}

// runSoak runs the soak on our server and returns its results.
func (r *runner) runSoak(ctx context.Context, k *kurento, pid int, cfg soakConfig) (*SoakResults, error) {
	s := &soakRun{r: r, k: k, cfg: cfg, heap: heapReader{file: cfg.gctrace}}
	sum := SoakSummary{Sessions: cfg.sessions()}
	s.heap.read()
	before := readServer(pid)
	sum.RSSBeforeMB, sum.FDsBefore = mb(before.proc.RSS), before.fds
	r.logf("soak: %d sessions (%d loopbacks, %d rooms of 1+%d) for %v, server RSS %.0f MB, %d fds", cfg.sessions(),
		cfg.loopbacks, cfg.rooms, cfg.viewers, cfg.duration, sum.RSSBeforeMB, before.fds)
	t0 := time.Now()
	err := s.setUp(ctx)
	legs, _ := s.receivers()
	r.logf("soak: set up in %.1fs", time.Since(t0).Seconds())
	if err != nil {
		s.tearDown()
		return nil, fmt.Errorf("soak set-up: %w", err)
	}
	var ps []*peer
	for _, l := range legs {
		ps = append(ps, l.p)
	}
	r.waitMedia(ctx, ps, 20*time.Second)

	var samples []SoakSample
	prev := map[*soakLeg]legCounts{}
	for _, l := range legs {
		prev[l] = countsOf(l)
	}
	srvPrev, toolPrev := readServer(pid), readServer(osPID)
	start, last, written := time.Now(), time.Now(), time.Now()
	end := start.Add(cfg.duration)
	sampleTick := time.NewTicker(cfg.sample)
	defer sampleTick.Stop()
	churnCtx, stopChurn := context.WithCancel(ctx)
	var churning sync.WaitGroup
	churning.Go(func() {
		tick := time.NewTicker(cfg.churn)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-churnCtx.Done():
				return
			case <-tick.C:
			}
			s.churnOnce(churnCtx, n)
		}
	})
	for time.Now().Before(end) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-sampleTick.C:
		}
		now := time.Now()
		legs, sessions := s.receivers()
		srv, tool := readServer(pid), readServer(osPID)
		win := now.Sub(last).Seconds()
		sm := SoakSample{T: now.Sub(start).Seconds(), Sessions: sessions, Receivers: len(legs),
			ServerCPUCore: (srv.proc.CPU - srvPrev.proc.CPU) / win, ToolCPUCore: (tool.proc.CPU - toolPrev.proc.CPU) / win,
			RSSMB: mb(srv.proc.RSS), HeapMB: s.heap.read(), FDs: srv.fds, Threads: srv.threads, Children: srv.children}
		s.mu.Lock()
		sm.Joins, sm.Leaves = s.nJoins, s.nLeaves
		s.mu.Unlock()
		var audioExp, audioRecv int64
		next := make(map[*soakLeg]legCounts, len(legs))
		for _, l := range legs {
			c := countsOf(l)
			next[l] = c
			p, ok := prev[l]
			if !ok {
				continue
			}
			if p.ready {
				sm.FramesSent += c.sent - p.sent
				sm.FramesDecoded += c.decoded - p.decoded
			}
			sm.VideoExpected += c.expected - p.expected
			sm.VideoRecovered += c.recovered - p.recovered
			sm.VideoLost += c.lost - p.lost
			sm.NACKed += c.nack - p.nack
			audioExp += c.audioExp - p.audioExp
			audioRecv += c.audioRecv - p.audioRecv
		}
		sm.VideoMissing = sm.VideoRecovered + sm.VideoLost
		sm.AudioExpected, sm.AudioLost = audioExp, max(audioExp-audioRecv, 0)
		sm.DeliveredPct, sm.ResidualPct, sm.AudioLossPct = pct(sm.FramesDecoded, sm.FramesSent), pct(sm.VideoLost, sm.VideoExpected), pct(sm.AudioLost, audioExp)
		sm.Retransmitted = s.retransmissions()
		samples = append(samples, sm)
		r.logf("soak %4.0fs: %d sessions, joins %d, delivered %.1f%%, video missing %d recovered %d lost %d (%.2f%% residual), audio loss %.2f%%, server %.2f core, RSS %.0f MB, heap %.0f MB, %d fds, tool %.2f core",
			sm.T, sm.Sessions, sm.Joins, sm.DeliveredPct, sm.VideoMissing, sm.VideoRecovered, sm.VideoLost, sm.ResidualPct,
			sm.AudioLossPct, sm.ServerCPUCore, sm.RSSMB, sm.HeapMB, sm.FDs, sm.ToolCPUCore)
		prev, srvPrev, toolPrev, last = next, srv, tool, now
		if now.Sub(written) >= 5*time.Minute { // a long soak leaves its figures so far if it is cut short
			partial := sum
			partial.DurationS = now.Sub(start).Seconds()
			partial.RSSAfterMB, partial.HeapAfterMB, partial.FDsAfter = -1, -1, -1 // not released yet
			s.summarize(&partial, samples)
			if err := s.results(partial, samples).write(r.cfg.out); err != nil {
				r.logf("soak: %v", err)
			}
			written = now
		}
	}
	stopChurn()
	churning.Wait()
	sum.DurationS = time.Since(start).Seconds()
	s.summarize(&sum, samples)
	r.logf("soak: tearing down")
	s.heap.read()
	gcs := s.heap.gcs
	s.tearDown()
	// What the server holds once every session is gone: the Go runtime returns freed pages within
	// minutes, so wait for RSS and descriptors to settle (or a deadline).
	after := readServer(pid)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(2 * time.Second)
		cur := readServer(pid)
		settled := cur.fds <= before.fds+2 && math.Abs(mb(cur.proc.RSS)-mb(after.proc.RSS)) < 1
		after = cur
		if settled {
			break
		}
	}
	sum.RSSAfterMB, sum.HeapAfterMB, sum.FDsAfter = mb(after.proc.RSS), s.heap.read(), after.fds
	if s.heap.gcs == gcs { // no collection since the teardown: the figure would be the heap before it
		sum.HeapAfterMB = -1
	}

	return s.results(sum, samples), ctx.Err()
}

func (s *soakRun) results(sum SoakSummary, samples []SoakSample) *SoakResults {
	res := &SoakResults{Label: s.r.cfg.label, Date: time.Now().UTC().Format(time.RFC3339), Note: s.r.cfg.note, Machine: machine(),
		Summary: sum, Samples: samples}
	res.Config.Duration, res.Config.Sample, res.Config.Churn = s.cfg.duration.String(), s.cfg.sample.String(), s.cfg.churn.String()
	res.Config.Loopbacks, res.Config.Rooms, res.Config.Viewers = s.cfg.loopbacks, s.cfg.rooms, s.cfg.viewers
	return res
}

func (s *soakRun) retransmissions() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, l := range s.loops {
		n += l.p.pub.resent.Load()
	}
	for _, rm := range s.rooms {
		n += rm.pub.pub.resent.Load()
	}
	return n
}

// summarize fills the totals, the joins' first frames and the drifts.
func (s *soakRun) summarize(sum *SoakSummary, samples []SoakSample) {
	s.mu.Lock()
	sum.Joins, sum.Leaves, sum.SetupErrors = s.nJoins, s.nLeaves, s.setupErrs
	var ff []float64
	for _, l := range s.joins {
		if f := l.p.firstFrame.Load(); f != 0 {
			ff = append(ff, float64(f-l.p.start.Load())/1e6)
		} else if time.Since(l.joined) > 10*time.Second {
			sum.JoinNoMedia++
		}
	}
	s.mu.Unlock()
	slices.Sort(ff)
	sum.FirstFrameP50, sum.FirstFrameP99 = percentile(ff, 0.5), percentile(ff, 0.99)

	var audioLost, audioExp int64
	sum.MinDeliveredPct = 100
	for _, sm := range samples {
		sum.FramesSent += sm.FramesSent
		sum.FramesDecoded += sm.FramesDecoded
		sum.VideoExpected += sm.VideoExpected
		sum.VideoMissing += sm.VideoMissing
		sum.VideoRecovered += sm.VideoRecovered
		sum.VideoLost += sm.VideoLost
		sum.NACKed += sm.NACKed
		audioExp += sm.AudioExpected
		audioLost += sm.AudioLost
		sum.ServerCPUMean += sm.ServerCPUCore / float64(len(samples))
		sum.ToolCPUMean += sm.ToolCPUCore / float64(len(samples))
		sum.RSSMaxMB = max(sum.RSSMaxMB, sm.RSSMB)
		if sm.FramesSent > 0 {
			sum.MinDeliveredPct = min(sum.MinDeliveredPct, sm.DeliveredPct)
		}
	}
	sum.DeliveredPct = pct(sum.FramesDecoded, sum.FramesSent)
	sum.RecoveredPct = pct(sum.VideoRecovered, sum.VideoMissing)
	sum.ResidualPct = pct(sum.VideoLost, sum.VideoExpected)
	sum.AudioLossPct = pct(audioLost, audioExp)
	if len(samples) == 0 {
		return
	}
	// Warm-up: the first tenth of the run, at least two samples: pools, caches and the GC's goal
	// grow to their working size there, which is not drift.
	warm := max(samples[min(1, len(samples)-1)].T, samples[len(samples)-1].T/10)
	var steady []SoakSample
	for _, sm := range samples {
		if sm.T >= warm {
			steady = append(steady, sm)
		}
	}
	sum.WarmupS = warm
	first, lastS := steady[0], steady[len(steady)-1]
	sum.RSSSteadyMB, sum.RSSEndMB, sum.HeapSteadyMB, sum.HeapEndMB, sum.FDsEnd = first.RSSMB, lastS.RSSMB, first.HeapMB, lastS.HeapMB, lastS.FDs
	slope := func(y func(SoakSample) float64) float64 {
		xs, ys := make([]float64, len(steady)), make([]float64, len(steady))
		for i, sm := range steady {
			xs[i], ys[i] = sm.T/3600, y(sm)
		}
		return linearSlope(xs, ys)
	}
	sum.RSSDriftMBh = slope(func(s SoakSample) float64 { return s.RSSMB })
	sum.HeapDriftMBh = slope(func(s SoakSample) float64 { return s.HeapMB })
	sum.CPUDriftCoreh = slope(func(s SoakSample) float64 { return s.ServerCPUCore })
	sum.FDDriftPerh = slope(func(s SoakSample) float64 { return float64(s.FDs) })
	sum.DeliveredDriftPerh = slope(func(s SoakSample) float64 { return s.DeliveredPct })
}

// linearSlope is the least-squares slope of ys against xs (0 with fewer than two points).
func linearSlope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func pct(a, b int64) float64 {
	if b <= 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// heapReader follows the server's GODEBUG=gctrace=1 output ("gc 7 @1.2s 0%: ..., 12->13->6 MB, ...")
// and keeps the live heap after the last collection (the third figure).
type heapReader struct {
	file string
	off  int64
	last float64
	gcs  int // collections seen
}

var gcLine = regexp.MustCompile(`(\d+)->(\d+)->(\d+) MB`)

// read returns the live heap in MB after the newest collection logged, -1 when unknown.
func (h *heapReader) read() float64 {
	if h.file == "" {
		return -1
	}
	f, err := os.Open(h.file)
	if err == nil {
		defer f.Close()
		if _, err := f.Seek(h.off, io.SeekStart); err == nil {
			br := bufio.NewReader(f)
			for {
				line, err := br.ReadString('\n')
				if err != nil { // a partial line is read again next time
					break
				}
				h.off += int64(len(line))
				if m := gcLine.FindStringSubmatch(line); m != nil {
					v, _ := strconv.ParseFloat(m[3], 64)
					h.last = v
					h.gcs++
				}
			}
		}
	}
	if h.gcs == 0 {
		return -1
	}
	return h.last
}
