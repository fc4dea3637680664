// Package router is the cluster's Kurento endpoint: a protocol.Backend that places each new
// MediaPipeline on a media node and forwards every later request to the node of the pipeline the
// object belongs to, over one connection per (client session, node), which brings that session's
// events back. Its state lives in the cluster store (routing table, sessions, subscriptions), so any
// router can take over a client. See docs/CLUSTER.md.
package router

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/cluster"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/protocol"
)

// PlacementTag is the member of a create's "properties" that keeps pipelines together: every
// MediaPipeline created with the same tag goes to the node of the first one, while it lives.
const PlacementTag = "clusterTag"

// NodeDownType is the type of the Error event a session receives on each pipeline it subscribed
// to Error on when the pipeline's node dies; errorCode is 40101, what the pipeline's objects answer
// from then on.
const NodeDownType = "NODE_DOWN"

// pollPeriod is how often the router reads the node records.
const pollPeriod = time.Second

// Router implements protocol.Backend over the nodes of a cluster store.
type Router struct {
	store      cluster.Store
	log        *slog.Logger
	notify     func(sid string, msg []byte)
	sessionTTL time.Duration

	mu        sync.Mutex
	nodes     map[string]cluster.NodeInfo // live, by id
	dead      map[string]bool
	storeOK   bool
	routes    map[string]string      // pipeline id or TagKey -> node id
	placed    map[string][]time.Time // placements on a node after its last record
	sessions  map[string]*session
	control   map[string]*upstream // per node, for requests without a session (release)
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

type session struct {
	inUse     bool
	ups       map[string]*upstream // node id -> connection
	pipelines map[string]bool
	subs      map[string]cluster.Subscription
	// managerSubs: a ServerManager subscription is one per node; the client sees the first id.
	managerSubs map[string]map[string]string // client id -> node id -> node's id
}

var (
	_ protocol.Backend        = (*Router)(nil)
	_ protocol.PlacingBackend = (*Router)(nil)
)

// New makes a router. notify delivers an event to a client session (protocol.Server.Notify);
// gcPeriod is the session garbage collector period, which sizes how long the store keeps sessions.
func New(store cluster.Store, gcPeriod time.Duration, notify func(string, []byte), log *slog.Logger) *Router {
	return &Router{store: store, log: log, notify: notify, sessionTTL: 3*gcPeriod + time.Minute,
		nodes: map[string]cluster.NodeInfo{}, dead: map[string]bool{}, routes: map[string]string{},
		placed: map[string][]time.Time{}, sessions: map[string]*session{}, control: map[string]*upstream{},
		done: make(chan struct{})}
}

// Start reads the nodes once, then every second until Close.
func (r *Router) Start() {
	r.poll()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(pollPeriod)
		defer t.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-t.C:
				r.poll()
			}
		}
	}()
}

// Ready tells whether the router knows a live node (the readiness probe of a router). A store
// outage alone leaves it ready: it still routes the pipelines it knows.
func (r *Router) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.nodes) == 0 {
		return errors.New("no live media node")
	}
	return nil
}

// Close closes every node connection.
func (r *Router) Close() {
	r.closeOnce.Do(func() { close(r.done) })
	r.wg.Wait()
	r.mu.Lock()
	var ups []*upstream
	for _, s := range r.sessions {
		for _, u := range s.ups {
			ups = append(ups, u)
		}
	}
	for _, u := range r.control {
		ups = append(ups, u)
	}
	r.sessions, r.control = map[string]*session{}, map[string]*upstream{}
	r.mu.Unlock()
	for _, u := range ups {
		u.close()
	}
}

func storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 2*time.Second)
}

// poll refreshes the live nodes. A node whose record expired is dead; when the store cannot be read
// the last known nodes stay, so that known pipelines keep being routed.
func (r *Router) poll() {
	ctx, cancel := storeCtx()
	list, err := r.store.Nodes(ctx)
	cancel()
	r.mu.Lock()
	if err != nil {
		if r.storeOK {
			r.log.Warn("cluster store unreachable: routing known pipelines only, refusing new ones", "err", err)
		}
		r.storeOK = false
		r.mu.Unlock()
		return
	}
	if !r.storeOK {
		r.log.Info("cluster store reachable", "nodes", len(list))
	}
	r.storeOK = true
	seen := map[string]bool{}
	for _, n := range list {
		if r.dead[n.ID] {
			continue
		}
		seen[n.ID] = true
		r.nodes[n.ID] = n
		// Placements the record already counts are no longer pending.
		kept := r.placed[n.ID][:0]
		for _, at := range r.placed[n.ID] {
			if at.After(n.Updated) {
				kept = append(kept, at)
			}
		}
		r.placed[n.ID] = kept
	}
	var gone []string
	for id := range r.nodes {
		if !seen[id] {
			gone = append(gone, id)
		}
	}
	r.mu.Unlock()
	for _, id := range gone {
		r.nodeLost(id, "its record expired")
	}
}

