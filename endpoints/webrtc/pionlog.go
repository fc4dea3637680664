package webrtc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kurento-go/kms/logging"
	pionlog "github.com/pion/logging"
)

// pionRepeats aggregates pion's log lines for the whole process: pion logs from its packet paths
// (one "short buffer" line per datagram larger than the receive MTU, one line per unreadable
// candidate packet), so a peer could otherwise set the server's log rate.
var pionRepeats = logging.NewRepeats(10 * time.Second)

// pionLogs gives pion's components the endpoint's logger, through the aggregation. pion's errors
// are mostly about what a peer sent: warnings for the server. The rest is debug, as pion's own
// default logger shows errors only.
type pionLogs struct{ log *slog.Logger }

func newPionLogs(log *slog.Logger) pionLogs {
	return pionLogs{slog.New(pionRepeats.Handler(log.Handler()))}
}

// NewLogger adds the scope to each line rather than making a logger with it: pion asks for a dozen
// scopes per peer connection and most never log, and slog's With formats the attribute up front.
func (p pionLogs) NewLogger(scope string) pionlog.LeveledLogger {
	return pionLogger{p.log, scope}
}

type pionLogger struct {
	log   *slog.Logger
	scope string
}

func (l pionLogger) logf(level slog.Level, format string, args ...any) {
	if !l.log.Enabled(context.Background(), level) {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, args...), "pion", l.scope)
}

func (l pionLogger) Trace(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Tracef(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Debug(msg string)                  { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Debugf(format string, args ...any) { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Info(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Infof(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Warn(msg string)                   { l.logf(slog.LevelDebug, "%s", msg) }
func (l pionLogger) Warnf(format string, args ...any)  { l.logf(slog.LevelDebug, format, args...) }
func (l pionLogger) Error(msg string)                  { l.logf(slog.LevelWarn, "%s", msg) }
func (l pionLogger) Errorf(format string, args ...any) { l.logf(slog.LevelWarn, format, args...) }
