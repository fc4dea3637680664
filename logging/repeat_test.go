package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A message repeated 1000 times within one interval is written once; when it comes again after the
// interval, the line says how many were held back.
func TestRepeatsAggregate(t *testing.T) {
	var buf bytes.Buffer
	r := NewRepeats(time.Hour)
	log := slog.New(r.Handler(slog.NewTextHandler(&buf, nil)))
	for range 1000 {
		log.Warn("mux: failed to read from packetio.Buffer short buffer")
	}
	log.Warn("another")
	if n := strings.Count(buf.String(), "\n"); n != 2 {
		t.Fatalf("%d lines for 1000 repeats and one other message:\n%s", n, buf.String())
	}
	r.interval = 0
	log.Warn("mux: failed to read from packetio.Buffer short buffer")
	if !strings.Contains(buf.String(), "repeated=999") {
		t.Fatalf("the count of held-back lines is missing:\n%s", buf.String())
	}
	// Many different messages: at most maxRepeatKeys+1 lines per interval.
	buf.Reset()
	r.interval = time.Hour
	for i := range 5000 {
		log.Warn("failed to read from candidate " + strings.Repeat("x", i%3000))
	}
	if n := strings.Count(buf.String(), "\n"); n > maxRepeatKeys+1 {
		t.Fatalf("%d lines for 3000 distinct messages", n)
	}
}
