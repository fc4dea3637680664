//go:build !kmsfuzz

package webrtc_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/webrtc/v4"
)

// stat is one entry of getStats, its fields as JSON values.
type stat map[string]any

func (s stat) num(k string) float64 { v, _ := s[k].(float64); return v }
func (s stat) str(k string) string  { v, _ := s[k].(string); return v }

// stats calls getStats on an endpoint and returns its entries by type.
func (s *session) stats(ep string) map[string][]stat {
	s.t.Helper()
	var raw map[string]json.RawMessage
	if err := s.c.Invoke(s.ctx, ep, "getStats", nil, &raw); err != nil {
		s.t.Fatalf("getStats %s: %v", ep, err)
	}
	out := map[string][]stat{}
	for _, r := range raw {
		var st stat
		if err := json.Unmarshal(r, &st); err != nil {
			s.t.Fatalf("stats entry %s: %v", r, err)
		}
		out[st.str("type")] = append(out[st.str("type")], st)
	}
	return out
}

// videoStat is the video entry of a type (inboundrtp/outboundrtp).
func videoStat(all map[string][]stat, typ string) stat {
	for _, s := range all[typ] {
		if s.str("mediaTrackId") == "video" {
			return s
		}
	}
	return nil
}

// 5% loss on the publisher's link and 5% on the subscriber's: the server NACKs the publisher's losses
// and serves the subscriber's NACKs from its packet cache; the subscriber decodes at least 90% of the
// frames the publisher sent.
func TestLossyLinksRecovered(t *testing.T) {
	s := newSession(t, 60*time.Second)
	pubEP, subEP := s.endpoint(), s.endpoint()
	s.connect(pubEP, subEP, "")
	pub := s.peer(testpeer.Options{Send: true, Loss: 0.05, PacketsPerFrame: 3})
	sub := s.peer(testpeer.Options{Receive: true, Loss: 0.05})
	s.negotiate(pub, pubEP)
	s.negotiate(sub, subEP)
	pub.StartMedia()
	if err := sub.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the first keyframe and the chain
	sent0, dec0 := pub.FramesSent.Load(), sub.DecodedFrames.Load()
	time.Sleep(6 * time.Second)
	sent, dec := pub.FramesSent.Load()-sent0, sub.DecodedFrames.Load()-dec0
	ratio := float64(dec) / float64(sent)
	in := videoStat(s.stats(pubEP), "inboundrtp")
	out := videoStat(s.stats(subEP), "outboundrtp")
	t.Logf("frames sent %d, decoded %d (%.1f%%)", sent, dec, 100*ratio)
	t.Logf("publisher side: packets %v lost %v nackCount(sent) %v pliCount %v", in.num("packetsReceived"), in.num("packetsLost"), in.num("nackCount"), in.num("pliCount"))
	t.Logf("subscriber side: packets %v nackCount(received) %v pliCount %v; the client got %d retransmissions on RTX",
		out.num("packetsSent"), out.num("nackCount"), out.num("pliCount"), sub.RTXReceived.Load())
	if ratio < 0.90 {
		t.Errorf("subscriber decoded %.1f%% of the frames, want >= 90%%", 100*ratio)
	}
	if in.num("nackCount") == 0 {
		t.Errorf("no NACK sent to the lossy publisher")
	}
	if out.num("nackCount") == 0 || sub.RTXReceived.Load() == 0 {
		t.Errorf("no retransmission served to the lossy subscriber")
	}
}

