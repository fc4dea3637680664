package config

import (
	"github.com/kurento-go/kms/gst/workerconf"

	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

type option struct {
	long     string
	short    byte // 0 = none
	hasValue bool
}

// options are the KMS options (boost program_options in main.cpp) plus the
// GStreamer ones that gst_init takes out of argv before KMS sees it.
var options = []option{
	{"conf-file", 'f', true},
	{"modules-config-path", 'c', true},
	{"modules-path", 'p', true},
	{"logs-path", 'd', true},
	{"log-file-size", 's', true},
	{"number-log-files", 'n', true},
	{"version", 'v', false},
	{"list", 'l', false},
	{"help", 'h', false},
	{"gst-debug", 0, true},
	{"gst-debug-level", 0, true},
	{"gst-debug-no-color", 0, false},
	{"metrics-address", 0, true},
	{"log-format", 0, true},
	{"cluster-store", 0, true},
	{"cluster-advertise", 0, true},
	{"router", 0, false},
	{"auth-secret-file", 0, true},
	{"auth-tenant-isolation", 0, false},
	{"drain-timeout", 0, true},
	{"gst-workers", 0, true},
	{"gst-worker-restart", 0, true},
	{"gst-worker-memory-limit", 0, true},
	{"gst-worker-cpu-limit", 0, true},
	{"webrtc-udp-mux", 0, true},
	{"webrtc-direct-srtp", 0, true},
}

type gstArg struct{ name, value string }

type flags struct {
	values   map[string]string // long name -> value, last occurrence wins
	source   map[string]string // long name -> "--name" or "KURENTO_NAME", for errors
	switches map[string]bool
	gst      []gstArg // --gst-debug*, in command-line order: later entries win
}

// parseFlags accepts --name=value, --name value, -x value and -xvalue.
// Unknown arguments are ignored as KMS does; a known option without its value
// is an error.
func parseFlags(args []string, getenv func(string) string) (*flags, error) {
	f := &flags{values: map[string]string{}, source: map[string]string{}, switches: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		var opt *option
		var val string
		var hasVal bool
		switch {
		case strings.HasPrefix(a, "--"):
			var name string
			name, val, hasVal = strings.Cut(a[2:], "=")
			opt = longOption(name)
		case len(a) >= 2 && a[0] == '-':
			opt = shortOption(a[1])
			val, hasVal = a[2:], len(a) > 2
			if opt != nil && !opt.hasValue && hasVal {
				opt = nil // "-vx" is not ours; grouped switches are not supported
			}
		}
		if opt == nil {
			continue
		}
		if !opt.hasValue {
			if hasVal {
				return nil, fmt.Errorf("--%s takes no value", opt.long)
			}
			f.switches[opt.long] = true
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("--%s needs a value", opt.long)
			}
			i++
			val = args[i]
		}
		if strings.HasPrefix(opt.long, "gst-debug") {
			f.gst = append(f.gst, gstArg{opt.long, val})
		} else {
			f.values[opt.long] = val
			f.source[opt.long] = "--" + opt.long
		}
	}
	// KURENTO_<NAME> acts as --<name> when the command line lacks it. Only
	// options with values: an env var must not turn the server into --help.
	for _, o := range options {
		if !o.hasValue || strings.HasPrefix(o.long, "gst-debug") {
			continue
		}
		if _, ok := f.values[o.long]; ok {
			continue
		}
		if v := getenv(envName(o.long)); v != "" {
			f.values[o.long] = v
			f.source[o.long] = envName(o.long)
		}
	}
	return f, nil
}

func longOption(name string) *option {
	for i := range options {
		if options[i].long == name {
			return &options[i]
		}
	}
	return nil
}

func shortOption(c byte) *option {
	for i := range options {
		if options[i].short == c {
			return &options[i]
		}
	}
	return nil
}

func envName(long string) string {
	return "KURENTO_" + strings.ToUpper(strings.ReplaceAll(long, "-", "_"))
}

func (f *flags) apply(c *Config, getenv func(string) string) error {
	switch {
	case f.switches["help"]:
		c.Action = ActionHelp
	case f.switches["version"]:
		c.Action = ActionVersion
	case f.switches["list"]:
		c.Action = ActionList
	}
	if v, ok := f.values["conf-file"]; ok {
		c.ConfFile = v
	}
	if v, ok := f.values["modules-config-path"]; ok {
		c.ModulesConfigPath = splitList(v)
	} else {
		c.ModulesConfigPath = []string{filepath.Join(filepath.Dir(c.ConfFile), "modules")}
	}
	c.ModulesPath = splitList(f.values["modules-path"])
	c.Log.Path = f.values["logs-path"]
	if err := f.applyObserve(c, getenv); err != nil {
		return err
	}
	var err error
	if c.GstWorkers, err = workerconf.Parse(func(flag, env string) (string, string) {
		return f.valueOrEnv(flag, env, getenv)
	}); err != nil {
		return err
	}
	if c.Cluster, err = f.cluster(getenv); err != nil {
		return err
	}
	if c.Log.FileSizeMB, err = f.positive("log-file-size", c.Log.FileSizeMB); err != nil {
		return err
	}
	if c.Log.FileCount, err = f.positive("number-log-files", c.Log.FileCount); err != nil {
		return err
	}

	// GStreamer reads GST_DEBUG first, then applies the flags on top. The
	// default stands in for an empty GST_DEBUG, as in the Docker entrypoint.
	levels := []string{DefaultGstDebug}
	if v := getenv("GST_DEBUG"); v != "" {
		levels[0] = v
	}
	for _, g := range f.gst {
		if g.name == "gst-debug-level" {
			if n, err := strconv.Atoi(g.value); err != nil || n < 0 || n > 9 {
				return fmt.Errorf("--gst-debug-level: must be an integer 0..9, got %q", g.value)
			}
		}
		levels = append(levels, g.value)
	}
	c.Log.GstDebug = strings.Join(levels, ",")
	// GStreamer disables color when the variable is set at all.
	c.Log.NoColor = f.switches["gst-debug-no-color"] || getenv("GST_DEBUG_NO_COLOR") != ""
	return nil
}

// positive reads a positive integer option, naming the flag or the
// KURENTO_* variable it came from in errors.
func (f *flags) positive(long string, def int) (int, error) {
	v, ok := f.values[long]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: must be a positive integer, got %q", f.source[long], v)
	}
	return n, nil
}