// nodeLost forgets a dead node: its pipelines answer 40101 from now on, new pipelines go elsewhere,
// and every local session subscribed to Error on one of its pipelines gets a NODE_DOWN Error event.
func (r *Router) nodeLost(id, why string) {
	r.mu.Lock()
	if r.dead[id] {
		r.mu.Unlock()
		return
	}
	r.dead[id] = true
	uri := r.nodes[id].URI
	delete(r.nodes, id)
	delete(r.placed, id)
	var closing []*upstream
	if u := r.control[id]; u != nil {
		closing = append(closing, u)
		delete(r.control, id)
	}
	type note struct{ sid, pipeline string }
	var notes []note
	for sid, s := range r.sessions {
		if u := s.ups[id]; u != nil {
			closing = append(closing, u)
			delete(s.ups, id)
		}
		for _, sub := range s.subs {
			if sub.Event == "Error" && sub.Object == cluster.PipelineOf(sub.Object) && r.routes[sub.Object] == id {
				notes = append(notes, note{sid, sub.Object})
			}
		}
	}
	r.mu.Unlock()
	r.log.Warn("media node lost", "node", id, "uri", uri, "why", why, "sessions notified", len(notes))
	for _, u := range closing {
		u.close()
	}
	for _, n := range notes {
		r.notify(n.sid, nodeDownEvent(n.pipeline, uri))
	}
}

func nodeDownEvent(pipeline, uri string) []byte {
	now := time.Now()
	msg, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"method":  "onEvent",
		"params": map[string]any{"value": map[string]any{
			"object": pipeline,
			"type":   "Error",
			"data": map[string]any{
				"source":          pipeline,
				"timestampMillis": strconv.FormatInt(now.UnixMilli(), 10),
				"tags":            []any{},
				"description":     "Media node " + uri + " is down: the pipeline and its objects are gone",
				"errorCode":       kerr.ObjectNotFound,
				"type":            NodeDownType,
			},
		}},
	})
	return msg
}

// liveNode is the node of a routing key, if it is alive; the caller holds r.mu.
func (r *Router) liveNodeLocked(node string) (cluster.NodeInfo, bool) {
	n, ok := r.nodes[node]
	return n, ok && !r.dead[node]
}

// route finds the live node of an object. known is false when no router placed its pipeline (the
// request then goes to any node, which answers as KMS does for ids it does not have).
func (r *Router) route(id string) (node cluster.NodeInfo, known bool, err error) {
	p := cluster.PipelineOf(id)
	r.mu.Lock()
	nid, cached := r.routes[p]
	r.mu.Unlock()
	if !cached {
		ctx, cancel := storeCtx()
		nid, err = r.store.Route(ctx, p)
		cancel()
		switch {
		case errors.Is(err, cluster.ErrNotFound):
			return cluster.NodeInfo{}, false, nil
		case err != nil:
			return cluster.NodeInfo{}, true, kerr.New(kerr.ObjectNotFound,
				"Object '%s' not found: the cluster store is unreachable and this router has not routed its pipeline yet", id)
		}
		r.mu.Lock()
		r.routes[p] = nid
		r.mu.Unlock()
	}
	r.mu.Lock()
	n, ok := r.liveNodeLocked(nid)
	r.mu.Unlock()
	if !ok {
		return cluster.NodeInfo{}, true, kerr.NotFound(id)
	}
	return n, true, nil
}

// anyNode is a live node for requests that are not about a pipeline: one the session already talks
// to if any, else the first by id.
func (r *Router) anyNode(sid string) (cluster.NodeInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sessions[sid]; s != nil {
		for id := range s.ups {
			if n, ok := r.liveNodeLocked(id); ok {
				return n, nil
			}
		}
	}
	nodes := r.liveNodesLocked()
	if len(nodes) == 0 {
		return cluster.NodeInfo{}, noNode()
	}
	return nodes[0], nil
}

func noNode() error {
	return kerr.New(kerr.NotEnoughResources, "No media node is available in the cluster")
}

