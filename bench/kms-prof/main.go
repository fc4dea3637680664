// Command kms-prof is our server as the benchmark runs it, wired as internal/testserver wires it, plus
// net/http/pprof on -pprof: bench/profile.sh runs it in place of cmd/kurento-media-server to find
// where the CPU goes under load. Configuration as the real server (-f, KMS_* variables).
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"strings"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/elements"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/protocol"
)

func main() {
	pprofAddr := flag.String("pprof", ":6060", "pprof listen address")
	conf := flag.String("f", "", "kurento.conf.json")
	flag.Parse()
	cfg, err := config.Load([]string{"-f", *conf}, os.Getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kms-prof:", err)
		os.Exit(1)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	reg := objects.NewRegistry(api.MustLoad(), objects.ServerManagerInfo{Started: time.Now()}, log)
	elements.Define(reg, cfg)
	srv := protocol.NewServer(reg, cfg.WebSocket.Path, time.Minute, log)
	reg.SetNotifier(srv)
	srv.Start()
	go func() { fmt.Fprintln(os.Stderr, http.ListenAndServe(*pprofAddr, nil)) }()
	addr := fmt.Sprintf("%s:%d", cfg.WebSocket.Address, cfg.WebSocket.Port)
	fmt.Fprintf(os.Stderr, "kms-prof: ws://%s/%s, pprof on %s\n", strings.TrimPrefix(addr, ":"), cfg.WebSocket.Path, *pprofAddr)
	fmt.Fprintln(os.Stderr, http.ListenAndServe(addr, srv))
}
