package config

import (
	"fmt"
	"net"
	"strconv"
)

// Observe holds the operations settings: the metrics listener and the log format.
type Observe struct {
	// MetricsAddress is HOST:PORT of the operations listener (/metrics, /healthz, /readyz,
	// /inspector/); "" = no listener.
	MetricsAddress string
	// LogFormat is "text" (KMS's layout) or "json" (one JSON object per line).
	LogFormat string
}

// Log formats.
const (
	LogText = "text"
	LogJSON = "json"
)

// applyObserve reads --metrics-address and --log-format, or their KMS_* variables (the names the
// operations interface fixes) when the command line lacks them.
func (f *flags) applyObserve(c *Config, getenv func(string) string) error {
	addr, src := f.valueOrEnv("metrics-address", "KMS_METRICS_ADDRESS", getenv)
	if addr != "" {
		// An empty host means every address, as net.Listen takes it.
		_, port, err := net.SplitHostPort(addr)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return fmt.Errorf("%s: must be HOST:PORT (e.g. 127.0.0.1:9090), got %q", src, addr)
		}
	}
	c.Observe.MetricsAddress = addr
	format, src := f.valueOrEnv("log-format", "KMS_LOG_FORMAT", getenv)
	switch format {
	case "":
		format = LogText
	case LogText, LogJSON:
	default:
		return fmt.Errorf("%s: must be text or json, got %q", src, format)
	}
	c.Observe.LogFormat = format
	return nil
}

// valueOrEnv returns an option's value and where it came from: the command line (or its
// KURENTO_* variable), else the environment variable env.
func (f *flags) valueOrEnv(long, env string, getenv func(string) string) (string, string) {
	if v, ok := f.values[long]; ok {
		return v, f.source[long]
	}
	return getenv(env), env
}
