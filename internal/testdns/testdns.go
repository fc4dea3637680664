// Package testdns is a DNS server on loopback for tests: it answers the "what is my IP" records of
// the public providers (myip.opendns.com A/AAAA, o-o.myaddr.l.google.com TXT, whoami.cloudflare CH
// TXT, whoami.akamai.net A) with the address the query came from, as the real ones do.
package testdns

import (
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// Server is a running responder.
type Server struct {
	Addr string // host:port to give as the resolver
	// Only, when not empty, restricts the names answered (the others get REFUSED), to show that
	// discovery falls back from one provider to the next.
	Only string

	mu    sync.Mutex
	asked []string // names queried, in order
}

// Start listens on network ("udp4" or "udp6") loopback until the test ends; silent makes it read
// queries and never answer.
func Start(t *testing.T, network string, silent bool) *Server {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "udp6" {
		host = "[::1]:0"
	}
	conn, err := net.ListenPacket(network, host)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	s := &Server{Addr: conn.LocalAddr().String()}
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := s.answer(buf[:n], from.(*net.UDPAddr).AddrPort().Addr().Unmap(), silent); reply != nil {
				conn.WriteTo(reply, from)
			}
		}
	}()
	return s
}

// Asked lists the names queried so far.
func (s *Server) Asked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

func (s *Server) answer(query []byte, from netip.Addr, silent bool) []byte {
	var m dnsmessage.Message
	if m.Unpack(query) != nil || len(m.Questions) != 1 {
		return nil
	}
	q := m.Questions[0]
	name := strings.TrimSuffix(q.Name.String(), ".")
	s.mu.Lock()
	s.asked = append(s.asked, name)
	s.mu.Unlock()
	if silent {
		return nil
	}
	reply := dnsmessage.Message{Header: dnsmessage.Header{ID: m.Header.ID, Response: true, Authoritative: true}, Questions: m.Questions}
	h := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 0}
	known := map[string]bool{"myip.opendns.com": true, "o-o.myaddr.l.google.com": true, "whoami.cloudflare": true, "whoami.akamai.net": true}
	switch {
	case !known[name] || (s.Only != "" && s.Only != name):
		reply.Header.RCode = dnsmessage.RCodeRefused
	case q.Type == dnsmessage.TypeA && from.Is4():
		reply.Answers = append(reply.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AResource{A: from.As4()}})
	case q.Type == dnsmessage.TypeAAAA && from.Is6():
		reply.Answers = append(reply.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.AAAAResource{AAAA: from.As16()}})
	case q.Type == dnsmessage.TypeTXT:
		reply.Answers = append(reply.Answers, dnsmessage.Resource{Header: h, Body: &dnsmessage.TXTResource{TXT: []string{from.String()}}})
	}
	out, err := reply.Pack()
	if err != nil {
		return nil
	}
	return out
}
