//go:build !kmsfuzz

package webrtc_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/egress"
	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

const benchPeersEnv = "KMS_BENCH_FORWARD_URL"

// BenchmarkForwardTo100Viewers is the whole forwarding path: a pion publisher → its
// WebRtcEndpoint → 100 viewer WebRtcEndpoints → 100 pion viewers, over loopback. The peers run
// in a child process (TestForwardBenchPeers), so that -benchmem counts the server's allocations
// only: socket read (recvmmsg), SRTP, the graph, 100 × (rewrite, SRTP, batched write). One op is
// one datagram the server sends (at 100 viewers, RTP copies all but a few RTCP ones). Reported:
// send and receive syscalls of the shared sockets per op, every syscall of the process per op
// (perf's raw_syscalls:sys_enter, when perf runs here), and the process's CPU per op (cpu-ns/op;
// -cpu 1 runs the server on one P, as bench/run.sh pins it to one core).
//
// Allocations: the timed window counts every allocation of the process (process-allocs/op, from
// the runtime's statistics). A second window as long, untimed, records every allocation with its
// stack (MemProfileRate 1, dear per allocation: hence not in the timed one) and sorts them by what
// made them. allocs/op and B/op are the forwarding path's: everything but the RTCP the endpoints
// exchange on their timers (rtcp-allocs/op: our reports and feedback, pion's RTCP marshalling,
// the peers' reports we read) and pion's ICE (stun-allocs/op: STUN keepalives and consent
// checks). What is neither counts as the path's, whatever made it. The testing package prints
// allocs/op as a whole number: allocs/datagram is the same figure unrounded (kms-bench's targets
// table takes it).
// Setting up 100 peers is dear: run it with a fixed count,
//
//	go test ./endpoints/webrtc -run '^$' -bench ForwardTo100Viewers -benchmem -benchtime 200000x
//
// KMS_BENCH_ALLOC_PROFILE=DIR writes allocation profiles around the measured window (pprof
// -diff_base), to see where what is left allocates.
func BenchmarkForwardTo100Viewers(b *testing.B) {
	if b.N == 1 {
		return // the framework's probe run: the setup would be made twice
	}
	const viewers = 100
	srv := testserver.Start(b, "KMS_MIN_PORT=48200", "KMS_MAX_PORT=48299")
	cmd := exec.Command(os.Args[0], "-test.run=^TestForwardBenchPeers$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), benchPeersEnv+"="+srv.URL, fmt.Sprintf("KMS_BENCH_VIEWERS=%d", viewers))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe() // the child runs until it closes
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "viewers ready" {
				ready <- true
			} else {
				fmt.Fprintln(os.Stderr, "peers:", sc.Text())
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			b.Fatal("the peers' process ended before its viewers had video")
		}
	case <-time.After(5 * time.Minute):
		b.Fatal("the viewers got no video in 5 minutes")
	}

	perf := startPerf()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0 := webrtc.ProcessCPU()
	b.ResetTimer()
	start := egress.Sent()
	waitDatagrams(start, b.N)
	b.StopTimer()
	end := egress.Sent()
	cpu := webrtc.ProcessCPU() - cpu0
	runtime.ReadMemStats(&m1)
	all := perf()
	ops := float64(end.Datagrams - start.Datagrams)
	b.ReportMetric(float64(cpu)/ops, "cpu-ns/op")
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/ops, "process-allocs/op")
	b.ReportMetric(float64(end.Syscalls-start.Syscalls)/ops, "send-syscalls/op")
	b.ReportMetric(float64(end.Reads-start.Reads)/ops, "recv-syscalls/op")
	b.ReportMetric(float64(end.ReadDatagrams-start.ReadDatagrams)/ops, "datagrams-in/op")
	if all > 0 {
		b.ReportMetric(float64(all)/ops, "process-syscalls/op")
	}

	// The allocations' stacks.
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	profile := os.Getenv("KMS_BENCH_ALLOC_PROFILE")
	writeAllocs(b, profile, "start")
	allocs0 := allocsBySource()
	start = egress.Sent()
	waitDatagrams(start, b.N)
	ops = float64(egress.Sent().Datagrams - start.Datagrams)
	allocs := allocsBySource().minus(allocs0)
	writeAllocs(b, profile, "end")
	b.ReportMetric(float64(allocs.path.objects)/ops, "allocs/op")       // printed as a whole number
	b.ReportMetric(float64(allocs.path.objects)/ops, "allocs/datagram") // and exactly
	b.ReportMetric(float64(allocs.path.bytes)/ops, "B/op")
	b.ReportMetric(float64(allocs.rtcp.objects)/ops, "rtcp-allocs/op")
	b.ReportMetric(float64(allocs.stun.objects)/ops, "stun-allocs/op")
}

// waitDatagrams returns once n datagrams more than at start have left the shared sockets.
func waitDatagrams(start egress.Counts, n int) {
	for egress.Sent().Datagrams-start.Datagrams < uint64(n) {
		time.Sleep(5 * time.Millisecond)
	}
}

