package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Access is access control (mediaServer.access and the --auth-* options): off unless a secret file is
// given, so that existing applications work unchanged.
type Access struct {
	SecretFile      string // HS256 key of the JWTs clients present; "" = no access control
	TenantIsolation bool   // a session sees only objects created under its token's tenant
	Player          URIPolicy
	Recorder        URIPolicy
}

// URIPolicy is an allow-list of the URIs a UriEndpoint may use. Empty lists allow anything, as KMS.
type URIPolicy struct {
	Schemes      []string // lower-case schemes ("file", "http", ...)
	PathPrefixes []string // directories file:// paths must lie under
}

// Limits bound what clients can make the server hold. 0 means "no limit" where noted.
type Limits struct {
	MaxSessions            int           // live sessions; 0 = none
	MaxPipelines           int           // live MediaPipelines; 0 = none
	MaxElementsPerPipeline int           // objects in one pipeline; 0 = none
	MaxMessageBytes        int           // one WebSocket request
	RequestsPerSecond      int           // per connection (burst: twice as many); 0 = none
	MaxConnections         int           // open WebSockets
	MaxConnectionsPerAddr  int           // open WebSockets from one source address
	IdleTimeout            time.Duration // close WebSockets silent that long; 0 = never, as KMS
	MaxTransactionRequests int           // operations in one transaction
	MaxQueuedBytes         int           // answers and events waiting to be written to one connection
}

// DefaultLimits are limits no normal application reaches.
func DefaultLimits() Limits {
	return Limits{
		MaxSessions:            10000,
		MaxPipelines:           10000,
		MaxElementsPerPipeline: 10000,
		MaxMessageBytes:        16 << 20,
		RequestsPerSecond:      5000,
		MaxConnections:         10000,
		MaxConnectionsPerAddr:  1000,
		MaxTransactionRequests: 1000,
		MaxQueuedBytes:         64 << 20,
	}
}

// opsEnv names the KMS_* variable of each operations setting of the main file.
var opsEnv = []struct{ env, key string }{
	{"KMS_AUTH_SECRET_FILE", "mediaServer.access.secretFile"},
	{"KMS_AUTH_TENANT_ISOLATION", "mediaServer.access.tenantIsolation"},
	{"KMS_PLAYER_URI_SCHEMES", "mediaServer.access.player.uriSchemes"},
	{"KMS_PLAYER_PATH_PREFIXES", "mediaServer.access.player.pathPrefixes"},
	{"KMS_RECORDER_URI_SCHEMES", "mediaServer.access.recorder.uriSchemes"},
	{"KMS_RECORDER_PATH_PREFIXES", "mediaServer.access.recorder.pathPrefixes"},
	{"KMS_MAX_SESSIONS", "mediaServer.limits.maxSessions"},
	{"KMS_MAX_PIPELINES", "mediaServer.limits.maxPipelines"},
	{"KMS_MAX_ELEMENTS_PER_PIPELINE", "mediaServer.limits.maxElementsPerPipeline"},
	{"KMS_MAX_MESSAGE_SIZE", "mediaServer.limits.maxMessageSize"},
	{"KMS_MAX_REQUESTS_PER_SECOND", "mediaServer.limits.maxRequestsPerSecond"},
	{"KMS_MAX_CONNECTIONS", "mediaServer.limits.maxConnections"},
	{"KMS_MAX_CONNECTIONS_PER_ADDRESS", "mediaServer.limits.maxConnectionsPerAddress"},
	{"KMS_IDLE_TIMEOUT", "mediaServer.limits.idleTimeout"},
	{"KMS_MAX_TRANSACTION_REQUESTS", "mediaServer.limits.maxTransactionRequests"},
	{"KMS_MAX_QUEUED_BYTES", "mediaServer.limits.maxQueuedBytes"},
	{"KMS_DRAIN_TIMEOUT", "mediaServer.drainTimeout"},
}

