package publicip_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testdns"
	"github.com/kurento-go/kms/publicip"
)

// The providers' records answered by a DNS server on loopback with the asking address: discovery
// returns that address, from the first provider that answers.
func TestDiscover(t *testing.T) {
	for _, tc := range []struct {
		name, network, only, want string
		v6                        bool
	}{
		{"IPv4 from OpenDNS", "udp4", "", "127.0.0.1", false},
		{"IPv4 from Google's TXT after OpenDNS refused", "udp4", "o-o.myaddr.l.google.com", "127.0.0.1", false},
		{"IPv4 from Cloudflare's CHAOS TXT", "udp4", "whoami.cloudflare", "127.0.0.1", false},
		{"IPv6 from OpenDNS", "udp6", "", "::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dns := testdns.Start(t, tc.network, false)
			dns.Only = tc.only
			got, err := publicip.Discover(context.Background(), tc.v6, dns.Addr, time.Second)
			if err != nil || got.String() != tc.want {
				t.Fatalf("Discover: %v, %v; want %s (asked %v)", got, err, tc.want, dns.Asked())
			}
			if tc.only != "" && !slices.Contains(dns.Asked(), "myip.opendns.com") {
				t.Errorf("OpenDNS not asked first: %v", dns.Asked())
			}
		})
	}
}

// A server that never answers: an error once every provider had its timeout, not a hang.
func TestDiscoverNoAnswer(t *testing.T) {
	dns := testdns.Start(t, "udp4", true)
	start := time.Now()
	got, err := publicip.Discover(context.Background(), false, dns.Addr, 200*time.Millisecond)
	if err == nil {
		t.Fatalf("got %v from a silent server", got)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v", took)
	}
	if n := len(dns.Asked()); n != 4 {
		t.Errorf("%d providers asked, want 4: %v", n, dns.Asked())
	}
}
