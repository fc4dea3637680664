// Package objects is the remote object model of the Kurento Protocol: the registry of objects and their
// ids, ownership by sessions and release, subscriptions and event delivery, and the class table that
// maps create / invoke onto Go code, with parameters checked and converted against api.json.
// It knows media only through the media package.
package objects

import (
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/kerr"
)

// Handler runs one operation (method or property accessor) on an object.
type Handler func(o Object, a Args) (any, error)

// Factory builds the Go side of a new object; b is already identified and placed in the tree.
type Factory func(b *Base, a Args) (Object, error)

// Class is the Go implementation of a remote class: how to create it and the operations it implements
// itself. Operations of ancestors are found through the class chain of api.json.
type Class struct {
	New Factory
	Ops map[string]Handler
}

// Notifier delivers an onEvent notification to the connection of a session, if it has one. It must not
// block.
type Notifier interface {
	Notify(sessionID string, notification []byte)
}

// ManagerID is the fixed id of the ServerManager.
const ManagerID = "manager_ServerManager"

const newRefPrefix = "newref:"

// Registry holds every live remote object and every session's references to them.
type Registry struct {
	schema   *api.Schema
	log      *slog.Logger
	classes  map[string]Class
	notifier Notifier

	mu        sync.Mutex
	objects   map[string]Object
	sessions  map[string]*session
	subs      map[string]subscription
	objSubs   map[string]map[string]struct{} // object id -> its subscription ids, for release
	listeners map[listenKey]map[string]int   // session id -> number of subscriptions
	pipelines int                            // live MediaPipelines
	draining  bool
	manager   *ServerManager
	defaults  map[string]map[string]any // class -> property -> initial value

	exceptionLimit float64      // see SetExceptionLimit; set before serving
	onEmpty        func()       // see SetOnEmpty; set before serving
	onDestroy      func(Object) // see SetOnDestroy; set before serving
	limits         Limits       // see SetLimits
	isolated       bool         // see SetTenantIsolation
	refused        func(reason string)
}

type session struct {
	refs   map[string]Object
	inUse  bool
	tenant string // with tenant isolation: the tenant of the token that started the session
	admin  bool
}

type subscription struct {
	session string
	key     listenKey
}

type listenKey struct{ object, event string }

// NewRegistry makes a registry with the ServerManager in it.
func NewRegistry(schema *api.Schema, info ServerManagerInfo, log *slog.Logger) *Registry {
	r := &Registry{
		schema:    schema,
		log:       log,
		classes:   map[string]Class{},
		objects:   map[string]Object{},
		sessions:  map[string]*session{},
		subs:      map[string]subscription{},
		objSubs:   map[string]map[string]struct{}{},
		listeners: map[listenKey]map[string]int{},
		defaults:  map[string]map[string]any{},
	}
	r.manager = &ServerManager{info: info}
	r.manager.Base = r.newBase(ManagerID, schema.Classes["ServerManager"], nil)
	r.objects[ManagerID] = r.manager
	defineCore(r)
	return r
}

// SetNotifier sets where events go; call it before serving requests.
func (r *Registry) SetNotifier(n Notifier) { r.notifier = n }

// SetOnDestroy sets a function called (without locks held) with each released object, after it left
// the registry and before its resources are freed; metrics keep the object's last counters with it.
// Call it before serving.
func (r *Registry) SetOnDestroy(f func(Object)) { r.onDestroy = f }

// Schema is the remote API the registry checks against.
func (r *Registry) Schema() *api.Schema { return r.schema }

// Define installs the implementation of a remote class.
func (r *Registry) Define(name string, c Class) {
	if _, ok := r.schema.Classes[name]; !ok {
		panic("objects: Define of a class not in api.json: " + name)
	}
	r.classes[name] = c
}

// SetDefaults sets the initial values of settings properties of a class (and its subclasses), from
// the configuration; call it before serving requests.
func (r *Registry) SetDefaults(class string, values map[string]any) { r.defaults[class] = values }

// defaultsFor merges the defaults of a class and its ancestors, the nearest class winning.
func (r *Registry) defaultsFor(c *api.Class) map[string]any {
	out := map[string]any{}
	var chain []*api.Class
	for k := c; k != nil; k = k.Extends {
		chain = append(chain, k)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for k, v := range r.defaults[chain[i].Name] {
			out[k] = v
		}
	}
	return out
}

func (r *Registry) newBase(id string, class *api.Class, parent Object) *Base {
	b := &Base{id: id, class: class, parent: parent, reg: r, created: time.Now(), name: id, sessions: map[string]struct{}{}}
	switch {
	case class.Name == "MediaPipeline":
		b.pipeline = nil // set to the object itself once it exists
	case parent != nil:
		b.pipeline = parent.objectBase().pipeline
	}
	return b
}

