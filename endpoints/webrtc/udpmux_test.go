//go:build !kmsfuzz

package webrtc_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/egress"
	"github.com/kurento-go/kms/internal/testpeer"
)

// sharedSocketAddresses are the addresses the shared UDP port is open on with no
// networkInterfaces: every address of every interface that is up, link-local ones excepted.
func sharedSocketAddresses() []netip.Addr {
	var out []netip.Addr
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ifc.Flags&net.FlagUp != 0 && !ipn.IP.IsLinkLocalUnicast() {
				out = append(out, netip.MustParseAddr(ipn.IP.String()))
			}
		}
	}
	return out
}

// hostCandidate is a UDP host candidate an endpoint offered.
type hostCandidate struct {
	endpoint string
	addr     netip.AddrPort
}

// udpCandidates waits until every endpoint has offered its candidates (IceGatheringDone) and
// returns their UDP host candidates.
func udpCandidates(s *session, rec *recorder, eps []string) []hostCandidate {
	s.t.Helper()
	var out []hostCandidate
	for _, ep := range eps {
		if _, err := rec.wait(s.ctx, "IceGatheringDone of "+ep, isEvent(ep, "IceGatheringDone", nil)); err != nil {
			s.t.Fatal(err)
		}
		for _, ev := range rec.all(isEvent(ep, "IceCandidateFound", nil)) {
			cand, _ := ev.Data["candidate"].(map[string]any)
			line, _ := cand["candidate"].(string)
			// candidate:FOUNDATION COMPONENT PROTOCOL PRIORITY ADDRESS PORT typ TYPE ...
			f := strings.Fields(line)
			if len(f) < 8 || !strings.EqualFold(f[2], "udp") || f[7] != "host" {
				continue
			}
			port, _ := strconv.Atoi(f[5])
			addr, err := netip.ParseAddr(f[4])
			if err != nil {
				s.t.Fatalf("candidate %q: %v", line, err)
			}
			out = append(out, hostCandidate{ep, netip.AddrPortFrom(addr, uint16(port))})
		}
	}
	return out
}

// sharedPortSetup makes 5 loopback sessions and a one-to-many of 5 viewers, every endpoint's
// candidates recorded; it returns the endpoints and the peers that must receive video.
func sharedPortSetup(s *session, loopbacks, viewers int) (eps []string, receivers []*testpeer.Peer, rec *recorder) {
	rec = s.recorder()
	add := func(opts testpeer.Options, wire func(ep string)) *testpeer.Peer {
		ep := s.endpoint()
		rec.subscribe(s, ep, "IceCandidateFound", "IceGatheringDone")
		wire(ep)
		p := s.peer(opts)
		s.negotiate(p, ep)
		eps = append(eps, ep)
		return p
	}
	for range loopbacks {
		p := add(testpeer.Options{Send: true, Receive: true}, func(ep string) { s.connect(ep, ep, "") })
		p.StartMedia()
		receivers = append(receivers, p)
	}
	if viewers > 0 {
		presenter := add(testpeer.Options{Send: true}, func(string) {})
		presenter.StartMedia()
		for range viewers {
			receivers = append(receivers, add(testpeer.Options{Receive: true}, func(ep string) { s.connect(eps[loopbacks], ep, "") }))
		}
	}
	return eps, receivers, rec
}

// waitFrames waits until every receiver has decoded frames.
func waitFrames(s *session, receivers []*testpeer.Peer, frames int64) {
	s.t.Helper()
	ok := poll(30*time.Second, func() bool {
		for _, p := range receivers {
			if p.FramesReceived.Load() < frames {
				return false
			}
		}
		return true
	})
	for i, p := range receivers {
		if got := p.FramesReceived.Load(); !ok {
			s.t.Errorf("receiver %d: %d video frames, want %d or more", i, got, frames)
		}
	}
}