// writeAllocs writes the allocation profile to dir/name.pprof when dir is set: the difference
// between the end and start profiles (pprof -diff_base) is what the measured window allocated.
func writeAllocs(b *testing.B, dir, name string) {
	if dir == "" {
		return
	}
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// allocCount is what a set of stacks allocated since the process started.
type allocCount struct{ objects, bytes int64 }

// allocSources are the process's allocations sorted by what made them (BenchmarkForwardTo100Viewers).
type allocSources struct{ path, rtcp, stun allocCount }

func (a allocSources) minus(b allocSources) allocSources {
	sub := func(x, y allocCount) allocCount { return allocCount{x.objects - y.objects, x.bytes - y.bytes} }
	return allocSources{sub(a.path, b.path), sub(a.rtcp, b.rtcp), sub(a.stun, b.stun)}
}

// Functions whose allocations, and their callees', are the endpoints' RTCP or pion's ICE; anything
// else is the path's.
var (
	rtcpFuncs = []string{"github.com/pion/rtcp.", "webrtc.(*feedbackLoop).", "webrtc.(*Endpoint).readRTCP",
		"webrtc.(*Endpoint).readReceiverRTCP", "webrtc.(*Endpoint).senderFeedback",
		"github.com/pion/webrtc/v4.(*PeerConnection).WriteRTCP", "github.com/pion/srtp/v3.(*SessionSRTCP)"}
	stunFuncs = []string{"github.com/pion/stun/", "github.com/pion/ice/v4.(*Agent).",
		"github.com/pion/ice/v4.(*candidateBase).handleInboundSTUNMessage", "github.com/pion/ice/v4/internal/taskloop."}
)

// allocsBySource sums the allocation profile by source, as of now (after a collection: the
// profile is as of the last one).
func allocsBySource() allocSources {
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for n, _ := runtime.MemProfile(nil, true); ; n += 64 {
		recs = make([]runtime.MemProfileRecord, n)
		if got, ok := runtime.MemProfile(recs, true); ok {
			recs = recs[:got]
			break
		}
	}
	var out allocSources
	for i := range recs {
		r := &recs[i]
		c := &out.path
		frames := runtime.CallersFrames(r.Stack())
		for more := true; more; {
			var f runtime.Frame
			f, more = frames.Next()
			if strings.HasSuffix(f.Function, ".allocsBySource") {
				c = &allocCount{} // the measurement's own
				break
			}
			if hasPrefixIn(f.Function, rtcpFuncs) {
				c = &out.rtcp
				break
			}
			if hasPrefixIn(f.Function, stunFuncs) {
				c = &out.stun
				break
			}
		}
		c.objects += r.AllocObjects
		c.bytes += r.AllocBytes
	}
	return out
}

func hasPrefixIn(fn string, list []string) bool {
	for _, p := range list {
		if strings.HasPrefix(fn, p) || strings.Contains(fn, "/"+p) {
			return true
		}
	}
	return false
}

// startPerf counts every system call of this process until the returned function is called; it
// returns 0 when perf is not there or not allowed.
func startPerf() func() int64 {
	var buf bytes.Buffer
	cmd := exec.Command("perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p", strconv.Itoa(os.Getpid()))
	cmd.Stderr = &buf
	if cmd.Start() != nil {
		return func() int64 { return 0 }
	}
	time.Sleep(200 * time.Millisecond) // perf attaches
	return func() int64 {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		for _, line := range strings.Split(buf.String(), "\n") {
			if f := strings.Split(line, ","); len(f) > 2 && f[2] == "raw_syscalls:sys_enter" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
		return 0
	}
}

// TestForwardBenchPeers is BenchmarkForwardTo100Viewers's peers, run in a process of their own:
// a publisher sending 30 fps of 16-packet frames (480 packets/s) and the viewers of a one-to-many,
// until its standard input closes.
func TestForwardBenchPeers(t *testing.T) {
	url := os.Getenv(benchPeersEnv)
	if url == "" {
		t.Skip("the peers of BenchmarkForwardTo100Viewers")
	}
	viewers, _ := strconv.Atoi(os.Getenv("KMS_BENCH_VIEWERS"))
	ctx, c, pipeline := testserver.Connect(t, url, 10*time.Minute)
	s := &session{t: t, ctx: ctx, c: c, pipeline: pipeline}
	presenterEp := s.endpoint()
	presenter := s.peer(testpeer.Options{Send: true, PacketsPerFrame: 16})
	s.negotiate(presenter, presenterEp)
	presenter.StartMedia()
	var peers []*testpeer.Peer
	for range viewers {
		ep := s.endpoint()
		s.connect(presenterEp, ep, "VIDEO")
		p := s.peer(testpeer.Options{Receive: true})
		s.negotiate(p, ep)
		peers = append(peers, p)
	}
	for i, p := range peers {
		if err := p.WaitVideo(ctx); err != nil {
			t.Fatalf("viewer %d: %v", i, err)
		}
	}
	fmt.Println("viewers ready")
	os.Stdin.Read(make([]byte, 1))
}
