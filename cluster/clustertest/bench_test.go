package clustertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/internal/testpeer"
)

// BenchmarkRouterProcessOffer measures what a router adds to signalling, on loopback: the
// processOffer round trip straight to a node and through a router in front of it, and the router's
// CPU time per request it forwards (each iteration: create pipeline, create endpoint, processOffer,
// release = 4 requests).
//
//	go test ./cluster/clustertest -run '^$' -bench RouterProcessOffer -benchtime 200x
func BenchmarkRouterProcessOffer(b *testing.B) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		b.Skip("redis-server not installed")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "kurento-media-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kurento-go/kms/cmd/kurento-media-server").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	ports := freePorts(b, 3)
	store := fmt.Sprintf("redis://127.0.0.1:%d/0", ports[0])
	startProc(b, dir, "redis", nil, "redis-server", "--port", strconv.Itoa(ports[0]), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	node := fmt.Sprintf("ws://127.0.0.1:%d/kurento", ports[1])
	startProc(b, dir, "node", []string{"KMS_CLUSTER_STORE=" + store, "KMS_CLUSTER_ADVERTISE=" + node}, bin, "-f", conf(b, dir, ports[1]))
	router := fmt.Sprintf("ws://127.0.0.1:%d/kurento", ports[2])
	routerPID := startProc(b, dir, "router", []string{"KMS_CLUSTER_STORE=" + store, "KMS_ROUTER=true"}, bin, "-f", conf(b, dir, ports[2]))
	ctx := context.Background()
	for _, u := range []string{node, router} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := client.Dial(ctx, u)
			if err == nil {
				// The router knows the node once a create succeeds.
				if _, err = c.Create(ctx, "MediaPipeline", nil); err == nil {
					c.Close()
					break
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s not up: %v", u, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	direct, _ := offerRoundTrips(b, node, b.N)
	cpu0 := cpuTicks(b, routerPID)
	routed, requests := offerRoundTrips(b, router, b.N)
	cpu := time.Duration(cpuTicks(b, routerPID)-cpu0) * 10 * time.Millisecond // USER_HZ = 100
	b.ReportMetric(float64(direct.Microseconds())/1000, "ms-offer-direct")
	b.ReportMetric(float64(routed.Microseconds())/1000, "ms-offer-routed")
	b.ReportMetric(float64(cpu.Microseconds())/float64(requests), "router-cpu-µs/req")
}

// offerRoundTrips runs n hello-world set-ups and returns the median processOffer round trip and the
// number of requests sent.
func offerRoundTrips(b *testing.B, uri string, n int) (time.Duration, int) {
	ctx := context.Background()
	c, err := client.Dial(ctx, uri)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	p, err := testpeer.New(testpeer.Options{Send: true, Receive: true})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	offer, err := p.PC.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for range n {
		pipeline, err := c.Create(ctx, "MediaPipeline", nil)
		if err != nil {
			b.Fatal(err)
		}
		ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": offer.SDP}, nil); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		if err := c.Release(ctx, pipeline); err != nil {
			b.Fatal(err)
		}
	}
	slices.Sort(took)
	return took[len(took)/2], 4 * n
}

func freePorts(b *testing.B, n int) []int {
	var out []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return out
}

func conf(b *testing.B, dir string, port int) string {
	f := filepath.Join(dir, fmt.Sprintf("kurento-%d.conf.json", port))
	data := fmt.Sprintf(`{"mediaServer":{"net":{"websocket":{"port":%d,"path":"kurento"}}}}`, port)
	if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
		b.Fatal(err)
	}
	return f
}

func startProc(b *testing.B, dir, name string, env []string, prog string, args ...string) int {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), append(env, "GST_DEBUG=1")...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// cpuTicks is utime+stime of a process, in USER_HZ ticks.
func cpuTicks(b *testing.B, pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}
