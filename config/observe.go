package config

import (
	"fmt"
	"net"
	"strconv"
	"time"
)

// Observe holds the operations settings: the metrics listener and the log format.
type Observe struct {
	// MetricsAddress is HOST:PORT of the operations listener (/metrics, /healthz, /readyz,
	// /inspector/); "" = no listener.
	MetricsAddress string
	// LogFormat is "text" (KMS's layout) or "json" (one JSON object per line).
	LogFormat string
	// MemoryReturnInterval is how often the server looks for memory to give back to the system after
	// a burst (KMS_MEMORY_RETURN_INTERVAL); 0 = never.
	MemoryReturnInterval time.Duration
}

// DefaultMemoryReturnInterval is short enough that a burst's memory leaves within seconds, long
// enough that the check costs nothing.
const DefaultMemoryReturnInterval = 5 * time.Second

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
	c.Observe.MemoryReturnInterval = DefaultMemoryReturnInterval
	if v := getenv("KMS_MEMORY_RETURN_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("KMS_MEMORY_RETURN_INTERVAL: must be a duration such as 5s (0 turns it off), got %q", v)
		}
		c.Observe.MemoryReturnInterval = d
	}
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
