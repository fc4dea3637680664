// Package workerconf reads and validates the settings of the GStreamer worker processes
// (--gst-workers, --gst-worker-restart, --gst-worker-memory-limit, --gst-worker-cpu-limit and their
// KMS_GST_* variables). The server's configuration and package gst's defaults both use it, so a
// value means the same everywhere.
package workerconf

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mode is how GStreamer pipelines are placed in processes.
type Mode int

// Placements.
const (
	// PerElement runs each GStreamer pipeline (a filter, a transcoder, a player...) in a worker
	// process of its own.
	PerElement Mode = iota
	// Pool runs pipelines in PoolSize shared workers, each new one in the least loaded.
	Pool
	// InProcess runs GStreamer inside the server, as before workers existed: only for comparing
	// costs; a crashing element ends the server.
	InProcess
)

// Settings of the worker processes.
type Settings struct {
	Mode        Mode
	PoolSize    int
	Restart     bool    // rebuild filters, players and hub mixers in a new worker after a crash
	MemoryLimit int64   // bytes per worker; 0 = none
	CPULimit    float64 // cores per worker; 0 = none
}

// DefaultMemoryLimit leaves room for several HD decoders and encoders in a worker while stopping a
// decompression bomb long before the machine swaps.
const DefaultMemoryLimit = 2 << 30

// Default is the settings without any option.
func Default() Settings { return Settings{Mode: PerElement, MemoryLimit: DefaultMemoryLimit} }

// Names of the options and their variables.
var (
	Options = []struct{ Flag, Env string }{
		{"gst-workers", "KMS_GST_WORKERS"},
		{"gst-worker-restart", "KMS_GST_WORKER_RESTART"},
		{"gst-worker-memory-limit", "KMS_GST_WORKER_MEMORY_LIMIT"},
		{"gst-worker-cpu-limit", "KMS_GST_WORKER_CPU_LIMIT"},
	}
)

// FromEnv reads the settings from the KMS_GST_* variables alone (tests, and package gst before the
// server configured it).
func FromEnv() (Settings, error) {
	return Parse(func(_, env string) (string, string) { return os.Getenv(env), env })
}

// Parse reads the settings; value returns an option's text and where it came from (for errors),
// given its flag and variable names, "" when unset.
func Parse(value func(flag, env string) (text, source string)) (Settings, error) {
	s := Default()
	if v, src := value(Options[0].Flag, Options[0].Env); v != "" {
		if err := s.parseMode(v); err != nil {
			return s, fmt.Errorf("%s: %v", src, err)
		}
	}
	if v, src := value(Options[1].Flag, Options[1].Env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return s, fmt.Errorf("%s: must be true or false, got %q", src, v)
		}
		s.Restart = b
	}
	if v, src := value(Options[2].Flag, Options[2].Env); v != "" {
		n, err := ParseBytes(v)
		if err != nil {
			return s, fmt.Errorf("%s: %v", src, err)
		}
		s.MemoryLimit = n
	}
	if v, src := value(Options[3].Flag, Options[3].Env); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < 0 || f > 4096 {
			return s, fmt.Errorf("%s: must be a number of cores such as 1.5 (0 = no limit), got %q", src, v)
		}
		s.CPULimit = f
	}
	return s, nil
}

func (s *Settings) parseMode(v string) error {
	switch {
	case v == "element":
		s.Mode = PerElement
	case v == "in-process":
		s.Mode = InProcess
	case strings.HasPrefix(v, "pool:"):
		n, err := strconv.Atoi(strings.TrimPrefix(v, "pool:"))
		if err != nil || n < 1 || n > 1024 {
			return fmt.Errorf("pool size must be 1 to 1024, got %q", v)
		}
		s.Mode, s.PoolSize = Pool, n
	default:
		return fmt.Errorf("must be element, pool:N or in-process, got %q", v)
	}
	return nil
}

// ParseBytes reads a size in bytes with an optional K, M or G suffix (powers of 1024).
func ParseBytes(v string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(v))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mul := int64(1)
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			mul = 1 << 10
		case 'M':
			mul = 1 << 20
		case 'G':
			mul = 1 << 30
		}
		if mul > 1 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mul {
		return 0, fmt.Errorf("must be a size in bytes such as 2G, 512M or 0 (no limit), got %q", v)
	}
	return n * mul, nil
}

// String is the mode as the option spells it.
func (s Settings) String() string {
	switch s.Mode {
	case Pool:
		return fmt.Sprintf("pool:%d", s.PoolSize)
	case InProcess:
		return "in-process"
	}
	return "element"
}
