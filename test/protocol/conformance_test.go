package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestMalformedRequests sends malformed or impossible requests, each on a fresh connection (so that no
// session is injected unless the case says so), checks the exact code, message, data.type and id of
// each answer against PROTOCOL.md (and KMS's ServerMethods.cpp where the spec is silent), then checks
// that the connection still serves a valid request.
func TestMalformedRequests(t *testing.T) {
	s := start(t, options{})
	fx := dial(t, s.URL)
	pipe, els := fx.pipelineWith(2)
	other, xs := fx.pipelineWith(1)
	gone := fx.create("PassThrough", map[string]any{"mediaPipeline": pipe})
	fx.ok("release", map[string]any{"object": gone})
	r := strings.NewReplacer("%P", pipe, "%A", els[0], "%B", els[1], "%X", xs[0], "%Q", other, "%R", gone)

	const (
		noData = ""
		nullID = -1
	)
	cases := []struct {
		name     string
		req      string
		code     int
		message  string
		dataType string // "" = no data member
		id       int    // echoed id, or nullID
	}{
		// JSON-RPC envelope (§2)
		{"bad JSON", `{"jsonrpc":"2.0","id":7,`, -32700, "Parse error.", noData, nullID},
		{"empty frame", ``, -32700, "Parse error.", noData, nullID},
		{"batch array", `[{"jsonrpc":"2.0","id":7,"method":"ping"}]`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"JSON scalar", `"ping"`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"missing jsonrpc", `{"id":7,"method":"ping"}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","id":7,"method":"ping"}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"jsonrpc as number", `{"jsonrpc":2.0,"id":7,"method":"ping"}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"id is an object", `{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"id is an array", `{"jsonrpc":"2.0","id":[7],"method":"ping"}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"missing method", `{"jsonrpc":"2.0","id":7}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"method not a string", `{"jsonrpc":"2.0","id":7,"method":42}`, -32600, "Invalid JSON-RPC request.", noData, nullID},
		{"unknown method", `{"jsonrpc":"2.0","id":7,"method":"frobnicate","params":{}}`, -32601, "Method not found.", noData, 7},
		{"onEvent is not a client method", `{"jsonrpc":"2.0","id":7,"method":"onEvent","params":{}}`, -32601, "Method not found.", noData, 7},
		{"params an array", `{"jsonrpc":"2.0","id":7,"method":"describe","params":["x"]}`, -32603, "Unexpected error while processing method: 'params' should be an object", noData, 7},
		{"notification gets the ignoring error", `{"jsonrpc":"2.0","method":"ping"}`, -32000, "Ignoring response because of a notification request", "", nullID},

		// missing params / top-level params (§2)
		{"create without params", `{"jsonrpc":"2.0","id":7,"method":"create"}`, -32602, "'params' is required", "INVALID_PARAMS", 7},
		{"describe with null params", `{"jsonrpc":"2.0","id":7,"method":"describe","params":null}`, -32602, "'params' is required", "INVALID_PARAMS", 7},
		{"keepAlive without params", `{"jsonrpc":"2.0","id":7,"method":"keepAlive"}`, -32602, "'params' is required", "INVALID_PARAMS", 7},
		{"transaction without params", `{"jsonrpc":"2.0","id":7,"method":"transaction"}`, -32602, "'params' is required", "INVALID_PARAMS", 7},
		{"create without type", `{"jsonrpc":"2.0","id":7,"method":"create","params":{}}`, -32000, "'type' parameter is required", noData, 7},
		{"create type an object", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":{}}}`, -32000, "'type' parameter should be a string", noData, 7},
		{"describe without object", `{"jsonrpc":"2.0","id":7,"method":"describe","params":{}}`, -32000, "'object' parameter is required", noData, 7},
		{"describe object an array", `{"jsonrpc":"2.0","id":7,"method":"describe","params":{"object":["%P"]}}`, -32000, "'object' parameter should be a string", noData, 7},
		{"invoke without operation", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%P"}}`, -32000, "'operation' parameter is required", noData, 7},
		{"invoke operation an object", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%P","operation":{}}}`, -32000, "'operation' parameter should be a string", noData, 7},
		{"subscribe without type", `{"jsonrpc":"2.0","id":7,"method":"subscribe","params":{"object":"%P"}}`, -32000, "'type' parameter is required", noData, 7},
		{"unsubscribe without subscription", `{"jsonrpc":"2.0","id":7,"method":"unsubscribe","params":{"object":"%P","sessionId":"s"}}`, -32000, "'subscription' parameter is required", noData, 7},
		{"unsubscribe without session", `{"jsonrpc":"2.0","id":7,"method":"unsubscribe","params":{"object":"%P","subscription":"x"}}`, -32000, "'sessionId' parameter is required", noData, 7},
		{"release without object", `{"jsonrpc":"2.0","id":7,"method":"release","params":{"sessionId":"s"}}`, -32000, "'object' parameter is required", noData, 7},
		{"ref without session", `{"jsonrpc":"2.0","id":7,"method":"ref","params":{"object":"%P"}}`, -32000, "'sessionId' parameter is required", noData, 7},
		{"keepAlive without session", `{"jsonrpc":"2.0","id":7,"method":"keepAlive","params":{}}`, -32000, "'sessionId' parameter is required", noData, 7},
		{"closeSession without session", `{"jsonrpc":"2.0","id":7,"method":"closeSession","params":{"release":true}}`, -32000, "'sessionId' parameter is required", noData, 7},
		{"transaction without operations", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{}}`, -32000, "'operations' parameter is required", noData, 7},
		{"transaction operations an object", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":{}}}`, -32000, "'operations' parameter should be an array", noData, 7},

		// sessions (§3, §4.2, §4.9)
		{"connect unknown session", `{"jsonrpc":"2.0","id":7,"method":"connect","params":{"sessionId":"00000000-0000-0000-0000-000000000000"}}`, 40007, "Invalid session", "INVALID_SESSION", 7},
		{"keepAlive unknown session", `{"jsonrpc":"2.0","id":7,"method":"keepAlive","params":{"sessionId":"nobody"}}`, 40007, "Invalid session", "INVALID_SESSION", 7},

		// objects (§4.3-4.7)
		{"unknown class", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"NoSuchThing"}}`, 40108, "Factory 'NoSuchThing' not found", "MEDIA_OBJECT_NOT_AVAILABLE", 7},
		{"abstract class", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"MediaElement","constructorParams":{"mediaPipeline":"%P"}}}`, 40108, "Factory 'MediaElement' not found", "MEDIA_OBJECT_NOT_AVAILABLE", 7},
		{"ServerManager is not creatable", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"kurento.ServerManager"}}`, 40108, "Factory 'kurento.ServerManager' not found", "MEDIA_OBJECT_NOT_AVAILABLE", 7},
		{"qualified name with a wrong module", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"chroma.PassThrough","constructorParams":{"mediaPipeline":"%P"}}}`, 40108, "Factory 'chroma.PassThrough' not found", "MEDIA_OBJECT_NOT_AVAILABLE", 7},
		{"type as a number", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":12}}`, 40108, "Factory '12' not found", "MEDIA_OBJECT_NOT_AVAILABLE", 7},
		{"missing constructorParams", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","properties":{}}}`, 40001, "'constructorParams' is required", "MARSHALL_ERROR", 7},
		{"constructorParams an array", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","constructorParams":["%P"]}}`, 40001, "'constructorParams' should be an object", "MARSHALL_ERROR", 7},
		{"constructor param missing", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","constructorParams":{}}}`, 40001, "'mediaPipeline' parameter should be a string", "MARSHALL_ERROR", 7},
		{"constructor param of the wrong type", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","constructorParams":{"mediaPipeline":{"id":"%P"}}}}`, 40001, "'mediaPipeline' parameter should be a string", "MARSHALL_ERROR", 7},
		{"constructor param an unknown pipeline", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","constructorParams":{"mediaPipeline":"nope_kurento.MediaPipeline"}}}`, 40101, "Object 'nope_kurento.MediaPipeline' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"create in a released element", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","constructorParams":{"mediaPipeline":"%R"}}}`, 40101, "Object '%R' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"newref outside a transaction", `{"jsonrpc":"2.0","id":7,"method":"create","params":{"type":"PassThrough","constructorParams":{"mediaPipeline":"newref:0"}}}`, 40109, "Object 'newref:0' not found. Possibly using a transactional object without committing the transaction.", "MEDIA_OBJECT_NOT_FOUND_TRANSACTION_NO_COMMIT", 7},
		{"describe unknown object", `{"jsonrpc":"2.0","id":7,"method":"describe","params":{"object":"nope"}}`, 40101, "Object 'nope' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"object id as a number", `{"jsonrpc":"2.0","id":7,"method":"describe","params":{"object":42}}`, 40101, "Object '42' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"invoke on a released object", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%R","operation":"getName"}}`, 40101, "Object '%R' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"unknown operation", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"fly","operationParams":{"to":"moon","at":1}}}`, 40008, "Method 'fly' with 2 parameters not found", "MALFORMED_TRANSACTION", 7},
		{"operation of another class", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%P","operation":"connect","operationParams":{"sink":"%A"}}}`, 40008, "Method 'connect' with 1 parameters not found", "MALFORMED_TRANSACTION", 7},
		{"setter of a read-only property", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"setCreationTime","operationParams":{"creationTime":1}}}`, 40008, "Method 'setCreationTime' with 1 parameters not found", "MALFORMED_TRANSACTION", 7},
		{"missing operationParams", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"connect"}}`, 40001, "'operationParams' is required", "MARSHALL_ERROR", 7},
		{"operationParams not an object", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"connect","operationParams":"%B"}}`, 40001, "'operationParams' is required", "MARSHALL_ERROR", 7},
		{"required param missing", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"addTag","operationParams":{"key":"k"}}}`, 40001, "'value' parameter should be a string", "MARSHALL_ERROR", 7},
		{"setter without its value", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"setName"}}`, 40001, "'name' parameter should be a string", "MARSHALL_ERROR", 7},
		{"setter value of the wrong type", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"setName","operationParams":{"name":["x"]}}}`, 40001, "'name' parameter should be a string", "MARSHALL_ERROR", 7},
		// KMS's generated code writes "a integer" (module-creator JsonCppTypeData), unlike the -32000 "an integer".
		{"int param given a string", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"manager_ServerManager","operation":"getUsedCpu","operationParams":{"interval":"fast"}}}`, 40001, "'interval' parameter should be a integer", "MARSHALL_ERROR", 7},
		{"boolean param given a string", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"setSendTagsInEvents","operationParams":{"sendTagsInEvents":"yes"}}}`, 40001, "'sendTagsInEvents' parameter should be a boolean", "MARSHALL_ERROR", 7},
		{"bad enum value", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"connect","operationParams":{"sink":"%B","mediaType":"SMELL"}}}`, 40001, "Invalid value for 'MediaType'", "MARSHALL_ERROR", 7},
		{"object param of the wrong class", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"connect","operationParams":{"sink":"%P"}}}`, 40001, "Object '%P' is not a MediaElement", "MARSHALL_ERROR", 7},
		{"object param unknown", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"connect","operationParams":{"sink":"%R"}}}`, 40101, "Object '%R' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"connect across pipelines", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"connect","operationParams":{"sink":"%X"}}}`, 40004, "Media elements do not share pipeline", "CONNECT_ERROR", 7},
		{"getTag of a missing key", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"getTag","operationParams":{"key":"missing"}}}`, 40110, "Tag key not found", "MEDIA_OBJECT_TAG_KEY_NOT_FOUND", 7},
		{"DATA flow query", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"%A","operation":"isMediaFlowingIn","operationParams":{"mediaType":"DATA"}}}`, 40107, "Media type DATA is not supported for MediaFlowingIn", "MEDIA_OBJECT_ILLEGAL_PARAM_ERROR", 7},
		{"getKmd of an unknown module", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"manager_ServerManager","operation":"getKmd","operationParams":{"moduleName":"nope"}}}`, 40500, "Requested kmd module doesn't exist", "SERVER_MANAGER_ERROR_KMD_NOT_FOUND", 7},
		{"getVersion does not exist in 7.x", `{"jsonrpc":"2.0","id":7,"method":"invoke","params":{"object":"manager_ServerManager","operation":"getVersion"}}`, 40008, "Method 'getVersion' with 0 parameters not found", "MALFORMED_TRANSACTION", 7},
		{"unsupported event", `{"jsonrpc":"2.0","id":7,"method":"subscribe","params":{"object":"%A","type":"EndOfStream"}}`, 40106, "Event 'EndOfStream' not supported", "MEDIA_OBJECT_EVENT_NOT_SUPPORTED", 7},
		{"subscribe to an unknown object", `{"jsonrpc":"2.0","id":7,"method":"subscribe","params":{"object":"%R","type":"ElementConnected"}}`, 40101, "Object '%R' not found", "MEDIA_OBJECT_NOT_FOUND", 7},
		{"ref an unknown object", `{"jsonrpc":"2.0","id":7,"method":"ref","params":{"object":"%R","sessionId":"s"}}`, 40101, "Object '%R' not found", "MEDIA_OBJECT_NOT_FOUND", 7},

		// transactions (§4.8)
		{"transaction op id out of order", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":[{"jsonrpc":"2.0","id":7,"method":"ping"}]}}`, 40008, "Id of request '0' should be '0'", "MALFORMED_TRANSACTION", 7},
		{"transaction second op id", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":[{"jsonrpc":"2.0","id":0,"method":"ping"},{"jsonrpc":"2.0","id":"1","method":"ping"}]}}`, 40008, "Id of request '1' should be '1'", "MALFORMED_TRANSACTION", 7},
		{"transaction newref not a number", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":[{"jsonrpc":"2.0","id":0,"method":"describe","params":{"object":"newref:x"}}]}}`, 40008, "Invalid index of newref 'x'", "MALFORMED_TRANSACTION", 7},
		{"transaction newref to a later op", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":[{"jsonrpc":"2.0","id":0,"method":"describe","params":{"object":"newref:5"}}]}}`, 40008, "Result not found on request 5", "MALFORMED_TRANSACTION", 7},
		{"transaction newref to a null result", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":[{"jsonrpc":"2.0","id":0,"method":"closeSession"},{"jsonrpc":"2.0","id":1,"method":"describe","params":{"object":"newref:0"}}]}}`, 40008, "Result not found on request 0", "MALFORMED_TRANSACTION", 7},
		{"transaction op not an object", `{"jsonrpc":"2.0","id":7,"method":"transaction","params":{"operations":[42]}}`, -32603, "Unexpected error while processing method: operation 0 should be an object", noData, 7},
	}
	if len(cases) < 25 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, s.URL)
			c.send(r.Replace(tc.req))
			m := c.reply()
			if _, has := m.M["result"]; has {
				t.Fatalf("reply has a result: %s", m.Raw)
			}
			e, ok := m.M["error"].(map[string]any)
			if !ok {
				t.Fatalf("no error object: %s", m.Raw)
			}
			code, _ := e["code"].(json.Number).Int64()
			want := r.Replace(tc.message)
			if int(code) != tc.code || e["message"] != want {
				t.Fatalf("got %d %q, want %d %q\n%s", code, e["message"], tc.code, want, m.Raw)
			}
			data, hasData := e["data"]
			switch {
			case tc.code == -32000 && strings.HasPrefix(tc.message, "Ignoring"):
				if d, _ := data.(map[string]any); d == nil || d["value"] != "pong" {
					t.Fatalf("notification error data should be the would-be result: %s", m.Raw)
				}
			case tc.dataType == noData && hasData:
				t.Fatalf("unexpected data: %s", m.Raw)
			case tc.dataType != noData:
				d, _ := data.(map[string]any)
				if d == nil || d["type"] != tc.dataType || len(d) != 1 {
					t.Fatalf("data should be {type:%s}: %s", tc.dataType, m.Raw)
				}
			}
			if tc.id == nullID {
				if id, has := m.M["id"]; !has || id != nil {
					t.Fatalf("id should be null: %s", m.Raw)
				}
			} else if got := m.M["id"]; got != json.Number("7") {
				t.Fatalf("id should be echoed: %s", m.Raw)
			}
			if m.M["jsonrpc"] != "2.0" {
				t.Fatalf("jsonrpc: %s", m.Raw)
			}
			// The server is still up and this connection still served.
			if res := c.ok("ping", nil); res["value"] != "pong" {
				t.Fatalf("ping after the error: %v", res)
			}
		})
	}
	// The objects of the fixture are untouched by all this.
	for _, id := range []string{pipe, els[0], els[1], other, xs[0]} {
		if !exists(s, id) {
			t.Fatalf("%s disappeared", id)
		}
	}
}

