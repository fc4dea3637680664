package objects

import (
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/media"
)

// OwnStats is the entry of getStats for the element itself, keyed by its id as KMS keys it:
// EndpointStats (type "endpoint") for endpoints, ElementStats ("element") for the others. The latency
// lists are filled while the pipeline's latencyStats is on (media.Element.Latencies).
func OwnStats(o Object) (string, *api.Register) {
	var input, e2e []media.LatencyStat
	if e := AsElement(o); e != nil {
		input, e2e = e.Media.Latencies()
	}
	fields := map[string]any{"id": o.ID(), "timestampMillis": time.Now().UnixMilli(), "inputLatency": latencyList(input)}
	typ := "ElementStats"
	fields["type"] = "element"
	for c := o.objectBase().class; c != nil; c = c.Extends {
		if c.Name == "Endpoint" {
			typ, fields["type"], fields["E2ELatency"] = "EndpointStats", "endpoint", latencyList(e2e)
			break
		}
	}
	return o.ID(), &api.Register{Type: typ, Fields: fields}
}

func latencyList(stats []media.LatencyStat) []any {
	out := make([]any, len(stats))
	for i, s := range stats {
		out[i] = &api.Register{Type: "MediaLatencyStat", Fields: map[string]any{
			"name": s.Name, "type": s.Type.String(), "avg": s.Avg}}
	}
	return out
}
