// Command kurento-media-server is a Kurento Media Server: it takes KMS's flags and configuration and
// serves the Kurento Protocol on ws://HOST:8888/kurento.
package main

import (
	"github.com/kurento-go/kms/gst"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/elements"
	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/guard"
	"github.com/kurento-go/kms/logging"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/memreturn"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/ops"
	"github.com/kurento-go/kms/protocol"
	"github.com/kurento-go/kms/tlsreload"
)

func main() {
	os.Exit(run(os.Args, os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(args[1:], getenv)
	if err != nil {
		fmt.Fprintf(stderr, "kurento-media-server: configuration error: %v\n", err)
		return 1
	}
	schema, err := api.Load()
	if err != nil {
		fmt.Fprintf(stderr, "kurento-media-server: %v\n", err)
		return 1
	}
	switch cfg.Action {
	case config.ActionHelp:
		fmt.Fprint(stdout, config.Usage("kurento-media-server"))
		return 0
	case config.ActionVersion:
		fmt.Fprintf(stdout, "Kurento Media Server version: %s\nFound modules:\n", api.Version)
		for _, m := range schema.ModuleNames() {
			fmt.Fprintf(stdout, "\tModule: '%s' version '%s'\n", m, api.Version)
		}
		return 0
	case config.ActionList:
		fmt.Fprintln(stdout, "Available factories:")
		for _, m := range schema.ModuleNames() {
			for _, f := range schema.Factories(m) {
				fmt.Fprintf(stdout, "\t%s\n\tkurento.%s\n", f, f)
			}
		}
		return 0
	}

	logOut := stdout
	if cfg.Log.Path != "" {
		rf, err := logging.OpenRotatingFile(cfg.Log.Path, int64(cfg.Log.FileSizeMB)<<20, cfg.Log.FileCount)
		if err != nil {
			fmt.Fprintf(stderr, "kurento-media-server: logs path: %v\n", err)
			return 1
		}
		defer rf.Close()
		logOut = rf
	}
	logs, warnings := logging.New(logOut, cfg.Log.GstDebug, !cfg.Log.NoColor && isTerminal(logOut))
	if cfg.Observe.LogFormat == config.LogJSON {
		logs.UseJSON()
	}
	log := logs.Logger("KurentoMediaServer")
	for _, w := range append(cfg.Warnings, warnings...) {
		log.Warn(w)
	}
	log.Info("Kurento Media Server starting", "version", api.Version, "pid", os.Getpid(), "config", cfg.ConfFile)
	if cfg.Cluster.Router {
		return runRouter(cfg, logs, stderr)
	}

	gst.Configure(cfg.GstWorkers, logs.Logger("KurentoGstWorker"))
	stopMemoryReturn := startMemoryReturn(getenv, cfg.Observe.MemoryReturnInterval, logs.Logger("KurentoMemory"))
	defer stopMemoryReturn()

	registry := objects.NewRegistry(schema, objects.ServerManagerInfo{Metadata: cfg.Metadata, Started: time.Now()},
		logs.Logger("KurentoMediaSet"))
	applyDefaults(registry, cfg)
	elements.Define(registry, cfg)
	registry.SetExceptionLimit(cfg.Resources.ExceptionLimit)
	if limit := cfg.Resources.KillLimit; limit > 0 {
		// KMS's killLimit: when the last object is gone but resources stay over the limit (a leak),
		// end the process in an orderly way so that a supervisor restarts it.
		registry.SetOnEmpty(func() {
			if err := objects.CheckResources(limit); err != nil {
				log.Error("resources over the kill limit with no objects left, stopping", "err", err)
				syscall.Kill(os.Getpid(), syscall.SIGTERM)
			}
		})
	}
	server := protocol.NewServer(registry, cfg.WebSocket.Path, cfg.Resources.GarbageCollectorPeriod,
		logs.Logger("KurentoWebSocketTransport"))
	registry.SetNotifier(server)
	opsServer := ops.ForServer(cfg, registry, server, logs.Logger("KurentoOperations"))
	if err := guard.Apply(cfg, registry, server, opsServer); err != nil {
		log.Error("access control", "err", err)
		fmt.Fprintf(stderr, "kurento-media-server: %v\n", err)
		return 1
	}
	server.Start()
	if addr := cfg.Observe.MetricsAddress; addr != "" {
		if err := opsServer.Listen(addr); err != nil {
			log.Error("cannot start the operations listener", "address", addr, "err", err)
			fmt.Fprintf(stderr, "kurento-media-server: metrics address: %v\n", err)
			server.Close()
			return 1
		}
	}

	listeners, err := listen(cfg, server, log)
	if err != nil {
		log.Error("cannot start the WebSocket listener", "err", err)
		fmt.Fprintf(stderr, "kurento-media-server: %v\n", err)
		server.Close()
		return 1
	}

	stopNode, err := startNode(cfg, registry, logs)
	if err != nil {
		fmt.Fprintf(stderr, "kurento-media-server: %v\n", err)
		closeAll(listeners)
		server.Close()
		return 1
	}
	code := serve(listeners, log, func(signals <-chan os.Signal) {
		if cfg.DrainTimeout > 0 {
			drain(registry, cfg.DrainTimeout, signals, log)
		}
	})
	stopNode()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opsServer.Shutdown(ctx)
	// Finish the recordings and release everything while the connections are still open, so that
	// subscribed clients see the Stopped and ObjectDestroyed events; then close them (their queued
	// events are written first), and release what requests created meanwhile.
	registry.FinalizeAll()
	released := registry.Len() - 1
	registry.ReleaseAll()
	server.Close()
	registry.ReleaseAll()
	webrtc.CloseSharedSockets()
	log.Info("Kurento Media Server stopped", "released", released)
	return code
}

// serve runs the listeners until a signal or a listener failure, then shuts them down; it returns the
// exit code.
func serve(listeners []listener, log *slog.Logger, onSignal func(signals <-chan os.Signal)) int {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	signal.Ignore(syscall.SIGPIPE)
	failed := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { failed <- l.serve() }()
	}
	code := 0
	select {
	case sig := <-signals:
		log.Info("signal received, shutting down", "signal", sig.String())
		onSignal(signals)
	case err := <-failed:
		log.Error("listener failed", "err", err)
		code = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, l := range listeners {
		l.srv.Shutdown(ctx)
	}
	return code
}

// drain refuses new pipelines and waits until the existing ones are released, the timeout passes or a
// second signal comes.
func drain(reg *objects.Registry, timeout time.Duration, signals <-chan os.Signal, log *slog.Logger) {
	reg.Drain()
	log.Info("draining: no new pipelines, waiting for the existing ones", "pipelines", reg.PipelineCount(), "timeout", timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for reg.PipelineCount() > 0 {
		select {
		case <-deadline.C:
			log.Info("drain timeout reached, stopping", "pipelines", reg.PipelineCount())
			return
		case sig := <-signals:
			log.Info("second signal, stopping now", "signal", sig.String())
			return
		case <-tick.C:
		}
	}
	log.Info("drained: every pipeline released")
}

// applyDefaults gives new objects the settings of the module configuration files.
func applyDefaults(r *objects.Registry, cfg *config.Config) {
	me := cfg.Modules.MediaElement
	media.SetMaxVideoResolution(me.MaxVideoWidth, me.MaxVideoHeight)
	r.SetDefaults("MediaElement", map[string]any{
		"encoderBitrate":    me.EncoderBitrate,
		"minEncoderBitrate": me.MinEncoderBitrate,
		"maxEncoderBitrate": me.MaxEncoderBitrate,
	})
}

type listener struct {
	ln  net.Listener
	srv *http.Server
	tls bool
}

func (l listener) serve() error {
	var err error
	if l.tls {
		err = l.srv.ServeTLS(l.ln, "", "")
	} else {
		err = l.srv.Serve(l.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// listen opens the ws:// listener and, when configured with a usable certificate, the wss:// one.
// Without an address it binds the dual-stack any-address, as KMS does.
func listen(cfg *config.Config, handler http.Handler, log *slog.Logger) ([]listener, error) {
	ws := cfg.WebSocket
	var out []listener
	open := func(port int) (net.Listener, error) {
		return net.Listen("tcp", net.JoinHostPort(ws.Address, strconv.Itoa(port)))
	}
	if ws.Port != 0 {
		ln, err := open(ws.Port)
		if err != nil {
			return nil, err
		}
		log.Info("WebSocket server listening", "url", fmt.Sprintf("ws://%s/%s", ln.Addr(), ws.Path))
		out = append(out, listener{ln: ln, srv: &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}})
	}
	if s := ws.Secure; s.Port != 0 {
		certs, err := tlsreload.New(s.Certificate, log)
		if err != nil {
			log.Warn("secure WebSocket disabled: cannot load certificate", "file", s.Certificate, "err", err)
		} else {
			ln, err := open(s.Port)
			if err != nil {
				closeAll(out)
				return nil, err
			}
			log.Info("secure WebSocket server listening", "url", fmt.Sprintf("wss://%s/%s", ln.Addr(), ws.Path))
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second,
				TLSConfig: &tls.Config{GetCertificate: certs.GetCertificate}}
			out = append(out, listener{ln: ln, srv: srv, tls: true})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no WebSocket listener configured (mediaServer.net.websocket.port and secure.port are both unset)")
	}
	return out, nil
}

func closeAll(ls []listener) {
	for _, l := range ls {
		l.ln.Close()
	}
}

// isTerminal tells whether w is a character device, where colors help; files and pipes get none.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// startMemoryReturn sets the collector's target and the soft memory limit from the cgroup and
// gives memory back to the system after bursts, every interval (0 turns it off); it returns the stop.
func startMemoryReturn(getenv func(string) string, interval time.Duration, log *slog.Logger) func() {
	log.Debug("garbage collection target", "percent", memreturn.SetGCPercent(getenv))
	if limit := memreturn.LimitFromCgroup(getenv, "/sys/fs/cgroup/memory.max"); limit > 0 {
		log.Info("soft memory limit from the cgroup", "bytes", limit)
	}
	if interval == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	go memreturn.Run(ctx, interval, func(before, after uint64) {
		log.Debug("memory returned to the system", "heldBytes", before, "afterBytes", after)
	})
	return cancel
}