// liveNodesLocked lists the live nodes by id; the caller holds r.mu.
func (r *Router) liveNodesLocked() []cluster.NodeInfo {
	out := make([]cluster.NodeInfo, 0, len(r.nodes))
	for _, n := range r.nodes {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func (r *Router) liveNodes() []cluster.NodeInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.liveNodesLocked()
}

// sessionLocked returns the local state of a session, making it; the caller holds r.mu.
func (r *Router) sessionLocked(sid string) *session {
	s := r.sessions[sid]
	if s == nil {
		s = &session{inUse: true, ups: map[string]*upstream{}, pipelines: map[string]bool{},
			subs: map[string]cluster.Subscription{}, managerSubs: map[string]map[string]string{}}
		r.sessions[sid] = s
	}
	return s
}

// upstreamFor returns the session's connection to a node, dialling it the first time. A node that
// cannot be reached is dead for this router at once.
func (r *Router) upstreamFor(sid string, n cluster.NodeInfo) (*upstream, error) {
	r.mu.Lock()
	if u := r.sessionLocked(sid).ups[n.ID]; u != nil {
		r.mu.Unlock()
		return u, nil
	}
	r.mu.Unlock()
	var u *upstream
	u, err := dial(context.Background(), n.ID, n.URI,
		func(msg []byte) { r.notify(sid, msg) },
		func() { r.upstreamLost(sid, n.ID, u) })
	if err != nil {
		r.nodeLost(n.ID, "cannot connect: "+err.Error())
		return nil, errLost
	}
	r.mu.Lock()
	s := r.sessionLocked(sid)
	if prev := s.ups[n.ID]; prev != nil || r.dead[n.ID] {
		r.mu.Unlock()
		u.close()
		if prev == nil {
			return nil, errLost
		}
		return prev, nil
	}
	s.ups[n.ID] = u
	r.mu.Unlock()
	return u, nil
}

// upstreamLost: a connection to a node ended under us; the node is taken for dead (the nodes never
// close a connection themselves while they run).
func (r *Router) upstreamLost(sid, node string, u *upstream) {
	r.mu.Lock()
	if s := r.sessions[sid]; s != nil && s.ups[node] == u {
		delete(s.ups, node)
	}
	r.mu.Unlock()
	r.nodeLost(node, "connection lost")
}

// call sends a request of the session to a node and returns the result object.
func (r *Router) call(sid string, n cluster.NodeInfo, method string, params map[string]any) (json.RawMessage, error) {
	u, err := r.upstreamFor(sid, n)
	if err != nil {
		return nil, err
	}
	params["sessionId"] = sid
	res, err := u.call(method, params)
	if errors.Is(err, errLost) {
		r.nodeLost(n.ID, "connection lost during "+method)
	}
	return res, err
}

// forward sends a request about an object to its node and returns the result object.
func (r *Router) forward(sid, id, method string, params map[string]any) (json.RawMessage, error) {
	n, known, err := r.route(id)
	if err != nil {
		return nil, err
	}
	if !known {
		if n, err = r.anyNode(sid); err != nil {
			return nil, kerr.NotFound(id)
		}
	}
	res, err := r.call(sid, n, method, params)
	if errors.Is(err, errLost) {
		return nil, kerr.NotFound(id)
	}
	if err == nil && known {
		r.noteUse(sid, cluster.PipelineOf(id))
	}
	return res, err
}

// noteUse records in the store that the session uses a pipeline (once per router and session).
func (r *Router) noteUse(sid, pipeline string) {
	r.mu.Lock()
	s := r.sessionLocked(sid)
	s.inUse = true
	seen := s.pipelines[pipeline]
	s.pipelines[pipeline] = true
	r.mu.Unlock()
	if seen {
		return
	}
	ctx, cancel := storeCtx()
	defer cancel()
	if err := r.store.AddSessionPipeline(ctx, sid, pipeline, r.sessionTTL); err != nil {
		r.log.Warn("cluster store: session not recorded (another router will not know it)", "session", sid, "err", err)
	}
}

func value(res json.RawMessage) (json.RawMessage, error) {
	var out struct {
		Value json.RawMessage `json:"value"`
	}
	if len(res) == 0 || string(res) == "null" {
		return nil, nil
	}
	if err := json.Unmarshal(res, &out); err != nil {
		return nil, kerr.New(kerr.UnexpectedError, "bad answer from a media node: %v", err)
	}
	return out.Value, nil
}

func valueString(res json.RawMessage) (string, error) {
	v, err := value(res)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", kerr.New(kerr.UnexpectedError, "bad answer from a media node: %v", err)
	}
	return s, nil
}

