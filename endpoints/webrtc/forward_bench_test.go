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
	"sort"
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
// the peers' reports we read), pion's ICE (stun-allocs/op: STUN keepalives and consent checks) and
// pion's receive chain for the datagrams the direct receive path leaves to it (pion-rx-allocs/op:
// STUN, DTLS, SRTCP; the path's if pion carried RTP in the window); other-allocs/op are the lag
// log lines (a timer's) and the runtime's own (goroutines for timers). What is none of these counts
// as the path's, whatever made it, and its stacks are logged. The testing package prints
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
	startForwardPeers(b, 100, "KMS_MIN_PORT=48200", "KMS_MAX_PORT=48299")

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
	allocs, datagrams := pathAllocs(b, b.N, os.Getenv("KMS_BENCH_ALLOC_PROFILE"))
	ops = float64(datagrams)
	b.ReportMetric(float64(allocs.path.objects)/ops, "allocs/op")       // printed as a whole number
	b.ReportMetric(float64(allocs.path.objects)/ops, "allocs/datagram") // and exactly
	b.ReportMetric(float64(allocs.path.bytes)/ops, "B/op")
	b.ReportMetric(float64(allocs.rtcp.objects)/ops, "rtcp-allocs/op")
	b.ReportMetric(float64(allocs.stun.objects)/ops, "stun-allocs/op")
	b.ReportMetric(float64(allocs.pionRx.objects)/ops, "pion-rx-allocs/op")
	b.ReportMetric(float64(allocs.other.objects)/ops, "other-allocs/op")
	b.ReportMetric(float64(allocs.growth.objects)/ops, "growth-allocs/op")
	if allocs.path.objects > 0 { // on stderr: a benchmark's log is cut to a few lines
		fmt.Fprintf(os.Stderr, "the forwarding path allocated:\n%s", allocs.pathStacks())
	}
}

// pathAllocs records every allocation of the process while n datagrams leave the shared sockets,
// sorted by what made them, and returns them with the datagrams sent. A collection runs in the
// middle: it empties the sync.Pools, whose refill allocates. profile, when set, is the directory
// the window's allocation profiles go to.
func pathAllocs(tb testing.TB, n int, profile string) (allocSources, uint64) {
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	writeAllocs(tb, profile, "start")
	allocs0 := allocsBySource(false)
	rx0, tx0 := webrtc.ReceivedRTP(), webrtc.SentRTP()
	start := egress.Sent()
	waitDatagrams(start, n/2)
	runtime.GC()
	waitDatagrams(start, n)
	datagrams := egress.Sent().Datagrams - start.Datagrams
	// What pion receives is STUN, DTLS and SRTCP while the direct paths carry the RTP both ways;
	// if pion carried RTP too, its receive chain is the path's.
	rx, tx := webrtc.ReceivedRTP(), webrtc.SentRTP()
	pionRTP := rx.Pion != rx0.Pion || tx.Pion != tx0.Pion
	allocs := allocsBySource(pionRTP).minus(allocs0)
	writeAllocs(tb, profile, "end")
	return allocs, datagrams
}

// startForwardPeers starts a server (env its settings) and, in a child process, a publisher and
// viewers of a one-to-many on it (TestForwardBenchPeers); it returns once every viewer has video.
func startForwardPeers(tb testing.TB, viewers int, env ...string) {
	srv := testserver.Start(tb, env...)
	cmd := exec.Command(os.Args[0], "-test.run=^TestForwardBenchPeers$", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), benchPeersEnv+"="+srv.URL, fmt.Sprintf("KMS_BENCH_VIEWERS=%d", viewers))
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe() // the child runs until it closes
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); cmd.Wait() })
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
			tb.Fatal("the peers' process ended before its viewers had video")
		}
	case <-time.After(5 * time.Minute):
		tb.Fatal("the viewers got no video in 5 minutes")
	}
}

// waitDatagrams returns once n datagrams more than at start have left the shared sockets.
func waitDatagrams(start egress.Counts, n int) {
	for egress.Sent().Datagrams-start.Datagrams < uint64(n) {
		time.Sleep(5 * time.Millisecond)
	}
}

