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
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

const benchPeersEnv = "KMS_BENCH_FORWARD_URL"

// BenchmarkForwardTo100Viewers is the whole forwarding path: a pion publisher → its
// WebRtcEndpoint → 100 viewer WebRtcEndpoints → 100 pion viewers, over loopback. The peers run
// in a child process (TestForwardBenchPeers), so that -benchmem counts the server's allocations
// only: socket read (recvmmsg), SRTP, the graph, 100 × (rewrite, SRTP, batched write). One op is
// one datagram the server sends (at 100 viewers, RTP copies all but a few RTCP ones). Reported:
// send and receive syscalls of the shared sockets per op, and every syscall of the process per
// op (perf's raw_syscalls:sys_enter, when perf runs here). Setting up 100 peers is dear: run it
// with a fixed count,
//
//	go test ./endpoints/webrtc -run '^$' -bench ForwardTo100Viewers -benchmem -benchtime 200000x
//
// KMS_BENCH_ALLOC_PROFILE=DIR (with -memprofilerate 1) writes allocation profiles around the
// measured window, to see where what is left allocates.
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
	profile := os.Getenv("KMS_BENCH_ALLOC_PROFILE")
	writeAllocs(b, profile, "start")
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	b.ResetTimer()
	start := egress.Sent()
	for egress.Sent().Datagrams-start.Datagrams < uint64(b.N) {
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	end := egress.Sent()
	runtime.ReadMemStats(&m1)
	all := perf()
	writeAllocs(b, profile, "end")
	ops := float64(end.Datagrams - start.Datagrams)
	b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/ops, "allocs/datagram")
	b.ReportMetric(float64(end.Syscalls-start.Syscalls)/ops, "send-syscalls/op")
	b.ReportMetric(float64(end.Reads-start.Reads)/ops, "recv-syscalls/op")
	b.ReportMetric(float64(end.ReadDatagrams-start.ReadDatagrams)/ops, "datagrams-in/op")
	if all > 0 {
		b.ReportMetric(float64(all)/ops, "process-syscalls/op")
	}
}

// writeAllocs writes the allocation profile to dir/name.pprof when dir is set: the difference
// between the end and start profiles (pprof -diff_base) is what the measured window allocated.
// Run with -memprofilerate 1 to see every allocation.
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