// A subscriber whose link takes 150 kbit/s (its REMB says so) and one that takes 1.5 Mbit/s: the
// publisher is asked for what the fastest can take (max over sinks), the fast one receives it and
// the slow one gets whole frames dropped down to its rate. Alone, the slow one brings the
// publisher's target down.
func TestBandwidthPerSubscriber(t *testing.T) {
	s := newSession(t, 60*time.Second)
	pubEP, slowEP, fastEP := s.endpoint(), s.endpoint(), s.endpoint()
	for _, ep := range []string{slowEP, fastEP} {
		if err := s.c.Invoke(s.ctx, ep, "setMaxVideoSendBandwidth", map[string]any{"maxVideoSendBandwidth": 3000}, nil); err != nil {
			t.Fatal(err)
		}
		s.connect(pubEP, ep, "")
	}
	// The publisher's REMB may ramp up as fast as rembParams let it: KMS's default (4 % a report)
	// takes half a minute from 150 kbit/s to 1 Mbit/s.
	if err := s.c.Invoke(s.ctx, pubEP, "setRembParams", map[string]any{"rembParams": map[string]any{
		"__module__": "kurento", "__type__": "RembParams", "exponentialFactor": 0.25}}, nil); err != nil {
		t.Fatal(err)
	}
	pub := s.peer(testpeer.Options{Send: true, Adaptive: true})
	slow := s.peer(testpeer.Options{Receive: true, MaxBitrate: 150_000})
	fast := s.peer(testpeer.Options{Receive: true, MaxBitrate: 1_500_000})
	s.negotiate(pub, pubEP)
	s.negotiate(slow, slowEP)
	pub.StartMedia()
	if err := slow.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	rate := func(p *testpeer.Peer, d time.Duration) float64 {
		b0 := p.VideoBytes.Load()
		time.Sleep(d)
		return float64(p.VideoBytes.Load()-b0) * 8 / d.Seconds()
	}
	if !poll(10*time.Second, func() bool { tb := pub.TargetBitrate.Load(); return tb > 0 && tb <= 200_000 }) {
		t.Fatalf("alone, the slow subscriber left the publisher's target at %d bps", pub.TargetBitrate.Load())
	}
	aloneTarget := pub.TargetBitrate.Load()
	aloneRate := rate(slow, 2*time.Second)
	t.Logf("slow subscriber alone: publisher target %d bps, slow receives %.0f bps", aloneTarget, aloneRate)

	s.negotiate(fast, fastEP)
	if !poll(10*time.Second, func() bool { return pub.TargetBitrate.Load() >= 1_000_000 }) {
		t.Fatalf("with a fast subscriber the publisher's target stayed %d bps", pub.TargetBitrate.Load())
	}
	time.Sleep(time.Second)
	var fastRate, slowRate float64
	done := make(chan struct{})
	go func() { slowRate = rate(slow, 3*time.Second); close(done) }()
	fastRate = rate(fast, 3*time.Second)
	<-done
	out := videoStat(s.stats(slowEP), "outboundrtp")
	t.Logf("both: publisher target %d bps; fast receives %.0f bps, slow %.0f bps (slow endpoint: %v packets sent, targetBitrate %v)",
		pub.TargetBitrate.Load(), fastRate, slowRate, out.num("packetsSent"), out.num("targetBitrate"))
	if fastRate < 1_000_000 {
		t.Errorf("fast subscriber receives %.0f bps, want >= 1 Mbit/s", fastRate)
	}
	if slowRate > 300_000 {
		t.Errorf("slow subscriber receives %.0f bps, want <= 300 kbit/s", slowRate)
	}
	if slow.FramesReceived.Load() == 0 || slow.DecodedFrames.Load() == 0 {
		t.Errorf("slow subscriber decodes nothing")
	}
}

