package ops_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testserver"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReadinessFollowsFreePorts: a server whose whole media port range is taken is alive but not
// ready, and says why; once the port is free again it is ready.
func TestReadinessFollowsFreePorts(t *testing.T) {
	taken, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	port := taken.LocalAddr().(*net.UDPAddr).Port
	s := testserver.Start(t, "KMS_METRICS_ADDRESS=127.0.0.1:0", fmt.Sprintf("KMS_MIN_PORT=%d", port), fmt.Sprintf("KMS_MAX_PORT=%d", port))
	if code, body := get(t, s.OpsURL+"/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %q, want 200", code, body)
	}
	code, body := get(t, s.OpsURL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "ports: no free UDP port") {
		t.Fatalf("/readyz with the port range taken = %d %q, want 503 naming the ports", code, body)
	}
	taken.Close()
	if code, body := get(t, s.OpsURL+"/readyz"); code != 200 {
		t.Fatalf("/readyz with the port free = %d %q, want 200", code, body)
	}
}

// TestSeriesBoundedWith200Endpoints: 200 WebRtcEndpoints in 20 pipelines add no series to /metrics
// compared with one endpoint (nothing is labelled per object).
func TestSeriesBoundedWith200Endpoints(t *testing.T) {
	s := testserver.StartSession(t, 120*time.Second, "KMS_METRICS_ADDRESS=127.0.0.1:0")
	series := func() (int, string) {
		_, text := get(t, s.OpsURL+"/metrics")
		n := 0
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, "kms_") {
				n++
			}
		}
		return n, text
	}
	create := func(ctx context.Context, pipeline string) {
		if _, err := s.Client.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline}); err != nil {
			t.Fatal(err)
		}
	}
	create(s.Ctx, s.Pipeline)
	one, _ := series()
	for i := range 199 {
		p := s.Pipeline
		if i%10 == 0 {
			var err error
			if p, err = s.Client.Create(s.Ctx, "MediaPipeline", nil); err != nil {
				t.Fatal(err)
			}
		}
		create(s.Ctx, p)
	}
	many, text := series()
	if many != one {
		t.Fatalf("%d kms_ series with 1 endpoint, %d with 200", one, many)
	}
	if !strings.Contains(text, `kms_elements{class="WebRtcEndpoint"} 200`) {
		t.Fatalf("kms_elements does not count 200 WebRtcEndpoints:\n%s", text)
	}
	t.Logf("%d kms_ series with 1 and with 200 endpoints", many)
}
