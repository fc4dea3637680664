// Package api is the Kurento remote API as data: every class, method, property, event and complex type of
// the modules core, elements and filters, read from the embedded api.json. The object layer uses it to
// validate and convert parameters, to answer describe, and to shape events, so that the wire contract lives
// in one file rather than in hand-written tables.
package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

//go:embed api.json
var apiJSON []byte

// Version is the KMS release whose protocol this server speaks.
const Version = "7.3.0"

// Param is a constructor or method parameter.
type Param struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	Optional bool            `json:"optional"`
	Default  json.RawMessage `json:"default"`
}

// Method is a remote method; property accessors are synthesised as methods too.
type Method struct {
	Name    string  `json:"name"`
	Params  []Param `json:"params"`
	Returns string  `json:"returns"`
	Note    string  `json:"note"`
	// Setter marks a synthesised property setter, whose one parameter KMS checks without first
	// requiring operationParams.
	Setter bool `json:"-"`
}

// Property is a remote property, reachable through its getter and setter.
type Property struct {
	Name     string          `json:"name"`
	Type     string          `json:"type"`
	ReadOnly bool            `json:"readOnly"`
	Getter   string          `json:"getter"`
	Setter   string          `json:"setter"`
	Default  json.RawMessage `json:"default"`
	Final    bool            `json:"final"`
	Note     string          `json:"note"`
}

// Class is a remote class with its own members; Lookup walks the ancestors.
type Class struct {
	Name          string
	Module        string
	QualifiedType string     `json:"qualifiedType"`
	Doc           string     `json:"doc"`
	ExtendsName   string     `json:"extends"`
	Abstract      bool       `json:"abstract"`
	Hierarchy     []string   `json:"hierarchy"`
	Properties    []Property `json:"properties"`
	Methods       []Method   `json:"methods"`
	AllEvents     []string   `json:"allEvents"`
	Constructor   *struct {
		Params []Param `json:"params"`
	} `json:"constructor"`

	Extends *Class
	ops     map[string]*Method
	events  map[string]bool
}

// ComplexType is an enum or a register (struct) type.
type ComplexType struct {
	Name        string
	Module      string   `json:"module"`
	Kind        string   `json:"kind"`
	Values      []string `json:"values"`
	Fields      []Param  `json:"fields"`
	ExtendsName string   `json:"extends"`
	Doc         string   `json:"doc"`
	Extends     *ComplexType
}

// Event is a remote event with all the fields of its ancestors.
type Event struct {
	Name        string
	Module      string  `json:"module"`
	ExtendsName string  `json:"extends"`
	Fields      []Param `json:"fields"`
	AllFields   []Param `json:"allFields"`
	Doc         string  `json:"doc"`
}

// Module is one of the KMS modules the server reports in ServerInfo.
type Module struct {
	Name      string   `json:"kmdName"`
	Prefix    string   `json:"qualifiedPrefix"`
	Classes   []string `json:"classes"`
	Factories []string `json:"factories"`
	JSPackage string   `json:"jsPackage"`
}

// Schema is the whole remote API.
type Schema struct {
	Modules      map[string]*Module
	Classes      map[string]*Class
	ComplexTypes map[string]*ComplexType
	Events       map[string]*Event
}

