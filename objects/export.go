package objects

import (
	"log/slog"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/kerr"
)

// PropertyOps builds getters and setters backed by a Properties store, for classes defined outside
// this package.
func PropertyOps(class *api.Class, get func(Object) *Properties, names ...string) map[string]Handler {
	return propertyOps(class, get, names...)
}

// Merge combines operation tables; later tables win.
func Merge(tables ...map[string]Handler) map[string]Handler { return merge(tables...) }

// Logger is the registry's logger, for classes to derive theirs from.
func (r *Registry) Logger() *slog.Logger { return r.log }

// Set stores a property value under the object's lock.
func (p *Properties) Set(o Object, name string, v any) {
	b := o.objectBase()
	b.mu.Lock()
	defer b.mu.Unlock()
	p.values[name] = v
}

// The read-only views below serve operations (metrics, the inspector): they take no session
// reference and change nothing.

// AsElement returns the element side of an object, nil when it is not a MediaElement.
func AsElement(o Object) *Element {
	if h, ok := o.(elementHolder); ok {
		return h.element()
	}
	return nil
}

// Children lists the objects created in o (a pipeline's elements, a hub's ports), oldest first.
func (r *Registry) Children(o Object) []Object {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Object(nil), o.objectBase().children...)
}

// SessionsOf lists the sessions holding o.
func (r *Registry) SessionsOf(o Object) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sortedKeys(o.objectBase().sessions)
}

// Query runs a parameterless operation (getGstreamerDot, say) on behalf of the server itself and
// returns the handler's Go value.
func (r *Registry) Query(o Object, op string) (any, error) {
	h := r.handler(o.objectBase().class, op)
	if h == nil {
		return nil, kerr.New(kerr.NotImplemented, "Method '%s' of %s is not implemented by this server", op, o.objectBase().class.Name)
	}
	return h(o, Args{})
}

// LastError is the description of the last Error event the object raised, "" when none.
func LastError(o Object) string {
	b := o.objectBase()
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastErr
}

// Count is the number of live objects of the class or of classes that extend it (the load a
// cluster node publishes).
func (r *Registry) Count(class string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.objects {
		if o.objectBase().class.Is(class) {
			n++
		}
	}
	return n
}
