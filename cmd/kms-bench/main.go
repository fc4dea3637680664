// Command kms-bench is the load generator and benchmark of the media server: many pion WebRTC clients
// in one process drive our server over the Kurento Protocol (and Janus's EchoTest and VideoRoom over its
// HTTP API, with the same clients and media) and measure server CPU, RSS, loss, latency and set-up time.
//
// bench/run.sh runs it with each server in a network namespace pinned to one core and this tool in
// another namespace pinned to the other core. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

var osPID = os.Getpid()

type config struct {
	kmsURL, janusURL string
	kmsPID, janusPID int
	routerURL        string
	routerPID        int
	clientIP         string
	video, audio     string
	scenarios        []string
	loopbackN        []int
	one2manyN        []int
	groupK           []int
	groupM           int
	window, settle   time.Duration
	pause            time.Duration
	ramp             bool
	maxLoss          float64
	maxP99           float64 // ms
	idle             int
	joins            int
	direct           int
	conns            int
	out, label, note string
	pprofURL         string
	pprofAt          string // scenario:N whose window is profiled; empty: every window
	before           string
	allocsBench      string
	allocsCommand    string
	replot           string
	cpuProfile       string
	soak             soakConfig
	impair           *testpeer.Impairment
	hst              *histograms
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kms-bench:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("kms-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{hst: newHistograms()}
	var scen, loopN, o2mN, grpK string
	fs.StringVar(&c.kmsURL, "kms-url", "", "our server's Kurento Protocol URL (ws://10.200.1.1:8888/kurento); empty: skip")
	fs.IntVar(&c.kmsPID, "kms-pid", 0, "our server's process id, for CPU and RSS")
	fs.StringVar(&c.routerURL, "router-url", "", "a cluster router in front of -kms-url's node: the Kurento scenarios run again through it (server \"router\"), CPU and RSS still the node's")
	fs.IntVar(&c.routerPID, "router-pid", 0, "the router's process id, for its CPU and I/O per step")
	fs.StringVar(&c.janusURL, "janus-url", "", "Janus HTTP API URL (http://10.200.2.1:8088/janus); empty: skip")
	fs.IntVar(&c.janusPID, "janus-pid", 0, "Janus's process id")
	fs.StringVar(&c.clientIP, "client-ip", "127.0.0.1", "the only address the clients gather candidates on")
	fs.StringVar(&c.video, "video", "bench/media/clip.ivf", "VP8 clip (IVF), looped")
	fs.StringVar(&c.audio, "audio", "bench/media/clip.ogg", "Opus clip (Ogg, one 20 ms packet per page), looped")
	fs.StringVar(&scen, "scenarios", "loopback,one2many,group", "scenarios to run: loopback, one2many, group (Janus: EchoTest for loopback, VideoRoom for the others)")
	fs.StringVar(&loopN, "loopback-n", "", "loopback sessions at each step (default 5,20; ramp: 10,20,40,...)")
	fs.StringVar(&o2mN, "one2many-n", "", "one-to-many subscribers at each step (default 50; ramp: 50,100,200,...)")
	fs.StringVar(&grpK, "group-k", "", "group-call rooms at each step (default 2; ramp: 2,5,10,...)")
	fs.IntVar(&c.groupM, "group-m", 3, "participants per group-call room")
	fs.DurationVar(&c.window, "window", 8*time.Second, "measurement window at each step")
	fs.DurationVar(&c.settle, "settle", time.Second, "wait after set-up before measuring")
	fs.DurationVar(&c.pause, "pause", 2*time.Second, "wait after a scenario is torn down, and before idle RSS is read")
	fs.BoolVar(&c.ramp, "ramp", false, "grow N until loss > -max-loss or p99 latency > -max-p99, report N reached per core")
	fs.Float64Var(&c.maxLoss, "max-loss", 1, "ramp stop: packet loss, percent")
	fs.Float64Var(&c.maxP99, "max-p99", 100, "ramp stop: p99 latency, ms")
	fs.IntVar(&c.idle, "idle", 100, "idle endpoints created to measure RSS per idle endpoint (0: skip)")
	fs.IntVar(&c.joins, "joins", 20, "after each one2many step, viewers joining one at a time: first frame of a join into a running stream (0: skip)")
	fs.IntVar(&c.direct, "direct", 5, "pairs of clients sending to each other without a server, for the clients' own latency (0: skip)")
	fs.IntVar(&c.conns, "conns", 4, "Kurento Protocol connections used in turn")
	fs.StringVar(&c.out, "out", "bench/results/last", "output folder: results.json, results.csv, one PNG per scenario")
	fs.StringVar(&c.label, "label", "short", "name of the run, written in the results")
	fs.StringVar(&c.pprofURL, "pprof", "", "our server's pprof base URL (bench/kms-prof): a CPU profile of each window is saved in -out")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write this tool's own CPU profile of the run to this file")
	fs.StringVar(&c.pprofAt, "pprof-at", "", "with -pprof, profile only this step (one2many:300); empty: every window")
	fs.StringVar(&c.before, "before", "", "results.json files (comma-separated) to compare with: targets.md (issue 11's targets) takes each figure \"before\" from the first that has it; also with -replot")
	fs.StringVar(&c.allocsBench, "allocs-bench", "", "output of the Go benchmark of the forwarding path (-benchmem), for targets.md")
	fs.StringVar(&c.allocsCommand, "allocs-command", "", "the command that gave -allocs-bench, written in targets.md")
	fs.StringVar(&c.note, "note", "", "free text written in the results (machine, pinning)")
	fs.DurationVar(&c.soak.duration, "soak", 0, "run the soak for this long instead of the benchmark (bench/run.sh --soak)")
	fs.DurationVar(&c.soak.sample, "soak-sample", 10*time.Second, "soak: sample interval")
	fs.DurationVar(&c.soak.churn, "soak-churn", 2*time.Second, "soak: one viewer (every fourth time a loopback session) leaves and another joins this often")
	fs.IntVar(&c.soak.loopbacks, "soak-loopbacks", 20, "soak: hello-world sessions")
	fs.IntVar(&c.soak.rooms, "soak-rooms", 3, "soak: one-to-many rooms")
	fs.IntVar(&c.soak.viewers, "soak-viewers", 9, "soak: viewers per room")
	fs.StringVar(&c.soak.gctrace, "server-gctrace", "", "soak: the server's stderr, run with GODEBUG=gctrace=1, to read its live heap")
	impair := fs.String("impair", "", "impair the clients' sockets both ways where the kernel has no netem: loss=5%,delay=30ms,jitter=30ms,reorder=5%")
	fs.StringVar(&c.replot, "replot", "", "read this results.json (or a soak's soak.json), write its CSV and charts next to it and print its table; run nothing")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if c.replot != "" {
		return c, nil
	}
	var err error
	if *impair != "" {
		if c.impair, err = parseImpairment(*impair); err != nil {
			return nil, err
		}
	}
	def := func(s, short, ramp string) ([]int, error) {
		if s == "" {
			s = short
			if c.ramp {
				s = ramp
			}
		}
		return ints(s)
	}
	if c.loopbackN, err = def(loopN, "5,20", "10,20,40,60,80,100,130,160,200,250,300,400,500"); err != nil {
		return nil, err
	}
	if c.one2manyN, err = def(o2mN, "50", "50,100,200,300,400,500,600,800,1000,1200,1500,2000"); err != nil {
		return nil, err
	}
	if c.groupK, err = def(grpK, "2", "2,5,10,15,20,30,40"); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(scen, ",") {
		switch s = strings.TrimSpace(s); s {
		case "loopback", "one2many", "group":
			c.scenarios = append(c.scenarios, s)
		case "":
		default:
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
	}
	if c.kmsURL == "" && c.janusURL == "" {
		return nil, errors.New("give -kms-url and/or -janus-url")
	}
	if c.routerURL != "" && (c.kmsURL == "" || c.routerPID == 0) {
		return nil, errors.New("-router-url needs -kms-url (its node) and -router-pid")
	}
	if c.kmsURL != "" && c.kmsPID == 0 || c.janusURL != "" && c.janusPID == 0 {
		return nil, errors.New("each server needs its process id (-kms-pid, -janus-pid)")
	}
	if c.soak.duration > 0 && (c.kmsURL == "" || c.soak.sample <= 0 || c.soak.churn <= 0 || c.soak.rooms < 0 ||
		c.soak.viewers < 0 || c.soak.loopbacks < 0 || c.soak.sessions() == 0) {
		return nil, errors.New("the soak needs -kms-url, positive intervals and at least one session")
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args, os.Stderr)
	if err != nil {
		return err
	}
	if cfg.replot != "" {
		b, err := os.ReadFile(cfg.replot)
		if err != nil {
			return err
		}
		if filepath.Base(cfg.replot) == "soak.json" {
			var res SoakResults
			if err := json.Unmarshal(b, &res); err != nil {
				return fmt.Errorf("%s: %w", cfg.replot, err)
			}
			res.print(stdout)
			return res.write(filepath.Dir(cfg.replot))
		}
		var res Results
		if err := json.Unmarshal(b, &res); err != nil {
			return fmt.Errorf("%s: %w", cfg.replot, err)
		}
		if err := res.write(filepath.Dir(cfg.replot)); err != nil {
			return err
		}
		res.table(stdout)
		if cfg.before != "" {
			return writeTargets(cfg.before, filepath.Dir(cfg.replot), &res, stdout)
		}
		return nil
	}
	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	clip, err := loadClip(cfg.video, cfg.audio)
	if err != nil {
		return err
	}
	api, err := newAPI(cfg.clientIP, cfg.impair)
	if err != nil {
		return err
	}
	r := &runner{cfg: cfg, api: api, clip: clip, log: stdout, fresh: map[int]int64{}}
	for _, pid := range []int{cfg.kmsPID, cfg.janusPID} {
		if ps, err := readProc(pid); pid != 0 && err == nil {
			r.fresh[pid] = ps.RSS
		}
	}
	r.logf("clip: %d video frames (%.0f kb/s), %d Opus packets; clients on %s", len(clip.frames), clip.kbps, len(clip.audio), cfg.clientIP)
	if cfg.soak.duration > 0 {
		return r.soak(ctx, stdout)
	}
	began := time.Now()
	if cfg.direct > 0 {
		r.runScenario(ctx, &target{name: "none"}, "direct", &direct{base: r.base()}, []int{cfg.direct})
	}

	if cfg.kmsURL != "" {
		if err := r.runKurento(ctx, "ours", cfg.kmsURL, 0); err != nil {
			return err
		}
	}
	if cfg.routerURL != "" && ctx.Err() == nil {
		if err := r.runKurento(ctx, "router", cfg.routerURL, cfg.routerPID); err != nil {
			return err
		}
	}
	if cfg.janusURL != "" && ctx.Err() == nil {
		j, err := dialJanus(ctx, cfg.janusURL)
		if err != nil {
			return err
		}
		t := &target{name: "janus", pid: cfg.janusPID, jan: j}
		r.idle(ctx, t, cfg.idle)
		r.runScenarios(ctx, t, func(name string) scenario {
			switch name {
			case "loopback":
				return &janusLoopback{base: r.base(), j: j}
			case "one2many":
				return &janusOneToMany{base: r.base(), j: j}
			}
			return &janusGroup{base: r.base(), j: j, m: cfg.groupM}
		})
		j.close()
	}
	res := &Results{Label: cfg.label, Date: time.Now().UTC().Format(time.RFC3339), Note: cfg.note,
		DurationS: time.Since(began).Seconds(), Machine: machine(), ClipKbps: clip.kbps, Window: cfg.window.String(),
		Ramp: cfg.ramp, MaxLossPct: cfg.maxLoss, MaxP99ms: cfg.maxP99, Rows: r.rows, RampResults: r.ramp}
	if a, ok := maxAllocs(cfg.allocsBench); ok {
		res.AllocsPerPacket, res.AllocsCommand = &a, cfg.allocsCommand
	}
	if err := res.write(cfg.out); err != nil {
		return err
	}
	res.table(stdout)
	if cfg.before != "" {
		if err := writeTargets(cfg.before, cfg.out, res, stdout); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "\nRTP sent by the clients' direct path: %d packets, by pion's: %d; received by the direct path: %d\n",
		rtpPaths.direct.Load(), rtpPaths.pion.Load(), rtpPaths.directRx.Load())
	fmt.Fprintf(stdout, "results: %s/results.json, results.csv, *.png (%.0f s)\n", cfg.out, res.DurationS)
	return ctx.Err()
}

// runKurento runs the Kurento scenarios on our server at url, a node or (routerPID != 0) a router.
func (r *runner) runKurento(ctx context.Context, name, url string, routerPID int) error {
	cfg := r.cfg
	k, err := dialKurento(ctx, url, cfg.conns)
	if err != nil {
		return err
	}
	defer k.close()
	t := &target{name: name, pid: cfg.kmsPID, kms: k, routerPID: routerPID}
	t.last = r.marks(t)
	r.idle(ctx, t, cfg.idle)
	r.runScenarios(ctx, t, func(name string) scenario {
		switch name {
		case "loopback":
			return &kmsLoopback{base: r.base(), k: k}
		case "one2many":
			return &kmsOneToMany{base: r.base(), k: k}
		}
		return &kmsGroup{base: r.base(), k: k, m: cfg.groupM}
	})
	return nil
}

// runScenarios runs the chosen scenarios (loopback, one2many, group) in turn on one server; build
// makes each, for that server.
func (r *runner) runScenarios(ctx context.Context, t *target, build func(name string) scenario) {
	steps := map[string][]int{"loopback": r.cfg.loopbackN, "one2many": r.cfg.one2manyN, "group": r.cfg.groupK}
	for _, name := range r.cfg.scenarios {
		r.runScenario(ctx, t, name, build(name), steps[name])
	}
}

func (r *runner) base() base { return base{api: r.api, clip: r.clip, hst: r.cfg.hst} }

// soak runs the soak on our server and writes its results.
func (r *runner) soak(ctx context.Context, stdout io.Writer) error {
	k, err := dialKurento(ctx, r.cfg.kmsURL, r.cfg.conns)
	if err != nil {
		return err
	}
	defer k.close()
	res, err := r.runSoak(ctx, k, r.cfg.kmsPID, r.cfg.soak)
	if res == nil {
		return err
	}
	if werr := res.write(r.cfg.out); werr != nil {
		return werr
	}
	res.print(stdout)
	fmt.Fprintf(stdout, "\nresults: %s/soak.json, soak.csv, summary.txt, soak.png\n", r.cfg.out)
	return err
}

// parseImpairment reads "loss=5%,delay=30ms,jitter=30ms,reorder=5%" (any of them).
func parseImpairment(s string) (*testpeer.Impairment, error) {
	im := &testpeer.Impairment{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("-impair: %q is not key=value", kv)
		}
		var err error
		switch k {
		case "loss", "reorder":
			var f float64
			f, err = strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
			if err == nil && (f < 0 || f > 100) {
				err = errors.New("out of 0..100")
			}
			if k == "loss" {
				im.Loss = f / 100
			} else {
				im.Reorder = f / 100
			}
		case "delay":
			im.Delay, err = time.ParseDuration(v)
		case "jitter":
			im.Jitter, err = time.ParseDuration(v)
		default:
			err = errors.New("unknown")
		}
		if err != nil {
			return nil, fmt.Errorf("-impair %s: %v", kv, err)
		}
	}
	return im, nil
}