// TestImpossibleRequestsThatSucceed covers requests KMS accepts although they change nothing.
func TestImpossibleRequestsThatSucceed(t *testing.T) {
	s := start(t, options{})
	c := dial(t, s.URL)
	p, _ := c.pipelineWith(1)
	sid := c.ok("release", map[string]any{"object": p})["sessionId"].(string)
	// release twice, and an unknown id: success with the session (§4.7)
	for _, id := range []string{p, "never-existed", "manager_ServerManager"} {
		if got := c.ok("release", map[string]any{"object": id}); got["sessionId"] != sid || len(got) != 1 {
			t.Fatalf("release %s: %v", id, got)
		}
	}
	// the ServerManager is never released
	if got := c.ok("describe", map[string]any{"object": "manager_ServerManager"}); got["type"] != "ServerManager" {
		t.Fatalf("describe manager after release: %v", got)
	}
	// unsubscribe / unref of unknown things succeed (§4.6, §4.9)
	if got := c.ok("unsubscribe", map[string]any{"object": "x", "subscription": "y"}); got["sessionId"] != sid {
		t.Fatalf("unsubscribe: %v", got)
	}
	if got := c.ok("unref", map[string]any{"object": "x"}); got["sessionId"] != sid {
		t.Fatalf("unref: %v", got)
	}
	// closeSession of an unknown session answers null
	c.send(`{"jsonrpc":"2.0","id":99,"method":"closeSession","params":{"sessionId":"nobody"}}`)
	if m := c.reply(); string(m.Raw) != `{"id":99,"jsonrpc":"2.0","result":null}` {
		t.Fatalf("closeSession reply: %s", m.Raw)
	}
	// an empty transaction succeeds with an empty list
	if got := c.ok("transaction", map[string]any{"operations": []any{}}); got["sessionId"] != sid || len(got["value"].([]any)) != 0 {
		t.Fatalf("empty transaction: %v", got)
	}
}