// asAny makes a raw JSON value what the protocol layer encodes as is (nil stays JSON null).
func asAny(v json.RawMessage) any {
	if len(v) == 0 {
		return nil
	}
	return v
}

// Create implements protocol.Backend.
func (r *Router) Create(sid, typeName string, constructorParams any) (string, error) {
	return r.CreateWithProperties(sid, typeName, constructorParams, nil)
}

// CreateWithProperties implements protocol.PlacingBackend: a MediaPipeline is placed, anything
// else goes to the node of the pipeline its constructor names.
func (r *Router) CreateWithProperties(sid, typeName string, constructorParams, properties any) (string, error) {
	params := map[string]any{"type": typeName}
	if constructorParams != nil {
		params["constructorParams"] = constructorParams
	}
	if properties != nil {
		params["properties"] = properties
	}
	if strings.TrimPrefix(typeName, "kurento.") == "MediaPipeline" {
		tag, _ := objectOf(properties)[PlacementTag].(string)
		return r.createPipeline(sid, tag, params)
	}
	if parent := parentOf(constructorParams); parent != "" {
		res, err := r.forward(sid, parent, "create", params)
		if err != nil {
			return "", err
		}
		return valueString(res)
	}
	// No object in the constructor: the node's answer is KMS's error for it.
	n, err := r.anyNode(sid)
	if err != nil {
		return "", err
	}
	res, err := r.call(sid, n, "create", params)
	if err != nil {
		return "", err
	}
	return valueString(res)
}

func objectOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// parentOf is the first object id among a constructor's parameters (mediaPipeline, hub, ...).
func parentOf(constructorParams any) string {
	m := objectOf(constructorParams)
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s, ok := m[k].(string); ok && strings.Contains(s, "_kurento.") {
			return s
		}
	}
	return ""
}

// createPipeline places a new pipeline: on its tag's node when the tag has a live one, else by
// load; a node that turns out dead is skipped and the next one tried.
func (r *Router) createPipeline(sid, tag string, params map[string]any) (string, error) {
	r.mu.Lock()
	ok := r.storeOK
	r.mu.Unlock()
	if !ok {
		return "", kerr.New(kerr.NotEnoughResources,
			"The cluster store is unreachable: no new MediaPipeline can be placed until it is back")
	}
	for attempt := 0; attempt < 4; attempt++ {
		n, err := r.choose(tag)
		if err != nil {
			return "", err
		}
		res, err := r.call(sid, n, "create", params)
		if errors.Is(err, errLost) {
			continue
		}
		if err != nil {
			return "", err
		}
		id, err := valueString(res)
		if err != nil {
			return "", err
		}
		if err := r.recordPipeline(id, tag, n.ID); err != nil {
			// Unroutable by the other routers: do not leave it behind.
			r.call(sid, n, "release", map[string]any{"object": id})
			return "", kerr.New(kerr.NotEnoughResources,
				"The cluster store is unreachable: no new MediaPipeline can be placed until it is back (%v)", err)
		}
		r.noteUse(sid, id)
		return id, nil
	}
	return "", noNode()
}

// choose picks the node of a new pipeline and counts the placement as pending on it.
func (r *Router) choose(tag string) (cluster.NodeInfo, error) {
	if tag != "" {
		if n, known, err := r.route(cluster.TagKey(tag)); err == nil && known {
			return n, nil
		}
	}
	r.mu.Lock()
	nodes := r.liveNodesLocked()
	pending := map[string]int{}
	for id, p := range r.placed {
		pending[id] = len(p)
	}
	r.mu.Unlock()
	// Every router's placements since each node's record, from the store; this router's own when
	// the store does not answer.
	since := map[string]time.Time{}
	for _, n := range nodes {
		since[n.ID] = n.Updated
	}
	ctx, cancel := storeCtx()
	defer cancel()
	if all, err := r.store.Placements(ctx, since); err == nil {
		pending = all
	}
	n, ok := cluster.Place(nodes, pending)
	if !ok {
		return cluster.NodeInfo{}, noNode()
	}
	now := time.Now()
	r.mu.Lock()
	r.placed[n.ID] = append(r.placed[n.ID], now)
	r.mu.Unlock()
	r.store.AddPlacement(ctx, n.ID, now)
	return n, nil
}

