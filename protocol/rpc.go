package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/kurento-go/kms/kerr"
)

// Backend is the object model the protocol drives; objects.Registry implements it.
type Backend interface {
	Create(sid, typeName string, constructorParams any) (string, error)
	Describe(sid, id string) (map[string]any, error)
	Invoke(sid, id, operation string, operationParams any) (any, error)
	Subscribe(sid, id, event string) (string, error)
	Unsubscribe(sid, subscriptionID string)
	Release(sid, id string)
	Ref(sid, id string) error
	Unref(sid, id string)
	Touch(sid string)
	KeepAlive(sid string) error
	CloseSession(sid string, release bool)
	CollectGarbage(keep func(sid string) bool)
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
		"transaction":  (*dispatcher).transaction,
		"closeSession": (*dispatcher).closeSession,
	}
}

// dispatcher executes requests against the backend for one server.
type dispatcher struct {
	backend  Backend
	serverID string
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

// process handles one decoded request and returns its response (nil for a notification that needs
// none) and whether it succeeded. sessionID is the session bound to the connection, injected into
// params when the request names none, as KMS does.
func (d *dispatcher) process(msg any, sessionID string) (object, bool) {
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
	if m == nil {
		return errorResponse(id, kerr.New(kerr.MethodNotFound, "Method not found.")), false
	}
	params, err := paramsOf(req, sessionID)
	if err != nil {
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

// call runs a method, turning a panic into the internal error KMS reports for unexpected exceptions,
// so that one bad request never takes the server down.
func (d *dispatcher) call(m method, params object) (result object, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, kerr.New(kerr.InternalError, "Unexpected error while processing method: %v", p)
		}
	}()
	return m(d, params)
}

// paramsOf returns the request's params with the connection's session injected.
func paramsOf(req object, sessionID string) (object, error) {
	raw, present := req["params"]
	if present && raw != nil {
		p, ok := raw.(object)
		if !ok {
			return nil, kerr.New(kerr.InvalidParams, "'params' should be an object")
		}
		if _, has := p["sessionId"]; !has && sessionID != "" {
			p["sessionId"] = sessionID
		}
		return p, nil
	}
	if sessionID != "" {
		return object{"sessionId": sessionID}, nil
	}
	return nil, nil
}

func requireParams(params object) error {
	if params == nil {
		return kerr.New(kerr.InvalidParams, "'params' is required")
	}
	return nil
}

// str reads a required string parameter with KMS's leniency (numbers and booleans are accepted as
// their text).
func str(params object, name string) (string, error) {
	v, ok := params[name]
	if !ok {
		return "", kerr.New(kerr.ServerError, "'%s' parameter is required", name)
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", nil
	}
	return "", kerr.New(kerr.ServerError, "'%s' parameter should be a string", name)
}

// sessionOf returns the request's sessionId, or a new one when it has none.
func sessionOf(params object) (string, error) {
	if _, ok := params["sessionId"]; !ok {
		return uuid.NewString(), nil
	}
	return str(params, "sessionId")
}

func (d *dispatcher) ping(params object) (object, error) {
	out := object{"value": "pong"}
	if _, ok := params["sessionId"]; ok {
		sid, err := str(params, "sessionId")
		if err == nil {
			out["sessionId"] = sid
		}
	}
	return out, nil
}

func (d *dispatcher) connect(params object) (object, error) {
	sid := uuid.NewString()
	if _, ok := params["sessionId"]; ok {
		var err error
		if sid, err = str(params, "sessionId"); err != nil {
			return nil, err
		}
		if err := d.backend.KeepAlive(sid); err != nil {
			return nil, err
		}
	} else {
		d.backend.Touch(sid)
	}
	return object{"sessionId": sid, "serverId": d.serverID}, nil
}

func (d *dispatcher) create(params object) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	typ, err := str(params, "type")
	if err != nil {
		return nil, err
	}
	sid, err := sessionOf(params)
	if err != nil {
		return nil, err
	}
	d.backend.Touch(sid)
	id, err := d.backend.Create(sid, typ, params["constructorParams"])
	if err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "value": id}, nil
}

// objectCall reads the session and object of methods that act on one object.
func objectCall(params object) (sid, id string, err error) {
	if err = requireParams(params); err != nil {
		return
	}
	if id, err = str(params, "object"); err != nil {
		return
	}
	sid, err = sessionOf(params)
	return
}

