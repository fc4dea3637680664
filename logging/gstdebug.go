package logging

import (
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
)

// slog levels for the GStreamer levels that slog lacks. ERROR, WARNING, INFO
// and DEBUG are slog's own; the others sit between them in the same order.
const (
	LevelFixme   = slog.Level(2)   // GStreamer 3, between INFO and WARN
	LevelLog     = slog.Level(-6)  // GStreamer 6
	LevelTrace   = slog.Level(-8)  // GStreamer 7
	LevelMemdump = slog.Level(-10) // GStreamer 9
)

// levelOff is above every level, for threshold 0 (none).
const levelOff = slog.Level(math.MaxInt)

var levelNames = []string{"NONE", "ERROR", "WARNING", "FIXME", "INFO", "DEBUG", "LOG", "TRACE", "", "MEMDUMP"}

// slogLevel is the most verbose slog level a GStreamer threshold lets through.
func slogLevel(gst int) slog.Level {
	switch gst {
	case 0:
		return levelOff
	case 1:
		return slog.LevelError
	case 2:
		return slog.LevelWarn
	case 3:
		return LevelFixme
	case 4:
		return slog.LevelInfo
	case 5:
		return slog.LevelDebug
	case 6:
		return LevelLog
	case 7, 8: // 8 is unused by GStreamer but a valid threshold
		return LevelTrace
	}
	return LevelMemdump
}

// levelName is the GStreamer name printed for a record's level.
func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= LevelFixme:
		return "FIXME"
	case l >= slog.LevelInfo:
		return "INFO"
	case l >= slog.LevelDebug:
		return "DEBUG"
	case l >= LevelLog:
		return "LOG"
	case l >= LevelTrace:
		return "TRACE"
	}
	return "MEMDUMP"
}

type rule struct {
	pattern string
	level   int
}

// thresholds is a parsed GST_DEBUG string.
type thresholds struct {
	def   int    // for categories no rule matches; GStreamer's default is 0
	rules []rule // in string order; the last match wins
}

// parseGstDebug parses "N,pattern:N,...". Levels are numbers 0..9 or names
// ("warning"). Like GStreamer, bad entries are skipped; they are returned as
// warnings.
func parseGstDebug(s string) (thresholds, []string) {
	var t thresholds
	var warnings []string
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		pattern, lvl, hasPattern := strings.Cut(item, ":")
		pattern = strings.TrimSpace(pattern)
		n, ok := parseLevel(strings.TrimSpace(lvl))
		if !hasPattern {
			n, ok = parseLevel(item)
		}
		if !ok || (hasPattern && pattern == "") {
			warnings = append(warnings, fmt.Sprintf("GST_DEBUG: ignoring invalid entry %q", item))
			continue
		}
		if hasPattern {
			t.rules = append(t.rules, rule{pattern, n})
		} else {
			t.def = n
		}
	}
	return t, warnings
}

func parseLevel(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n < len(levelNames)
	}
	for i, name := range levelNames {
		if name != "" && strings.EqualFold(s, name) {
			return i, true
		}
	}
	return 0, false
}

// threshold is the GStreamer level for a category.
func (t thresholds) threshold(category string) int {
	for i := len(t.rules) - 1; i >= 0; i-- {
		if globMatch(t.rules[i].pattern, category) {
			return t.rules[i].level
		}
	}
	return t.def
}

// globMatch matches like GLib's GPatternSpec: '*' is any run of characters,
// '?' any one character, everything else literal and case-sensitive.
func globMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0 // last '*' seen and where its match ends so far
	for n < len(name) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case star >= 0: // let the last '*' eat one more character
			mark++
			p, n = star+1, mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