// By default every endpoint's host candidates are on one UDP port, the first of the range, and
// media flows through it for loopback sessions and a one-to-many alike; the fan-out leaves in
// batches (fewer send calls than datagrams).
func TestEndpointsShareOneUDPPort(t *testing.T) {
	const lo, hi = 47800, 47899
	s := newSession(t, 90*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", lo), fmt.Sprintf("KMS_MAX_PORT=%d", hi))
	before := egress.Sent()
	eps, receivers, rec := sharedPortSetup(s, 5, 5)
	waitFrames(s, receivers, 60)
	cands := udpCandidates(s, rec, eps)
	ports := map[uint16]bool{}
	withCandidates := map[string]bool{}
	for _, c := range cands {
		ports[c.addr.Port()] = true
		withCandidates[c.endpoint] = true
	}
	if len(ports) != 1 || !ports[lo] || len(withCandidates) != len(eps) {
		t.Errorf("UDP host candidates of %d endpoints on ports %v, want every endpoint on %d alone: %v", len(withCandidates), ports, lo, cands)
	}
	var udp []netip.AddrPort // the test's peers have sockets of their own, on ephemeral ports
	for _, sk := range processSockets(t) {
		if sk.proto == "udp" && sk.addr.Port() == lo {
			udp = append(udp, sk.addr)
		}
	}
	if want := len(sharedSocketAddresses()); len(udp) != want {
		t.Errorf("%d UDP sockets on port %d for %d endpoints, want %d (one per address): %v", len(udp), lo, len(eps), want, udp)
	}
	sent := egress.Sent()
	calls, datagrams := sent.Syscalls-before.Syscalls, sent.Datagrams-before.Datagrams
	t.Logf("egress: %d datagrams in %d send calls", datagrams, calls)
	if datagrams == 0 || calls >= datagrams { // one call per datagram, but for batches: about 2/3 here
		t.Errorf("egress: %d datagrams in %d send calls: the fan-out to 5 viewers is not batched", datagrams, calls)
	}
}

// With KMS_WEBRTC_UDP_MUX=false every endpoint has ports of its own, within the range, as KMS.
func TestPortPerEndpointWhenMuxOff(t *testing.T) {
	const lo, hi = 47900, 47999
	s := newSession(t, 60*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", lo), fmt.Sprintf("KMS_MAX_PORT=%d", hi),
		"KMS_WEBRTC_UDP_MUX=false")
	eps, receivers, rec := sharedPortSetup(s, 3, 0)
	waitFrames(s, receivers, 30)
	owner := map[netip.AddrPort]string{}
	for _, c := range udpCandidates(s, rec, eps) {
		if c.addr.Port() < lo || c.addr.Port() > hi {
			t.Errorf("candidate %v of %s outside %d-%d", c.addr, c.endpoint, lo, hi)
		}
		if o, ok := owner[c.addr]; ok && o != c.endpoint {
			t.Errorf("%v offered by %s and %s", c.addr, o, c.endpoint)
		}
		owner[c.addr] = c.endpoint
	}
	if len(owner) < len(eps) {
		t.Errorf("%d sockets for %d endpoints", len(owner), len(eps))
	}
}

// KMS_NETWORK_INTERFACES still decides where the shared port listens and what is offered.
func TestSharedPortOnConfiguredInterfaces(t *testing.T) {
	const lo, hi = 48000, 48099
	s := newSession(t, 60*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", lo), fmt.Sprintf("KMS_MAX_PORT=%d", hi),
		"KMS_NETWORK_INTERFACES=lo")
	eps, receivers, rec := sharedPortSetup(s, 2, 0)
	waitFrames(s, receivers, 30)
	cands := udpCandidates(s, rec, eps)
	for _, c := range cands {
		if !c.addr.Addr().IsLoopback() || c.addr.Port() != lo {
			t.Errorf("candidate %v of %s, want a loopback address on port %d", c.addr, c.endpoint, lo)
		}
	}
	for _, sk := range processSockets(t) {
		if sk.proto == "udp" && sk.addr.Port() >= lo && sk.addr.Port() <= hi && !sk.addr.Addr().IsLoopback() {
			t.Errorf("UDP socket on %v, want loopback addresses only", sk.addr)
		}
	}
	if !slices.ContainsFunc(cands, func(c hostCandidate) bool { return c.addr.Addr().Is4() }) {
		t.Errorf("no 127.0.0.1 candidate: %v", cands)
	}
}

// A range of one port serves many endpoints, and the server stays ready (/readyz) with that port
// taken by the shared socket.
func TestOnePortServesManyEndpoints(t *testing.T) {
	const port = 48100
	s := newSession(t, 60*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", port), fmt.Sprintf("KMS_MAX_PORT=%d", port),
		"KMS_METRICS_ADDRESS=127.0.0.1:0")
	_, receivers, _ := sharedPortSetup(s, 3, 0)
	waitFrames(s, receivers, 30)
	resp, err := http.Get(s.srv.OpsURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d %q with the one port shared, want 200", resp.StatusCode, body)
	}
}

// Two endpoints of one server as each other's peer (an offer of one processed by the other) on a
// host with one address per family: every candidate pair would join the shared port to itself, so
// the answering endpoint opens sockets of its own, and media crosses: publisher → A → B → viewer.
func TestEndpointsOfOneServerPeerEachOther(t *testing.T) {
	const lo, hi = 48300, 48399
	s := newSession(t, 60*time.Second, fmt.Sprintf("KMS_MIN_PORT=%d", lo), fmt.Sprintf("KMS_MAX_PORT=%d", hi),
		"KMS_NETWORK_INTERFACES=lo", "KMS_ICE_TCP=0") // over ICE-TCP each pair has a connection of its own
	a, b := s.endpoint(), s.endpoint()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		err := s.c.Subscribe(s.ctx, from, "IceCandidateFound", func(ev client.Event) {
			var d struct {
				Candidate map[string]any `json:"candidate"`
			}
			if json.Unmarshal(ev.Data, &d) == nil {
				go s.c.Invoke(s.ctx, to, "addIceCandidate", map[string]any{"candidate": d.Candidate}, nil)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var offer, answer string
	if err := s.c.Invoke(s.ctx, a, "generateOffer", nil, &offer); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Invoke(s.ctx, b, "processOffer", map[string]any{"offer": offer}, &answer); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Invoke(s.ctx, a, "processAnswer", map[string]any{"answer": answer}, nil); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{a, b} {
		if err := s.c.Invoke(s.ctx, ep, "gatherCandidates", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	pubEp, viewEp := s.endpoint(), s.endpoint()
	s.connect(pubEp, a, "")
	s.connect(b, viewEp, "")
	publisher, viewer := s.peer(testpeer.Options{Send: true}), s.peer(testpeer.Options{Receive: true})
	s.negotiate(publisher, pubEp)
	s.negotiate(viewer, viewEp)
	publisher.StartMedia()
	waitFrames(s, []*testpeer.Peer{viewer}, 30)
}