// session returns the session, creating it: KMS accepts any session id and makes it known on use.
// The caller holds r.mu.
func (r *Registry) session(id string) *session {
	s := r.sessions[id]
	if s == nil {
		s = &session{refs: map[string]Object{}, inUse: true}
		r.sessions[id] = s
	}
	return s
}

// lookupFor finds a live object the session may see; the caller holds r.mu.
func (r *Registry) lookupFor(sid, id string) (Object, error) {
	o, err := r.lookup(id)
	if err == nil && !r.visible(sid, o) {
		return nil, kerr.NotFound(id)
	}
	return o, err
}

// lookup finds a live object; the caller holds r.mu.
func (r *Registry) lookup(id string) (Object, error) {
	if strings.HasPrefix(id, newRefPrefix) && len(id) > len(newRefPrefix) {
		return nil, kerr.New(kerr.ObjectNotFoundTransactionNoCmt,
			"Object '%s' not found. Possibly using a transactional object without committing the transaction.", id)
	}
	o, ok := r.objects[id]
	if !ok {
		return nil, kerr.NotFound(id)
	}
	return o, nil
}

// Get finds a live object by id, without taking a reference.
func (r *Registry) Get(id string) (Object, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookup(id)
}

// ref adds o and its parents to the session; the caller holds r.mu.
func (r *Registry) ref(sid string, o Object) {
	s := r.session(sid)
	s.inUse = true
	for ; o != nil; o = o.objectBase().parent {
		s.refs[o.ID()] = o
		o.objectBase().sessions[sid] = struct{}{}
	}
}

// resolverFor resolves object ids in the session's parameters and checks their class.
func (r *Registry) resolverFor(sid string) func(id, class string) (any, error) {
	return func(id, class string) (any, error) {
		r.mu.Lock()
		o, err := r.lookupFor(sid, id)
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if !o.objectBase().class.Is(class) {
			return nil, kerr.New(kerr.MarshallError, "Object '%s' is not a %s", id, class)
		}
		return o, nil
	}
}

// Create makes an object of the named class for the session and returns its id.
//
// Classes of api.json whose media this server does not implement yet are still listed by getInfo (the
// JS client checks module names, and applications look for factories there), so create answers them
// with 40006 NOT_IMPLEMENTED "... is not implemented by this server yet" rather than with KMS's
// 40108 "Factory 'X' not found": a client that was just told the factory exists gets a message that
// says what is missing. Unknown names and classes without a factory keep 40108, as in KMS.
func (r *Registry) Create(sid, typeName string, constructorParams any) (string, error) {
	class, ok := r.schema.Class(typeName)
	if !ok || !r.schema.IsFactory(class.Name) {
		return "", kerr.New(kerr.ObjectNotAvailable, "Factory '%s' not found", typeName)
	}
	impl := r.classes[class.Name]
	if impl.New == nil {
		return "", kerr.New(kerr.NotImplemented, "Factory '%s' is not implemented by this server yet", typeName)
	}
	if err := r.checkResources(); err != nil {
		return "", err
	}
	if constructorParams != nil {
		if _, isObj := constructorParams.(map[string]any); !isObj {
			return "", kerr.New(kerr.MarshallError, "'constructorParams' should be an object")
		}
	}
	params, err := r.schema.DecodeParams("constructorParams", class.ConstructorParams(), constructorParams, r.resolverFor(sid))
	if err != nil {
		return "", asProtocolError(err)
	}
	args := Args(params)
	var parent Object
	for _, p := range class.ConstructorParams() {
		if o, ok := args[p.Name].(Object); ok {
			parent = o
			break
		}
	}
	// Checked before the media is built, and again when the object goes in.
	r.mu.Lock()
	err = errors.Join(r.admitSession(sid), r.checkCreate(class.Name, parent))
	r.mu.Unlock()
	if err != nil {
		return "", err
	}
	id := uuid.NewString() + "_" + api.ModuleOf(class.Module) + "." + class.Name
	if parent != nil {
		id = parent.ID() + "/" + id
	}
	b := r.newBase(id, class, parent)
	b.tenant = r.tenantOf(sid)
	o, err := impl.New(b, args)
	if err != nil {
		return "", asProtocolError(err)
	}
	if b.pipeline == nil && class.Name == "MediaPipeline" {
		b.pipeline = o
	}

	r.mu.Lock()
	if parent != nil && parent.objectBase().released {
		r.mu.Unlock()
		closeObject(o)
		return "", kerr.NotFound(parent.ID())
	}
	if err := errors.Join(r.admitSession(sid), r.checkCreate(class.Name, parent)); err != nil {
		r.mu.Unlock()
		closeObject(o)
		return "", err
	}
	r.objects[id] = o
	if class.Name == "MediaPipeline" {
		r.pipelines++
	}
	if parent != nil {
		pb := parent.objectBase()
		pb.children = append(pb.children, o)
		b.pipeline.objectBase().members++
		for s := range pb.sessions {
			r.ref(s, o)
		}
	}
	r.ref(sid, o)
	r.mu.Unlock()

	r.manager.Emit("ObjectCreated", map[string]any{"object": o})
	return id, nil
}