// writeAllocs writes the allocation profile to dir/name.pprof when dir is set: the difference
// between the end and start profiles (pprof -diff_base) is what the measured window allocated.
func writeAllocs(tb testing.TB, dir, name string) {
	if dir == "" {
		return
	}
	runtime.GC() // the profile is as of the last collection
	f, err := os.Create(filepath.Join(dir, name+".pprof"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		tb.Fatal(err)
	}
}

// allocCount is what a set of stacks allocated since the process started.
type allocCount struct{ objects, bytes int64 }

// allocSources are the process's allocations sorted by what made them (BenchmarkForwardTo100Viewers),
// and the path's by stack.
type allocSources struct {
	path, rtcp, stun, pionRx, other allocCount
	growth                          allocCount // part of path: see growthFuncs
	stacks                          map[string]int64
}

func (a allocSources) minus(b allocSources) allocSources {
	sub := func(x, y allocCount) allocCount { return allocCount{x.objects - y.objects, x.bytes - y.bytes} }
	stacks := map[string]int64{}
	for k, n := range a.stacks {
		if d := n - b.stacks[k]; d != 0 {
			stacks[k] = d
		}
	}
	return allocSources{sub(a.path, b.path), sub(a.rtcp, b.rtcp), sub(a.stun, b.stun), sub(a.pionRx, b.pionRx),
		sub(a.other, b.other), sub(a.growth, b.growth), stacks}
}

// pathStacks lists the path's allocations by stack, most first.
func (a allocSources) pathStacks() string {
	keys := make([]string, 0, len(a.stacks))
	for k := range a.stacks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return a.stacks[keys[i]] > a.stacks[keys[j]] })
	var out strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&out, "%d objects:\n%s\n", a.stacks[k], k)
	}
	return out.String()
}

// Functions whose allocations, and their callees', are the endpoints' RTCP, pion's ICE, or pion's
// receive chain (its UDP mux's queues, the candidates' read loops, the DTLS/SRTP mux, the SRTP
// sessions' readers: what the direct receive path leaves to pion); anything else is the path's,
// and so is serving a viewer's NACKs (loss recovery), though its RTCP reader calls it. The frame
// nearest the allocation decides. Others are neither: the lag log line (a timer's, every 5 s per
// peer that lags) and the runtime's own (the sudogs of a goroutine that blocks in a select or on a
// channel, whose cache every collection empties).
var (
	rtcpFuncs = []string{"github.com/pion/rtcp.", "webrtc.(*feedbackLoop).", "webrtc.(*Endpoint).readRTCP",
		"webrtc.(*Endpoint).readReceiverRTCP", "webrtc.(*Endpoint).senderFeedback",
		"github.com/pion/webrtc/v4.(*PeerConnection).WriteRTCP", "github.com/pion/srtp/v3.(*SessionSRTCP)"}
	stunFuncs = []string{"github.com/pion/stun/", "github.com/pion/ice/v4.(*Agent).",
		"github.com/pion/ice/v4.(*candidateBase).handleInboundSTUNMessage", "github.com/pion/ice/v4/internal/taskloop."}
	pionRxFuncs = []string{"github.com/pion/ice/v4.(*udpMuxedConn).writePacket", "github.com/pion/ice/v4.(*candidateBase).recvLoop",
		"github.com/pion/webrtc/v4/internal/mux.(*Mux).readLoop", "github.com/pion/srtp/v3.(*session)."}
	pathFuncs = []string{"media.(*Sender).HandleNACK"}
	// The path's growth: made once, or on a lasting change of the stream, never per packet. A
	// source's cache takes a new ring when its packet rate changes for a second (and its senders'
	// sequence maps follow it), a track's receive ring doubles up to its bound when its reader
	// fell behind, a receiver makes its NACK window with the stream's first loss, and the
	// runtime's timer heap grows to the most timers a core has had. A sender makes its
	// retransmission buffers with its first retransmission, and pion's SRTP context the state of
	// an SSRC with its first packet (the RTX stream's: the first retransmission).
	growthFuncs = []string{"media.(*PacketCache).resize", "media.(*Sender).seqMapFor", "webrtc.(*rxRing).double",
		"rtpengine.(*Receiver).Push", "runtime.(*timers).addHeap", "media.(*Sender).Resend",
		"github.com/pion/srtp/v3.(*Context).getSRTPSSRCState"}
	otherFuncs = []string{"media.(*Sender).logLag", "runtime.acquireSudog"}
)

