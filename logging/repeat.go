package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Repeats aggregates log lines that repeat: a message (by level and text) is written at most once
// per interval, with the number of times it came since the last line it was written. It is for
// logs that a peer can trigger from a packet path (one malformed packet, one line), so that no peer
// sets the server's log rate. At most maxRepeatKeys messages are tracked; past that, the extra
// messages of an interval are counted together under one line.
type Repeats struct {
	interval time.Duration
	mu       sync.Mutex
	seen     map[repeatKey]*repeatCount
}

type repeatKey struct {
	level slog.Level
	msg   string
}

type repeatCount struct {
	last       time.Time
	suppressed int
}

const maxRepeatKeys = 256

// overflowMsg stands for every message past maxRepeatKeys within an interval.
const overflowMsg = "other repeated log messages"

// NewRepeats aggregates per interval.
func NewRepeats(interval time.Duration) *Repeats {
	return &Repeats{interval: interval, seen: map[repeatKey]*repeatCount{}}
}

// Handler wraps h: records go through the aggregation before h.
func (r *Repeats) Handler(h slog.Handler) slog.Handler { return &repeatHandler{r: r, next: h} }

// admit tells whether a record is written now, with how many of its kind were held back since the
// last one, and the message to write it under.
func (r *Repeats) admit(level slog.Level, msg string, now time.Time) (ok bool, suppressed int, as string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := repeatKey{level, msg}
	c := r.seen[k]
	if c == nil {
		if len(r.seen) >= maxRepeatKeys {
			r.forget(now)
		}
		if len(r.seen) >= maxRepeatKeys {
			k = repeatKey{level, overflowMsg}
			msg = overflowMsg
			if c = r.seen[k]; c == nil {
				c = &repeatCount{}
				r.seen[k] = c
			}
		} else {
			c = &repeatCount{}
			r.seen[k] = c
		}
	}
	if !c.last.IsZero() && now.Sub(c.last) < r.interval {
		c.suppressed++
		return false, 0, ""
	}
	suppressed, c.suppressed, c.last = c.suppressed, 0, now
	return true, suppressed, msg
}

// forget drops the messages not seen for an interval; the caller holds r.mu.
func (r *Repeats) forget(now time.Time) {
	for k, c := range r.seen {
		if now.Sub(c.last) >= r.interval && c.suppressed == 0 {
			delete(r.seen, k)
		}
	}
}

type repeatHandler struct {
	r    *Repeats
	next slog.Handler
}

func (h *repeatHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *repeatHandler) Handle(ctx context.Context, rec slog.Record) error {
	ok, suppressed, msg := h.r.admit(rec.Level, rec.Message, rec.Time)
	if !ok {
		return nil
	}
	if msg != rec.Message || suppressed > 0 {
		out := slog.NewRecord(rec.Time, rec.Level, msg, rec.PC)
		if msg == rec.Message {
			rec.Attrs(func(a slog.Attr) bool { out.AddAttrs(a); return true })
		}
		if suppressed > 0 {
			out.AddAttrs(slog.Int("repeated", suppressed), slog.Duration("within", h.r.interval))
		}
		rec = out
	}
	return h.next.Handle(ctx, rec)
}

func (h *repeatHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &repeatHandler{r: h.r, next: h.next.WithAttrs(attrs)}
}

func (h *repeatHandler) WithGroup(name string) slog.Handler {
	return &repeatHandler{r: h.r, next: h.next.WithGroup(name)}
}
