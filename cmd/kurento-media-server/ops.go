package main

import (
	"log/slog"

	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/metrics"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/observe"
	"github.com/kurento-go/kms/ops"
	"github.com/kurento-go/kms/protocol"
)

// newOps builds the operations side: the metric set fed by the registry and the protocol server,
// and the operations server with its health and readiness checks. Nothing listens until
// ops.Server.Listen; call newOps before the protocol server serves.
func newOps(cfg *config.Config, r *objects.Registry, s *protocol.Server, log *slog.Logger) *ops.Server {
	m := metrics.New()
	m.SetSource(func() metrics.Snapshot { return observe.Snapshot(r, s.Connections()) })
	r.SetOnDestroy(func(o objects.Object) {
		if f, ok := observe.Figures(o); ok {
			m.Retire(f)
		}
	})
	s.OnRequest = m.ObserveRequest

	o := ops.New(m, log)
	o.AddHealth("registry", ops.Responds(func() { r.Len() }))
	o.AddHealth("websocket", ops.Responds(func() { s.Connections() }))
	o.AddReadiness("gstreamer", ops.Bool(func() bool {
		return !gst.HasElement("appsrc") || !gst.HasElement("vp8enc")
	}, "GStreamer registry not loaded (no appsrc or vp8enc)"))
	rtp := cfg.Modules.BaseRtpEndpoint
	o.AddReadiness("ports", ops.FreeUDPPort(rtp.MinPort, rtp.MaxPort))
	return o
}