// allocsBySource sums the allocation profile by source, as of now (after a collection: the
// profile is as of the last one); pionRxIsPath counts pion's receive chain as the path's.
func allocsBySource(pionRxIsPath bool) allocSources {
	runtime.GC()
	var recs []runtime.MemProfileRecord
	for n, _ := runtime.MemProfile(nil, true); ; n += 64 {
		recs = make([]runtime.MemProfileRecord, n)
		if got, ok := runtime.MemProfile(recs, true); ok {
			recs = recs[:got]
			break
		}
	}
	out := allocSources{stacks: map[string]int64{}}
	for i := range recs {
		r := &recs[i]
		c := &out.path
		frames := runtime.CallersFrames(r.Stack())
		var stack strings.Builder
		runtimeOnly := true
		var growth *allocCount
		pastRuntime := false
		for more := true; more; {
			var f runtime.Frame
			f, more = frames.Next()
			fmt.Fprintf(&stack, "\t%s:%d\n", f.Function, f.Line)
			if strings.HasSuffix(f.Function, ".allocsBySource") {
				c = &allocCount{} // the measurement's own
				break
			}
			runtimeOnly = runtimeOnly && (strings.HasPrefix(f.Function, "runtime.") || f.Function == "time.goFunc")
			if !pastRuntime { // growth is what the function nearest the allocation makes itself
				if hasPrefixIn(f.Function, growthFuncs) {
					growth = &out.growth
				}
				pastRuntime = !strings.HasPrefix(f.Function, "runtime.")
			}
			if !more && runtimeOnly {
				c = &out.other // the runtime's own (a goroutine for a timer's function): no caller to blame
				break
			}
			if hasPrefixIn(f.Function, otherFuncs) {
				c = &out.other
				break
			}
			if hasPrefixIn(f.Function, pathFuncs) {
				break
			}
			if !pionRxIsPath && hasPrefixIn(f.Function, pionRxFuncs) {
				c = &out.pionRx
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
		if c == &out.path {
			out.stacks[stack.String()] += r.AllocObjects
			if growth != nil {
				growth.objects += r.AllocObjects
				growth.bytes += r.AllocBytes
			}
		}
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

// The forwarding path allocates nothing in steady state: socket read (recvmmsg), SRTP decryption,
// the track's ring and reader, NACK generation, the fan-out's accept and send steps, SRTP, the
// batched write, with garbage collections in between. BenchmarkForwardTo100Viewers's setup with 8
// viewers; after a warm-up (the caches and rings reach their size), every allocation of a window
// is recorded with its stack, and any on the path fails the test, but the growth growthFuncs
// lists (once, or on a lasting change of the stream: the benchmark counts it).
func TestForwardingPathAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("a one-to-many of 8 viewers")
	}
	startForwardPeers(t, 8, "KMS_MIN_PORT=48400", "KMS_MAX_PORT=48419")
	// 8 viewers get about 4000 datagrams/s: 5 s of warm-up, then a 5 s window.
	waitDatagrams(egress.Sent(), 20000)
	allocs, datagrams := pathAllocs(t, 20000, "")
	if n := allocs.path.objects - allocs.growth.objects; n != 0 {
		t.Fatalf("the forwarding path allocated %d objects (%d bytes) for %d datagrams:\n%s",
			n, allocs.path.bytes-allocs.growth.bytes, datagrams, allocs.pathStacks())
	}
	t.Logf("%d datagrams, no allocation on the path but growth (%d objects); RTCP %d, STUN %d, pion's receive chain %d, others %d objects",
		datagrams, allocs.growth.objects, allocs.rtcp.objects, allocs.stun.objects, allocs.pionRx.objects, allocs.other.objects)
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
