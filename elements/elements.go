// Package elements defines the Kurento element classes whose media lives in the endpoint and
// processing packages: it maps their constructors, methods, properties and events onto those Go types.
package elements

import (
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/uriguard"
)

// Define installs the element classes on the registry, with the module configuration as defaults.
func Define(r *objects.Registry, cfg *config.Config) {
	d := &definer{r: r, cfg: cfg,
		playerURIs:   uriguard.Policy(cfg.Access.Player),
		recorderURIs: uriguard.Policy(cfg.Access.Recorder)}
	d.defineBaseRtp()
	d.defineWebRtc()
	d.defineFilters()
	d.defineRtp()
	d.defineHubs()
	d.defineVideoSampler()
	d.defineRecorder()
	d.definePlayer()
	d.defineHttpPost()
}

type definer struct {
	r   *objects.Registry
	cfg *config.Config
	// The allow-lists of the URIs players read and recorders write.
	playerURIs, recorderURIs uriguard.Policy
}

// sessionEvents turns the events every SDP endpoint shares into Kurento events; false for others.
func sessionEvents(o *objects.Element, ev media.Event) bool {
	switch ev := ev.(type) {
	case endpoints.MediaSessionStarted:
		o.Emit("MediaSessionStarted", nil)
	case endpoints.MediaSessionTerminated:
		o.Emit("MediaSessionTerminated", nil)
	case endpoints.ConnectionStateChanged:
		o.Props.Set(o, "connectionState", ev.New)
		o.Emit("ConnectionStateChanged", map[string]any{"oldState": ev.Old, "newState": ev.New})
	case endpoints.MediaStateChanged:
		o.Props.Set(o, "mediaState", ev.New)
		o.Emit("MediaStateChanged", map[string]any{"oldState": ev.Old, "newState": ev.New})
	default:
		return false
	}
	return true
}
