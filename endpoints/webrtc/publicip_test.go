//go:build !kmsfuzz

package webrtc_test

import (
	"slices"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testdns"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/ice/v4"
)

// KMS_EXTERNAL_IPV4=auto: the server asks the providers' "my IP" records (here a DNS server on
// loopback answering with the asking address, 127.0.0.1) and its host candidates carry the address
// discovered, whatever interfaces the machine has.
func TestExternalIPv4Auto(t *testing.T) {
	dns := testdns.Start(t, "udp4", false)
	s := newSession(t, 20*time.Second, "KMS_EXTERNAL_IPV4=auto", "KMS_TEST_PUBLIC_IP_RESOLVER="+dns.Addr)
	if !slices.Contains(dns.Asked(), "myip.opendns.com") {
		t.Fatalf("the server did not ask OpenDNS's record: %v", dns.Asked())
	}
	ep := s.endpoint()
	r := s.recorder()
	r.subscribe(s, ep, "IceCandidateFound", "IceGatheringDone")
	p := s.peer(testpeer.Options{Receive: true})
	p.Endpoint = ep
	if err := p.Negotiate(s.ctx, s.c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.wait(s.ctx, "IceGatheringDone", isEvent(ep, "IceGatheringDone", nil)); err != nil {
		t.Fatal(err)
	}
	hosts := 0
	for _, ev := range r.all(isEvent(ep, "IceCandidateFound", nil)) {
		line, _ := ev.Data["candidate"].(map[string]any)["candidate"].(string)
		c, err := ice.UnmarshalCandidate(line)
		if err != nil || c.Type() != ice.CandidateTypeHost || c.NetworkType().IsTCP() || c.NetworkType() != ice.NetworkTypeUDP4 {
			continue
		}
		hosts++
		if c.Address() != "127.0.0.1" {
			t.Errorf("host candidate %q does not carry the discovered address 127.0.0.1", line)
		}
	}
	if hosts == 0 {
		t.Fatal("no IPv4 host candidate")
	}
	if err := p.WaitConnected(s.ctx); err != nil {
		t.Fatal(err)
	}
}