// Describe refs the object into the session and returns its type information.
func (r *Registry) Describe(sid, id string) (map[string]any, error) {
	r.mu.Lock()
	o, err := r.lookupFor(sid, id)
	if err == nil {
		err = r.admitSession(sid)
	}
	if err == nil {
		r.ref(sid, o)
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c := o.objectBase().class
	hierarchy := append([]string{}, c.Hierarchy...)
	return map[string]any{"type": c.Name, "qualifiedType": c.QualifiedType, "hierarchy": hierarchy}, nil
}

// Invoke runs a method or property accessor on an object for the session.
func (r *Registry) Invoke(sid, id, operation string, operationParams any) (any, error) {
	r.mu.Lock()
	o, err := r.lookupFor(sid, id)
	if err == nil {
		err = r.admitSession(sid)
	}
	if err == nil {
		r.ref(sid, o)
	}
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	b := o.objectBase()
	m, ok := b.class.Operation(operation)
	if !ok {
		n := 0
		if p, isObj := operationParams.(map[string]any); isObj {
			n = len(p)
		}
		return nil, kerr.New(kerr.MalformedTransaction, "Method '%s' with %d parameters not found", operation, n)
	}
	if m.Setter && operationParams == nil {
		// A setter checks its one parameter only: "'name' parameter should be a string".
		operationParams = map[string]any{}
	}
	params, err := r.schema.DecodeParams("operationParams", m.Params, operationParams, r.resolverFor(sid))
	if err != nil {
		return nil, asProtocolError(err)
	}
	h := r.handler(b.class, operation)
	if h == nil {
		return nil, kerr.New(kerr.NotImplemented, "Method '%s' of %s is not implemented by this server", operation, b.class.Name)
	}
	result, err := h(o, Args(params))
	if err != nil {
		return nil, asProtocolError(err)
	}
	if m.Returns == "" {
		return nil, nil
	}
	return r.schema.Encode(m.Returns, result)
}

func (r *Registry) handler(c *api.Class, op string) Handler {
	for k := c; k != nil; k = k.Extends {
		if h, ok := r.classes[k.Name].Ops[op]; ok {
			return h
		}
	}
	return nil
}

// asProtocolError maps parameter errors to KMS's codes and keeps protocol errors as they are.
func asProtocolError(err error) error {
	var me *api.MarshalError
	if errors.As(err, &me) {
		if me.Unexpected {
			return kerr.New(kerr.UnexpectedError, "%s", me.Msg)
		}
		return kerr.New(kerr.MarshallError, "%s", me.Msg)
	}
	return err
}

// Subscribe registers the session for an event of an object and returns a new subscription id. The
// object is ref'd into the session even when the event is not supported, as in KMS.
func (r *Registry) Subscribe(sid, id, event string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookupFor(sid, id)
	if err == nil {
		err = r.admitSession(sid)
	}
	if err != nil {
		return "", err
	}
	r.ref(sid, o)
	if !o.objectBase().class.HasEvent(event) {
		return "", kerr.New(kerr.EventNotSupported, "Event '%s' not supported", event)
	}
	key := listenKey{object: id, event: event}
	subID := uuid.NewString()
	r.subs[subID] = subscription{session: sid, key: key}
	if r.objSubs[id] == nil {
		r.objSubs[id] = map[string]struct{}{}
	}
	r.objSubs[id][subID] = struct{}{}
	if r.listeners[key] == nil {
		r.listeners[key] = map[string]int{}
	}
	r.listeners[key][sid]++
	return subID, nil
}

// Unsubscribe removes a subscription of the session on the object; unknown ones are ignored, as KMS
// does.
func (r *Registry) Unsubscribe(sid, id, subID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sub, ok := r.subs[subID]
	if !ok || sub.session != sid || sub.key.object != id {
		return
	}
	r.dropSubscription(subID, sub)
}

func (r *Registry) dropSubscription(subID string, sub subscription) {
	delete(r.subs, subID)
	if os := r.objSubs[sub.key.object]; os != nil {
		if delete(os, subID); len(os) == 0 {
			delete(r.objSubs, sub.key.object)
		}
	}
	l := r.listeners[sub.key]
	if l[sub.session]--; l[sub.session] <= 0 {
		delete(l, sub.session)
	}
	if len(l) == 0 {
		delete(r.listeners, sub.key)
	}
}

// Ref makes the session a co-owner of the object.
func (r *Registry) Ref(sid, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, err := r.lookupFor(sid, id)
	if err == nil {
		err = r.admitSession(sid)
	}
	if err != nil {
		return err
	}
	r.ref(sid, o)
	return nil
}

// Unref drops the session's reference; an object nobody holds any more is released. Unknown objects
// are ignored.
func (r *Registry) Unref(sid, id string) {
	r.mu.Lock()
	o, err := r.lookupFor(sid, id)
	var dead []Object
	if err == nil {
		dead = r.unref(sid, o, nil)
	}
	r.mu.Unlock()
	r.destroy(dead)
}

// unref removes the session's references to o and its children, with the session's subscriptions on
// them, collecting the objects left without owners; the caller holds r.mu.
func (r *Registry) unref(sid string, o Object, dead []Object) []Object {
	b := o.objectBase()
	if o == Object(r.manager) || b.released {
		return dead
	}
	dead = r.unrefTree(sid, o, dead)
	if b.released {
		r.removeChild(o)
	}
	return dead
}

// unrefTree is unref without taking o out of its parent's children, which the caller does: removing
// children one by one would copy the list once per child.
func (r *Registry) unrefTree(sid string, o Object, dead []Object) []Object {
	b := o.objectBase()
	if b.released {
		return dead
	}
	if s := r.sessions[sid]; s != nil {
		delete(s.refs, b.id)
	}
	before := len(dead)
	for _, c := range b.children {
		dead = r.unrefTree(sid, c, dead)
	}
	if len(dead) > before && !b.released {
		b.children = slices.DeleteFunc(b.children, func(c Object) bool { return c.objectBase().released })
	}
	delete(b.sessions, sid)
	for subID := range r.objSubs[b.id] {
		if sub := r.subs[subID]; sub.session == sid {
			r.dropSubscription(subID, sub)
		}
	}
	if len(b.sessions) == 0 {
		dead = r.detachTree(o, dead)
	}
	return dead
}

// detach removes o and what remains of its subtree from the registry; the caller holds r.mu and
// destroys the returned objects after unlocking. It takes time linear in the subtree's size.
func (r *Registry) detach(o Object, dead []Object) []Object {
	b := o.objectBase()
	if b.released {
		return dead
	}
	dead = r.detachTree(o, dead)
	r.removeChild(o)
	return dead
}

// removeChild takes a detached object out of its parent's children.
func (r *Registry) removeChild(o Object) {
	if p := o.objectBase().parent; p != nil {
		pb := p.objectBase()
		if i := slices.Index(pb.children, o); i >= 0 {
			pb.children = slices.Delete(pb.children, i, i+1)
		}
	}
}

// detachTree is detach without taking o out of its parent's children, which the caller does.
func (r *Registry) detachTree(o Object, dead []Object) []Object {
	b := o.objectBase()
	if b.released {
		return dead
	}
	for _, c := range b.children {
		dead = r.detachTree(c, dead)
	}
	b.children = nil
	b.released = true
	if b.class.Name == "MediaPipeline" {
		r.pipelines--
	} else if b.pipeline != nil && b.parent != nil {
		b.pipeline.objectBase().members--
	}
	delete(r.objects, b.id)
	for s := range b.sessions {
		if sess := r.sessions[s]; sess != nil {
			delete(sess.refs, b.id)
		}
	}
	b.sessions = map[string]struct{}{}
	for subID := range r.objSubs[b.id] {
		r.dropSubscription(subID, r.subs[subID])
	}
	return append(dead, o)
}

// destroy frees the resources of detached objects (children before parents) and announces them.
func (r *Registry) destroy(dead []Object) {
	for _, o := range dead {
		if r.onDestroy != nil {
			r.onDestroy(o)
		}
		closeObject(o)
		r.manager.Emit("ObjectDestroyed", map[string]any{"objectId": o.ID()})
	}
	if len(dead) > 0 && r.onEmpty != nil && r.Len() == 1 {
		r.onEmpty()
	}
}

func closeObject(o Object) {
	if c, ok := o.(Closer); ok {
		c.Close()
	}
}

// Release destroys an object and its children whoever holds them; unknown ids and the ServerManager
// are ignored.
func (r *Registry) Release(sid, id string) {
	r.mu.Lock()
	o, err := r.lookupFor(sid, id)
	var dead []Object
	if err == nil && o != Object(r.manager) {
		dead = r.detach(o, nil)
	}
	r.mu.Unlock()
	r.destroy(dead)
}

// KeepAlive marks a known session in use; unknown sessions are an error (40007).
func (r *Registry) KeepAlive(sid string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[sid]
	if !ok {
		return kerr.New(kerr.InvalidSession, "Invalid session")
	}
	s.inUse = true
	return nil
}

// CloseSession ends a session: with release, everything it holds is destroyed; otherwise its
// references are dropped and objects nobody else holds are destroyed.
func (r *Registry) CloseSession(sid string, release bool) {
	r.mu.Lock()
	var dead []Object
	if s := r.sessions[sid]; s != nil {
		for _, o := range sortedRefs(s) {
			if release {
				dead = r.detach(o, dead)
			} else {
				dead = r.unref(sid, o, dead)
			}
		}
	}
	delete(r.sessions, sid)
	for subID, sub := range r.subs {
		if sub.session == sid {
			r.dropSubscription(subID, sub)
		}
	}
	r.mu.Unlock()
	r.destroy(dead)
}

// sortedRefs lists a session's objects parents first, so that a cascade sees each subtree once.
func sortedRefs(s *session) []Object {
	out := make([]Object, 0, len(s.refs))
	for _, o := range s.refs {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].ID()) < len(out[j].ID()) })
	return out
}

