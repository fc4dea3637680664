package objects

import (
	"fmt"
	"strings"
	"sync"

	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/kerr"
)

// Limits bound what clients can make the registry hold; 0 is no limit.
type Limits struct {
	Sessions            int
	Pipelines           int
	ElementsPerPipeline int
}

// SetLimits sets the limits; call it before serving requests.
func (r *Registry) SetLimits(l Limits) { r.limits = l }

// SetTenantIsolation makes each session see only the objects created under its token's tenant (admin
// tokens see everything); call it before serving requests.
func (r *Registry) SetTenantIsolation(on bool) { r.isolated = on }

// SetRefused sets a function told the reason of each refusal by a limit or access rule (for metrics);
// call it before serving requests.
func (r *Registry) SetRefused(f func(reason string)) { r.refused = f }

// Drain makes the registry refuse new pipelines from now on (graceful stop).
func (r *Registry) Drain() {
	r.mu.Lock()
	r.draining = true
	r.mu.Unlock()
}

// Draining tells whether Drain was called.
func (r *Registry) Draining() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// PipelineCount is the number of live pipelines.
func (r *Registry) PipelineCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pipelines
}

func (r *Registry) refuse(reason string, err error) error {
	if r.refused != nil {
		r.refused(reason)
	}
	return err
}

// readOnlyMethods are the protocol methods a read-only token may call; invoke only of getters.
var readOnlyMethods = map[string]bool{
	"ping": true, "connect": true, "describe": true, "subscribe": true, "unsubscribe": true,
	"keepAlive": true, "ref": true, "transaction": true, "invoke": true,
}

// managerPublic are the ServerManager operations about the server itself, which any token may call;
// the lists of pipelines and sessions and the manager's events are for admin tokens.
var managerPublic = map[string]bool{
	"getInfo": true, "getMetadata": true, "getKmd": true, "getCpuCount": true, "getUsedCpu": true,
	"getUsedMemory": true, "getId": true, "getName": true,
}

// Admit checks that a token lets its bearer run a protocol method (with the operation, for invoke) in
// the session, and with tenant isolation binds the session to the token's tenant: a session started
// under one tenant cannot be used with another's token. A nil token (access control off) passes.
func (r *Registry) Admit(c *auth.Claims, sid, method, object, operation string) error {
	if c == nil {
		return nil
	}
	if err := CheckScope(c, method, object, operation); err != nil {
		return r.refuse("scope", err)
	}
	if !r.isolated || sid == "" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, known := r.sessions[sid]
	if !known {
		if err := r.checkSessionLimit(); err != nil {
			return err
		}
		s = r.session(sid)
		s.tenant, s.admin = c.Tenant, c.Scope == auth.Admin
		return nil
	}
	if s.tenant != c.Tenant && c.Scope != auth.Admin {
		return r.refuse("tenant", kerr.New(kerr.InvalidSession, "Invalid session"))
	}
	return nil
}

// forbidden is the answer to a call the token does not allow: KMS has no such error, so it is the
// JSON-RPC server error -32000 with data.type FORBIDDEN.
func forbidden(format string, args ...any) error {
	return &kerr.Error{Code: kerr.ServerError, Message: "Forbidden: " + fmt.Sprintf(format, args...),
		Data: map[string]any{"type": "FORBIDDEN"}}
}

// CheckScope checks that the token's scope allows the method (with the operation on the object, for
// invoke and subscribe): read tokens only look, and only admin tokens touch the ServerManager's lists
// and events.
func CheckScope(c *auth.Claims, method, object, operation string) error {
	if c.Scope == auth.Read && !readOnlyMethods[method] {
		return forbidden("a read token cannot call '%s'", method)
	}
	if method == "invoke" && c.Scope == auth.Read && !isReadOnlyOperation(operation) {
		return forbidden("a read token cannot invoke '%s'", operation)
	}
	if c.Scope != auth.Admin && object == ManagerID {
		if method == "subscribe" || (method == "invoke" && !managerPublic[operation]) {
			return forbidden("%s %s on the ServerManager needs an admin token", method, operation)
		}
	}
	return nil
}

// isReadOnlyOperation tells whether an operation only reads: getters, getStats, isMediaFlowingIn...
func isReadOnlyOperation(op string) bool {
	return strings.HasPrefix(op, "get") || strings.HasPrefix(op, "is")
}

// visible tells whether the session may see the object; the caller holds r.mu.
func (r *Registry) visible(sid string, o Object) bool {
	if !r.isolated || o == Object(r.manager) {
		return true
	}
	s := r.sessions[sid]
	if s == nil {
		// A session the access layer did not admit: only the default tenant.
		return o.objectBase().tenant == ""
	}
	return s.admin || o.objectBase().tenant == s.tenant
}

// checkSessionLimit refuses a new session over the limit; the caller holds r.mu.
func (r *Registry) checkSessionLimit() error {
	if max := r.limits.Sessions; max > 0 && len(r.sessions) >= max {
		return r.refuse("sessions", kerr.New(kerr.NotEnoughResources,
			"Too many sessions: the server takes at most %d (mediaServer.limits.maxSessions)", max))
	}
	return nil
}

// admitSession refuses a session that would be new and over the limit; the caller holds r.mu.
func (r *Registry) admitSession(sid string) error {
	if _, ok := r.sessions[sid]; ok {
		return nil
	}
	return r.checkSessionLimit()
}

// checkCreate applies the drain and the limits to a new object of the class in the parent's pipeline;
// the caller holds r.mu.
func (r *Registry) checkCreate(className string, parent Object) error {
	if className == "MediaPipeline" {
		if r.draining {
			return r.refuse("draining", kerr.New(kerr.NotEnoughResources,
				"The server is shutting down: it takes no new pipelines"))
		}
		if max := r.limits.Pipelines; max > 0 && r.pipelines >= max {
			return r.refuse("pipelines", kerr.New(kerr.NotEnoughResources,
				"Too many pipelines: the server takes at most %d (mediaServer.limits.maxPipelines)", max))
		}
		return nil
	}
	if parent == nil {
		return nil
	}
	if p := parent.objectBase().pipeline; p != nil {
		if max := r.limits.ElementsPerPipeline; max > 0 && p.objectBase().members >= max {
			return r.refuse("elements", kerr.New(kerr.NotEnoughResources,
				"Too many elements in pipeline '%s': at most %d (mediaServer.limits.maxElementsPerPipeline)", p.ID(), max))
		}
	}
	return nil
}

// tenantOf is the tenant objects created by the session belong to.
func (r *Registry) tenantOf(sid string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.sessions[sid]; s != nil {
		return s.tenant
	}
	return ""
}

// Finalizer is implemented by objects with work to end before they are released at shutdown (a
// recording to finish), while their subscribers still get the events.
type Finalizer interface{ Finalize() }

// FinalizeAll finalizes every object that has work to end, in parallel, and returns when all did.
func (r *Registry) FinalizeAll() {
	r.mu.Lock()
	var fs []Finalizer
	for _, o := range r.objects {
		if f, ok := o.(Finalizer); ok {
			fs = append(fs, f)
		}
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.Finalize()
		}()
	}
	wg.Wait()
}
