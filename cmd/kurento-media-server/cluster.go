package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/kurento-go/kms/cluster/node"
	"github.com/kurento-go/kms/cluster/redisstore"
	"github.com/kurento-go/kms/cluster/router"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/logging"
	"github.com/kurento-go/kms/metrics"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/ops"
	"github.com/kurento-go/kms/protocol"
)

// startNode publishes this server in the cluster store when it has one (docs/CLUSTER.md); the
// returned function stops publishing and removes the node's record.
func startNode(cfg *config.Config, registry *objects.Registry, logs *logging.Logging) (func(), error) {
	if cfg.Cluster.Store == "" {
		return func() {}, nil
	}
	store, err := redisstore.Open(cfg.Cluster.Store)
	if err != nil {
		return nil, err
	}
	uri := cfg.Cluster.Advertise
	if uri == "" {
		uri = ownURI(cfg.WebSocket)
	}
	rtp := cfg.Modules.BaseRtpEndpoint
	load := func() (int, int) { return registry.Count("MediaPipeline"), registry.Count("Endpoint") }
	p := node.New(store, uri, rtp.MinPort, rtp.MaxPort, load, logs.Logger("KurentoCluster"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
		store.Close()
	}, nil
}

// ownURI is the node's own Kurento URI: its configured address, else its host name.
func ownURI(ws config.WebSocket) string {
	host := ws.Address
	if host == "" {
		host, _ = os.Hostname()
	}
	scheme, port := "ws", ws.Port
	if port == 0 {
		scheme, port = "wss", ws.Secure.Port
	}
	return fmt.Sprintf("%s://%s/%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), ws.Path)
}

// runRouter serves the Kurento Protocol as a cluster router until a signal.
func runRouter(cfg *config.Config, logs *logging.Logging, stderr io.Writer) int {
	log := logs.Logger("KurentoRouter")
	store, err := redisstore.Open(cfg.Cluster.Store)
	if err != nil {
		fmt.Fprintf(stderr, "kurento-media-server: %v\n", err)
		return 1
	}
	defer store.Close()
	var server *protocol.Server
	r := router.New(store, cfg.Resources.GarbageCollectorPeriod,
		func(sid string, msg []byte) { server.Notify(sid, msg) }, log)
	server = protocol.NewServer(r, cfg.WebSocket.Path, cfg.Resources.GarbageCollectorPeriod,
		logs.Logger("KurentoWebSocketTransport"))
	// The operations listener: request metrics, and ready while the router knows a live node.
	m := metrics.New()
	server.OnRequest = m.ObserveRequest
	opsServer := ops.New(m, logs.Logger("KurentoOperations"))
	opsServer.AddHealth("websocket", ops.Responds(func() { server.Connections() }))
	opsServer.AddReadiness("cluster", r.Ready)
	r.Start()
	server.Start()
	fail := func(err error) int {
		fmt.Fprintf(stderr, "kurento-media-server: %v\n", err)
		server.Close()
		r.Close()
		return 1
	}
	if addr := cfg.Observe.MetricsAddress; addr != "" {
		if err := opsServer.Listen(addr); err != nil {
			return fail(fmt.Errorf("metrics address: %w", err))
		}
	}
	listeners, err := listen(cfg, server, log)
	if err != nil {
		return fail(err)
	}
	log.Info("cluster router started", "store", cfg.Cluster.Store)
	code := serve(listeners, log, func(<-chan os.Signal) {}) // a router holds no media to drain
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	opsServer.Shutdown(ctx)
	server.Close()
	r.Close()
	log.Info("cluster router stopped")
	return code
}
