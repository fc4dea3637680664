package ops_test

import (
	"encoding/json"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testserver"
)

// TestInspectorAPI: the JSON behind the page lists the pipeline and its session, reads the pipeline
// as elements and links, finds an element by id, and gives an element's GStreamer DOT.
func TestInspectorAPI(t *testing.T) {
	s := testserver.StartSession(t, 60*time.Second, "KMS_METRICS_ADDRESS=127.0.0.1:0")
	ep, err := s.Client.Create(s.Ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": s.Pipeline})
	if err != nil {
		t.Fatal(err)
	}
	pass, err := s.Client.Create(s.Ctx, "PassThrough", map[string]any{"mediaPipeline": s.Pipeline})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Invoke(s.Ctx, ep, "connect", map[string]any{"sink": pass}, nil); err != nil {
		t.Fatal(err)
	}
	api := s.OpsURL + "/inspector/api/"
	decode := func(path string, v any) {
		t.Helper()
		code, body := get(t, api+path)
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		if err := json.Unmarshal([]byte(body), v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}

	var overview struct {
		Sessions  []string
		Pipelines []struct {
			ID       string
			Elements int
			Sessions []string
		}
	}
	decode("overview", &overview)
	if len(overview.Pipelines) != 1 || overview.Pipelines[0].ID != s.Pipeline || overview.Pipelines[0].Elements != 2 ||
		len(overview.Sessions) != 1 || len(overview.Pipelines[0].Sessions) != 1 {
		t.Fatalf("overview = %+v", overview)
	}

	var p struct {
		Elements []struct{ ID, Class, ConnectionState string }
		Links    []struct{ Source, Sink, Media string }
	}
	decode("pipelines/"+url.PathEscape(s.Pipeline), &p)
	if len(p.Elements) != 2 || p.Elements[0].Class != "WebRtcEndpoint" || p.Elements[0].ConnectionState != "DISCONNECTED" {
		t.Fatalf("elements = %+v", p.Elements)
	}
	if len(p.Links) != 3 || p.Links[0].Source != ep || p.Links[0].Sink != pass {
		t.Fatalf("links = %+v, want audio, video and data from the endpoint to the PassThrough", p.Links)
	}

	var found struct{ ID, Class, Pipeline string }
	decode("objects/"+url.PathEscape(pass), &found)
	if found.Class != "PassThrough" || found.Pipeline != s.Pipeline {
		t.Fatalf("search = %+v", found)
	}
	if code, _ := get(t, api+"objects/nope"); code != 404 {
		t.Fatalf("search for an unknown id = %d, want 404", code)
	}
	if code, body := get(t, api+"dot/"+url.PathEscape(ep)); code != 200 || !strings.Contains(body, "digraph") {
		t.Fatalf("dot = %d %q", code, body)
	}
	if _, err := exec.LookPath("dot"); err == nil {
		// With Graphviz installed the page gets the DOT drawn.
		if code, body := get(t, api+"dot/"+url.PathEscape(ep)+"?format=svg"); code != 200 || !strings.Contains(body, "<svg") {
			t.Fatalf("dot as SVG = %d %.200q", code, body)
		}
	}
}
