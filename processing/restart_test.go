package processing

import (
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/gst"
)

// TestRestartBudget: without the option nothing restarts and nothing needs saying; a limit kill is
// never restarted; crashes restart MaxRestarts times within RestartWindow, then not (saying why),
// and again once the oldest restart has left the window.
func TestRestartBudget(t *testing.T) {
	crash := &gst.Error{Domain: gst.DomainWorker, Code: 1}
	limit := &gst.Error{Domain: gst.DomainWorker, Code: 2}
	t0 := time.Unix(1000, 0)
	var r Restarts
	if ok, why := r.allow(false, crash, t0); ok || why != "" {
		t.Errorf("option off: %v %q, want no restart and no reason", ok, why)
	}
	if ok, why := r.allow(true, limit, t0); ok || why == "" {
		t.Errorf("limit kill: %v %q, want no restart with a reason", ok, why)
	}
	for i := range MaxRestarts {
		if ok, why := r.allow(true, crash, t0.Add(time.Duration(i)*time.Second)); !ok {
			t.Fatalf("crash %d: not restarted (%s)", i+1, why)
		}
	}
	ok, why := r.allow(true, crash, t0.Add(10*time.Second))
	if ok || !strings.Contains(why, "not restarted") {
		t.Errorf("crash past the budget: %v %q, want no restart, saying so", ok, why)
	}
	if ok, why := r.allow(true, crash, t0.Add(RestartWindow)); !ok {
		t.Errorf("a window after the first restart: not restarted (%s)", why)
	}
}