func (r *Router) recordPipeline(id, tag, node string) error {
	ctx, cancel := storeCtx()
	defer cancel()
	if err := r.store.SetRoute(ctx, id, node); err != nil {
		return err
	}
	r.mu.Lock()
	r.routes[id] = node
	if tag != "" {
		r.routes[cluster.TagKey(tag)] = node
	}
	r.mu.Unlock()
	if tag != "" {
		return r.store.SetRoute(ctx, cluster.TagKey(tag), node)
	}
	return nil
}

// Describe implements protocol.Backend.
func (r *Router) Describe(sid, id string) (map[string]any, error) {
	var res json.RawMessage
	var err error
	if id == objects.ManagerID {
		res, err = r.anyNodeCall(sid, "describe", map[string]any{"object": id})
	} else {
		res, err = r.forward(sid, id, "describe", map[string]any{"object": id})
	}
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(res, &fields); err != nil {
		return nil, kerr.New(kerr.UnexpectedError, "bad answer from a media node: %v", err)
	}
	out := make(map[string]any, len(fields))
	for k, v := range fields {
		if k != "sessionId" {
			out[k] = v
		}
	}
	return out, nil
}

func (r *Router) anyNodeCall(sid, method string, params map[string]any) (json.RawMessage, error) {
	n, err := r.anyNode(sid)
	if err != nil {
		return nil, err
	}
	return r.call(sid, n, method, params)
}

// Invoke implements protocol.Backend.
func (r *Router) Invoke(sid, id, operation string, operationParams any) (any, error) {
	params := map[string]any{"object": id, "operation": operation}
	if operationParams != nil {
		params["operationParams"] = operationParams
	}
	if id == objects.ManagerID {
		return r.invokeManager(sid, operation, params)
	}
	// Pipelines may be on different nodes: answer a cross-pipeline link as one node would.
	if sink, ok := objectOf(operationParams)["sink"].(string); ok && (operation == "connect" || operation == "disconnect") &&
		cluster.PipelineOf(sink) != cluster.PipelineOf(id) {
		return nil, kerr.New(kerr.ConnectError, "%v", media.ErrOtherPipeline)
	}
	res, err := r.forward(sid, id, "invoke", params)
	if err != nil {
		return nil, err
	}
	v, err := value(res)
	return asAny(v), err
}

// Subscribe implements protocol.Backend. A ServerManager subscription is made on every node.
func (r *Router) Subscribe(sid, id, event string) (string, error) {
	params := func() map[string]any { return map[string]any{"object": id, "type": event} }
	if id == objects.ManagerID {
		return r.subscribeManager(sid, event, params)
	}
	res, err := r.forward(sid, id, "subscribe", params())
	if err != nil {
		return "", err
	}
	subID, err := valueString(res)
	if err != nil {
		return "", err
	}
	r.recordSub(sid, subID, cluster.Subscription{Object: id, Event: event})
	return subID, nil
}

func (r *Router) recordSub(sid, subID string, sub cluster.Subscription) {
	r.mu.Lock()
	r.sessionLocked(sid).subs[subID] = sub
	r.mu.Unlock()
	ctx, cancel := storeCtx()
	defer cancel()
	if err := r.store.AddSubscription(ctx, sid, subID, sub, r.sessionTTL); err != nil {
		r.log.Warn("cluster store: subscription not recorded", "session", sid, "err", err)
	}
}

// Unsubscribe implements protocol.Backend.
func (r *Router) Unsubscribe(sid, id, subID string) {
	r.mu.Lock()
	s := r.sessionLocked(sid)
	perNode := s.managerSubs[subID]
	delete(s.managerSubs, subID)
	delete(s.subs, subID)
	r.mu.Unlock()
	ctx, cancel := storeCtx()
	r.store.RemoveSubscription(ctx, sid, subID)
	cancel()
	if perNode != nil {
		for _, n := range r.liveNodes() {
			if nodeSub, ok := perNode[n.ID]; ok {
				r.call(sid, n, "unsubscribe", map[string]any{"object": id, "subscription": nodeSub})
			}
		}
		return
	}
	r.forward(sid, id, "unsubscribe", map[string]any{"object": id, "subscription": subID})
}

// Release implements protocol.Backend. Releases carry no session: they go on the node's control
// connection.
// Admit applies the token's scope; tenant isolation is not available through a router (its
// sessions live on the nodes, which see no tokens).
func (r *Router) Admit(c *auth.Claims, _, method, object, operation string) error {
	if c == nil {
		return nil
	}
	return objects.CheckScope(c, method, object, operation)
}

