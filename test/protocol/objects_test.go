package tests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

const uuidPart = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

// TestIDsAndDescribe: KMS's id format (§4.3) and describe of every kind of object (§4.4).
func TestIDsAndDescribe(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	p := c.create("kurento.MediaPipeline", nil)
	if !regexp.MustCompile(`^` + uuidPart + `_kurento\.MediaPipeline$`).MatchString(p) {
		t.Fatalf("pipeline id %s", p)
	}
	for _, typ := range []string{"PassThrough", "kurento.PassThrough"} {
		e := c.create(typ, map[string]any{"mediaPipeline": p})
		if !regexp.MustCompile(`^` + regexp.QuoteMeta(p) + `/` + uuidPart + `_kurento\.PassThrough$`).MatchString(e) {
			t.Fatalf("element id %s", e)
		}
		d := c.ok("describe", map[string]any{"object": e})
		if d["type"] != "PassThrough" || d["qualifiedType"] != "kurento.PassThrough" ||
			!slices.Equal(anyStrings(d["hierarchy"]), []string{"kurento.MediaElement", "kurento.MediaObject"}) || d["sessionId"] == nil {
			t.Fatalf("describe PassThrough: %v", d)
		}
	}
	d := c.ok("describe", map[string]any{"object": p})
	if d["type"] != "MediaPipeline" || d["qualifiedType"] != "kurento.MediaPipeline" || !slices.Equal(anyStrings(d["hierarchy"]), []string{"kurento.MediaObject"}) {
		t.Fatalf("describe pipeline: %v", d)
	}
	// Ids are unique.
	seen := map[string]bool{}
	for range 50 {
		id := c.create("MediaPipeline", nil)
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
	// constructorParams null is {} for a class without required params; properties are ignored.
	c.ok("create", map[string]any{"type": "MediaPipeline", "constructorParams": nil, "properties": map[string]any{"name": "x", "junk": []any{1}}})
}

// TestMediaObjectAPI: name, tags, sendTagsInEvents, children, parent, pipeline, creation time, id.
func TestMediaObjectAPI(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	before := time.Now().Unix()
	p, els := c.pipelineWith(2)
	e := els[0]
	if got := c.invoke(e, "getName", nil); got != e {
		t.Fatalf("default name %v", got)
	}
	c.invoke(e, "setName", map[string]any{"name": "camera"})
	if got := c.invoke(e, "getName", nil); got != "camera" {
		t.Fatalf("name %v", got)
	}
	c.invoke(e, "setName", map[string]any{"name": ""})
	if got := c.invoke(e, "getName", nil); got != e {
		t.Fatalf("empty name should read as the id, got %v", got)
	}
	if got := c.invoke(e, "getId", nil); got != e {
		t.Fatalf("getId %v", got)
	}
	ct, _ := c.invoke(e, "getCreationTime", nil).(json.Number).Int64()
	if ct < before || ct > time.Now().Unix() {
		t.Fatalf("creation time %d", ct)
	}
	if got := c.invoke(e, "getParent", nil); got != p {
		t.Fatalf("parent %v", got)
	}
	if got := c.invoke(p, "getParent", nil); got != nil {
		t.Fatalf("pipeline parent %v", got)
	}
	if got := c.invoke(e, "getMediaPipeline", nil); got != p {
		t.Fatalf("element pipeline %v", got)
	}
	if got := c.invoke(p, "getMediaPipeline", nil); got != p {
		t.Fatalf("pipeline of the pipeline %v", got)
	}
	if got := c.invoke("manager_ServerManager", "getMediaPipeline", nil); got != nil {
		t.Fatalf("pipeline of the manager %v", got)
	}
	children := anyStrings(c.invoke(p, "getChildren", nil))
	sort.Strings(children)
	want := append([]string(nil), els...)
	sort.Strings(want)
	if !slices.Equal(children, want) {
		t.Fatalf("children %v want %v", children, want)
	}
	if got := c.invoke(e, "getChildren", nil).([]any); len(got) != 0 {
		t.Fatalf("element children %v", got)
	}
	// Tags: overwrite, sorted by key like KMS's std::map, removal of a missing key is fine.
	c.invoke(e, "addTag", map[string]any{"key": "b", "value": "1"})
	c.invoke(e, "addTag", map[string]any{"key": "a", "value": "2"})
	c.invoke(e, "addTag", map[string]any{"key": "b", "value": "3"})
	c.invoke(e, "removeTag", map[string]any{"key": "zzz"})
	tags, _ := json.Marshal(c.invoke(e, "getTags", nil))
	if string(tags) != `[{"__module__":"kurento","__type__":"Tag","key":"a","value":"2"},{"__module__":"kurento","__type__":"Tag","key":"b","value":"3"}]` {
		t.Fatalf("tags %s", tags)
	}
	if got := c.invoke(e, "getTag", map[string]any{"key": "b"}); got != "3" {
		t.Fatalf("getTag %v", got)
	}
	c.invoke(e, "removeTag", map[string]any{"key": "b"})
	c.fail("invoke", map[string]any{"object": e, "operation": "getTag", "operationParams": map[string]any{"key": "b"}}, 40110, "Tag key not found")
	if got := c.invoke(e, "getSendTagsInEvents", nil); got != false {
		t.Fatalf("sendTagsInEvents default %v", got)
	}
	c.invoke(e, "setSendTagsInEvents", map[string]any{"sendTagsInEvents": true})
	if got := c.invoke(e, "getSendTagsInEvents", nil); got != true {
		t.Fatalf("sendTagsInEvents %v", got)
	}
	// Lenient scalars: a number where a string is declared (jsoncpp converts it).
	c.invoke(e, "setName", map[string]any{"name": 42})
	if got := c.invoke(e, "getName", nil); got != "42" {
		t.Fatalf("numeric name %v", got)
	}
	// Void methods answer value null, present.
	c.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":77,"method":"invoke","params":{"object":"%s","operation":"addTag","operationParams":{"key":"k","value":"v"}}}`, e))
	m := c.reply()
	if !strings.Contains(string(m.Raw), `"value":null`) {
		t.Fatalf("void invoke: %s", m.Raw)
	}
	// MediaPipeline and MediaElement properties.
	if got := c.invoke(p, "getLatencyStats", nil); got != false {
		t.Fatalf("latencyStats %v", got)
	}
	c.invoke(p, "setLatencyStats", map[string]any{"latencyStats": true})
	if got := c.invoke(p, "getLatencyStats", nil); got != true {
		t.Fatalf("latencyStats %v", got)
	}
	c.invoke(e, "setMaxEncoderBitrate", map[string]any{"maxEncoderBitrate": 500000})
	if got := c.invoke(e, "getMaxEncoderBitrate", nil); got != json.Number("500000") {
		t.Fatalf("maxEncoderBitrate %v", got)
	}
	if dot, _ := c.invoke(p, "getGstreamerDot", nil).(string); !strings.Contains(dot, "digraph") {
		t.Fatalf("dot %q", dot)
	}
	stats, _ := c.invoke(e, "getStats", nil).(map[string]any)
	for _, v := range stats {
		if v.(map[string]any)["__type__"] != "ElementStats" {
			t.Fatalf("stats %v", stats)
		}
	}
}

// TestServerManager: the getters of manager_ServerManager (§6).
func TestServerManager(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	info := c.invoke("manager_ServerManager", "getInfo", nil).(map[string]any)
	if info["__module__"] != "kurento" || info["__type__"] != "ServerInfo" || info["type"] != "KMS" || info["version"] != "7.3.0" {
		t.Fatalf("info %v", info)
	}
	if !slices.Equal(anyStrings(info["capabilities"]), []string{"transactions"}) {
		t.Fatalf("capabilities %v", info["capabilities"])
	}
	factories := map[string][]string{}
	for _, m := range info["modules"].([]any) {
		mod := m.(map[string]any)
		if mod["__type__"] != "ModuleInfo" || mod["__module__"] != "kurento" || mod["version"] != "7.3.0" {
			t.Fatalf("module %v", mod)
		}
		if _, ok := mod["generationTime"].(string); !ok {
			t.Fatalf("generationTime must be a string: %v", mod)
		}
		factories[mod["name"].(string)] = anyStrings(mod["factories"])
	}
	// Every factory of api.json is listed, implemented or not (create explains the difference).
	if !slices.Equal(factories["core"], []string{"HubPort", "MediaPipeline", "PassThrough"}) ||
		!slices.Contains(factories["elements"], "WebRtcEndpoint") || !slices.Contains(factories["filters"], "GStreamerFilter") {
		t.Fatalf("factories %v", factories)
	}
	p, _ := c.pipelineWith(1)
	sid := c.ok("ping", nil)["sessionId"]
	if got := anyStrings(c.invoke("manager_ServerManager", "getPipelines", nil)); !slices.Equal(got, []string{p}) {
		t.Fatalf("pipelines %v", got)
	}
	if got := anyStrings(c.invoke("manager_ServerManager", "getSessions", nil)); !slices.Contains(got, sid.(string)) {
		t.Fatalf("sessions %v", got)
	}
	if n, _ := c.invoke("manager_ServerManager", "getCpuCount", nil).(json.Number).Int64(); n < 1 {
		t.Fatalf("cpu count %d", n)
	}
	if n, _ := c.invoke("manager_ServerManager", "getUsedMemory", nil).(json.Number).Int64(); n <= 0 {
		t.Fatalf("used memory %d", n)
	}
	t0 := time.Now()
	if _, err := c.invoke("manager_ServerManager", "getUsedCpu", map[string]any{"interval": 100}).(json.Number).Float64(); err != nil || time.Since(t0) < 90*time.Millisecond {
		t.Fatalf("getUsedCpu: %v after %v", err, time.Since(t0))
	}
	if got := c.invoke("manager_ServerManager", "getMetadata", nil); got != "" {
		t.Fatalf("metadata %v", got)
	}
	var kmd map[string]any
	if err := json.Unmarshal([]byte(c.invoke("manager_ServerManager", "getKmd", map[string]any{"moduleName": "core"}).(string)), &kmd); err != nil || kmd["name"] != "core" {
		t.Fatalf("kmd: %v %v", err, kmd["name"])
	}
	if c.ok("describe", map[string]any{"object": "manager_ServerManager"})["type"] != "ServerManager" {
		t.Fatal("describe")
	}
}

// TestConnections: every variant of connect/disconnect in api.json and the connection queries.
func TestConnections(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	_, els := c.pipelineWith(3)
	a, b, x := els[0], els[1], els[2]
	conns := func(obj, op string, params map[string]any) []string {
		var out []string
		for _, v := range c.invoke(obj, op, params).([]any) {
			d := v.(map[string]any)
			if d["__type__"] != "ElementConnectionData" || d["__module__"] != "kurento" {
				t.Fatalf("connection data %v", d)
			}
			out = append(out, fmt.Sprintf("%s>%s:%s:%s:%s", short(d["source"]), short(d["sink"]), d["type"], d["sourceDescription"], d["sinkDescription"]))
		}
		sort.Strings(out)
		return out
	}
	name := map[string]string{a: "a", b: "b", x: "x"}
	short = func(v any) string { return name[v.(string)] }
	c.ok("subscribe", map[string]any{"object": a, "type": "ElementConnected"})

	c.invoke(a, "connect", map[string]any{"sink": b})
	for _, want := range []string{"AUDIO", "VIDEO", "DATA"} {
		if ev := c.event(); ev["data"].(map[string]any)["mediaType"] != want {
			t.Fatalf("connect(sink): %v", ev)
		}
	}
	if got := conns(b, "getSourceConnections", nil); !slices.Equal(got, []string{"a>b:AUDIO:default:default", "a>b:DATA:default:default", "a>b:VIDEO:default:default"}) {
		t.Fatalf("sources of b %v", got)
	}
	c.invoke(a, "connect", map[string]any{"sink": x, "mediaType": "VIDEO"})
	c.invoke(a, "connect", map[string]any{"sink": x, "mediaType": "AUDIO", "sourceMediaDescription": "main"})
	c.invoke(a, "connect", map[string]any{"sink": x, "mediaType": "AUDIO", "sourceMediaDescription": "alt", "sinkMediaDescription": "second"})
	c.drainEvents()
	if got := conns(a, "getSinkConnections", map[string]any{"mediaType": "AUDIO"}); !slices.Equal(got, []string{"a>b:AUDIO:default:default", "a>x:AUDIO:alt:second", "a>x:AUDIO:main:default"}) {
		t.Fatalf("audio sinks of a %v", got)
	}
	if got := conns(a, "getSinkConnections", map[string]any{"mediaType": "AUDIO", "description": "main"}); !slices.Equal(got, []string{"a>x:AUDIO:main:default"}) {
		t.Fatalf("audio sinks of a on pad main %v", got)
	}
	if got := conns(x, "getSourceConnections", map[string]any{"mediaType": "VIDEO"}); !slices.Equal(got, []string{"a>x:VIDEO:default:default"}) {
		t.Fatalf("video sources of x %v", got)
	}
	// A sink pad takes one source: b connecting into x's default VIDEO pad replaces a.
	c.ok("subscribe", map[string]any{"object": a, "type": "ElementDisconnected"})
	c.invoke(b, "connect", map[string]any{"sink": x, "mediaType": "VIDEO"})
	if ev := c.event(); ev["type"] != "ElementDisconnected" || ev["data"].(map[string]any)["sink"] != x {
		t.Fatalf("replaced source: %v", ev)
	}
	// disconnect variants
	c.invoke(a, "disconnect", map[string]any{"sink": x, "mediaType": "AUDIO", "sourceMediaDescription": "alt", "sinkMediaDescription": "second"})
	c.invoke(a, "disconnect", map[string]any{"sink": x, "mediaType": "AUDIO", "sourceMediaDescription": "main"})
	c.invoke(a, "disconnect", map[string]any{"sink": b, "mediaType": "DATA"})
	c.invoke(a, "disconnect", map[string]any{"sink": b})
	c.drainEvents()
	if got := conns(a, "getSinkConnections", nil); len(got) != 0 {
		t.Fatalf("a still feeds %v", got)
	}
	if got := conns(x, "getSourceConnections", nil); !slices.Equal(got, []string{"b>x:VIDEO:default:default"}) {
		t.Fatalf("sources of x %v", got)
	}
	// Loopback is allowed.
	c.invoke(a, "connect", map[string]any{"sink": a, "mediaType": "VIDEO"})
	if got := conns(a, "getSourceConnections", nil); !slices.Equal(got, []string{"a>a:VIDEO:default:default"}) {
		t.Fatalf("loopback %v", got)
	}
	for _, op := range []string{"isMediaFlowingIn", "isMediaFlowingOut", "isMediaTranscoding"} {
		if got := c.invoke(a, op, map[string]any{"mediaType": "VIDEO"}); got != false {
			t.Fatalf("%s %v", op, got)
		}
	}
}

var short func(any) string

// TestTransactions: newref substitution at any depth, stop at the first failure with outer success,
// the session forced into every operation (§4.8).
func TestTransactions(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	sid := c.ok("describe", map[string]any{"object": "manager_ServerManager"})["sessionId"].(string)
	ops := []any{
		map[string]any{"jsonrpc": "2.0", "id": 0, "method": "create", "params": map[string]any{"type": "MediaPipeline", "properties": map[string]any{}}},
		map[string]any{"jsonrpc": "2.0", "id": 1, "method": "create", "params": map[string]any{"type": "PassThrough", "constructorParams": map[string]any{"mediaPipeline": "newref:0"}}},
		map[string]any{"jsonrpc": "2.0", "id": 2, "method": "create", "params": map[string]any{"type": "PassThrough", "constructorParams": map[string]any{"mediaPipeline": "newref:0"}}},
		map[string]any{"jsonrpc": "2.0", "id": 3, "method": "invoke", "params": map[string]any{"object": "newref:1", "operation": "connect", "operationParams": map[string]any{"sink": "newref:2"}, "sessionId": "someone-else"}},
		map[string]any{"jsonrpc": "2.0", "id": 4, "method": "invoke", "params": map[string]any{"object": "newref:1", "operation": "addTag", "operationParams": map[string]any{"key": "peers", "value": "newref:2"}}},
		map[string]any{"jsonrpc": "2.0", "id": 5, "method": "invoke", "params": map[string]any{"object": "newref:1", "operation": "getTag", "operationParams": map[string]any{"key": "missing"}}},
		map[string]any{"jsonrpc": "2.0", "id": 6, "method": "release", "params": map[string]any{"object": "newref:0"}},
	}
	r := c.ok("transaction", map[string]any{"operations": ops})
	if r["sessionId"] != sid {
		t.Fatalf("transaction session %v", r["sessionId"])
	}
	resps := r["value"].([]any)
	if len(resps) != 6 {
		t.Fatalf("want 6 responses (stop at the failing 6th): %v", resps)
	}
	var ids []string
	for i, raw := range resps {
		m := raw.(map[string]any)
		if m["id"] != json.Number(fmt.Sprint(i)) || m["jsonrpc"] != "2.0" {
			t.Fatalf("response %d: %v", i, m)
		}
		if i == 5 {
			e := m["error"].(map[string]any)
			if e["code"] != json.Number("40110") || m["result"] != nil {
				t.Fatalf("failing op: %v", m)
			}
			continue
		}
		res := m["result"].(map[string]any)
		if res["sessionId"] != sid {
			t.Fatalf("op %d ran in session %v, want the transaction's %s", i, res["sessionId"], sid)
		}
		if v, ok := res["value"].(string); ok {
			ids = append(ids, v)
		}
	}
	pipe, a, b := ids[0], ids[1], ids[2]
	if !strings.HasPrefix(a, pipe+"/") || !strings.HasPrefix(b, pipe+"/") {
		t.Fatalf("ids %v", ids)
	}
	if !exists(s, pipe) {
		t.Fatal("the release after the failure was executed")
	}
	if got := c.invoke(a, "getTag", map[string]any{"key": "peers"}); got != b {
		t.Fatalf("newref inside operationParams: %v", got)
	}
	if got := c.invoke(b, "getSourceConnections", nil).([]any); len(got) != 3 {
		t.Fatalf("connect in the transaction: %v", got)
	}
	// Op ids may be null for op 0 and booleans convert (jsoncpp asUInt).
	r = c.ok("transaction", map[string]any{"operations": []any{
		map[string]any{"jsonrpc": "2.0", "method": "ping"},
		map[string]any{"jsonrpc": "2.0", "id": true, "method": "ping"},
	}})
	if len(r["value"].([]any)) != 2 {
		t.Fatalf("loose ids: %v", r)
	}
}

// TestUnimplementedClasses: every factory of api.json either creates or answers 40006 with a clear
// message (never a crash, a hang or a fake success), and is listed by getInfo either way.
func TestUnimplementedClasses(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	p, _ := c.pipelineWith(0)
	for _, mod := range schema.ModuleNames() {
		for _, f := range schema.Factories(mod) {
			ctor := map[string]any{"mediaPipeline": p, "uri": "file:///tmp/x.webm", "hub": "x", "command": "fakesink"}
			_, err := c.call("create", map[string]any{"type": f, "constructorParams": ctor})
			switch {
			case f == "MediaPipeline" || f == "PassThrough":
				if err != nil {
					t.Fatalf("%s: %v", f, err)
				}
			case err == nil:
				t.Fatalf("%s: created although its media is not implemented", f)
			case err.Code != 40006 || err.Message != "Factory '"+f+"' is not implemented by this server yet" || err.Data["type"] != "NOT_IMPLEMENTED":
				t.Fatalf("%s: %s", f, err.Raw)
			}
		}
	}
}
