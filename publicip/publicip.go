// Package publicip discovers the host's public address as the Kurento Docker image does for
// KMS_EXTERNAL_IPV4=auto / KMS_EXTERNAL_IPV6=auto: by asking the well-known "what is my IP" DNS
// records of OpenDNS, Google, Cloudflare and Akamai, the first valid answer winning.
package publicip

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// provider is one "what is my IP" record and the name server that answers it with the asker's address.
type provider struct {
	server string // host name or IP literal of the name server
	name   string
	typ    dnsmessage.Type
	class  dnsmessage.Class
}

func providers(v6 bool) []provider {
	in, ch := dnsmessage.ClassINET, dnsmessage.ClassCHAOS
	if v6 {
		return []provider{
			{"resolver1.opendns.com", "myip.opendns.com.", dnsmessage.TypeAAAA, in},
			{"ns1.google.com", "o-o.myaddr.l.google.com.", dnsmessage.TypeTXT, in},
			{"2606:4700:4700::1111", "whoami.cloudflare.", dnsmessage.TypeTXT, ch},
		}
	}
	return []provider{
		{"resolver1.opendns.com", "myip.opendns.com.", dnsmessage.TypeA, in},
		{"ns1.google.com", "o-o.myaddr.l.google.com.", dnsmessage.TypeTXT, in},
		{"1.1.1.1", "whoami.cloudflare.", dnsmessage.TypeTXT, ch},
		{"ns1-1.akamaitech.net", "whoami.akamai.net.", dnsmessage.TypeA, in},
	}
}

// Discover asks the providers in turn, each for at most perQuery, and returns the first address of
// the wanted family. server, when not empty, replaces every provider's name server (host:port):
// tests only, so that no query leaves the machine.
func Discover(ctx context.Context, v6 bool, server string, perQuery time.Duration) (netip.Addr, error) {
	var errs []error
	for _, p := range providers(v6) {
		addr, err := ask(ctx, p, v6, server, perQuery)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("%s at %s: %w", strings.TrimSuffix(p.name, "."), p.server, err))
		if ctx.Err() != nil {
			break
		}
	}
	return netip.Addr{}, errors.Join(errs...)
}

func ask(ctx context.Context, p provider, v6 bool, server string, timeout time.Duration) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	if server == "" {
		host, err := resolve(ctx, p.server, v6)
		if err != nil {
			return netip.Addr{}, err
		}
		server = net.JoinHostPort(host, "53")
	} else {
		network = "udp"
	}
	id := uint16(rand.Uint32())
	name, err := dnsmessage.NewName(p.name)
	if err != nil {
		return netip.Addr{}, err
	}
	query, err := (&dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: false},
		Questions: []dnsmessage.Question{{Name: name, Type: p.typ, Class: p.class}},
	}).Pack()
	if err != nil {
		return netip.Addr{}, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, server)
	if err != nil {
		return netip.Addr{}, err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	if _, err := conn.Write(query); err != nil {
		return netip.Addr{}, err
	}
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return netip.Addr{}, err
		}
		var m dnsmessage.Message
		if m.Unpack(buf[:n]) != nil || m.Header.ID != id || !m.Header.Response {
			continue // not the answer to our query
		}
		return answerAddr(&m, v6)
	}
}

// resolve finds a name server's address of the wanted family; IP literals stand for themselves.
func resolve(ctx context.Context, host string, v6 bool) (string, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.String(), nil
	}
	network := "ip4"
	if v6 {
		network = "ip6"
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return "", err
	}
	return ips[0].String(), nil
}

// answerAddr takes the address out of an A, AAAA or TXT answer (TXT as the text of the address).
func answerAddr(m *dnsmessage.Message, v6 bool) (netip.Addr, error) {
	for _, a := range m.Answers {
		var ip netip.Addr
		switch r := a.Body.(type) {
		case *dnsmessage.AResource:
			ip = netip.AddrFrom4(r.A)
		case *dnsmessage.AAAAResource:
			ip = netip.AddrFrom16(r.AAAA)
		case *dnsmessage.TXTResource:
			ip, _ = netip.ParseAddr(strings.Trim(strings.Join(r.TXT, ""), `"`))
		}
		if ip.IsValid() && ip.Unmap().Is4() != v6 {
			return ip.Unmap(), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no %s address in the answer (rcode %v)", family(v6), m.Header.RCode)
}

func family(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}
