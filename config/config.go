// Package config builds the one typed, validated configuration of the media
// server from the sources KMS reads: command line, KURENTO_* and KMS_*
// environment variables, kurento.conf.json and the module config files.
package config

import (
	"github.com/kurento-go/kms/gst/workerconf"

	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Actions a command line can ask for instead of running the server.
const (
	ActionHelp    = "help"
	ActionVersion = "version"
	ActionList    = "list"
)

// DefaultConfFile is where KMS packages install the main config file.
const DefaultConfFile = "/etc/kurento/kurento.conf.json"

// DefaultGstDebug is the level string the KMS 7.x Docker entrypoint and
// /etc/default/kurento-media-server set. Plain GStreamer would log nothing
// without GST_DEBUG, but every supported KMS install runs with this string,
// so it is what operators expect to see.
const DefaultGstDebug = "2,Kurento*:4,kms*:4,sdp*:4,webrtc*:4,*rtpendpoint:4,rtp*handler:4,rtpsynchronizer:4,agnosticbin:4"

// Config is the whole server configuration. Zero values never mean
// "default": Load fills every default explicitly.
type Config struct {
	// Action is "" to run the server, or ActionHelp/ActionVersion/ActionList
	// when the command line asks only for output. The caller prints.
	Action string

	ConfFile          string   // main config file (may not exist)
	ModulesConfigPath []string // dirs scanned for <sub>/<Name>.conf.{ini,json}
	ModulesPath       []string // extra dirs with module plugins

	Resources Resources
	WebSocket WebSocket
	// Metadata is the compact JSON text of the top-level "metadata" value,
	// "" when absent; ServerManager.getMetadata returns it.
	Metadata string
	Modules  Modules
	Log      Log
	Observe  Observe
	Cluster  Cluster

	Access       Access
	Limits       Limits
	DrainTimeout time.Duration // SIGTERM: how long existing pipelines may run on; 0 = stop at once, as KMS

	// GstWorkers places GStreamer pipelines in worker processes and limits them (--gst-worker*).
	GstWorkers workerconf.Settings

	// Warnings are notes for the log (missing files, ignored values); the
	// logger does not exist yet when Load runs.
	Warnings []string
}

// Resources is mediaServer.resources.
type Resources struct {
	ExceptionLimit         float64       // fraction in (0,1]
	KillLimit              float64       // fraction in (0,1]; 0 = unset
	GarbageCollectorPeriod time.Duration // > 0
	DisableRequestCache    bool
}

// WebSocket is mediaServer.net.websocket.
type WebSocket struct {
	Port      int    // 0 = no ws:// listener
	Address   string // "" = any address
	IPv6      bool   // try [::] before 0.0.0.0 when Address is ""
	Path      string // without leading '/', as KMS
	Threads   int
	ConnQueue int // listen backlog; 0 = system default (SOMAXCONN)
	Secure    Secure
}

// Secure is mediaServer.net.websocket.secure.
type Secure struct {
	Port        int    // 0 = no wss:// listener
	Certificate string // PEM chain + key, relative paths resolved; "" = none
	Password    string
}

// Log holds what the logging package needs.
type Log struct {
	GstDebug   string // GST_DEBUG-style level string, flags applied
	NoColor    bool   // GST_DEBUG_NO_COLOR or --gst-debug-no-color
	Path       string // -d: rotating files there; "" = stdout
	FileSizeMB int    // -s
	FileCount  int    // -n
}

// Load builds the configuration from the command line (args without the
// program name), the environment (getenv), kurento.conf.json and the module
// .conf.ini/.conf.json files, then validates it. All validation problems are
// returned together (errors.Join).
func Load(args []string, getenv func(string) string) (*Config, error) {
	c := defaults()
	f, err := parseFlags(args, getenv)
	if err != nil {
		return nil, err
	}
	if err := f.apply(c, getenv); err != nil {
		return nil, err
	}
	if c.Action != "" {
		// Like KMS, --help/--version/--list must work with a broken config.
		return c, nil
	}

	var errs []error
	var file lookup
	data, err := os.ReadFile(c.ConfFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.Warnings = append(c.Warnings, fmt.Sprintf("config file %s not found, using defaults", c.ConfFile))
	case err != nil:
		return nil, err
	default:
		if file, err = loadMainFile(c, c.ConfFile, data); err != nil {
			errs = append(errs, err)
		}
	}
	if err := loadOperations(c, file, f, getenv); err != nil {
		errs = append(errs, err)
	}

	mods := loadModuleDirs(c.ModulesConfigPath, &c.Warnings)
	applyKMSEnv(mods, getenv, filepath.Dir(c.ConfFile), &c.Warnings)
	// These flags win over the variable and the file; all three are validated as one setting.
	for flag, key := range map[string]string{"webrtc-udp-mux": "udpMux", "webrtc-direct-srtp": "directSrtp"} {
		if v, ok := f.values[flag]; ok {
			mods.set("kurento.WebRtcEndpoint", key, setting{v: v, src: f.source[flag]})
		}
	}
	if err := c.Modules.decode(mods); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func defaults() *Config {
	return &Config{
		ConfFile: DefaultConfFile,
		Resources: Resources{
			ExceptionLimit:         0.8,
			GarbageCollectorPeriod: 240 * time.Second,
		},
		WebSocket: WebSocket{Port: 8888, IPv6: true, Path: "kurento", Threads: 10},
		Modules:   defaultModules(),
		Log:       Log{GstDebug: DefaultGstDebug, FileSizeMB: 100, FileCount: 10},
		Limits:    DefaultLimits(),
	}
}

// Usage is the --help text.
func Usage(program string) string {
	return "Usage: " + program + ` [options]
  -f, --conf-file PATH            main config file (` + DefaultConfFile + `)
  -c, --modules-config-path DIRS  colon-separated module config dirs (<conf dir>/modules)
  -p, --modules-path DIRS         colon-separated module dirs
  -d, --logs-path DIR             write rotating log files to DIR
  -s, --log-file-size MB          size of each log file (100)
  -n, --number-log-files N        log files kept (10)
  -v, --version                   print version and modules, then exit
  -l, --list                      list available factories, then exit
  -h, --help                      print this help, then exit
  --gst-debug=STR                 extra GST_DEBUG-style levels
  --gst-debug-level=N             default log level 0..9
  --gst-debug-no-color            no colors in log output
  --metrics-address HOST:PORT     serve /metrics, /healthz, /readyz and /inspector/ there
                                  (KMS_METRICS_ADDRESS; empty = off)
  --log-format text|json          KMS-style text lines, or JSON objects (KMS_LOG_FORMAT; text)
  --cluster-store URL             join a cluster: redis://HOST:PORT[/DB] (KMS_CLUSTER_STORE)
  --cluster-advertise URI         Kurento URI routers use for this node (KMS_CLUSTER_ADVERTISE;
                                  default: this server's WebSocket address)
  --router                        be a cluster router, not a media node (KMS_ROUTER=true)
  --auth-secret-file FILE         require JWTs signed (HS256) with the key in FILE (KMS_AUTH_SECRET_FILE)
  --auth-tenant-isolation         sessions see only their token's tenant's objects
  --drain-timeout SECONDS         on SIGTERM, let pipelines run up to this long (KMS_DRAIN_TIMEOUT, 0)
  --gst-workers MODE              GStreamer processes: element (one worker per pipeline), pool:N,
                                  or in-process (only to compare costs) (KMS_GST_WORKERS; element)
  --gst-worker-restart BOOL       rebuild filters, transcoders and mixers in a new worker after a
                                  crash (KMS_GST_WORKER_RESTART; false)
  --gst-worker-memory-limit SIZE  per worker, e.g. 512M, 2G, 0 = none (KMS_GST_WORKER_MEMORY_LIMIT; 2G)
  --gst-worker-cpu-limit CORES    per worker, killed after 10 s above it, 0 = none
                                  (KMS_GST_WORKER_CPU_LIMIT; 0)
  --webrtc-udp-mux BOOL           all WebRtcEndpoints share one UDP port per interface address
                                  (KMS_WEBRTC_UDP_MUX, WebRtcEndpoint udpMux; true); false: ports
                                  of their own per endpoint, as KMS
  --webrtc-direct-srtp BOOL       send RTP on the shared UDP port with the endpoint's own SRTP
                                  context, not pion's write path, where it can
                                  (KMS_WEBRTC_DIRECT_SRTP, WebRtcEndpoint directSrtp; true)
Every long option can also be set as KURENTO_<OPTION> (e.g. KURENTO_CONF_FILE).
`
}

// splitList splits a colon-separated dir list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ":") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
