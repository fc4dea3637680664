package objects

import (
	"encoding/json"
	"strings"
	"unicode"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/kerr"
)

// The shapes of a module descriptor (.kmd.json) as KMS's module creator writes it and
// ServerManager.getKmd returns it. Field order follows KMS's files.
type (
	kmdModule struct {
		Name           string         `json:"name"`
		Version        string         `json:"version"`
		KurentoVersion string         `json:"kurentoVersion"`
		Imports        []kmdImport    `json:"imports"`
		Code           map[string]any `json:"code"`
		RemoteClasses  []kmdClass     `json:"remoteClasses"`
		ComplexTypes   []kmdType      `json:"complexTypes"`
		Events         []kmdEvent     `json:"events"`
	}
	kmdImport struct {
		Name         string `json:"name"`
		Version      string `json:"version"`
		MavenVersion string `json:"mavenVersion"`
		NpmVersion   string `json:"npmVersion"`
	}
	kmdClass struct {
		Name        string        `json:"name"`
		Doc         string        `json:"doc"`
		Abstract    bool          `json:"abstract,omitempty"`
		Extends     string        `json:"extends,omitempty"`
		Constructor *kmdMethod    `json:"constructor,omitempty"`
		Properties  []kmdProperty `json:"properties"`
		Methods     []kmdMethod   `json:"methods"`
		Events      []string      `json:"events"`
	}
	kmdMethod struct {
		Name   string     `json:"name,omitempty"`
		Doc    string     `json:"doc"`
		Params []kmdParam `json:"params"`
		Return *kmdReturn `json:"return,omitempty"`
	}
	kmdReturn struct {
		Doc  string `json:"doc"`
		Type string `json:"type"`
	}
	kmdParam struct {
		Name         string          `json:"name"`
		Doc          string          `json:"doc"`
		Type         string          `json:"type"`
		Optional     bool            `json:"optional,omitempty"`
		DefaultValue json.RawMessage `json:"defaultValue,omitempty"`
	}
	kmdProperty struct {
		Name     string `json:"name"`
		Doc      string `json:"doc"`
		Type     string `json:"type"`
		ReadOnly bool   `json:"readOnly,omitempty"`
		Final    bool   `json:"final,omitempty"`
	}
	kmdType struct {
		Name       string     `json:"name"`
		Doc        string     `json:"doc"`
		TypeFormat string     `json:"typeFormat"`
		Extends    string     `json:"extends,omitempty"`
		Values     []string   `json:"values,omitempty"`
		Properties []kmdParam `json:"properties,omitempty"`
	}
	kmdEvent struct {
		Name       string     `json:"name"`
		Doc        string     `json:"doc"`
		Extends    string     `json:"extends,omitempty"`
		Properties []kmdParam `json:"properties"`
	}
)

// kmdText is ServerManager.getKmd: the descriptor of a module in KMS's .kmd.json format, made from
// the API description the server runs on (classes, types, events and their documentation).
func kmdText(s *api.Schema, module string) (string, error) {
	m := s.Modules[module]
	if m == nil {
		return "", kerr.New(kerr.KmdNotFound, "Requested kmd module doesn't exist")
	}
	k := kmdModule{
		Name:           module,
		Version:        api.Version,
		KurentoVersion: "^" + api.Version,
		Imports:        []kmdImport{},
		Code:           kmdCode(m),
		RemoteClasses:  []kmdClass{},
		ComplexTypes:   []kmdType{},
		Events:         []kmdEvent{},
	}
	for _, imp := range kmdImports(module) {
		k.Imports = append(k.Imports, kmdImport{Name: imp, Version: "^" + api.Version,
			MavenVersion: "[" + api.Version + ",8.0.0-SNAPSHOT)", NpmVersion: ">=" + api.Version + " <8.0.0"})
	}
	for _, name := range m.Classes {
		k.RemoteClasses = append(k.RemoteClasses, kmdClassOf(s.Classes[name]))
	}
	for _, name := range sortedKeys(s.ComplexTypes) {
		if t := s.ComplexTypes[name]; t.Module == module {
			k.ComplexTypes = append(k.ComplexTypes, kmdTypeOf(t))
		}
	}
	for _, name := range sortedKeys(s.Events) {
		e := s.Events[name]
		if e.Module != module {
			continue
		}
		ev := kmdEvent{Name: e.Name, Doc: e.Doc, Extends: e.ExtendsName, Properties: []kmdParam{}}
		for _, f := range e.Fields {
			ev.Properties = append(ev.Properties, kmdParamOf(f, ""))
		}
		k.Events = append(k.Events, ev)
	}
	b, err := json.MarshalIndent(k, "", "  ")
	return string(b), err
}

