package objects

import (
	"time"

	"github.com/kurento-go/kms/api"
)

// OwnStats is the entry of getStats for the element itself, keyed by its id as KMS keys it:
// EndpointStats (type "endpoint") for endpoints, ElementStats ("element") for the others. The latency
// lists are empty: measured latencies are not reported yet.
func OwnStats(o Object) (string, *api.Register) {
	fields := map[string]any{"id": o.ID(), "timestampMillis": time.Now().UnixMilli(), "inputLatency": []any{}}
	typ := "ElementStats"
	fields["type"] = "element"
	for c := o.objectBase().class; c != nil; c = c.Extends {
		if c.Name == "Endpoint" {
			typ, fields["type"], fields["E2ELatency"] = "EndpointStats", "endpoint", []any{}
			break
		}
	}
	return o.ID(), &api.Register{Type: typ, Fields: fields}
}
