package ops

import (
	"log/slog"

	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/inspector"
	"github.com/kurento-go/kms/metrics"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/observe"
	"github.com/kurento-go/kms/protocol"
)

// ForServer builds the operations side of a Kurento server: the metric set fed by the registry and the
// protocol server, and the operations server with its health and readiness checks. Nothing listens
// until Listen; call it before the protocol server serves.
func ForServer(cfg *config.Config, r *objects.Registry, s *protocol.Server, log *slog.Logger) *Server {
	m := metrics.New()
	m.SetSource(func() metrics.Snapshot { return observe.Snapshot(r, s.Connections()) })
	r.SetOnDestroy(func(o objects.Object) {
		if f, ok := observe.Figures(o); ok {
			m.Retire(f)
		}
	})
	s.OnRequest = m.ObserveRequest

	o := New(m, log)
	o.AddHealth("registry", Responds(func() { r.Len() }))
	o.AddHealth("websocket", Responds(func() { s.Connections() }))
	o.AddReadiness("gstreamer", Bool(func() bool {
		return !gst.HasElement("appsrc") || !gst.HasElement("vp8enc")
	}, "GStreamer registry not loaded (no appsrc or vp8enc)"))
	o.Handle("GET /inspector/", inspector.Handler(r))
	rtp := cfg.Modules.BaseRtpEndpoint
	free := FreeUDPPort(rtp.MinPort, rtp.MaxPort)
	o.AddReadiness("ports", func() error {
		if webrtc.HasSharedPort(uint16(rtp.MinPort), uint16(rtp.MaxPort)) {
			return nil // new WebRtcEndpoints need no port of their own
		}
		return free()
	})
	return o
}
