// Package ops_test checks the operations listener from the outside, as operators use it: a real
// Prometheus server scraping it, and the inspector page in headless Chromium.
package ops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
)

// TestPrometheusScrapesLossySession: Debian's Prometheus scrapes the metrics listener while a pion
// peer sends audio and video through a lossy link (10% both ways) to a WebRtcEndpoint looped back to
// itself; Prometheus's query API must then report packets received and lost, one pipeline and one
// WebRtcEndpoint.
func TestPrometheusScrapesLossySession(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian package prometheus; scripts/install-deps.sh test installs it)")
	}
	s := testserver.StartSession(t, 120*time.Second, "KMS_METRICS_ADDRESS=127.0.0.1:0")
	peer, err := testpeer.New(testpeer.Options{Send: true, Receive: true, Loss: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(peer.Close)
	if err := peer.Connect(s.Ctx, s.Client, s.Pipeline, true); err != nil {
		t.Fatal(err)
	}
	if err := peer.WaitConnected(s.Ctx); err != nil {
		t.Fatal(err)
	}
	peer.StartMedia()

	prom := startPrometheus(t, bin, strings.TrimPrefix(s.OpsURL, "http://"))
	want := map[string]func(float64) bool{
		`sum(kms_rtp_packets_received_total)`:       func(v float64) bool { return v > 0 },
		`sum(kms_rtp_packets_lost_total)`:           func(v float64) bool { return v > 0 },
		`sum(kms_rtp_packets_sent_total)`:           func(v float64) bool { return v > 0 },
		`kms_pipelines`:                             func(v float64) bool { return v == 1 },
		`kms_elements{class="WebRtcEndpoint"}`:      func(v float64) bool { return v == 1 },
		`kms_sessions`:                              func(v float64) bool { return v >= 1 },
		`sum(kms_jsonrpc_requests_total{code="0"})`: func(v float64) bool { return v > 0 },
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]string{}
		ok := true
		for q, good := range want {
			v, err := prom.query(q)
			got[q] = fmt.Sprint(v, err)
			ok = ok && err == nil && good(v)
		}
		if ok {
			t.Logf("Prometheus answers: %v", got)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never reported the session; last answers: %v\nprometheus log:\n%s", got, prom.log())
		}
		time.Sleep(time.Second)
	}
}

type prometheus struct {
	base string
	mu   sync.Mutex
	out  bytes.Buffer
}

func (p *prometheus) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *prometheus) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.out.String()
	if len(s) > 4000 {
		s = s[len(s)-4000:]
	}
	return s
}

// startPrometheus runs Prometheus on a free loopback port with a temporary storage, scraping target
// every second; it is killed when the test ends.
func startPrometheus(t *testing.T, bin, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n"+
		"  - job_name: kms\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(testserver.FreePort(t)))
	p := &prometheus{base: "http://" + addr}
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = p, p
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s:\n%s", p.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// query runs an instant query that must return one sample, and returns its value.
func (p *prometheus) query(q string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", p.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		return 0, fmt.Errorf("query %s: %s", q, body)
	}
	if len(r.Data.Result) != 1 {
		return 0, fmt.Errorf("%d samples", len(r.Data.Result))
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
