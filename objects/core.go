package objects

import (
	"sort"
	"strings"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/kerr"
)

// defineCore installs the classes every server has: the MediaObject basics, the ServerManager, the
// MediaPipeline, the MediaElement connection API and the PassThrough.
func defineCore(r *Registry) {
	r.Define("MediaObject", Class{Ops: mediaObjectOps})
	r.Define("ServerManager", Class{Ops: serverManagerOps})
	r.Define("MediaPipeline", Class{New: newPipeline, Ops: merge(pipelineOps, latencyStatsOps(r.schema.Classes["MediaPipeline"]))})
	r.Define("MediaElement", Class{Ops: merge(mediaElementOps, ObjectDotOps, encoderBitrateOps(r.schema.Classes["MediaElement"]))})
	r.Define("PassThrough", Class{New: newPassThrough})
}

// encoderBitrateOps are MediaElement's encoder bitrate properties: a value set reaches the encoders
// of the element's media.
func encoderBitrateOps(class *api.Class) map[string]Handler {
	ops := propertyOps(class, func(o Object) *Properties { return elementOf(o).Props },
		"encoderBitrate", "minEncoderBitrate", "maxEncoderBitrate")
	for name, h := range ops {
		if !strings.HasPrefix(name, "set") {
			continue
		}
		ops[name] = func(o Object, a Args) (any, error) {
			if _, err := h(o, a); err != nil {
				return nil, err
			}
			elementOf(o).updateEncoderBitrate()
			return nil, nil
		}
	}
	return ops
}

// latencyStatsOps are MediaPipeline's latencyStats property: a value set turns the measurement of
// its elements' latencies on or off.
func latencyStatsOps(class *api.Class) map[string]Handler {
	ops := propertyOps(class, func(o Object) *Properties { return o.(*Pipeline).props }, "latencyStats")
	set := ops["setLatencyStats"]
	ops["setLatencyStats"] = func(o Object, a Args) (any, error) {
		if _, err := set(o, a); err != nil {
			return nil, err
		}
		o.(*Pipeline).Graph.SetLatencyStats(a.Bool("latencyStats"))
		return nil, nil
	}
	return ops
}

// merge combines operation tables; later tables win.
func merge(tables ...map[string]Handler) map[string]Handler {
	out := map[string]Handler{}
	for _, t := range tables {
		for k, v := range t {
			out[k] = v
		}
	}
	return out
}

var mediaObjectOps = map[string]Handler{
	"getId": func(o Object, _ Args) (any, error) { return o.ID(), nil },
	"getMediaPipeline": func(o Object, _ Args) (any, error) {
		return o.objectBase().pipeline, nil
	},
	"getParent": func(o Object, _ Args) (any, error) { return o.objectBase().parent, nil },
	"getChildren": func(o Object, _ Args) (any, error) {
		b := o.objectBase()
		b.reg.mu.Lock()
		defer b.reg.mu.Unlock()
		return append([]Object{}, b.children...), nil
	},
	"getName": func(o Object, _ Args) (any, error) {
		b := o.objectBase()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.name == "" { // KMS: an empty name reads as the id
			return b.id, nil
		}
		return b.name, nil
	},
	"setName": func(o Object, a Args) (any, error) {
		b := o.objectBase()
		b.mu.Lock()
		b.name = a.String("name")
		b.mu.Unlock()
		return nil, nil
	},
	"getSendTagsInEvents": func(o Object, _ Args) (any, error) {
		b := o.objectBase()
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.sendTags, nil
	},
	"setSendTagsInEvents": func(o Object, a Args) (any, error) {
		b := o.objectBase()
		b.mu.Lock()
		b.sendTags = a.Bool("sendTagsInEvents")
		b.mu.Unlock()
		return nil, nil
	},
	"getCreationTime": func(o Object, _ Args) (any, error) { return int(o.objectBase().created.Unix()), nil },
	"addTag": func(o Object, a Args) (any, error) {
		b := o.objectBase()
		key, value := a.String("key"), a.String("value")
		b.mu.Lock()
		defer b.mu.Unlock()
		for i := range b.tags {
			if b.tags[i].key == key {
				b.tags[i].value = value
				return nil, nil
			}
		}
		b.tags = append(b.tags, tag{key, value})
		return nil, nil
	},
	"removeTag": func(o Object, a Args) (any, error) {
		b := o.objectBase()
		key := a.String("key")
		b.mu.Lock()
		defer b.mu.Unlock()
		for i := range b.tags {
			if b.tags[i].key == key {
				b.tags = append(b.tags[:i:i], b.tags[i+1:]...)
				break
			}
		}
		return nil, nil
	},
	"getTag": func(o Object, a Args) (any, error) {
		b := o.objectBase()
		key := a.String("key")
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, t := range b.tags {
			if t.key == key {
				return t.value, nil
			}
		}
		return nil, kerr.New(kerr.TagKeyNotFound, "Tag key not found")
	},
	"getTags": func(o Object, _ Args) (any, error) { return o.objectBase().tagList(), nil },
}

// Properties is a store for the read/write properties of a class that carry settings rather than
// behaviour (bitrates, STUN address, ...): the element reads them when it needs them.
type Properties struct {
	values map[string]any
}

// propertyOps builds getters and setters backed by a Properties store for the named properties of a
// class. get returns the store of an object.
func propertyOps(class *api.Class, get func(Object) *Properties, names ...string) map[string]Handler {
	ops := map[string]Handler{}
	for _, p := range class.Properties {
		name := p.Name
		wanted := false
		for _, n := range names {
			wanted = wanted || n == name
		}
		if !wanted {
			continue
		}
		ops[p.Getter] = func(o Object, _ Args) (any, error) {
			b := o.objectBase()
			b.mu.Lock()
			defer b.mu.Unlock()
			return get(o).values[name], nil
		}
		if p.Setter != "" {
			ops[p.Setter] = func(o Object, a Args) (any, error) {
				b := o.objectBase()
				b.mu.Lock()
				defer b.mu.Unlock()
				get(o).values[name] = a[name]
				return nil, nil
			}
		}
	}
	return ops
}

// NewProperties makes a store with initial values.
func NewProperties(initial map[string]any) *Properties {
	p := &Properties{values: map[string]any{}}
	for k, v := range initial {
		p.values[k] = v
	}
	return p
}

// Get reads a property value under the object's lock.
func (p *Properties) Get(o Object, name string) any {
	b := o.objectBase()
	b.mu.Lock()
	defer b.mu.Unlock()
	return p.values[name]
}

func eventsDeclaredBy(c *api.Class) []string {
	inherited := map[string]bool{}
	if c.Extends != nil {
		for _, e := range c.Extends.AllEvents {
			inherited[e] = true
		}
	}
	var out []string
	for _, e := range c.AllEvents {
		if !inherited[e] {
			out = append(out, e)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