func (r *Router) Release(_, id string) {
	n, known, err := r.route(id)
	if err != nil || !known {
		return
	}
	if cluster.PipelineOf(id) == id {
		r.mu.Lock()
		delete(r.routes, id)
		r.mu.Unlock()
		ctx, cancel := storeCtx()
		r.store.DeleteRoute(ctx, id)
		cancel()
	}
	r.mu.Lock()
	u := r.control[n.ID]
	r.mu.Unlock()
	if u == nil {
		if u, err = dial(context.Background(), n.ID, n.URI, func([]byte) {}, func() { r.controlLost(n.ID) }); err != nil {
			r.nodeLost(n.ID, "cannot connect: "+err.Error())
			return
		}
		r.mu.Lock()
		if prev := r.control[n.ID]; prev != nil {
			u.close()
			u = prev
		} else {
			r.control[n.ID] = u
		}
		r.mu.Unlock()
	}
	u.call("release", map[string]any{"object": id})
}

func (r *Router) controlLost(node string) {
	r.mu.Lock()
	delete(r.control, node)
	r.mu.Unlock()
	r.nodeLost(node, "connection lost")
}

// Ref implements protocol.Backend.
func (r *Router) Ref(sid, id string) error {
	_, err := r.forward(sid, id, "ref", map[string]any{"object": id})
	return err
}

// Unref implements protocol.Backend.
func (r *Router) Unref(sid, id string) {
	r.forward(sid, id, "unref", map[string]any{"object": id})
}

// KeepAlive implements protocol.Backend. A session this router does not hold yet (a client that
// reconnects here after its router died) is taken from the store: the router connects to each node
// of its pipelines with the session, so that its events flow here again.
func (r *Router) KeepAlive(sid string) error {
	r.mu.Lock()
	if s := r.sessions[sid]; s != nil {
		s.inUse = true
		r.mu.Unlock()
		ctx, cancel := storeCtx()
		r.store.TouchSession(ctx, sid, r.sessionTTL)
		cancel()
		return nil
	}
	r.mu.Unlock()
	if err := r.restore(sid); err != nil {
		return err
	}
	return nil
}

func (r *Router) restore(sid string) error {
	ctx, cancel := storeCtx()
	rec, err := r.store.Session(ctx, sid)
	cancel()
	if err != nil {
		return kerr.New(kerr.InvalidSession, "Invalid session")
	}
	nodes := map[string]bool{}
	r.mu.Lock()
	s := r.sessionLocked(sid)
	for _, p := range rec.Pipelines {
		s.pipelines[p] = true
	}
	for id, sub := range rec.Subs {
		s.subs[id] = sub
	}
	r.mu.Unlock()
	for _, p := range rec.Pipelines {
		if n, known, err := r.route(p); err == nil && known && !nodes[n.ID] {
			nodes[n.ID] = true
			// connect binds the node's connection to the session: its events come here.
			r.call(sid, n, "connect", map[string]any{})
		}
	}
	r.log.Info("session taken over from the store", "session", sid, "pipelines", len(rec.Pipelines), "nodes", len(nodes))
	return nil
}

// CloseSession implements protocol.Backend.
func (r *Router) CloseSession(sid string, release bool) {
	r.mu.Lock()
	_, local := r.sessions[sid]
	r.mu.Unlock()
	if !local {
		r.restore(sid)
	}
	r.mu.Lock()
	s := r.sessions[sid]
	delete(r.sessions, sid)
	var ups []*upstream
	if s != nil {
		for _, u := range s.ups {
			ups = append(ups, u)
		}
	}
	r.mu.Unlock()
	for _, u := range ups {
		u.call("closeSession", map[string]any{"sessionId": sid, "release": release})
		u.close()
	}
	ctx, cancel := storeCtx()
	r.store.DeleteSession(ctx, sid)
	cancel()
}

// CollectGarbage implements protocol.Backend: the connections of sessions without a client for a
// whole period are closed; the nodes then expire those sessions by their own collectors.
func (r *Router) CollectGarbage() {
	r.mu.Lock()
	var ups []*upstream
	for sid, s := range r.sessions {
		if s.inUse {
			s.inUse = false
			continue
		}
		for _, u := range s.ups {
			ups = append(ups, u)
		}
		delete(r.sessions, sid)
	}
	r.mu.Unlock()
	for _, u := range ups {
		u.close()
	}
}
