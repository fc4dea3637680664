package logging

import (
	"context"
	"log/slog"
	"strings"
)

// UseJSON switches the loggers made afterwards to one JSON object per line (slog's JSON handler),
// with the category and the object ids as fields; call it before the first Logger.
func (l *Logging) UseJSON() { l.json = true }

func (l *Logging) jsonLogger(category string) *slog.Logger {
	h := slog.NewJSONHandler(lockedWriter{l}, &slog.HandlerOptions{
		Level: slogLevel(l.levels.threshold(category)),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.LevelKey {
				a.Value = slog.StringValue(levelName(a.Value.Any().(slog.Level)))
			}
			return a
		},
	})
	return slog.New(idFields{h.WithAttrs([]slog.Attr{slog.String("category", category)})})
}

// lockedWriter writes whole lines under the Logging's lock, as the text handler does, so that lines
// of different categories never interleave.
type lockedWriter struct{ l *Logging }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	return w.l.w.Write(p)
}

// idFields adds a "pipeline" field wherever an element id is logged ("element" or "object"): element
// ids are "<pipeline id>/<element id>", and log searches go by pipeline.
type idFields struct{ slog.Handler }

func (h idFields) WithAttrs(as []slog.Attr) slog.Handler {
	return idFields{h.Handler.WithAttrs(withPipeline(as))}
}

func (h idFields) WithGroup(name string) slog.Handler { return idFields{h.Handler.WithGroup(name)} }

func (h idFields) Handle(ctx context.Context, r slog.Record) error {
	var extra []slog.Attr
	r.Attrs(func(a slog.Attr) bool {
		extra = append(extra, pipelineOf(a)...)
		return true
	})
	if len(extra) > 0 {
		r = r.Clone()
		r.AddAttrs(extra...)
	}
	return h.Handler.Handle(ctx, r)
}

func withPipeline(as []slog.Attr) []slog.Attr {
	out := as
	for _, a := range as {
		out = append(out, pipelineOf(a)...)
	}
	return out
}

// pipelineOf is the pipeline field an element id attribute implies, if any.
func pipelineOf(a slog.Attr) []slog.Attr {
	if a.Key != "element" && a.Key != "object" {
		return nil
	}
	id := a.Value.String()
	if p, _, ok := strings.Cut(id, "/"); ok && strings.HasSuffix(p, "MediaPipeline") {
		return []slog.Attr{slog.String("pipeline", p)}
	}
	return nil
}