// Load parses the embedded api.json. It fails only if the embedded file is broken.
func Load() (*Schema, error) {
	var raw struct {
		Modules      map[string]*Module      `json:"modules"`
		Classes      map[string]*Class       `json:"classes"`
		ComplexTypes map[string]*ComplexType `json:"complexTypes"`
		Events       map[string]*Event       `json:"events"`
	}
	if err := json.Unmarshal(apiJSON, &raw); err != nil {
		return nil, fmt.Errorf("api.json: %w", err)
	}
	s := &Schema{Modules: raw.Modules, Classes: raw.Classes, ComplexTypes: raw.ComplexTypes, Events: raw.Events}
	for name, m := range s.Modules {
		m.Name = name
	}
	for name, t := range s.ComplexTypes {
		t.Name = name
	}
	for name, t := range s.ComplexTypes {
		if t.ExtendsName != "" {
			if t.Extends = s.ComplexTypes[t.ExtendsName]; t.Extends == nil {
				return nil, fmt.Errorf("api.json: type %s extends unknown %s", name, t.ExtendsName)
			}
		}
	}
	for name, e := range s.Events {
		e.Name = name
	}
	for name, c := range s.Classes {
		c.Name = name
		c.Module, _, _ = strings.Cut(c.QualifiedType, ".")
		if c.ExtendsName != "" {
			if c.Extends = s.Classes[c.ExtendsName]; c.Extends == nil {
				return nil, fmt.Errorf("api.json: class %s extends unknown %s", name, c.ExtendsName)
			}
		}
	}
	for _, c := range s.Classes {
		c.index()
	}
	return s, nil
}

// MustLoad is Load for package initialisation and tests.
func MustLoad() *Schema {
	s, err := Load()
	if err != nil {
		panic(err)
	}
	return s
}

// index builds the operation and event tables of c, ancestors first so that a class may override.
func (c *Class) index() {
	c.ops = map[string]*Method{}
	c.events = map[string]bool{}
	var chain []*Class
	for k := c; k != nil; k = k.Extends {
		chain = append(chain, k)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		k := chain[i]
		for j := range k.Methods {
			c.ops[k.Methods[j].Name] = &k.Methods[j]
		}
		for _, p := range k.Properties {
			if p.Getter != "" {
				c.ops[p.Getter] = &Method{Name: p.Getter, Returns: p.Type}
			}
			if p.Setter != "" {
				c.ops[p.Setter] = &Method{Name: p.Setter, Params: []Param{{Name: p.Name, Type: p.Type}}, Setter: true}
			}
		}
	}
	for _, e := range c.AllEvents {
		c.events[e] = true
	}
}

// Operation finds a method or property accessor of c or its ancestors.
func (c *Class) Operation(name string) (*Method, bool) {
	m, ok := c.ops[name]
	return m, ok
}

// HasEvent tells whether c or an ancestor declares the event.
func (c *Class) HasEvent(name string) bool { return c.events[name] }

// Is tells whether c is the named class or derives from it.
func (c *Class) Is(name string) bool {
	for k := c; k != nil; k = k.Extends {
		if k.Name == name {
			return true
		}
	}
	return false
}

// ConstructorParams returns the constructor parameters (none for classes without a constructor).
func (c *Class) ConstructorParams() []Param {
	if c.Constructor == nil {
		return nil
	}
	return c.Constructor.Params
}

// Class resolves a simple ("WebRtcEndpoint") or qualified ("kurento.WebRtcEndpoint") class name.
func (s *Schema) Class(name string) (*Class, bool) {
	if prefix, simple, ok := strings.Cut(name, "."); ok {
		c, found := s.Classes[simple]
		if !found || c.Module != prefix {
			return nil, false
		}
		return c, true
	}
	c, ok := s.Classes[name]
	return c, ok
}

// Factories lists, sorted, the simple names of the creatable classes of a module.
func (s *Schema) Factories(module string) []string {
	m := s.Modules[module]
	if m == nil {
		return nil
	}
	out := append([]string(nil), m.Factories...)
	sort.Strings(out)
	return out
}

// IsFactory tells whether a class (simple name) is creatable: listed in its module's factories.
func (s *Schema) IsFactory(class string) bool {
	for _, m := range s.Modules {
		for _, f := range m.Factories {
			if f == class {
				return true
			}
		}
	}
	return false
}

// ModuleNames lists the module names in a stable order.
func (s *Schema) ModuleNames() []string {
	names := make([]string, 0, len(s.Modules))
	for n := range s.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ModuleOf names the wire module ("kurento") of a complex type, event or class module.
func ModuleOf(kmdModule string) string {
	switch kmdModule {
	case "core", "elements", "filters", "":
		return "kurento"
	}
	return kmdModule
}
