package testserver

import (
	"net"
	"testing"
)

// FreePort is a TCP port of 127.0.0.1 free at the time of the call, for servers a test starts as
// separate processes (the built binary, Prometheus, Chromium's page server).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
