// Package auth is the server's access control: JSON Web Tokens signed with HS256 by a shared secret,
// presented at the WebSocket upgrade (or to the operations listener) and checked there, and what each
// token's scope lets a client do.
package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Scope is what a token lets its bearer do.
type Scope string

const (
	// Admin may do anything, to any tenant's objects, the ServerManager's lists and events included.
	Admin Scope = "admin"
	// Create is what applications need: create, invoke and release their own objects.
	Create Scope = "create"
	// Read may only look: describe, getters, stats, subscriptions.
	Read Scope = "read"
)

// Claims are what a verified token says about its bearer.
type Claims struct {
	Scope  Scope
	Tenant string // "" = the default tenant
}

// tokenClaims is the token's payload as it is signed.
type tokenClaims struct {
	Scope  string `json:"scope,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	jwt.RegisteredClaims
}

// Verifier checks tokens against one secret.
type Verifier struct {
	key    []byte
	parser *jwt.Parser
}

// Load reads the secret from a file; surrounding white space (the trailing newline of `echo`) is not
// part of it.
func Load(file string) (*Verifier, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("auth secret: %w", err)
	}
	key := bytes.TrimSpace(data)
	if len(key) < 16 {
		return nil, fmt.Errorf("auth secret %s: too short (%d bytes, at least 16)", file, len(key))
	}
	return New(key), nil
}

// New makes a verifier for the secret key.
func New(key []byte) *Verifier {
	return &Verifier{
		key: key,
		parser: jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(),
			jwt.WithLeeway(5*time.Second)),
	}
}

// Verify checks a token's signature and expiry and returns its claims.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, errNoToken
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, func(*jwt.Token) (any, error) { return v.key, nil }); err != nil {
		return nil, err
	}
	c := &Claims{Scope: Scope(tc.Scope), Tenant: tc.Tenant}
	switch c.Scope {
	case "":
		c.Scope = Create
	case Admin, Create, Read:
	default:
		return nil, fmt.Errorf("unknown scope %q", tc.Scope)
	}
	return c, nil
}

// Sign makes a token with the claims, valid for ttl (negative: already expired). Tools and tests use
// it; the server only verifies.
func (v *Verifier) Sign(c Claims, ttl time.Duration) (string, error) {
	tc := tokenClaims{Scope: string(c.Scope), Tenant: c.Tenant,
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(ttl))}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, tc).SignedString(v.key)
}

// TokenOf finds the token of a request: the access_token query parameter (browsers cannot set headers
// on a WebSocket) or an Authorization: Bearer header.
func TokenOf(r *http.Request) string {
	if t := r.URL.Query().Get("access_token"); t != "" {
		return t
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

// Check verifies the token of a request.
func (v *Verifier) Check(r *http.Request) (*Claims, error) { return v.Verify(TokenOf(r)) }

// Unauthorized answers a request refused for its token: HTTP 401.
func Unauthorized(w http.ResponseWriter, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="kurento"`)
	http.Error(w, "401 unauthorized: "+err.Error(), http.StatusUnauthorized)
}

// Guard answers 401 to requests without a valid token, calling refused with the reason, and passes
// the others on with their claims in the context (see FromContext).
func (v *Verifier) Guard(next http.Handler, refused func(reason string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.Check(r)
		if err != nil {
			if refused != nil {
				refused("auth_" + Reason(err))
			}
			Unauthorized(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

var errNoToken = errors.New("no token")

// Reason is a bounded label for a refused token (for metrics): missing, expired or invalid.
func Reason(err error) string {
	switch {
	case errors.Is(err, errNoToken):
		return "missing"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "expired"
	}
	return "invalid"
}

type claimsKey struct{}

// FromContext returns the claims Guard verified, nil when access control is off.
func FromContext(ctx context.Context) *Claims {
	c, _ := ctx.Value(claimsKey{}).(*Claims)
	return c
}