// getStats of the publisher's and the subscriber's endpoints: every stats type, and RTP counters
// within 5% of what the pion clients count themselves.
func TestGetStatsMatchesClients(t *testing.T) {
	s := newSession(t, 40*time.Second)
	pubEP, subEP := s.endpoint(), s.endpoint()
	s.connect(pubEP, subEP, "")
	pub := s.peer(testpeer.Options{Send: true})
	sub := s.peer(testpeer.Options{Receive: true})
	s.negotiate(pub, pubEP)
	s.negotiate(sub, subEP)
	pub.StartMedia()
	if err := sub.WaitVideo(s.ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	pub.StopMedia()
	time.Sleep(500 * time.Millisecond)

	near := func(what string, server, client float64) {
		t.Logf("%s: server %.0f, client %.0f", what, server, client)
		if server == 0 || math.Abs(server-client) > 0.05*client {
			t.Errorf("%s: server %.0f, client %.0f: not within 5%%", what, server, client)
		}
	}
	ps, pc := s.stats(pubEP), s.stats(subEP)
	for _, typ := range []string{"inboundrtp", "endpoint"} {
		if len(ps[typ]) == 0 {
			t.Errorf("publisher's endpoint: no %s stats", typ)
		}
	}
	for _, typ := range []string{"outboundrtp", "endpoint"} {
		if len(pc[typ]) == 0 {
			t.Errorf("subscriber's endpoint: no %s stats", typ)
		}
	}
	in, out := videoStat(ps, "inboundrtp"), videoStat(pc, "outboundrtp")
	if in == nil || out == nil {
		t.Fatalf("no video stream stats: %v %v", ps, pc)
	}
	near("publisher packets", in.num("packetsReceived"), float64(pub.VideoPacketsSent.Load()))
	near("publisher bytes", in.num("bytesReceived"), float64(pub.VideoBytesSent.Load()))
	near("subscriber packets", out.num("packetsSent"), float64(sub.VideoPackets.Load()))
	near("subscriber bytes", out.num("bytesSent"), float64(sub.VideoBytes.Load()))
}

// A data channel in loopback: what the peer sends comes back; the endpoint reports the channel
// opened; createDataChannel opens another toward the peer.
func TestDataChannelLoopback(t *testing.T) {
	s := newSession(t, 30*time.Second)
	ep, err := s.c.Create(s.ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": s.pipeline, "useDataChannels": true})
	if err != nil {
		t.Fatal(err)
	}
	rec := s.recorder()
	rec.subscribe(s, ep, "DataChannelOpened", "DataChannelClosed")
	p := s.peer(testpeer.Options{Receive: true, DataChannel: true})
	p.Endpoint = ep
	if err := p.Negotiate(s.ctx, s.c, true); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitDataChannel(s.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rec.wait(s.ctx, "DataChannelOpened", isEvent(ep, "DataChannelOpened", nil)); err != nil {
		t.Fatal(err)
	}
	if err := p.SendData("hello loopback"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-p.Messages:
		if m != "hello loopback" {
			t.Fatalf("got %q back", m)
		}
	case <-s.ctx.Done():
		t.Fatal("message did not come back")
	}
	opened := make(chan *webrtc.DataChannel, 1)
	p.PC.OnDataChannel(func(dc *webrtc.DataChannel) { opened <- dc })
	if err := s.c.Invoke(s.ctx, ep, "createDataChannel", map[string]any{"label": "server"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case dc := <-opened:
		if dc.Label() != "server" {
			t.Errorf("channel label %q", dc.Label())
		}
	case <-s.ctx.Done():
		t.Fatal("createDataChannel opened nothing at the peer")
	}
	st := s.stats(ep)
	if len(st["datachannel"]) == 0 || len(st["session"]) != 1 {
		t.Errorf("want datachannel stats and one RTCPeerConnectionStats (session): %v", st)
	} else if opened := st["session"][0].num("dataChannelsOpened"); opened < 1 {
		t.Errorf("RTCPeerConnectionStats: %v channels opened", opened)
	}
}

// Two peers, two endpoints connected both ways: each peer's messages reach the other.
func TestDataChannelBetweenPeers(t *testing.T) {
	s := newSession(t, 30*time.Second)
	var eps [2]string
	var peers [2]*testpeer.Peer
	for i := range eps {
		ep, err := s.c.Create(s.ctx, "WebRtcEndpoint", map[string]any{"mediaPipeline": s.pipeline, "useDataChannels": true})
		if err != nil {
			t.Fatal(err)
		}
		eps[i] = ep
	}
	s.connect(eps[0], eps[1], "DATA")
	s.connect(eps[1], eps[0], "DATA")
	for i := range peers {
		peers[i] = s.peer(testpeer.Options{Receive: true, DataChannel: true})
		s.negotiate(peers[i], eps[i])
		if err := peers[i].WaitDataChannel(s.ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i, text := range []string{"from A", "from B"} {
		if err := peers[i].SendData(text); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-peers[1-i].Messages:
			if m != text {
				t.Fatalf("peer %d got %q, want %q", 1-i, m, text)
			}
		case <-s.ctx.Done():
			t.Fatalf("%q did not reach the other peer", text)
		}
	}
}
