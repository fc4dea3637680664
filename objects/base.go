package objects

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/kurento-go/kms/api"
)

// Object is a remote object: anything with an id that clients can describe, invoke and subscribe to.
// Concrete classes get it by embedding *Base.
type Object interface {
	ID() string
	objectBase() *Base
}

// Closer is implemented by objects that hold resources (goroutines, sockets, media) to free on release.
type Closer interface{ Close() }

// Base is what every remote object has: identity, place in the tree, name, tags and event emission.
type Base struct {
	id       string
	class    *api.Class
	parent   Object
	pipeline Object
	reg      *Registry
	created  time.Time
	tenant   string // the tenant of the session that created it (tenant isolation)

	mu       sync.Mutex
	name     string
	tags     []tag
	sendTags bool
	children []Object // guarded by reg.mu, not mu
	members  int      // of a pipeline: objects in it; guarded by reg.mu
	sessions map[string]struct{}
	released bool
	lastErr  string // description of the last Error event, for the inspector
}

type tag struct{ key, value string }

// ID is the object id as clients see it.
func (b *Base) ID() string { return b.id }

func (b *Base) objectBase() *Base { return b }

// Class is the object's remote class.
func (b *Base) Class() *api.Class { return b.class }

// Parent is the object this one was created in (nil for pipelines and the ServerManager).
func (b *Base) Parent() Object { return b.parent }

// Registry is the registry the object lives in.
func (b *Base) Registry() *Registry { return b.reg }

// Emit raises an event of the object. fields holds the event's own fields as Go values of their API
// types; source, timestampMillis, tags and (for media events) type are filled in here.
func (b *Base) Emit(event string, fields map[string]any) {
	if d, ok := fields["description"].(string); ok && event == "Error" {
		b.mu.Lock()
		b.lastErr = d
		b.mu.Unlock()
	}
	b.reg.emit(b, event, fields)
}

// Tags are the object's tags as key/value pairs, by key.
func (b *Base) Tags() [][2]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([][2]string, len(b.tags))
	for i, t := range b.tags {
		out[i] = [2]string{t.key, t.value}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out
}

// PipelineID is the id of the object's pipeline.
func (b *Base) PipelineID() string {
	if b.pipeline == nil {
		return ""
	}
	return b.pipeline.ID()
}

func (b *Base) tagList() []any {
	b.mu.Lock()
	defer b.mu.Unlock()
	tags := append([]tag(nil), b.tags...)
	// KMS keeps tags in a std::map: listed by key.
	sort.Slice(tags, func(i, j int) bool { return tags[i].key < tags[j].key })
	out := make([]any, len(tags))
	for i, t := range tags {
		out[i] = &api.Register{Type: "Tag", Fields: map[string]any{"key": t.key, "value": t.value}}
	}
	return out
}

func (b *Base) eventTags() []any {
	b.mu.Lock()
	send := b.sendTags
	b.mu.Unlock()
	if !send {
		return []any{}
	}
	return b.tagList()
}

func timestampMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Args are the decoded parameters of a call, by name (see api.Schema.Decode for the Go types).
type Args map[string]any

// Has tells whether the parameter was given (or has a default).
func (a Args) Has(name string) bool {
	_, ok := a[name]
	return ok
}

// String returns a string parameter, "" when absent.
func (a Args) String(name string) string {
	s, _ := a[name].(string)
	return s
}

// Int returns an int parameter, 0 when absent.
func (a Args) Int(name string) int {
	i, _ := a[name].(int)
	return i
}

// Int64 returns an int64 parameter, 0 when absent.
func (a Args) Int64(name string) int64 {
	i, _ := a[name].(int64)
	return i
}

// Float returns a float or double parameter, 0 when absent.
func (a Args) Float(name string) float64 {
	f, _ := a[name].(float64)
	return f
}

// Bool returns a boolean parameter, false when absent.
func (a Args) Bool(name string) bool {
	v, _ := a[name].(bool)
	return v
}

// Object returns a remote-object parameter, nil when absent.
func (a Args) Object(name string) Object {
	o, _ := a[name].(Object)
	return o
}

// Register returns a complex-type parameter, nil when absent.
func (a Args) Register(name string) *api.Register {
	r, _ := a[name].(*api.Register)
	return r
}

// OptString returns a pointer to a string parameter, nil when absent.
func (a Args) OptString(name string) *string {
	if s, ok := a[name].(string); ok {
		return &s
	}
	return nil
}
