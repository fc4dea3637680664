package logging

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "", true},
		{"*", "anything", true},
		{"Kurento*", "KurentoMediaServer", true},
		{"Kurento*", "kurentoMediaServer", false},
		{"*rtpendpoint", "basertpendpoint", true},
		{"*rtpendpoint", "rtpendpointx", false},
		{"rtp*handler", "rtpsynchandler", true},
		{"rtp*handler", "rtphandler", true},
		{"rtp*handler", "rtphandlerx", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"agnosticbin", "agnosticbin", true},
		{"agnosticbin", "agnosticbin2", false},
		{"kms?ce", "kmsice", true},
		{"kms?ce", "kmsce", false},
		{"**x", "abx", true},
		{"", "", true},
		{"", "a", false},
	}
	for _, tt := range tests {
		if got := globMatch(tt.pattern, tt.name); got != tt.want {
			t.Errorf("globMatch(%q, %q) = %v", tt.pattern, tt.name, got)
		}
	}
}

const kmsDefault = "2,Kurento*:4,kms*:4,sdp*:4,webrtc*:4,*rtpendpoint:4,rtp*handler:4,rtpsynchronizer:4,agnosticbin:4"

func TestParseGstDebug(t *testing.T) {
	tests := []struct {
		in       string
		category string
		want     int
		warnings int
	}{
		{"", "any", 0, 0},
		{kmsDefault, "KurentoMediaServer", 4, 0},
		{kmsDefault, "webrtcbin", 4, 0},
		{kmsDefault, "basertpendpoint", 4, 0},
		{kmsDefault, "GST_PADS", 2, 0},
		{"5", "any", 5, 0},
		{"3,foo:5", "foo", 5, 0},
		{"foo:5,3", "foo", 5, 0}, // a bare level never overrides a pattern
		{"foo*:5,foobar:1", "foobar", 1, 0},
		{"foobar:1,foo*:5", "foobar", 5, 0}, // later entries win
		{"*:6,x:2", "y", 6, 0},
		{" 3 , foo : 6 ", "foo", 6, 0},
		{"foo:warning,bar:DEBUG", "foo", 2, 0},
		{"foo:warning,bar:DEBUG", "bar", 5, 0},
		{"memdump", "x", 9, 0},
		{"8", "x", 8, 0},
		{"3,foo:10,bar:x,baz,:4,foo:-1,,", "foo", 3, 5},
		{"12", "x", 0, 1},
	}
	for _, tt := range tests {
		th, warnings := parseGstDebug(tt.in)
		if got := th.threshold(tt.category); got != tt.want || len(warnings) != tt.warnings {
			t.Errorf("%q %s: level %d (want %d), warnings %q (want %d)", tt.in, tt.category, got, tt.want, warnings, tt.warnings)
		}
	}
}

func TestLevels(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New(&buf, "2,Kurento*:4,none:0,all:9", false)
	ctx := context.Background()
	tests := []struct {
		category string
		level    slog.Level
		want     bool
	}{
		{"KurentoX", slog.LevelInfo, true},
		{"KurentoX", LevelFixme, true},
		{"KurentoX", slog.LevelDebug, false},
		{"other", slog.LevelWarn, true},
		{"other", LevelFixme, false},
		{"other", slog.LevelInfo, false},
		{"none", slog.LevelError, false},
		{"none", slog.Level(100), false},
		{"all", LevelMemdump, true},
		{"all", LevelTrace, true},
	}
	for _, tt := range tests {
		if got := l.Logger(tt.category).Enabled(ctx, tt.level); got != tt.want {
			t.Errorf("%s at %v: enabled = %v", tt.category, tt.level, got)
		}
	}
	if l.Logger("KurentoX") != l.Logger("KurentoX") {
		t.Error("logger not cached")
	}
	for gst := 1; gst <= 9; gst++ {
		if gst == 8 {
			continue
		}
		if name := levelName(slogLevel(gst)); name != levelNames[gst] {
			t.Errorf("level %d prints as %s", gst, name)
		}
	}
}