func (d *dispatcher) describe(params object) (object, error) {
	sid, id, err := objectCall(params)
	if err != nil {
		return nil, err
	}
	d.backend.Touch(sid)
	out, err := d.backend.Describe(sid, id)
	if err != nil {
		return nil, err
	}
	out["sessionId"] = sid
	return out, nil
}

func (d *dispatcher) invoke(params object) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	op, err := str(params, "operation")
	if err != nil {
		return nil, err
	}
	sid, id, err := objectCall(params)
	if err != nil {
		return nil, err
	}
	d.backend.Touch(sid)
	value, err := d.backend.Invoke(sid, id, op, params["operationParams"])
	if err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "value": value}, nil
}

func (d *dispatcher) subscribe(params object) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	event, err := str(params, "type")
	if err != nil {
		return nil, err
	}
	sid, id, err := objectCall(params)
	if err != nil {
		return nil, err
	}
	d.backend.Touch(sid)
	subID, err := d.backend.Subscribe(sid, id, event)
	if err != nil {
		return nil, err
	}
	return object{"sessionId": sid, "value": subID}, nil
}

func (d *dispatcher) unsubscribe(params object) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	if _, err := str(params, "object"); err != nil {
		return nil, err
	}
	subID, err := str(params, "subscription")
	if err != nil {
		return nil, err
	}
	sid, err := str(params, "sessionId")
	if err != nil {
		return nil, err
	}
	d.backend.Unsubscribe(sid, subID)
	return object{"sessionId": sid}, nil
}

func (d *dispatcher) release(params object) (object, error) {
	sid, id, err := objectCall(params)
	if err != nil {
		return nil, err
	}
	d.backend.Release(sid, id)
	return object{"sessionId": sid}, nil
}

// refCall reads the object and the (required) session of ref and unref.
func refCall(params object) (sid, id string, err error) {
	if err = requireParams(params); err != nil {
		return
	}
	if id, err = str(params, "object"); err != nil {
		return
	}
	sid, err = str(params, "sessionId")
	return
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
	if err := requireParams(params); err != nil {
		return nil, err
	}
	sid, err := str(params, "sessionId")
	if err != nil {
		return nil, err
	}
	if err := d.backend.KeepAlive(sid); err != nil {
		return nil, err
	}
	return object{"sessionId": sid}, nil
}

func (d *dispatcher) closeSession(params object) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	release, _ := params["release"].(bool)
	sid, err := str(params, "sessionId")
	if err != nil {
		return nil, err
	}
	d.backend.CloseSession(sid, release)
	return nil, nil
}

const newRef = "newref:"

// transaction runs operations in order, replacing "newref:N" strings with the value returned by
// operation N, and stops at the first failure; the call itself succeeds with the responses so far.
func (d *dispatcher) transaction(params object) (object, error) {
	if err := requireParams(params); err != nil {
		return nil, err
	}
	sid, err := sessionOf(params)
	if err != nil {
		return nil, err
	}
	ops, ok := params["operations"]
	if !ok {
		return nil, kerr.New(kerr.ServerError, "'operations' parameter is required")
	}
	list, ok := ops.([]any)
	if !ok {
		return nil, kerr.New(kerr.ServerError, "'operations' parameter should be an array")
	}
	responses := []any{}
	for i, raw := range list {
		op, _ := raw.(object)
		if op == nil {
			op = object{}
		}
		if !isIndex(op["id"], i) {
			return nil, kerr.New(kerr.MalformedTransaction, "Id of request '%d' should be '%d'", i, i)
		}
		p, isObj := op["params"].(object)
		if !isObj {
			p = object{}
		}
		p["sessionId"] = sid
		injected, err := injectRefs(p, responses)
		if err != nil {
			return nil, err
		}
		op["params"] = injected
		resp, ok := d.process(op, sid)
		if resp == nil {
			resp = object{"jsonrpc": "2.0", "result": nil}
		}
		resp["id"] = i
		responses = append(responses, resp)
		if !ok {
			break
		}
	}
	return object{"sessionId": sid, "value": responses}, nil
}

func isIndex(v any, i int) bool {
	n, ok := v.(json.Number)
	if !ok {
		return false
	}
	x, err := n.Int64()
	return err == nil && x == int64(i)
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
		n, err := strconv.Atoi(ref)
		if err != nil {
			return nil, kerr.New(kerr.MalformedTransaction, "Invalid index of newref '%s'", ref)
		}
		if n < 0 || n >= len(responses) {
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