// CollectGarbage drops the sessions not marked in use since the previous pass (their references go,
// and objects nobody else holds are released) and unmarks the others, as KMS's garbage collector does.
// The transport marks sessions with a live connection.
func (r *Registry) CollectGarbage() {
	r.mu.Lock()
	var stale []string
	for id, s := range r.sessions {
		if s.inUse {
			s.inUse = false
			continue
		}
		stale = append(stale, id)
	}
	r.mu.Unlock()
	for _, id := range stale {
		r.log.Info("releasing expired session", "session", id)
		r.CloseSession(id, false)
	}
}

// HasSession tells whether the session is known.
func (r *Registry) HasSession(sid string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.sessions[sid]
	return ok
}

// Sessions lists the known session ids.
func (r *Registry) Sessions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.sessions))
	for id := range r.sessions {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Pipelines lists the live pipelines.
func (r *Registry) Pipelines() []Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Object
	for _, o := range r.objects {
		if o.objectBase().class.Name == "MediaPipeline" {
			out = append(out, o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].objectBase().created.Before(out[j].objectBase().created) })
	return out
}

// Len is the number of live objects, the ServerManager included.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.objects)
}

// ReleaseAll destroys every object, for shutdown.
func (r *Registry) ReleaseAll() {
	r.mu.Lock()
	var dead []Object
	for _, o := range r.objects {
		if o != Object(r.manager) && o.objectBase().parent == nil {
			dead = r.detach(o, dead)
		}
	}
	r.mu.Unlock()
	r.destroy(dead)
}