// loadOperations reads the operations settings: the main file's values, each overridden by its KMS_*
// variable, then by the command line's --auth-secret-file, --auth-tenant-isolation and --drain-timeout.
func loadOperations(c *Config, file lookup, f *flags, getenv func(string) string) error {
	get := func(key string) (setting, bool) {
		for _, e := range opsEnv {
			if e.key == key && getenv(e.env) != "" {
				return setting{v: getenv(e.env), src: e.env}, true
			}
		}
		if file == nil {
			return setting{}, false
		}
		return file(key)
	}
	var ck checker
	a := &c.Access
	ck.str(get, "mediaServer.access.secretFile", &a.SecretFile)
	ck.boolean(get, "mediaServer.access.tenantIsolation", &a.TenantIsolation)
	ck.list(get, "mediaServer.access.player.uriSchemes", &a.Player.Schemes)
	ck.list(get, "mediaServer.access.player.pathPrefixes", &a.Player.PathPrefixes)
	ck.list(get, "mediaServer.access.recorder.uriSchemes", &a.Recorder.Schemes)
	ck.list(get, "mediaServer.access.recorder.pathPrefixes", &a.Recorder.PathPrefixes)
	for _, p := range []*URIPolicy{&a.Player, &a.Recorder} {
		for i, s := range p.Schemes {
			p.Schemes[i] = strings.ToLower(s)
		}
	}

	l := &c.Limits
	const k = "mediaServer.limits."
	ck.intMin(get, k+"maxSessions", 0, &l.MaxSessions)
	ck.intMin(get, k+"maxPipelines", 0, &l.MaxPipelines)
	ck.intMin(get, k+"maxElementsPerPipeline", 0, &l.MaxElementsPerPipeline)
	ck.intMin(get, k+"maxMessageSize", 1024, &l.MaxMessageBytes)
	ck.intMin(get, k+"maxRequestsPerSecond", 0, &l.RequestsPerSecond)
	ck.intMin(get, k+"maxConnections", 1, &l.MaxConnections)
	ck.intMin(get, k+"maxConnectionsPerAddress", 1, &l.MaxConnectionsPerAddr)
	ck.seconds(get, k+"idleTimeout", &l.IdleTimeout)
	ck.intMin(get, k+"maxTransactionRequests", 1, &l.MaxTransactionRequests)
	ck.intMin(get, k+"maxQueuedBytes", 1<<20, &l.MaxQueuedBytes)
	ck.seconds(get, "mediaServer.drainTimeout", &c.DrainTimeout)

	if v, ok := f.values["auth-secret-file"]; ok {
		a.SecretFile = v
	}
	if f.switches["auth-tenant-isolation"] {
		a.TenantIsolation = true
	}
	if v, ok := f.values["drain-timeout"]; ok {
		s := setting{v: v, src: f.source["drain-timeout"]}
		ck.seconds(func(string) (setting, bool) { return s, true }, "drain-timeout", &c.DrainTimeout)
	}
	if a.TenantIsolation && a.SecretFile == "" {
		ck.errs = append(ck.errs, fmt.Errorf("tenant isolation needs access control: set --auth-secret-file"))
	}
	return errors.Join(ck.errs...)
}

// list stores a list of strings: a JSON array, or a comma-separated string (environment variables).
func (c *checker) list(get lookup, key string, dst *[]string) {
	s, ok := get(key)
	if !ok {
		return
	}
	var out []string
	switch x := s.v.(type) {
	case string:
		for _, item := range strings.Split(x, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	case []any:
		for _, item := range x {
			str, ok := item.(string)
			if !ok {
				c.bad(s, key, "a list of strings")
				return
			}
			out = append(out, str)
		}
	default:
		c.bad(s, key, "a list of strings")
		return
	}
	*dst = out
}

// seconds stores a non-negative number of seconds (fractions allowed).
func (c *checker) seconds(get lookup, key string, dst *time.Duration) {
	s, ok := get(key)
	if !ok {
		return
	}
	str, _ := asString(s.v)
	f, err := strconv.ParseFloat(strings.TrimSpace(str), 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e6 {
		c.bad(s, key, "a number of seconds >= 0")
		return
	}
	*dst = time.Duration(f * float64(time.Second))
}
