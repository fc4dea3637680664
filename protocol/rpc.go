package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/uuid"
	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/kerr"
)

// Backend is the object model the protocol drives; objects.Registry implements it. Session ids are
// opaque strings: a session becomes known to the backend when it first references an object.
type Backend interface {
	Create(sid, typeName string, constructorParams any) (string, error)
	Describe(sid, id string) (map[string]any, error)
	Invoke(sid, id, operation string, operationParams any) (any, error)
	Subscribe(sid, id, event string) (string, error)
	Unsubscribe(sid, id, subscriptionID string)
	Release(sid, id string)
	Ref(sid, id string) error
	Unref(sid, id string)
	// KeepAlive marks a known session in use; unknown sessions fail with 40007.
	KeepAlive(sid string) error
	CloseSession(sid string, release bool)
	// CollectGarbage drops the sessions not marked in use since the previous pass and unmarks the
	// others.
	CollectGarbage()
	// Admit checks that the token (nil when access control is off) allows the method, on the object
	// and operation it names, in the session.
	Admit(c *auth.Claims, sid, method, object, operation string) error
}

// PlacingBackend is a Backend that also takes the "properties" of a create request: the cluster
// router reads its placement hint there (docs/CLUSTER.md).
type PlacingBackend interface {
	CreateWithProperties(sid, typeName string, constructorParams, properties any) (string, error)
}

// object is a decoded JSON object; values come from a decoder with UseNumber.
type object = map[string]any

// method runs one Kurento method on its params (nil when absent or null) and returns its result object;
// a nil result with a nil error means the method answers "result": null.
type method func(d *dispatcher, params object) (object, error)

var methods map[string]method

func init() {
	methods = map[string]method{
		"ping":         (*dispatcher).ping,
		"connect":      (*dispatcher).connect,
		"create":       (*dispatcher).create,
		"describe":     (*dispatcher).describe,
		"invoke":       (*dispatcher).invoke,
		"subscribe":    (*dispatcher).subscribe,
		"unsubscribe":  (*dispatcher).unsubscribe,
		"release":      (*dispatcher).release,
		"ref":          (*dispatcher).ref,
		"unref":        (*dispatcher).unref,
		"keepAlive":    (*dispatcher).keepAlive,
		"closeSession": (*dispatcher).closeSession,
	}
}

// Request cache: not implemented, on purpose. KMS answers a request whose (sessionId, id) pair it saw
// in the last 20 s with the cached response, without executing it, to absorb client re-sends. Neither
// official client re-sends (kurento-client JS and Java fail in-flight calls when the socket drops), and
// the cache is harmful to clients that open a new socket on an existing session and restart their ids
// at 0 (a raw `connect {sessionId}` with id 1 would get the stale answer of the old socket's request 1).
// mediaServer.resources.disableRequestCache is therefore accepted and has nothing to disable.

// dispatcher executes requests against the backend for one server.
type dispatcher struct {
	backend  Backend
	serverID string
	limits   *config.Limits
	refused  func(reason string)
}

// newSession are the methods that make up a session id when the request has none; it is made before
// the call so that the access rules see the session the method will use.
var newSession = map[string]bool{
	"create": true, "describe": true, "invoke": true, "subscribe": true, "release": true, "transaction": true,
}

// decode parses one message the way the server reads requests: numbers kept exact.
func decode(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data after JSON value")
	}
	return v, nil
}

func errorObject(e *kerr.Error) object {
	out := object{"code": e.Code, "message": e.Message}
	switch {
	case e.Data != nil:
		out["data"] = e.Data
	case e.Type() != "":
		out["data"] = object{"type": e.Type()}
	}
	return out
}

func errorResponse(id any, err error) object {
	return object{"jsonrpc": "2.0", "id": id, "error": errorObject(kerr.From(err))}
}

var invalidRequest = kerr.New(kerr.InvalidRequest, "Invalid JSON-RPC request.")

// unexpected is KMS's answer to an exception that is not a protocol error (-32603).
func unexpected(what string) error {
	return kerr.New(kerr.InternalError, "Unexpected error while processing method: %s", what)
}