// emit encodes an event once and hands it to every subscribed session.
func (r *Registry) emit(b *Base, event string, fields map[string]any) {
	key := listenKey{object: b.id, event: event}
	r.mu.Lock()
	l := r.listeners[key]
	sessions := make([]string, 0, len(l))
	for s := range l {
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	if len(sessions) == 0 || r.notifier == nil {
		return
	}
	msg, err := r.encodeEvent(b, event, fields)
	if err != nil {
		r.log.Error("cannot encode event", "event", event, "object", b.id, "err", err)
		return
	}
	for _, s := range sessions {
		r.notifier.Notify(s, msg)
	}
}

func (r *Registry) encodeEvent(b *Base, event string, fields map[string]any) ([]byte, error) {
	ev := r.schema.Events[event]
	if ev == nil {
		return nil, errors.New("event not in api.json")
	}
	data := map[string]any{}
	for _, f := range ev.AllFields {
		var v any
		switch f.Name {
		case "source":
			v = b.id
		case "timestampMillis":
			v = timestampMillis(time.Now())
		case "tags":
			v = b.eventTags()
		default:
			var ok bool
			if v, ok = fields[f.Name]; !ok {
				if f.Name != "type" {
					return nil, errors.New("missing field " + f.Name)
				}
				v = event
			}
		}
		e, err := r.schema.Encode(f.Type, v)
		if err != nil {
			return nil, err
		}
		data[f.Name] = e
	}
	return json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"method":  "onEvent",
		"params": map[string]any{"value": map[string]any{
			"data":   data,
			"object": b.id,
			"type":   event,
		}},
	})
}
