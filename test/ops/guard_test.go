package ops_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/auth"
	"github.com/kurento-go/kms/internal/testserver"
)

// status is the HTTP status of a GET with the given header.
func status(t *testing.T, url string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestTokensGuardOperations: with --auth-secret-file, /metrics and the inspector answer only to a valid
// token (header or access_token, as the WebSocket), every refusal is counted, and the probes that
// orchestrators call without credentials stay open.
func TestTokensGuardOperations(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("operations guard test secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := testserver.Start(t, "KMS_METRICS_ADDRESS=127.0.0.1:0", "KMS_AUTH_SECRET_FILE="+secret)
	v, err := auth.Load(secret)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(ttl time.Duration) string {
		tok, err := v.Sign(auth.Claims{Scope: auth.Read}, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid, expired := sign(time.Minute), sign(-time.Minute)
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	wrong, err := auth.New([]byte("some other secret")).Sign(auth.Claims{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	for _, path := range []string{"/metrics", "/inspector/", "/inspector/api/overview"} {
		url := s.OpsURL + path
		for name, h := range map[string]http.Header{"no token": nil, "expired": bearer(expired), "wrong key": bearer(wrong)} {
			if got := status(t, url, h); got != http.StatusUnauthorized {
				t.Errorf("%s with %s: %d, want 401", path, name, got)
			}
		}
		if got := status(t, url, bearer(valid)); got != http.StatusOK {
			t.Errorf("%s with a valid bearer token: %d, want 200", path, got)
		}
		if got := status(t, url+"?access_token="+valid, nil); got != http.StatusOK {
			t.Errorf("%s with a valid access_token: %d, want 200", path, got)
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if got := status(t, s.OpsURL+path, nil); got != http.StatusOK {
			t.Errorf("%s without a token: %d, want 200 (probes stay open)", path, got)
		}
	}

	req, _ := http.NewRequest(http.MethodGet, s.OpsURL+"/metrics", nil)
	req.Header = bearer(valid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	for _, reason := range []string{"auth_missing", "auth_expired", "auth_invalid"} {
		if !strings.Contains(body.String(), `kms_refused_total{reason="`+reason+`"}`) {
			t.Errorf("kms_refused_total has no %s series after such a refusal", reason)
		}
	}
}
