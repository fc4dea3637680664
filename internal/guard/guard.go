// Package guard applies the access control, limits and drain of the configuration to a registry, its
// protocol server and its operations server, the same way for the binary and for in-process test
// servers.
package guard

import (
	"net/http"

	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/ops"
	"github.com/kurento-go/kms/protocol"
)

// Apply sets the limits, tenant isolation and token verifier, counts refusals in o's metrics, puts
// /metrics and /inspector/ behind the same tokens, and makes /readyz fail while draining or at the
// pipeline limit. o may be nil (no operations server).
func Apply(cfg *config.Config, reg *objects.Registry, srv *protocol.Server, o *ops.Server) error {
	var refused func(string)
	if o != nil {
		refused = o.Metrics.Refused
		o.AddReadiness("draining", ops.Bool(reg.Draining, "draining: the server is stopping and takes no new pipelines"))
		if max := cfg.Limits.MaxPipelines; max > 0 {
			o.AddReadiness("pipelines", ops.Bool(func() bool { return reg.PipelineCount() >= max },
				"at the pipeline limit (mediaServer.limits.maxPipelines)"))
		}
	}
	l := cfg.Limits
	reg.SetLimits(objects.Limits{Sessions: l.MaxSessions, Pipelines: l.MaxPipelines, ElementsPerPipeline: l.MaxElementsPerPipeline})
	reg.SetTenantIsolation(cfg.Access.TenantIsolation)
	reg.SetRefused(refused)
	srv.Limits = l
	srv.Refused = refused
	if cfg.Access.SecretFile == "" {
		return nil
	}
	v, err := auth.Load(cfg.Access.SecretFile)
	if err != nil {
		return err
	}
	srv.Verifier = v
	if o != nil {
		o.SetGuard(func(h http.Handler) http.Handler { return v.Guard(h, refused) })
	}
	return nil
}
