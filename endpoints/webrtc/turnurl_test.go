package webrtc

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

// The turnUrl property takes KMS's form; pion gets a standard ICE server from it.
func TestParseTurnURL(t *testing.T) {
	tests := []struct {
		in, url, user, pass string
	}{
		{"u:p@10.0.0.1:3478", "turn:10.0.0.1:3478?transport=udp", "u", "p"},
		{"u:p@10.0.0.1:3478?transport=tcp", "turn:10.0.0.1:3478?transport=tcp", "u", "p"},
		{"u:p@10.0.0.1:5349?transport=tls", "turns:10.0.0.1:5349?transport=tcp", "u", "p"},
		// coturn REST-API credentials; a password with '@'.
		{"1796523119:kurento:q+/Zx=@10.0.0.1:3478", "turn:10.0.0.1:3478?transport=udp", "1796523119:kurento", "q+/Zx="},
		{"u:p@ss@[2001:db8::1]:3478", "turn:[2001:db8::1]:3478?transport=udp", "u", "p@ss"},
	}
	for _, tt := range tests {
		got, err := parseTurnURL(tt.in)
		if err != nil || len(got.URLs) != 1 || got.URLs[0] != tt.url || got.Username != tt.user || got.Credential != tt.pass {
			t.Errorf("%q: got %+v, %v; want %s %s/%s", tt.in, got, err, tt.url, tt.user, tt.pass)
		}
	}
	for _, bad := range []string{"10.0.0.1:3478", "up@10.0.0.1:3478", "u:p@10.0.0.1:3478?transport=sctp"} {
		if _, err := parseTurnURL(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// turns: servers are handed to pion as TCP ones; the endpoint's network adds TLS (turntls.go).
func TestTurnsOverTCP(t *testing.T) {
	s, err := parseTurnURL("u:p@10.0.0.1:5349?transport=tls")
	if err != nil {
		t.Fatal(err)
	}
	servers := []webrtc.ICEServer{s}
	if addrs := turnsOverTCP(servers); len(addrs) != 1 || addrs[0] != "10.0.0.1:5349" || servers[0].URLs[0] != "turn:10.0.0.1:5349?transport=tcp" {
		t.Errorf("got %v %v", addrs, servers[0].URLs)
	}
}
