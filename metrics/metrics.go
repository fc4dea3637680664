// Package metrics is the server's Prometheus side: one registry holding the kms_* metric set, the Go
// runtime and process collectors, and a collector that reads the live objects' own counters (the ones
// getStats reports) at scrape time, so that nothing is counted or locked on the packet path.
//
// Labels stay bounded whatever the load: media type, element class, JSON-RPC method and error code,
// endpoint states, codec pairs and refusal reasons. There is no per-object label; the inspector shows
// single pipelines.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Set is the server's metrics. Its methods are safe for concurrent use and cheap (one map lookup and
// an atomic add), for the control path only.
type Set struct {
	Registry *prometheus.Registry

	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	refused  *prometheus.CounterVec
	live     *liveCollector
}

// New makes the metric set with its registry.
func New() *Set {
	s := &Set{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_jsonrpc_requests_total",
			Help: "Kurento Protocol requests answered, by method and JSON-RPC error code (0 = success).",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kms_jsonrpc_request_duration_seconds",
			Help:    "Time to execute a Kurento Protocol request, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kms_refused_total",
			Help: "Requests and connections refused, by reason (auth, or the name of the limit reached).",
		}, []string{"reason"}),
		live: newLiveCollector(),
	}
	s.Registry.MustRegister(s.requests, s.latency, s.refused, s.live,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return s
}

// Handler serves the registry in the Prometheus text format.
func (s *Set) Handler() http.Handler {
	return promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{})
}

// methods are the Kurento Protocol methods; anything else is counted as "other", so that a client
// sending made-up method names cannot grow the label set.
var methods = map[string]bool{
	"ping": true, "connect": true, "create": true, "describe": true, "invoke": true, "subscribe": true,
	"unsubscribe": true, "release": true, "ref": true, "unref": true, "keepAlive": true,
	"transaction": true, "closeSession": true,
}

// ObserveRequest counts one answered request: its method, its error code (0 when it succeeded) and
// how long it took.
func (s *Set) ObserveRequest(method string, code int, took time.Duration) {
	if !methods[method] {
		method = "other"
	}
	s.requests.WithLabelValues(method, strconv.Itoa(code)).Inc()
	s.latency.WithLabelValues(method).Observe(took.Seconds())
}

// Refused counts one refusal. reason must come from a fixed set (e.g. "auth", "max_sessions").
func (s *Set) Refused(reason string) { s.refused.WithLabelValues(reason).Inc() }
