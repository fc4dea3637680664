package objects

import (
	"log/slog"

	"github.com/kurento-go/kms/api"
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
