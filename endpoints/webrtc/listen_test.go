//go:build !kmsfuzz

package webrtc_test

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/internal/testserver"
	"github.com/pion/webrtc/v4"
)

// TestListenersStayOnConfiguredInterfaces: with networkInterfaces=lo (and the HTTP endpoint server
// configured on 127.0.0.1), the ICE-TCP listener, RtpEndpoint's sockets and the HttpPostEndpoint
// server are bound to loopback addresses only, and a TCP-only peer on 127.0.0.1 still connects.
func TestListenersStayOnConfiguredInterfaces(t *testing.T) {
	const minPort, maxPort = 46200, 46399 // this server's range: its ICE-TCP and RTP ports are in it
	srv := testserver.StartWith(t, func(c *config.Config) {
		c.Modules.HttpEndpoint.ServerAddress = "127.0.0.1"
		c.Modules.HttpEndpoint.Port = 0
	}, "KMS_NETWORK_INTERFACES=lo", fmt.Sprintf("KMS_MIN_PORT=%d", minPort), fmt.Sprintf("KMS_MAX_PORT=%d", maxPort))
	peer := loopbackPeerOn(t, srv.URL, testpeer.Options{Send: true, Receive: true, TCPOnly: true}, nil)
	pair, err := peer.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair %v (%v), want one over TCP", pair, err)
	}

	ctx, c, pipeline := testserver.Connect(t, srv.URL, 20*time.Second)
	rtpEp, err := c.Create(ctx, "RtpEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	var offer string
	if err := c.Invoke(ctx, rtpEp, "generateOffer", nil, &offer); err != nil {
		t.Fatal(err)
	}
	httpEp, err := c.Create(ctx, "HttpPostEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	var postURL string
	if err := c.Invoke(ctx, httpEp, "getUrl", nil, &postURL); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(postURL)
	if err != nil {
		t.Fatal(err)
	}
	httpPort, _ := strconv.Atoi(u.Port())
	m := regexp.MustCompile(`m=(?:audio|video) (\d+) `).FindStringSubmatch(offer)
	if m == nil {
		t.Fatalf("RtpEndpoint offer without a port:\n%s", offer)
	}
	if !strings.Contains(offer, "c=IN IP4 127.0.0.1") {
		t.Errorf("RtpEndpoint offer should advertise 127.0.0.1, the address of lo:\n%s", offer)
	}
	rtpPort, _ := strconv.Atoi(m[1])

	ours := func(s socket) bool {
		return s.addr.Port() == uint16(httpPort) || s.addr.Port() >= minPort && s.addr.Port() <= maxPort
	}
	found := map[string]bool{}
	for _, s := range processSockets(t) {
		if !ours(s) {
			continue
		}
		t.Logf("%s %s", s.proto, s.addr)
		if !s.addr.Addr().IsLoopback() {
			t.Errorf("%s socket bound to %s, want a loopback address only", s.proto, s.addr)
		}
		switch {
		case s.proto == "tcp" && s.addr.Port() == uint16(httpPort):
			found["HttpPostEndpoint server"] = true
		case s.proto == "tcp" && s.addr.Port() == uint16(pair.Remote.Port):
			found["ICE-TCP"] = true
		case s.proto == "udp" && s.addr.Port() == uint16(rtpPort):
			found["RtpEndpoint"] = true
		}
	}
	for _, what := range []string{"HttpPostEndpoint server", "ICE-TCP", "RtpEndpoint"} {
		if !found[what] {
			t.Errorf("no socket of the %s found", what)
		}
	}

	// The same interfaces spelt another way share the ICE-TCP listeners instead of opening more.
	iceListeners := func() (n int) {
		for _, s := range processSockets(t) {
			if s.proto == "tcp" && s.addr.Port() >= minPort && s.addr.Port() <= maxPort {
				n++
			}
		}
		return n
	}
	before := iceListeners()
	ep, err := c.Create(ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": pipeline})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, ep, "setNetworkInterfaces", map[string]any{"networkInterfaces": "lo,lo"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Invoke(ctx, ep, "generateOffer", nil, &offer); err != nil {
		t.Fatal(err)
	}
	if after := iceListeners(); after != before {
		t.Errorf("ICE-TCP listeners: %d, then %d after an endpoint with networkInterfaces=lo,lo", before, after)
	}
}

// socket is a listening TCP socket or a UDP socket of this process.
type socket struct {
	proto string // "tcp" or "udp"
	addr  netip.AddrPort
}

// processSockets lists this process's listening TCP and UDP sockets, from /proc: the inodes of its
// descriptors matched against the kernel's socket tables.
func processSockets(t *testing.T) []socket {
	t.Helper()
	inodes := map[string]bool{}
	fds, _ := filepath.Glob("/proc/self/fd/*")
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	var out []socket
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		data, err := os.ReadFile("/proc/self/net/" + table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || !inodes[f[9]] || strings.HasPrefix(table, "tcp") && f[3] != "0A" { // 0A: LISTEN
				continue
			}
			out = append(out, socket{proto: table[:3], addr: procAddr(t, f[1])})
		}
	}
	return out
}

// procAddr decodes /proc/net's "HEXADDR:HEXPORT": the address is in 32-bit words of host (little
// endian) order.
func procAddr(t *testing.T, s string) netip.AddrPort {
	h, p, _ := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	port, err2 := strconv.ParseUint(p, 16, 16)
	if err != nil || err2 != nil {
		t.Fatalf("bad /proc/net address %q", s)
	}
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	ip, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port))
}
