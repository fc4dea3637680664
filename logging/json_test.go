package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONLines: with UseJSON every line is a JSON object with the level, category and message, the
// attributes as fields, and the pipeline id drawn out of an element id; levels keep their thresholds.
func TestJSONLines(t *testing.T) {
	var out bytes.Buffer
	l, _ := New(&out, "3,KurentoWebRtcEndpointImpl:5", false)
	l.UseJSON()
	el := "6a1b_kurento.MediaPipeline/77f0_kurento.WebRtcEndpoint"
	l.Logger("KurentoWebRtcEndpointImpl").With("element", el).Debug("ICE state", "session", "s-1", "state", "CONNECTED")
	l.Logger("KurentoMediaSet").Info("not shown: INFO is above level 3")
	l.Logger("KurentoMediaSet").Warn("expired", "object", el)

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), out.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatalf("line 1 is not JSON: %v\n%s", err, lines[0])
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatalf("line 2 is not JSON: %v\n%s", err, lines[1])
	}
	want := map[string]any{"level": "DEBUG", "category": "KurentoWebRtcEndpointImpl", "msg": "ICE state",
		"element": el, "pipeline": "6a1b_kurento.MediaPipeline", "session": "s-1", "state": "CONNECTED"}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("line 1 %s = %v, want %v (%s)", k, first[k], v, lines[0])
		}
	}
	if second["level"] != "WARNING" || second["object"] != el || second["pipeline"] != "6a1b_kurento.MediaPipeline" {
		t.Errorf("line 2 = %s", lines[1])
	}
	if _, ok := first["time"]; !ok {
		t.Errorf("no time field: %s", lines[0])
	}
}
