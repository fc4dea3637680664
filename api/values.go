package api

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Register is a decoded register (struct) value: its fields by name. Type holds the concrete type name,
// which may be a subtype of the declared one (Stats subclasses, for instance).
type Register struct {
	Type   string
	Fields map[string]any
}

// Identified is any remote object; values of remote-class type are encoded as their id.
type Identified interface{ ID() string }

// Resolver turns an object id received as a parameter into the object, checking its class.
type Resolver func(id, class string) (any, error)

// MarshalError is a parameter that does not fit its declared type; the object layer reports it as
// 40001 MARSHALL_ERROR, or 40003 for an unknown __type__.
type MarshalError struct {
	Unexpected bool
	Msg        string
}

func (e *MarshalError) Error() string { return e.Msg }

func marshalErr(format string, a ...any) error { return &MarshalError{Msg: fmt.Sprintf(format, a...)} }

// typeDescription is the word KMS uses in "'x' parameter should be a <word>".
func (s *Schema) typeDescription(t string) string {
	switch {
	case strings.HasSuffix(t, "[]"):
		return "list"
	case strings.HasSuffix(t, "<>"):
		return "map"
	}
	switch t {
	case "String":
		return "string"
	case "int":
		return "integer"
	case "boolean":
		return "boolean"
	case "float", "double":
		return "double"
	case "int64":
		return "int64"
	}
	if ct := s.ComplexTypes[t]; ct != nil && ct.Kind == "register" {
		return "object"
	}
	return "string"
}

// convertible mirrors jsoncpp's isConvertibleTo, which KMS uses to accept loosely typed values:
// null fits everything, numbers and booleans stand in for one another, scalars fit strings.
func (s *Schema) convertible(t string, v any) bool {
	if v == nil {
		return true
	}
	switch {
	case strings.HasSuffix(t, "[]"):
		_, ok := v.([]any)
		return ok
	case strings.HasSuffix(t, "<>"):
		_, ok := v.(map[string]any)
		return ok
	}
	switch t {
	case "String":
		switch v.(type) {
		case string, json.Number, bool:
			return true
		}
		return false
	case "int", "int64":
		switch x := v.(type) {
		case bool:
			return true
		case json.Number:
			// jsoncpp converts any in-range number, truncating a fraction.
			f, err := x.Float64()
			if err != nil {
				return false
			}
			if t == "int" {
				return f >= math.MinInt32 && f <= math.MaxInt32
			}
			return f >= math.MinInt64 && f <= math.MaxInt64
		}
		return false
	case "boolean", "float", "double":
		switch v.(type) {
		case bool, json.Number:
			return true
		}
		return false
	}
	if ct := s.ComplexTypes[t]; ct != nil && ct.Kind == "register" {
		_, ok := v.(map[string]any)
		return ok
	}
	// enums and remote classes travel as strings
	switch v.(type) {
	case string, json.Number, bool:
		return true
	}
	return false
}

// DecodeParams checks and converts the named parameters of a constructor or method. kind is
// "constructorParams" or "operationParams"; raw is what the request carried (nil when absent).
// Optional parameters that are absent take their api.json default, if any, else stay absent.
func (s *Schema) DecodeParams(kind string, params []Param, raw any, resolve Resolver) (map[string]any, error) {
	obj, isObj := raw.(map[string]any)
	required := false
	for _, p := range params {
		if !p.Optional {
			required = true
		}
	}
	if !isObj {
		// KMS treats a present but non-object value like an absent one.
		if required {
			return nil, marshalErr("'%s' is required", kind)
		}
		obj = nil
	}
	out := make(map[string]any, len(params))
	for _, p := range params {
		v, present := obj[p.Name]
		if !present {
			if !p.Optional {
				return nil, marshalErr("'%s' parameter should be a %s", p.Name, s.typeDescription(p.Type))
			}
			if len(p.Default) == 0 {
				continue
			}
			if err := decodeJSON(p.Default, &v); err != nil {
				return nil, fmt.Errorf("api.json default of %s: %w", p.Name, err)
			}
		}
		if !s.convertible(p.Type, v) {
			return nil, marshalErr("'%s' parameter should be a %s", p.Name, s.typeDescription(p.Type))
		}
		dv, err := s.Decode(p.Type, v, resolve)
		if err != nil {
			return nil, err
		}
		out[p.Name] = dv
	}
	return out, nil
}

func decodeJSON(b []byte, v *any) error {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	return d.Decode(v)
}

