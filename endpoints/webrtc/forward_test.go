//go:build !kmsfuzz

package webrtc_test

import (
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

// stallProxy relays ICE-TCP between a peer and the endpoint's passive TCP candidate; Stall makes it
// stop reading what the endpoint sends, as a peer whose receive path is blocked: the endpoint's
// socket fills and its writes block.
type stallProxy struct {
	t       *testing.T
	mu      sync.Mutex
	stalled chan struct{} // closed while not stalled
	conns   []net.Conn
}

func newStallProxy(t *testing.T) *stallProxy {
	p := &stallProxy{t: t, stalled: make(chan struct{})}
	close(p.stalled)
	t.Cleanup(p.close)
	return p
}

// mapCandidate rewrites the endpoint's TCP candidates to a proxy of their own; other candidates go.
func (p *stallProxy) mapCandidate(c string) string {
	f := strings.Fields(strings.TrimPrefix(c, "candidate:"))
	if len(f) < 6 || !strings.EqualFold(f[2], "tcp") || !strings.HasPrefix(f[4], "127.") {
		return ""
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		p.t.Error(err)
		return ""
	}
	p.mu.Lock()
	p.conns = append(p.conns, closerConn{ln})
	p.mu.Unlock()
	target := net.JoinHostPort(f[4], f[5])
	go p.serve(ln, target)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	f[5] = port
	return "candidate:" + strings.Join(f, " ")
}

// closerConn lets the listener be closed with the connections.
type closerConn struct{ net.Listener }

func (closerConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (closerConn) Write([]byte) (int, error)        { return 0, io.EOF }
func (closerConn) LocalAddr() net.Addr              { return nil }
func (closerConn) RemoteAddr() net.Addr             { return nil }
func (closerConn) SetDeadline(time.Time) error      { return nil }
func (closerConn) SetReadDeadline(time.Time) error  { return nil }
func (closerConn) SetWriteDeadline(time.Time) error { return nil }
func (c closerConn) Close() error                   { return c.Listener.Close() }

func (p *stallProxy) serve(ln net.Listener, target string) {
	for {
		peer, err := ln.Accept()
		if err != nil {
			return
		}
		// A small receive window and segment size (loopback's 64 KB segments would let the
		// endpoint's send buffer grow to megabytes), so that its writes block soon after the stall.
		d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536)
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}}
		ep, err := d.Dial("tcp4", target)
		if err != nil {
			peer.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, peer, ep)
		p.mu.Unlock()
		go io.Copy(ep, peer)
		go p.relayDown(peer, ep)
	}
}

// relayDown copies what the endpoint sends to the peer, pausing while stalled.
func (p *stallProxy) relayDown(peer, ep net.Conn) {
	buf := make([]byte, 2048)
	for {
		p.mu.Lock()
		open := p.stalled
		p.mu.Unlock()
		<-open
		n, err := ep.Read(buf)
		if err != nil {
			return
		}
		if _, err := peer.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	p.stalled = make(chan struct{})
	p.mu.Unlock()
}

func (p *stallProxy) close() {
	p.mu.Lock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled)
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// A viewer over ICE-TCP stops reading: the endpoint's writes to it block. The other viewers of the
// same presenter keep getting at least 95% of its frames, and the stalled viewer's dropped packets
// show in its getStats (packetsDiscarded).
func TestStalledViewerDoesNotHoldUpOthers(t *testing.T) {
	const viewers = 3
	s := newSession(t, 60*time.Second)
	presenter := s.endpoint()
	pub := s.peer(testpeer.Options{Send: true, Tag: tagA, PacketsPerFrame: 4})
	s.negotiate(pub, presenter)
	pub.StartMedia()

	proxy := newStallProxy(t)
	stalledEP := s.endpoint()
	s.connect(presenter, stalledEP, "")
	stalled := s.peer(testpeer.Options{Receive: true, TCPOnly: true, MapCandidate: proxy.mapCandidate})
	s.negotiate(stalled, stalledEP)
	peers := make([]*testpeer.Peer, viewers)
	for i := range peers {
		ep := s.endpoint()
		s.connect(presenter, ep, "")
		peers[i] = s.peer(testpeer.Options{Receive: true})
		s.negotiate(peers[i], ep)
	}
	for _, p := range append(peers, stalled) {
		if err := p.WaitVideo(s.ctx); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := stalled.PC.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local.Protocol.String() != "tcp" {
		t.Fatalf("the stalled viewer is not over ICE-TCP: %v %v", pair, err)
	}

	proxy.stall()
	stalledFrames := stalled.FramesFrom(tagA)
	// The stalled viewer's drops show once its socket and queue are full.
	for discarded(s, stalledEP) == 0 {
		if s.ctx.Err() != nil {
			t.Fatal("no packet counted as discarded for the stalled viewer")
		}
		time.Sleep(200 * time.Millisecond)
	}
	const window = 4 * time.Second
	sent0 := pub.FramesSent.Load()
	got0 := make([]int64, viewers)
	for i, p := range peers {
		got0[i] = p.FramesFrom(tagA)
	}
	time.Sleep(window)
	sent := pub.FramesSent.Load() - sent0
	for i, p := range peers {
		got := p.FramesFrom(tagA) - got0[i]
		t.Logf("viewer %d: %d of %d frames", i, got, sent)
		if float64(got) < 0.95*float64(sent) {
			t.Errorf("viewer %d got %d of %d frames while another viewer was stalled", i, got, sent)
		}
	}
	t.Logf("stalled viewer: %d frames before the stall, %d after; %v packets discarded", stalledFrames,
		stalled.FramesFrom(tagA)-stalledFrames, discarded(s, stalledEP))
}

// discarded is the outbound video packetsDiscarded of an endpoint's getStats.
func discarded(s *session, ep string) float64 {
	return videoStat(s.stats(ep), "outboundrtp").num("packetsDiscarded")
}

// A viewer joining a running stream starts at the last keyframe the server keeps: it decodes its
// first frames and the presenter gets no keyframe request for the join.
func TestJoinStartsFromCachedKeyframe(t *testing.T) {
	s := newSession(t, 40*time.Second)
	presenter := s.endpoint()
	pub := s.peer(testpeer.Options{Send: true, Tag: tagA, PacketsPerFrame: 3})
	s.negotiate(pub, presenter)
	pub.StartMedia()
	// A first viewer, so the stream runs through the pipeline as in a one-to-many.
	first := s.endpoint()
	s.connect(presenter, first, "")
	firstPeer := s.peer(testpeer.Options{Receive: true})
	s.negotiate(firstPeer, first)
	for firstPeer.DecodedFrames.Load() < 60 { // two keyframes and more since
		if err := s.ctx.Err(); err != nil {
			t.Fatal("the first viewer decodes nothing")
		}
		time.Sleep(50 * time.Millisecond)
	}

	for i := 0; i < 3; i++ {
		plis := pub.KeyframeRequests.Load()
		ep := s.endpoint()
		s.connect(presenter, ep, "")
		p := s.peer(testpeer.Options{Receive: true})
		s.negotiate(p, ep)
		for p.DecodedFrames.Load() < 5 {
			if err := s.ctx.Err(); err != nil {
				t.Fatalf("joining viewer %d decodes nothing", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := pub.KeyframeRequests.Load() - plis; got != 0 {
			t.Errorf("joining viewer %d: the presenter got %d keyframe requests", i, got)
		}
		if p.KeyframesRecv.Load() == 0 {
			t.Errorf("joining viewer %d decoded without a keyframe", i)
		}
	}
}