// process handles one decoded request and returns its response (nil for a notification that needs
// none) and whether it succeeded. sessionID is the session bound to the connection, injected into
// params when the request names none, as KMS does.
func (d *dispatcher) process(msg any, sessionID string, caller *auth.Claims) (object, bool) {
	req, ok := msg.(object)
	if !ok || req["jsonrpc"] != "2.0" {
		return errorResponse(nil, invalidRequest), false
	}
	id, hasID := req["id"]
	switch id.(type) {
	case object, []any:
		return errorResponse(nil, invalidRequest), false
	}
	name, ok := req["method"].(string)
	if !ok {
		return errorResponse(nil, invalidRequest), false
	}
	m := methods[name]
	if name == "transaction" {
		m = func(d *dispatcher, params object) (object, error) { return d.transaction(params, caller) }
	}
	if m == nil {
		return errorResponse(id, kerr.New(kerr.MethodNotFound, "Method not found.")), false
	}
	params, err := paramsOf(req, sessionID)
	if err != nil {
		return errorResponse(id, err), false
	}
	if err := d.admit(caller, name, params); err != nil {
		return errorResponse(id, err), false
	}
	result, err := d.call(m, params)
	if err != nil {
		return errorResponse(id, err), false
	}
	if !hasID || id == nil {
		if result == nil {
			return nil, true
		}
		return errorResponse(nil, &kerr.Error{Code: kerr.ServerError,
			Message: "Ignoring response because of a notification request", Data: result}), true
	}
	var r any
	if result != nil {
		r = result
	}
	return object{"jsonrpc": "2.0", "id": id, "result": r}, true
}

// admit asks the backend whether the caller may run the method; with a token, a method that makes up
// its session gets it here.
func (d *dispatcher) admit(caller *auth.Claims, method string, params object) error {
	if caller == nil {
		return nil
	}
	sid := ""
	if params != nil {
		if stringLike(params, "sessionId") {
			sid, _ = str(params, "sessionId")
		} else if newSession[method] {
			sid = uuid.NewString()
			params["sessionId"] = sid
		}
	}
	obj, _ := params["object"].(string)
	op, _ := params["operation"].(string)
	return d.backend.Admit(caller, sid, method, obj, op)
}

// call runs a method, turning a panic into the internal error KMS reports for unexpected exceptions,
// so that one bad request never takes the server down.
func (d *dispatcher) call(m method, params object) (result object, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, unexpected(fmt.Sprint(p))
		}
	}()
	return m(d, params)
}

// paramsOf returns the request's params with the connection's session injected. KMS injects when
// params has no sessionId or one that is not convertible to a string, creating params when it is
// absent or null.
//
// Params that are neither an object nor null make KMS's JSON library throw a logic error that ends as
// -32603 (or, on a connection with a session, as no answer at all); we always answer the -32603.
func paramsOf(req object, sessionID string) (object, error) {
	raw := req["params"]
	if raw == nil {
		if sessionID != "" {
			return object{"sessionId": sessionID}, nil
		}
		return nil, nil
	}
	p, ok := raw.(object)
	if !ok {
		return nil, unexpected("'params' should be an object")
	}
	if sessionID != "" && !stringLike(p, "sessionId") {
		p["sessionId"] = sessionID
	}
	return p, nil
}

func requireParams(params object) error {
	if params == nil {
		return kerr.New(kerr.InvalidParams, "'params' is required")
	}
	return nil
}

// stringLike tells whether params has the member and it converts to a string (jsoncpp's rule: null,
// numbers, booleans and strings do; arrays and objects don't).
func stringLike(params object, name string) bool {
	v, ok := params[name]
	if !ok {
		return false
	}
	switch v.(type) {
	case object, []any:
		return false
	}
	return true
}

// str reads a required string parameter with KMS's leniency (null, numbers and booleans are
// accepted as their text).
func str(params object, name string) (string, error) {
	v, ok := params[name]
	if !ok {
		return "", kerr.New(kerr.ServerError, "'%s' parameter is required", name)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return strconv.FormatInt(i, 10), nil
		}
		f, _ := x.Float64()
		return strconv.FormatFloat(f, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", nil
	}
	return "", kerr.New(kerr.ServerError, "'%s' parameter should be a string", name)
}

