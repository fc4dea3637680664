package tests

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/protocol"
)

// refusals records the reasons the server gives to its Refused hook, as the metrics count them.
type refusals struct {
	mu      sync.Mutex
	reasons []string
}

func (r *refusals) add(reason string) {
	r.mu.Lock()
	r.reasons = append(r.reasons, reason)
	r.mu.Unlock()
}

func (r *refusals) count(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, x := range r.reasons {
		if x == reason {
			n++
		}
	}
	return n
}

const testSecret = "a test secret of enough length"

// secured starts a server with access control on (and tenant isolation when asked).
func secured(t *testing.T, isolation bool) (*server, *auth.Verifier, *refusals) {
	t.Helper()
	v := auth.New([]byte(testSecret))
	ref := &refusals{}
	s := start(t, options{setup: func(reg *objects.Registry, ps *protocol.Server) {
		ps.Verifier = v
		ps.Refused = ref.add
		reg.SetRefused(ref.add)
		reg.SetTenantIsolation(isolation)
	}})
	return s, v, ref
}

func token(t *testing.T, v *auth.Verifier, scope auth.Scope, tenant string, ttl time.Duration) string {
	t.Helper()
	tok, err := v.Sign(auth.Claims{Scope: scope, Tenant: tenant}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dialToken dials with the token as the access_token query parameter.
func dialToken(t *testing.T, s *server, tok string) *client {
	t.Helper()
	return dial(t, s.URL+"?access_token="+tok)
}

// upgradeStatus is the HTTP status of a WebSocket handshake.
func upgradeStatus(t *testing.T, url string, header http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), replyTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err == nil {
		ws.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return resp.StatusCode
}

// TestAuthUpgrade: with a secret, the upgrade needs a valid token, as a query parameter or a Bearer
// header; a missing, expired, wrongly signed or garbled one gets HTTP 401, counted by reason.
func TestAuthUpgrade(t *testing.T) {
	s, v, ref := secured(t, false)
	other := auth.New([]byte("another secret, not the server's"))
	cases := []struct {
		name, query string
		header      http.Header
		want        int
		reason      string
	}{
		{"missing", "", nil, http.StatusUnauthorized, "auth_missing"},
		{"expired", "?access_token=" + token(t, v, auth.Create, "", -time.Minute), nil, http.StatusUnauthorized, "auth_expired"},
		{"wrong secret", "?access_token=" + token(t, other, auth.Create, "", time.Minute), nil, http.StatusUnauthorized, "auth_invalid"},
		{"garbage", "?access_token=not.a.jwt", nil, http.StatusUnauthorized, "auth_invalid"},
		{"unknown scope", "?access_token=" + token(t, v, "root", "", time.Minute), nil, http.StatusUnauthorized, "auth_invalid"},
		{"query", "?access_token=" + token(t, v, auth.Create, "", time.Minute), nil, http.StatusSwitchingProtocols, ""},
		{"bearer", "", http.Header{"Authorization": {"Bearer " + token(t, v, auth.Read, "", time.Minute)}}, http.StatusSwitchingProtocols, ""},
	}
	for _, c := range cases {
		before := ref.count(c.reason)
		if got := upgradeStatus(t, s.URL+c.query, c.header); got != c.want {
			t.Errorf("%s: HTTP %d, want %d", c.name, got, c.want)
		}
		if c.reason != "" && ref.count(c.reason) != before+1 {
			t.Errorf("%s: refusal %q not counted", c.name, c.reason)
		}
	}
	// A token without exp would never expire: refused.
	if got := upgradeStatus(t, s.URL+"?access_token="+noExpiry(t), nil); got != http.StatusUnauthorized {
		t.Errorf("token without exp: HTTP %d, want 401", got)
	}
	// The Docker health probe (a handshake without a version) keeps its 500 with access control on.
	if code, _, _ := rawHTTP(t, s.Addr, "GET /kurento HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"); code != 500 {
		t.Errorf("health probe: HTTP %d, want 500", code)
	}
	c := dialToken(t, s, token(t, v, auth.Create, "", time.Minute))
	p := c.create("MediaPipeline", nil)
	c.ok("release", map[string]any{"object": p})
}

// noExpiry signs a token with no exp claim.
func noExpiry(t *testing.T) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"scope": "create"}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestReadScope: a read token may look (describe, getters, subscribe) but not create, invoke a
// method that changes something, release or run a transaction that creates; the ServerManager's
// lists need an admin token.
func TestReadScope(t *testing.T) {
	s, v, ref := secured(t, false)
	app := dialToken(t, s, token(t, v, auth.Create, "", time.Minute))
	p, els := app.pipelineWith(1)

	ro := dialToken(t, s, token(t, v, auth.Read, "", time.Minute))
	forbidden := func(method string, params map[string]any) {
		t.Helper()
		_, err := ro.call(method, params)
		if err == nil || err.Code != -32000 || !strings.HasPrefix(err.Message, "Forbidden: ") || err.Data["type"] != "FORBIDDEN" {
			t.Errorf("read token, %s %v: %v, want a Forbidden error", method, params, err)
		}
	}
	forbidden("create", map[string]any{"type": "MediaPipeline"})
	forbidden("invoke", map[string]any{"object": p, "operation": "setName", "operationParams": map[string]any{"name": "x"}})
	forbidden("invoke", map[string]any{"object": els[0], "operation": "connect", "operationParams": map[string]any{"sink": els[0]}})
	forbidden("release", map[string]any{"object": p})
	forbidden("unref", map[string]any{"object": p, "sessionId": "x"})
	// In a transaction, each operation is checked.
	r := ro.ok("transaction", map[string]any{"operations": []any{
		map[string]any{"jsonrpc": "2.0", "id": 0, "method": "create", "params": map[string]any{"type": "MediaPipeline"}}}})
	if resp := r["value"].([]any)[0].(map[string]any); resp["error"] == nil {
		t.Errorf("read token: create in a transaction answered %v", resp)
	}
	if ref.count("scope") < 6 {
		t.Errorf("scope refusals counted %d, want 6", ref.count("scope"))
	}

	ro.ok("describe", map[string]any{"object": p})
	if got := ro.invoke(p, "getChildren", nil).([]any); len(got) != 1 {
		t.Errorf("read token: getChildren %v", got)
	}
	ro.invoke(els[0], "isMediaFlowingIn", map[string]any{"mediaType": "VIDEO"})
	ro.ok("subscribe", map[string]any{"object": p, "type": "Error"})
	ro.invoke(objects.ManagerID, "getInfo", nil)
	ro.ok("ping", nil)

	// The ServerManager's lists and events: admin only.
	_, err := app.call("invoke", map[string]any{"object": objects.ManagerID, "operation": "getPipelines"})
	if err == nil || err.Data["type"] != "FORBIDDEN" {
		t.Errorf("create token, getPipelines: %v, want Forbidden", err)
	}
	admin := dialToken(t, s, token(t, v, auth.Admin, "", time.Minute))
	if got := admin.invoke(objects.ManagerID, "getPipelines", nil).([]any); len(got) != 1 {
		t.Errorf("admin: getPipelines %v", got)
	}
	admin.ok("subscribe", map[string]any{"object": objects.ManagerID, "type": "ObjectCreated"})
	app.ok("release", map[string]any{"object": p})
}

// TestTenantIsolation: with isolation, a session sees only its tenant's objects (others' ids are not
// found), cannot be taken over with another tenant's token, and admin tokens see everything.
func TestTenantIsolation(t *testing.T) {
	s, v, ref := secured(t, true)
	a := dialToken(t, s, token(t, v, auth.Create, "a", time.Minute))
	b := dialToken(t, s, token(t, v, auth.Create, "b", time.Minute))
	pa, elsA := a.pipelineWith(1)
	pb := b.create("MediaPipeline", nil)

	notFound := func(c *client, method string, params map[string]any) {
		t.Helper()
		if _, err := c.call(method, params); err == nil || err.Code != 40101 {
			t.Errorf("tenant b, %s %v: %v, want 40101", method, params, err)
		}
	}
	notFound(b, "describe", map[string]any{"object": pa})
	notFound(b, "invoke", map[string]any{"object": pa, "operation": "getName"})
	notFound(b, "subscribe", map[string]any{"object": pa, "type": "Error"})
	notFound(b, "create", map[string]any{"type": "PassThrough", "constructorParams": map[string]any{"mediaPipeline": pa}})
	// Connecting one's element to another tenant's is refused as an unknown object.
	ptB := b.create("PassThrough", map[string]any{"mediaPipeline": pb})
	if _, err := b.call("invoke", map[string]any{"object": ptB, "operation": "connect", "operationParams": map[string]any{"sink": elsA[0]}}); err == nil {
		t.Errorf("tenant b connected to tenant a's element")
	}
	// release of another tenant's object does nothing.
	b.ok("release", map[string]any{"object": pa})
	if !exists(s, pa) {
		t.Fatalf("tenant b released tenant a's pipeline")
	}
	// Tenant a's session cannot be taken over with tenant b's token.
	sidA := a.ok("ping", nil)["sessionId"]
	if sidA == nil {
		sidA = a.ok("describe", map[string]any{"object": pa})["sessionId"]
	}
	if _, err := b.call("connect", map[string]any{"sessionId": sidA}); err == nil || err.Code != 40007 {
		t.Errorf("tenant b connect to tenant a's session: %v, want 40007", err)
	}
	if ref.count("tenant") == 0 {
		t.Errorf("tenant refusal not counted")
	}
	admin := dialToken(t, s, token(t, v, auth.Admin, "", time.Minute))
	admin.ok("describe", map[string]any{"object": pa})
	if got := admin.invoke(objects.ManagerID, "getPipelines", nil).([]any); len(got) != 2 {
		t.Errorf("admin: getPipelines %v, want both tenants' pipelines", got)
	}
	admin.ok("release", map[string]any{"object": pb})
	a.ok("release", map[string]any{"object": pa})
	if slices.ContainsFunc([]string{pa, pb}, func(id string) bool { return exists(s, id) }) {
		t.Errorf("pipelines left after release")
	}
}
