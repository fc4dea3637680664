//go:build !kmsfuzz

package webrtc_test

import (
	"crypto/rand"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// received is what the WebRtcEndpoints received by each path while f ran.
func received(f func()) webrtc.RTPPaths {
	before := webrtc.ReceivedRTP()
	f()
	after := webrtc.ReceivedRTP()
	return webrtc.RTPPaths{Direct: after.Direct - before.Direct, Pion: after.Pion - before.Pion}
}

// loopbackSession runs a peer (opts, sending and receiving) against an endpoint connected to
// itself, through a server started with env, until the peer has decoded frames of its own video;
// it returns the peer and what the endpoints received by each path meanwhile.
func loopbackSession(t *testing.T, opts testpeer.Options, frames int64, env ...string) (*testpeer.Peer, webrtc.RTPPaths) {
	t.Helper()
	s := newSession(t, 90*time.Second, env...)
	ep := s.endpoint()
	s.connect(ep, ep, "")
	opts.Send, opts.Receive, opts.PacketsPerFrame = true, true, 3
	p := s.peer(opts)
	got := received(func() {
		s.negotiate(p, ep)
		p.StartMedia()
		if !poll(60*time.Second, func() bool { return p.DecodedFrames.Load() >= frames }) {
			t.Fatalf("the peer decoded %d frames of its loopback, want %d", p.DecodedFrames.Load(), frames)
		}
	})
	return p, got
}

// A loopback peer on the shared UDP port, the endpoint its DTLS server: after the first packets of
// each stream (pion's, which make the tracks), its RTP is decrypted by the endpoint's own context
// on the socket's reading goroutine, and comes back decodable.
func TestDirectRxCarriesMedia(t *testing.T) {
	p, got := loopbackSession(t, testpeer.Options{}, 60)
	t.Logf("received direct %d, through pion %d; the peer got %d video packets", got.Direct, got.Pion, p.VideoPackets.Load())
	if got.Direct < uint64(p.VideoPackets.Load())/2 || got.Pion > 10 {
		t.Errorf("RTP received direct %d, through pion %d; want all but each stream's first few direct", got.Direct, got.Pion)
	}
}

// A lossy publisher's retransmissions (RTX, a repair SSRC of their own) are unwrapped on the direct
// path and complete its frames.
func TestDirectRxRetransmissions(t *testing.T) {
	p, got := loopbackSession(t, testpeer.Options{Loss: 0.1}, 60)
	if got.Direct == 0 || got.Pion > 20 {
		t.Errorf("RTP received direct %d, through pion %d; want nearly all direct", got.Direct, got.Pion)
	}
	t.Logf("decoded %d of %d frames, %d RTX received", p.DecodedFrames.Load(), p.FramesReceived.Load(), p.RTXReceived.Load())
}

// directFallbacks are where the direct SRTP path does not apply, in both directions: the endpoint
// as DTLS client (it cannot see the server random), a pair over ICE-TCP, the setting off.
var directFallbacks = []struct {
	name string
	opts testpeer.Options
	env  []string
}{
	{"dtls-client", testpeer.Options{PassiveOffer: true}, nil},
	{"ice-tcp", testpeer.Options{TCPOnly: true}, nil},
	{"disabled", testpeer.Options{}, []string{"KMS_WEBRTC_DIRECT_SRTP=false"}},
}

// Where the direct path does not apply, pion receives everything, and the media still decodes:
// the endpoint as DTLS client, a pair over ICE-TCP, the setting off.
func TestDirectRxFallsBack(t *testing.T) {
	for _, tc := range directFallbacks {
		t.Run(tc.name, func(t *testing.T) {
			_, got := loopbackSession(t, tc.opts, 20, tc.env...)
			if got.Direct != 0 || got.Pion == 0 {
				t.Errorf("RTP received direct %d, through pion %d; want all through pion", got.Direct, got.Pion)
			}
		})
	}
}

// forgingNet opens a peer's sockets and keeps the last SRTP media datagram the peer sent and where
// to, so that a test can send forgeries from the peer's own address.
type forgingNet struct {
	*stdnet.Net
	mu   sync.Mutex
	conn transport.UDPConn
	to   net.Addr
	last []byte
}

func (n *forgingNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &forgingConn{UDPConn: c, n: n}, nil
}

type forgingConn struct {
	transport.UDPConn
	n *forgingNet
}

func (c *forgingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if len(b) > 12 && b[0]&0xc0 == 0x80 && (b[1] < 192 || b[1] > 223) {
		c.n.mu.Lock()
		c.n.conn, c.n.to, c.n.last = c.UDPConn, addr, append(c.n.last[:0], b...)
		c.n.mu.Unlock()
	}
	return c.UDPConn.WriteTo(b, addr)
}

// forge sends count forgeries of the peer's last packet from its address: a broken authentication tag,
// a replay, and random bytes under its SSRC and under another.
func (n *forgingNet) forge(t *testing.T, count int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conn == nil {
		t.Fatal("the peer sent no media")
	}
	b := make([]byte, len(n.last))
	for i := range count {
		copy(b, n.last)
		switch i % 4 {
		case 0:
			b[len(b)-1] ^= 0x5a
		case 1:
		case 2:
			rand.Read(b[12:])
		case 3:
			rand.Read(b[8:])
		}
		if _, err := n.conn.WriteTo(b, n.to); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(2 * time.Millisecond) // a stream, not a burst the socket buffer cannot hold
		}
	}
}