// kmdImports are the modules a module builds on: core under everything, elements under filters.
func kmdImports(module string) []string {
	switch module {
	case "core":
		return nil
	case "filters":
		return []string{"core", "elements"}
	}
	return []string{"core"}
}

func kmdCode(m *api.Module) map[string]any {
	js := m.JSPackage
	if js == "" {
		js = "kurento-module-" + m.Name
	}
	code := map[string]any{
		"api": map[string]any{
			"js": map[string]any{"nodeName": js, "npmDescription": "JavaScript Client API for Kurento Media Server"},
		},
	}
	if m.Prefix == "kurento" {
		code["kmd"] = map[string]any{"java": map[string]any{"mavenGroupId": "org.kurento", "mavenArtifactId": "kms-api-" + m.Name}}
		code["api"].(map[string]any)["java"] = map[string]any{"packageName": "org.kurento.client",
			"mavenGroupId": "org.kurento", "mavenArtifactId": "kurento-client"}
		code["implementation"] = map[string]any{"cppNamespace": "kurento"}
	}
	return code
}

func kmdClassOf(c *api.Class) kmdClass {
	out := kmdClass{Name: c.Name, Doc: c.Doc, Abstract: c.Abstract, Extends: c.ExtendsName,
		Properties: []kmdProperty{}, Methods: []kmdMethod{}, Events: eventsDeclaredBy(c)}
	if out.Events == nil {
		out.Events = []string{}
	}
	if c.Constructor != nil {
		ctor := &kmdMethod{Doc: "Create a " + c.Name, Params: []kmdParam{}}
		for _, p := range c.Constructor.Params {
			ctor.Params = append(ctor.Params, kmdParamOf(p, ""))
		}
		out.Constructor = ctor
	}
	for _, p := range c.Properties {
		doc := p.Note
		if doc == "" {
			doc = sentence(p.Name)
		}
		out.Properties = append(out.Properties, kmdProperty{Name: p.Name, Doc: doc, Type: p.Type,
			ReadOnly: p.ReadOnly && !p.Final, Final: p.Final})
	}
	for _, m := range c.Methods {
		doc := m.Note
		if doc == "" {
			doc = sentence(m.Name)
		}
		km := kmdMethod{Name: m.Name, Doc: doc, Params: []kmdParam{}}
		for _, p := range m.Params {
			km.Params = append(km.Params, kmdParamOf(p, ""))
		}
		if m.Returns != "" {
			km.Return = &kmdReturn{Doc: "the " + strings.ToLower(sentence(strings.TrimPrefix(m.Name, "get"))), Type: m.Returns}
		}
		out.Methods = append(out.Methods, km)
	}
	return out
}

func kmdTypeOf(t *api.ComplexType) kmdType {
	out := kmdType{Name: t.Name, Doc: t.Doc}
	if t.Kind == "enum" {
		out.TypeFormat, out.Values = "ENUM", t.Values
		return out
	}
	out.TypeFormat, out.Extends, out.Properties = "REGISTER", t.ExtendsName, []kmdParam{}
	for _, f := range t.Fields {
		out.Properties = append(out.Properties, kmdParamOf(f, ""))
	}
	return out
}

func kmdParamOf(p api.Param, doc string) kmdParam {
	if doc == "" {
		doc = sentence(p.Name)
	}
	out := kmdParam{Name: p.Name, Doc: doc, Type: p.Type, Optional: p.Optional}
	if len(p.Default) > 0 && string(p.Default) != "null" {
		out.DefaultValue = p.Default
	}
	return out
}

// sentence spells a camelCase name as words ("maxVideoRecvBandwidth" -> "Max video recv bandwidth"):
// the documentation of a member the API description says nothing more about.
func sentence(name string) string {
	var b strings.Builder
	for i, r := range name {
		switch {
		case i == 0:
			b.WriteRune(unicode.ToUpper(r))
		case unicode.IsUpper(r):
			b.WriteByte(' ')
			b.WriteRune(unicode.ToLower(r))
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
