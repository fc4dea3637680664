//go:build benchprof

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // on http.DefaultServeMux, which only this listener serves
	"os"
)

// Built with -tags benchprof (bench/run.sh --profile), the server also serves net/http/pprof on
// KMS_BENCH_PPROF (default :6060), so that the benchmark profiles the very server users run. Never in
// a release build: the tag is the switch.
func init() {
	addr := os.Getenv("KMS_BENCH_PPROF")
	if addr == "" {
		addr = ":6060"
	}
	go func() { fmt.Fprintln(os.Stderr, "pprof:", http.ListenAndServe(addr, nil)) }()
}