// strParams checks that there are params and reads the named string members in order, failing
// on the first that is missing or not string-like (see str).
func strParams(params object, names ...string) ([]string, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	out := make([]string, len(names))
	for i, name := range names {
		v, err := str(params, name)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// boolean reads an optional boolean parameter the jsoncpp way (numbers convert, other types don't);
// absent or not convertible gives false.
func boolean(params object, name string) bool {
	switch x := params[name].(type) {
	case bool:
		return x
	case json.Number:
		f, err := x.Float64()
		return err == nil && f != 0
	}
	return false
}

// sessionOf returns the request's sessionId, or a new one when it has none that converts to a string
// (KMS's getOrCreateSessionId).
func sessionOf(params object) string {
	if sid, err := str(params, "sessionId"); err == nil {
		return sid
	}
	return uuid.NewString()
}

func (d *dispatcher) ping(params object) (object, error) {
	out := object{"value": "pong"}
	if sid, err := str(params, "sessionId"); err == nil {
		out["sessionId"] = sid
	}
	return out, nil
}

// connect attaches the connection to a known session, or gives it a new one. A new session is not
// registered by connect: like KMS, it becomes known when it first references an object.
func (d *dispatcher) connect(params object) (object, error) {
	sid, err := str(params, "sessionId")
	if err != nil {
		sid = uuid.NewString()
	} else if err := d.backend.KeepAlive(sid); err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "serverId": d.serverID}, nil
}

func (d *dispatcher) create(params object) (object, error) {
	v, err := strParams(params, "type")
	if err != nil {
		return nil, err
	}
	typ := v[0]
	sid := sessionOf(params)
	var id string
	if pb, ok := d.backend.(PlacingBackend); ok {
		id, err = pb.CreateWithProperties(sid, typ, params["constructorParams"], params["properties"])
	} else {
		id, err = d.backend.Create(sid, typ, params["constructorParams"])
	}
	if err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "value": id}, nil
}

func (d *dispatcher) describe(params object) (object, error) {
	sid := sessionOf(params)
	v, err := strParams(params, "object")
	if err != nil {
		return nil, err
	}
	id := v[0]
	out, err := d.backend.Describe(sid, id)
	if err != nil {
		return nil, err
	}
	out["sessionId"] = sid
	return out, nil
}

func (d *dispatcher) invoke(params object) (object, error) {
	v, err := strParams(params, "operation", "object")
	if err != nil {
		return nil, err
	}
	op, id := v[0], v[1]
	// operationParams is optional; one that is not an object counts as absent.
	opParams, _ := params["operationParams"].(object)
	sid := sessionOf(params)
	var raw any
	if opParams != nil {
		raw = opParams
	}
	value, err := d.backend.Invoke(sid, id, op, raw)
	if err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "value": value}, nil
}

func (d *dispatcher) subscribe(params object) (object, error) {
	v, err := strParams(params, "type", "object")
	if err != nil {
		return nil, err
	}
	event, id := v[0], v[1]
	sid := sessionOf(params)
	subID, err := d.backend.Subscribe(sid, id, event)
	if err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "value": subID}, nil
}

func (d *dispatcher) unsubscribe(params object) (object, error) {
	v, err := strParams(params, "object", "subscription", "sessionId")
	if err != nil {
		return nil, err
	}
	id, subID, sid := v[0], v[1], v[2]
	d.backend.Unsubscribe(sid, id, subID)
	return object{"sessionId": sid}, nil
}

func (d *dispatcher) release(params object) (object, error) {
	v, err := strParams(params, "object")
	if err != nil {
		return nil, err
	}
	id := v[0]
	sid := sessionOf(params)
	d.backend.Release(sid, id)
	return object{"sessionId": sid}, nil
}

// refCall reads the object and the (required) session of ref and unref.
func refCall(params object) (sid, id string, err error) {
	v, err := strParams(params, "object", "sessionId")
	if err != nil {
		return "", "", err
	}
	return v[1], v[0], nil
}

func (d *dispatcher) ref(params object) (object, error) {
	sid, id, err := refCall(params)
	if err != nil {
		return nil, err
	}
	if err := d.backend.Ref(sid, id); err != nil {
		return nil, err
	}
	return object{"sessionId": sid}, nil
}

func (d *dispatcher) unref(params object) (object, error) {
	sid, id, err := refCall(params)
	if err != nil {
		return nil, err
	}
	d.backend.Unref(sid, id)
	return object{"sessionId": sid}, nil
}

func (d *dispatcher) keepAlive(params object) (object, error) {
	v, err := strParams(params, "sessionId")
	if err != nil {
		return nil, err
	}
	sid := v[0]
	if err := d.backend.KeepAlive(sid); err != nil {
		return nil, err
	}
	return object{"sessionId": sid}, nil
}

func (d *dispatcher) closeSession(params object) (object, error) {
	release := boolean(params, "release")
	v, err := strParams(params, "sessionId")
	if err != nil {
		return nil, err
	}
	sid := v[0]
	d.backend.CloseSession(sid, release)
	return nil, nil
}

const newRef = "newref:"