func TestLineFormat(t *testing.T) {
	var buf bytes.Buffer
	l, warnings := New(&buf, "4,bad", false)
	if len(warnings) != 1 {
		t.Fatalf("warnings = %q", warnings)
	}
	log := l.Logger("KurentoServerMethods")
	log.Info("session created", "id", "a b", "n", 3, slog.Group("g", "k", ""))
	log.With("pipeline", "p1").WithGroup("req").Log(context.Background(), LevelFixme, "x=y", "id", 7, "err", errors.New("boom"))
	log.Debug("hidden")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines = %q", lines)
	}
	head := `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{6} ` + fmt.Sprint(os.Getpid()) + ` [1-9]\d* `
	want := []string{
		head + `INFO    KurentoServerMethods session created id="a b" n=3 g.k=""$`,
		head + `FIXME   KurentoServerMethods x=y pipeline=p1 req.id=7 req.err=boom$`,
	}
	for i, w := range want {
		if !regexp.MustCompile(w).MatchString(lines[i]) {
			t.Errorf("line %q does not match %q", lines[i], w)
		}
	}
}

func TestColor(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New(&buf, "9", true)
	l.Logger("c").Error("e")
	l.Logger("c").Log(context.Background(), LevelTrace, "t")
	out := buf.String()
	if !strings.Contains(out, "\x1b[31;1mERROR\x1b[0m   c e\n") || !strings.Contains(out, "\x1b[37;2mTRACE\x1b[0m   c t\n") {
		t.Fatalf("output %q", out)
	}
}

func TestConcurrentLinesStayWhole(t *testing.T) {
	var buf bytes.Buffer
	l, _ := New(&buf, "4", false)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				l.Logger(fmt.Sprint("cat", i)).Info("m", "j", j)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, line := range lines {
		if !strings.Contains(line, " INFO    cat") || !strings.Contains(line, " m j=") {
			t.Fatalf("broken line %q", line)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// An older run's file counts toward the limit; other files are not ours.
	for _, name := range []string{"2000-01-01T000000.00000.pid1.log", "errors.log", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenRotatingFile(dir, 100, 3)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("a", 39) + "\n" // two lines fit in 100 bytes, three do not
	for i := range 10 {
		if _, err := fmt.Fprintf(r, "%d%s", i, line); err != nil {
			t.Fatal(err)
		}
	}
	big := strings.Repeat("b", 150) + "\n" // larger than a file: gets a file of its own
	if _, err := r.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("late")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after close: %v", err)
	}

	entries, _ := os.ReadDir(dir)
	var logs []string
	for _, e := range entries {
		if logName.MatchString(e.Name()) {
			logs = append(logs, e.Name())
		}
	}
	sort.Strings(logs)
	if len(logs) != 3 || len(entries) != 5 {
		t.Fatalf("files = %v", entries)
	}
	want := []string{"6" + line + "7" + line, "8" + line + "9" + line, big}
	pat := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d{6}\.0000[345]\.pid` + fmt.Sprint(os.Getpid()) + `\.log$`)
	for i, name := range logs {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if string(data) != want[i] || !pat.MatchString(name) {
			t.Errorf("%s = %q, want %q", name, data, want[i])
		}
	}
}

func TestRotationLimits(t *testing.T) {
	if _, err := OpenRotatingFile(t.TempDir(), 0, 1); err == nil {
		t.Error("size 0 accepted")
	}
	if _, err := OpenRotatingFile(t.TempDir(), 10, 0); err == nil {
		t.Error("keep 0 accepted")
	}
}

func BenchmarkEnabled(b *testing.B) {
	l, _ := New(&bytes.Buffer{}, "2,Kurento*:4", false)
	log := l.Logger("KurentoWebRtcEndpointImpl")
	ctx := context.Background()
	for b.Loop() {
		if log.Enabled(ctx, slog.LevelDebug) {
			b.Fatal("debug enabled")
		}
	}
}