// Decode converts one JSON value (decoded with UseNumber) to the Go value of API type t: string, int,
// int64, float64, bool, enum name (string), *Register, a resolved object, []any or map[string]any.
func (s *Schema) Decode(t string, v any, resolve Resolver) (any, error) {
	if elem, ok := strings.CutSuffix(t, "[]"); ok {
		list, _ := v.([]any)
		out := make([]any, 0, len(list))
		for _, item := range list {
			if !s.convertible(elem, item) {
				return nil, marshalErr("'%s' type should be a %s", elem, s.typeDescription(elem))
			}
			d, err := s.Decode(elem, item, resolve)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	}
	if elem, ok := strings.CutSuffix(t, "<>"); ok {
		m, _ := v.(map[string]any)
		out := make(map[string]any, len(m))
		for k, item := range m {
			d, err := s.Decode(elem, item, resolve)
			if err != nil {
				return nil, err
			}
			out[k] = d
		}
		return out, nil
	}
	switch t {
	case "String":
		return asString(v), nil
	case "int":
		return int(asFloat(v)), nil
	case "int64":
		if n, ok := v.(json.Number); ok {
			if i, err := n.Int64(); err == nil {
				return i, nil
			}
		}
		return int64(asFloat(v)), nil
	case "float", "double":
		return asFloat(v), nil
	case "boolean":
		return asFloat(v) != 0, nil
	}
	if ct := s.ComplexTypes[t]; ct != nil {
		if ct.Kind == "enum" {
			name := asString(v)
			for _, e := range ct.Values {
				if e == name {
					return name, nil
				}
			}
			return nil, marshalErr("Invalid value for '%s'", t)
		}
		return s.decodeRegister(ct, v, resolve)
	}
	if _, ok := s.Classes[t]; ok {
		if resolve == nil {
			return asString(v), nil
		}
		return resolve(asString(v), t)
	}
	return nil, fmt.Errorf("api: unknown type %q", t)
}

func (s *Schema) decodeRegister(declared *ComplexType, v any, resolve Resolver) (any, error) {
	m, _ := v.(map[string]any)
	ct := declared
	if typ, ok := m["__type__"].(string); ok {
		mod, _ := m["__module__"].(string)
		sub := s.ComplexTypes[typ]
		if sub == nil || (mod != "" && ModuleOf(sub.Module) != mod) {
			return nil, &MarshalError{Unexpected: true, Msg: fmt.Sprintf("Type %s does not exist in module %s", typ, mod)}
		}
		if sub.derivesFrom(declared) {
			ct = sub
		}
	}
	out := &Register{Type: ct.Name, Fields: map[string]any{}}
	for _, f := range ct.AllFields() {
		fv, present := m[f.Name]
		if !present {
			if f.Optional {
				continue
			}
			return nil, marshalErr("'%s' property should be a %s", f.Name, s.typeDescription(f.Type))
		}
		if !s.convertible(f.Type, fv) {
			return nil, marshalErr("'%s' property should be a %s", f.Name, s.typeDescription(f.Type))
		}
		d, err := s.Decode(f.Type, fv, resolve)
		if err != nil {
			return nil, err
		}
		out.Fields[f.Name] = d
	}
	return out, nil
}

func (t *ComplexType) derivesFrom(base *ComplexType) bool {
	for k := t; k != nil; k = k.Extends {
		if k == base {
			return true
		}
	}
	return false
}

// AllFields lists the fields of t and its ancestors, ancestors first.
func (t *ComplexType) AllFields() []Param {
	if t.Extends == nil {
		return t.Fields
	}
	return append(append([]Param(nil), t.Extends.AllFields()...), t.Fields...)
}

func asString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return ""
}

func asFloat(v any) float64 {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case bool:
		if x {
			return 1
		}
	}
	return 0
}

// Encode turns a Go value into the JSON form of API type t that clients expect: object ids for remote
// classes, enum names, registers with __module__/__type__, lists and maps of those.
func (s *Schema) Encode(t string, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if elem, ok := strings.CutSuffix(t, "[]"); ok {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			return nil, fmt.Errorf("api: %s wants a slice, got %T", t, v)
		}
		out := make([]any, rv.Len())
		for i := range out {
			e, err := s.Encode(elem, rv.Index(i).Interface())
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	}
	if elem, ok := strings.CutSuffix(t, "<>"); ok {
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Map {
			return nil, fmt.Errorf("api: %s wants a map, got %T", t, v)
		}
		out := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			e, err := s.Encode(elem, it.Value().Interface())
			if err != nil {
				return nil, err
			}
			out[it.Key().String()] = e
		}
		return out, nil
	}
	if obj, ok := v.(Identified); ok {
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil, nil
		}
		return obj.ID(), nil
	}
	if ct := s.ComplexTypes[t]; ct != nil && ct.Kind == "register" {
		r, ok := v.(*Register)
		if !ok {
			return nil, fmt.Errorf("api: %s wants *api.Register, got %T", t, v)
		}
		return s.encodeRegister(ct, r)
	}
	return v, nil
}

// extensionFields are fields a register of ours carries beyond KMS's api.json. They are encoded but
// not declared (getKmd stays KMS's): kurento-client for JS and Java build such values from the fields
// they know and ignore the others.
var extensionFields = map[string][]Param{
	// packets not sent to a peer that did not take them in time (its send queue or transport full)
	"RTCOutboundRTPStreamStats": {{Name: "packetsDiscarded", Type: "int64"}},
}

func (s *Schema) encodeRegister(declared *ComplexType, r *Register) (any, error) {
	ct := declared
	if r.Type != "" {
		if ct = s.ComplexTypes[r.Type]; ct == nil {
			return nil, fmt.Errorf("api: unknown register type %q", r.Type)
		}
	}
	out := map[string]any{"__module__": ModuleOf(ct.Module), "__type__": ct.Name}
	fields := ct.AllFields()
	if ext := extensionFields[ct.Name]; len(ext) > 0 {
		fields = append(fields[:len(fields):len(fields)], ext...)
	}
	for _, f := range fields {
		v, ok := r.Fields[f.Name]
		if !ok {
			continue
		}
		e, err := s.Encode(f.Type, v)
		if err != nil {
			return nil, err
		}
		out[f.Name] = e
	}
	return out, nil
}
