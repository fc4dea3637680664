// Package cluster is what media nodes and routers share: the store they meet in (an interface, so
// that etcd could replace Redis), what a node publishes about itself, and how a router chooses the
// node of a new MediaPipeline. See docs/CLUSTER.md.
package cluster

import (
	"context"
	"errors"
	"sort"
	"strings"
	"time"
)

// NodeInfo is what a media node publishes every second.
type NodeInfo struct {
	ID  string `json:"id"`  // random per process: a restarted node is a new node
	URI string `json:"uri"` // the Kurento URI routers use (ws://HOST:PORT/PATH)
	// Capacity.
	CPUs  int `json:"cpus"`
	Ports int `json:"ports"` // size of the RTP port range
	// Load.
	CPU       float64   `json:"cpu"`       // fraction of CPUs used by the process over the last second
	Streams   int       `json:"streams"`   // media endpoints (each carries the streams of one peer)
	Pipelines int       `json:"pipelines"` // live MediaPipelines
	FreePorts int       `json:"freePorts"` // ports of the range not bound by any socket
	Updated   time.Time `json:"updated"`
}

// Subscription is a session's subscription to an object's event, as the store keeps it so that the
// router a client reconnects to knows what the session listens to.
type Subscription struct {
	Object string `json:"object"`
	Event  string `json:"event"`
}

// Session is what the store keeps of a client session.
type Session struct {
	Pipelines []string
	Subs      map[string]Subscription // subscription id -> what
}

// ErrNotFound is returned for a key the store does not have.
var ErrNotFound = errors.New("not found in the cluster store")

// Store is the shared state of a cluster. Every method fails when the store is unreachable; callers
// decide what still works then (see docs/CLUSTER.md, "Failure modes").
type Store interface {
	// PublishNode writes a node's record; it disappears after ttl unless published again.
	PublishNode(ctx context.Context, n NodeInfo, ttl time.Duration) error
	// RemoveNode deletes a node's record at once (orderly shutdown).
	RemoveNode(ctx context.Context, id string) error
	// Nodes lists the live nodes.
	Nodes(ctx context.Context) ([]NodeInfo, error)

	// AddPlacement records that a router placed a pipeline on a node at a time; Placements counts,
	// per node, the placements after the given time (that of the node's record), so that every router
	// sees the placements its peers made since the nodes last published.
	AddPlacement(ctx context.Context, node string, at time.Time) error
	Placements(ctx context.Context, since map[string]time.Time) (map[string]int, error)

	// SetRoute records the node of a pipeline; Route reads it (ErrNotFound when unknown).
	SetRoute(ctx context.Context, pipeline, node string) error
	Route(ctx context.Context, pipeline string) (string, error)
	DeleteRoute(ctx context.Context, pipeline string) error

	// AddSessionPipeline records that a session uses a pipeline and makes the session known; the
	// session record expires after ttl unless touched.
	AddSessionPipeline(ctx context.Context, sid, pipeline string, ttl time.Duration) error
	AddSubscription(ctx context.Context, sid, subID string, s Subscription, ttl time.Duration) error
	RemoveSubscription(ctx context.Context, sid, subID string) error
	// TouchSession extends a known session's record; false when the session is unknown.
	TouchSession(ctx context.Context, sid string, ttl time.Duration) (bool, error)
	// Session reads a session's record (ErrNotFound when unknown).
	Session(ctx context.Context, sid string) (*Session, error)
	DeleteSession(ctx context.Context, sid string) error

	Close() error
}

// PipelineOf is the pipeline an object id belongs to: this server's ids are
// "<pipeline id>/<element id>", and a pipeline's id is its own.
func PipelineOf(id string) string {
	p, _, _ := strings.Cut(id, "/")
	return p
}

// Placement limits: a node above either is skipped while another node is below both.
const (
	busyCPU      = 0.85
	minFreePorts = 20
)

// Place chooses the node for a new pipeline: the one with the fewest pipelines per CPU, pending
// counting placements its record does not show yet; nodes that are busy (CPU or ports) only when
// every node is. ok is false when there is no node.
func Place(nodes []NodeInfo, pending map[string]int) (NodeInfo, bool) {
	if len(nodes) == 0 {
		return NodeInfo{}, false
	}
	type scored struct {
		n    NodeInfo
		busy bool
		load float64
	}
	list := make([]scored, len(nodes))
	for i, n := range nodes {
		list[i] = scored{n: n, busy: n.CPU >= busyCPU || (n.Ports > 0 && n.FreePorts < minFreePorts),
			load: float64(n.Pipelines+pending[n.ID]) / float64(max(n.CPUs, 1))}
	}
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.busy != b.busy {
			return !a.busy
		}
		if a.load != b.load {
			return a.load < b.load
		}
		if a.n.CPU != b.n.CPU {
			return a.n.CPU < b.n.CPU
		}
		return a.n.ID < b.n.ID
	})
	return list[0].n, true
}

// TagKey is the routing-table key under which a placement tag remembers its node.
func TagKey(tag string) string { return "tag:" + tag }