// transaction runs operations in order with the transaction's session forced into their params,
// replacing "newref:N" strings with the value returned by operation N, and stops at the first
// failure; the call itself succeeds with the responses so far. Problems with the operation list
// itself (ids, newrefs) fail the whole call with 40008.
func (d *dispatcher) transaction(params object, caller *auth.Claims) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	sid := sessionOf(params)
	ops, ok := params["operations"]
	if !ok {
		return nil, kerr.New(kerr.ServerError, "'operations' parameter is required")
	}
	list, ok := ops.([]any)
	if !ok {
		return nil, kerr.New(kerr.ServerError, "'operations' parameter should be an array")
	}
	if max := d.limits.MaxTransactionRequests; max > 0 && len(list) > max {
		d.refused("transaction_requests")
		return nil, kerr.New(kerr.NotEnoughResources,
			"Too many operations in a transaction: %d, at most %d (mediaServer.limits.maxTransactionRequests)",
			len(list), max)
	}
	responses := []any{}
	for i, raw := range list {
		op, isObj := raw.(object)
		switch {
		case raw == nil:
			op = object{}
		case !isObj:
			return nil, unexpected(fmt.Sprintf("operation %d should be an object", i))
		}
		p, isObj := op["params"].(object)
		switch {
		case op["params"] == nil:
			p = object{}
		case !isObj:
			return nil, unexpected(fmt.Sprintf("'params' of operation %d should be an object", i))
		}
		p["sessionId"] = sid
		op["params"] = p
		if !isIndex(op["id"], i) {
			return nil, kerr.New(kerr.MalformedTransaction, "Id of request '%d' should be '%d'", i, i)
		}
		if _, err := injectRefs(p, responses); err != nil {
			return nil, err
		}
		// KMS gives each operation a unique string id, so none is taken for a notification.
		op["id"] = fmt.Sprintf("transaction_%d", i)
		resp, ok := d.process(op, "", caller)
		resp["id"] = i
		responses = append(responses, resp)
		if !ok {
			break
		}
	}
	return object{"sessionId": sid, "value": responses}, nil
}

// isIndex tells whether an operation id converts to the unsigned integer i, as jsoncpp's
// isConvertibleTo(uintValue)/asUInt see it: null is 0, booleans 0 or 1, numbers are truncated.
func isIndex(v any, i int) bool {
	switch x := v.(type) {
	case nil:
		return i == 0
	case bool:
		return (x && i == 1) || (!x && i == 0)
	case json.Number:
		f, err := x.Float64()
		if err != nil || f < 0 || f > math.MaxUint32 {
			return false
		}
		return uint32(f) == uint32(i)
	}
	return false
}

// injectRefs replaces every "newref:N" string at any depth of v with the value of response N.
func injectRefs(v any, responses []any) (any, error) {
	switch x := v.(type) {
	case object:
		for k, item := range x {
			r, err := injectRefs(item, responses)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	case []any:
		for k, item := range x {
			r, err := injectRefs(item, responses)
			if err != nil {
				return nil, err
			}
			x[k] = r
		}
		return x, nil
	case string:
		ref, ok := strings.CutPrefix(x, newRef)
		if !ok || ref == "" {
			return x, nil
		}
		n, err := stoi(ref)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, unexpected("in Json::Value::operator[](int index): index cannot be negative")
		}
		if n >= len(responses) {
			return nil, kerr.New(kerr.MalformedTransaction, "Result not found on request %d", n)
		}
		result, ok := responses[n].(object)["result"].(object)
		if !ok {
			return nil, kerr.New(kerr.MalformedTransaction, "Result not found on request %d", n)
		}
		return result["value"], nil
	}
	return v, nil
}

// stoi reads an index like C++'s std::stoi, which KMS uses: leading spaces, a sign and digits, the
// rest ignored. No digits is "Invalid index of newref"; an overflow escapes as an unexpected error.
func stoi(s string) (int, error) {
	t := strings.TrimLeftFunc(s, unicode.IsSpace)
	end := 0
	if end < len(t) && (t[end] == '+' || t[end] == '-') {
		end++
	}
	digits := end
	for end < len(t) && t[end] >= '0' && t[end] <= '9' {
		end++
	}
	if end == digits {
		return 0, kerr.New(kerr.MalformedTransaction, "Invalid index of newref '%s'", s)
	}
	n, err := strconv.ParseInt(t[:end], 10, 32)
	if err != nil {
		return 0, unexpected("stoi")
	}
	return int(n), nil
}
