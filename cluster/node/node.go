// Package node makes a media server a cluster node: it publishes the node's address, capacity and
// load in the cluster store every second, with a TTL, so that a node that dies disappears on its own.
package node

import (
	"bufio"
	"context"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/kurento-go/kms/cluster"
)

// Period is how often a node publishes itself; TTL how long its record outlives the last publication.
// A dead node stops receiving pipelines after at most TTL (at once for routers that lose their
// connection to it).
const (
	Period = time.Second
	TTL    = 3 * time.Second
)

// Load reports the objects a node holds.
type Load func() (pipelines, streams int)

// Publisher publishes one node.
type Publisher struct {
	store            cluster.Store
	info             cluster.NodeInfo
	minPort, maxPort int
	load             Load
	log              *slog.Logger
}

// New makes the publisher of a node reachable at uri whose RTP ports are [minPort, maxPort].
func New(store cluster.Store, uri string, minPort, maxPort int, load Load, log *slog.Logger) *Publisher {
	info := cluster.NodeInfo{ID: uuid.NewString(), URI: uri, CPUs: runtime.NumCPU(), Ports: maxPort - minPort + 1}
	return &Publisher{store: store, info: info, minPort: minPort, maxPort: maxPort, load: load, log: log}
}

// ID is the node's id in the store.
func (p *Publisher) ID() string { return p.info.ID }

// Run publishes the node every Period until ctx ends, then removes its record (an orderly stop is
// seen at once; a crash after TTL).
func (p *Publisher) Run(ctx context.Context) {
	p.log.Info("cluster node publishing", "id", p.info.ID, "uri", p.info.URI)
	t := time.NewTicker(Period)
	defer t.Stop()
	lastCPU, lastAt := cpuTime(), time.Now()
	failing := false
	for {
		now := time.Now()
		cpu := cpuTime()
		info := p.info
		if wall := now.Sub(lastAt); wall > 0 {
			info.CPU = (cpu - lastCPU).Seconds() / wall.Seconds() / float64(info.CPUs)
		}
		lastCPU, lastAt = cpu, now
		info.Pipelines, info.Streams = p.load()
		info.FreePorts = info.Ports - boundUDPPorts(p.minPort, p.maxPort)
		info.Updated = now.UTC()
		pctx, cancel := context.WithTimeout(ctx, Period)
		err := p.store.PublishNode(pctx, info, TTL)
		cancel()
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			p.log.Warn("cluster store unreachable, node not published", "err", err)
			failing = true
		case err == nil && failing:
			p.log.Info("cluster store reachable again")
			failing = false
		}
		select {
		case <-ctx.Done():
			rctx, cancel := context.WithTimeout(context.Background(), time.Second)
			p.store.RemoveNode(rctx, p.info.ID)
			cancel()
			return
		case <-t.C:
		}
	}
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// boundUDPPorts counts the UDP ports of [min, max] bound in this network namespace (by anyone: a
// port another process holds is not free for us either).
func boundUDPPorts(min, max int) int {
	seen := map[int]bool{}
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		file, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(file)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 2 {
				continue
			}
			_, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			port, err := strconv.ParseUint(hexPort, 16, 16)
			if err == nil && int(port) >= min && int(port) <= max {
				seen[int(port)] = true
			}
		}
		file.Close()
	}
	return len(seen)
}
