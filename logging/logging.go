// Package logging gives every component a log/slog logger whose level comes
// from a GST_DEBUG-style string, and prints lines in the layout KMS uses.
package logging

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unicode"
)

// Logging owns the output and the per-category thresholds.
type Logging struct {
	mu      sync.Mutex // one Write per line keeps lines whole
	w       io.Writer
	color   bool
	pid     string
	levels  thresholds
	loggers sync.Map // category -> *slog.Logger
	json    bool     // see UseJSON
}

// New parses gstDebug and returns a Logging writing to w, with ANSI colors
// on level names when color is true. Invalid gstDebug entries are skipped
// and returned as warnings.
func New(w io.Writer, gstDebug string, color bool) (*Logging, []string) {
	t, warnings := parseGstDebug(gstDebug)
	return &Logging{w: w, color: color, pid: strconv.Itoa(os.Getpid()), levels: t}, warnings
}

// Logger returns the logger of a category (e.g. "KurentoWebRtcEndpointImpl").
// The threshold is resolved once per category, so Enabled is one comparison.
func (l *Logging) Logger(category string) *slog.Logger {
	if v, ok := l.loggers.Load(category); ok {
		return v.(*slog.Logger)
	}
	var lg *slog.Logger
	if l.json {
		lg = l.jsonLogger(category)
	} else {
		lg = slog.New(&handler{out: l, category: category, min: slogLevel(l.levels.threshold(category))})
	}
	v, _ := l.loggers.LoadOrStore(category, lg)
	return v.(*slog.Logger)
}

type handler struct {
	out      *Logging
	category string
	min      slog.Level
	attrs    []byte // preformatted " k=v" from WithAttrs
	group    string // "g1.g2." prefix for later keys
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.min }

var colors = map[string]string{
	"ERROR": "\x1b[31;1m", "WARNING": "\x1b[33;1m", "FIXME": "\x1b[35;1m", "INFO": "\x1b[32;1m",
	"DEBUG": "\x1b[36;1m", "LOG": "\x1b[37m", "TRACE": "\x1b[37;2m", "MEMDUMP": "\x1b[37;2m",
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Handle writes "<date,usec> <pid> <goroutine> <LEVEL> <category> <msg> k=v...".
func (h *handler) Handle(_ context.Context, r slog.Record) error {
	b := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(b)
	b.Reset()
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("2006-01-02T15:04:05,000000"))
	b.WriteByte(' ')
	b.WriteString(h.out.pid)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(goroutineID(), 10))
	b.WriteByte(' ')
	name := levelName(r.Level)
	pad := "       "[len(name):] // GStreamer pads level names to 7
	if h.out.color {
		b.WriteString(colors[name] + name + "\x1b[0m" + pad)
	} else {
		b.WriteString(name + pad)
	}
	b.WriteByte(' ')
	b.WriteString(h.category)
	b.WriteByte(' ')
	b.WriteString(r.Message)
	b.Write(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	_, err := h.out.w.Write(b.Bytes())
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	b := bytes.NewBuffer(bytes.Clone(h.attrs))
	for _, a := range as {
		appendAttr(b, h.group, a)
	}
	c.attrs = b.Bytes()
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group += name + "."
	return &c
}

func appendAttr(b *bytes.Buffer, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range v.Group() {
			appendAttr(b, prefix, g)
		}
		return
	}
	if a.Equal(slog.Attr{}) {
		return
	}
	b.WriteByte(' ')
	b.WriteString(prefix + a.Key)
	b.WriteByte('=')
	s := v.String()
	if v.Kind() == slog.KindTime {
		s = v.Time().Format(time.RFC3339Nano)
	}
	if needsQuote(s) {
		s = strconv.Quote(s)
	}
	b.WriteString(s)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == '"' || r == '=' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// goroutineID stands in for the thread id of KMS lines, so that the lines of
// one request can be followed. Only paid for enabled records.
func goroutineID() uint64 {
	var buf [32]byte
	s := buf[:runtime.Stack(buf[:], false)] // "goroutine 123 [running]:..."
	s = bytes.TrimPrefix(s, []byte("goroutine "))
	if i := bytes.IndexByte(s, ' '); i > 0 {
		s = s[:i]
	}
	id, _ := strconv.ParseUint(string(s), 10, 64)
	return id
}