// A peer that sends forged, replayed and random SRTP from its own address to the shared port loses
// nothing of its own stream and nothing of another peer's; every forgery of a bound SSRC is counted
// and dropped, and the server's heap does not grow with them.
func TestDirectRxForgeries(t *testing.T) {
	s := newSession(t, 90*time.Second)
	std, err := stdnet.NewNet()
	if err != nil {
		t.Fatal(err)
	}
	fn := &forgingNet{Net: std}
	var peers []*testpeer.Peer
	for _, opts := range []testpeer.Options{{Net: fn}, {}} {
		ep := s.endpoint()
		s.connect(ep, ep, "")
		opts.Send, opts.Receive, opts.PacketsPerFrame = true, true, 3
		p := s.peer(opts)
		s.negotiate(p, ep)
		p.StartMedia()
		peers = append(peers, p)
	}
	forger, other := peers[0], peers[1]
	for _, p := range peers {
		if !poll(60*time.Second, func() bool { return p.DecodedFrames.Load() >= 20 }) {
			t.Fatalf("no loopback media: %d frames decoded", p.DecodedFrames.Load())
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, rejected0 := webrtc.DirectRxDropped()
	const forgeries = 20000
	frames := [2]int64{forger.DecodedFrames.Load(), other.DecodedFrames.Load()}
	jumps := [2]int64{forger.SeqJumps.Load(), other.SeqJumps.Load()}
	fn.forge(t, forgeries)
	for i, p := range peers {
		if !poll(60*time.Second, func() bool { return p.DecodedFrames.Load() >= frames[i]+30 }) {
			t.Errorf("peer %d decoded %d frames after the forgeries, want 30 more", i, p.DecodedFrames.Load()-frames[i])
		}
		if j := p.SeqJumps.Load() - jumps[i]; j != 0 {
			t.Errorf("peer %d: its video sequence jumped %d times", i, j)
		}
	}
	_, rejected := webrtc.DirectRxDropped()
	runtime.GC()
	runtime.ReadMemStats(&after)
	t.Logf("%d forgeries sent, %d rejected by the direct path; heap %d → %d KB", forgeries, rejected-rejected0,
		before.HeapAlloc>>10, after.HeapAlloc>>10)
	// Half the forgeries keep the bound SSRC and reach the direct path (the kernel may drop a
	// few of a burst); random SSRCs go to pion, which drops them.
	if got := rejected - rejected0; got < forgeries/4 {
		t.Errorf("%d forgeries rejected by the direct path, want most of %d", got, forgeries/2)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("the heap grew by %d KB with the forgeries", grown>>10)
	}
}
