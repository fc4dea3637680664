package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/pion/webrtc/v4"
)

// kurento is our server, driven over the Kurento Protocol by a few connections used in turn, as an
// application server with a connection pool would.
type kurento struct {
	conns []*client.Client
	next  atomic.Uint32

	mu      sync.Mutex
	offerMS []float64 // processOffer round trips not yet taken by a row
}

// requests is how many requests all connections have sent.
func (k *kurento) requests() int64 {
	var n int64
	for _, c := range k.conns {
		n += c.Requests()
	}
	return n
}

// takeOfferRTTs returns the processOffer round trips (ms) since the last call, sorted.
func (k *kurento) takeOfferRTTs() []float64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	rtts := k.offerMS
	k.offerMS = nil
	slices.Sort(rtts)
	return rtts
}

func dialKurento(ctx context.Context, url string, n int) (*kurento, error) {
	k := &kurento{}
	for range n {
		c, err := client.Dial(ctx, url)
		if err != nil {
			k.close()
			return nil, fmt.Errorf("kurento %s: %w", url, err)
		}
		if err := c.Call(ctx, "ping", map[string]any{"interval": 240000}, nil); err != nil {
			k.close()
			return nil, fmt.Errorf("kurento ping: %w", err)
		}
		k.conns = append(k.conns, c)
	}
	return k, nil
}

func (k *kurento) conn() *client.Client { return k.conns[int(k.next.Add(1))%len(k.conns)] }

func (k *kurento) close() {
	for _, c := range k.conns {
		c.Close()
	}
}

// negotiate runs what a Kurento application does for a WebRtcEndpoint: subscribe to
// IceCandidateFound, processOffer, gatherCandidates. p.start is taken when processOffer's answer is in.
func (k *kurento) negotiate(ctx context.Context, c *client.Client, ep string, p *peer) error {
	err := c.Subscribe(ctx, ep, "IceCandidateFound", func(ev client.Event) {
		var d struct {
			Candidate webrtc.ICECandidateInit `json:"candidate"`
		}
		if json.Unmarshal(ev.Data, &d) == nil {
			p.pc.AddICECandidate(d.Candidate)
		}
	})
	if err != nil {
		return err
	}
	offer, err := p.offer()
	if err != nil {
		return err
	}
	sent := nowNS()
	var answer string
	if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": offer}, &answer); err != nil {
		return fmt.Errorf("processOffer: %w", err)
	}
	p.start.Store(nowNS())
	k.mu.Lock()
	k.offerMS = append(k.offerMS, float64(p.start.Load()-sent)/1e6)
	k.mu.Unlock()
	if err := p.answer(answer); err != nil {
		return err
	}
	return c.Invoke(ctx, ep, "gatherCandidates", nil, nil)
}

// janus is Janus over its HTTP transport (EchoTest and VideoRoom): one session, a handle per peer, a
// long poll that delivers the plugins' events to whoever waits for them on that handle.
type janus struct {
	base string
	hc   *http.Client
	sid  int64

	mu      sync.Mutex
	waiters map[int64]chan *janusReply // handle -> its plugin events, while a call waits
	stop    chan struct{}
	done    chan struct{}
}

type janusReply struct {
	Janus  string `json:"janus"`
	Sender int64  `json:"sender"`
	Data   struct {
		ID int64 `json:"id"`
	} `json:"data"`
	Error *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"error"`
	PluginData struct {
		Data pluginData `json:"data"`
	} `json:"plugindata"`
	Jsep *struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	} `json:"jsep"`
}

// pluginData is what the VideoRoom plugin answers (EchoTest's "result" is not needed).
type pluginData struct {
	VideoRoom string `json:"videoroom"` // created, joined, attached, event
	ID        int64  `json:"id"`        // a publisher's feed id, on joined
	Started   string `json:"started"`
	Error     string `json:"error"`
	ErrorCode int    `json:"error_code"`
}

type pluginError struct {
	code   int
	reason string
}

func (e pluginError) Error() string {
	return fmt.Sprintf("janus plugin error %d: %s", e.code, e.reason)
}

func (d pluginData) err() error {
	if d.ErrorCode != 0 || d.Error != "" {
		return pluginError{d.ErrorCode, d.Error}
	}
	return nil
}

func dialJanus(ctx context.Context, base string) (*janus, error) {
	j := &janus{base: base, waiters: map[int64]chan *janusReply{}, stop: make(chan struct{}), done: make(chan struct{}),
		hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	r, err := j.post(ctx, "", map[string]any{"janus": "create"})
	if err != nil {
		return nil, fmt.Errorf("janus %s: %w", base, err)
	}
	j.sid = r.Data.ID
	go j.poll()
	return j, nil
}

func (j *janus) post(ctx context.Context, path string, body map[string]any) (*janusReply, error) {
	body["transaction"] = strconv.FormatUint(rand.Uint64(), 36)
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, j.base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := j.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r janusReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, fmt.Errorf("janus error %d: %s", r.Error.Code, r.Error.Reason)
	}
	return &r, r.PluginData.Data.err()
}

// poll long-polls the session's events (this is also its keepalive) and hands each plugin event to
// the call waiting on its handle, if any.
func (j *janus) poll() {
	defer close(j.done)
	for {
		select {
		case <-j.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/%d?maxev=50", j.base, j.sid), nil)
		go func() {
			select {
			case <-j.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		resp, err := j.hc.Do(req)
		if err != nil {
			cancel()
			select {
			case <-j.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		var evs []*janusReply
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
			json.Unmarshal(body, &evs)
		} else {
			var ev janusReply
			if json.Unmarshal(body, &ev) == nil {
				evs = append(evs, &ev)
			}
		}
		for _, ev := range evs {
			if ev == nil || ev.Janus != "event" {
				continue
			}
			j.mu.Lock()
			ch := j.waiters[ev.Sender]
			j.mu.Unlock()
			if ch != nil {
				select {
				case ch <- ev:
				default: // the waiter wants one event; others on a busy handle (publishers joining) are not needed
				}
			}
		}
	}
}

// attach makes a handle of a plugin (janus.plugin.echotest, janus.plugin.videoroom).
func (j *janus) attach(ctx context.Context, plugin string) (int64, error) {
	r, err := j.post(ctx, fmt.Sprintf("/%d", j.sid), map[string]any{"janus": "attach", "plugin": plugin})
	if err != nil {
		return 0, err
	}
	return r.Data.ID, nil
}

// call sends a message (and a JSEP, if any) to a handle and waits for the plugin's event that want
// accepts; an event with a plugin error ends the wait with that error. sent runs once the message is
// acknowledged.
func (j *janus) call(ctx context.Context, h int64, body, jsep map[string]any, sent func(), want func(*janusReply) bool) (*janusReply, error) {
	ch := make(chan *janusReply, 8)
	j.mu.Lock()
	j.waiters[h] = ch
	j.mu.Unlock()
	defer func() {
		j.mu.Lock()
		delete(j.waiters, h)
		j.mu.Unlock()
	}()
	msg := map[string]any{"janus": "message", "body": body}
	if jsep != nil {
		msg["jsep"] = jsep
	}
	if _, err := j.post(ctx, fmt.Sprintf("/%d/%d", j.sid, h), msg); err != nil {
		return nil, err
	}
	if sent != nil {
		sent()
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-ch:
			if err := ev.PluginData.Data.err(); err != nil {
				return nil, err
			}
			if want(ev) {
				return ev, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("janus handle %d: %w", h, ctx.Err())
		case <-timeout:
			return nil, fmt.Errorf("janus: no reply on handle %d to %v", h, body["request"])
		}
	}
}

func hasJsep(typ string) func(*janusReply) bool {
	return func(ev *janusReply) bool { return ev.Jsep != nil && ev.Jsep.Type == typ }
}

func offerJsep(sdp string) map[string]any {
	return map[string]any{"type": "offer", "sdp": sdp, "trickle": false}
}

// negotiate sends the offer to an EchoTest handle (candidates included, no trickle) and applies the
// answer; p.start is taken when the answer is in.
func (j *janus) negotiate(ctx context.Context, h int64, p *peer) error {
	offer, err := p.offer()
	if err != nil {
		return err
	}
	answer, err := j.offerAnswer(ctx, h, offer)
	if err != nil {
		return err
	}
	p.start.Store(nowNS())
	return p.answer(answer)
}

// offerAnswer sends an offer to an EchoTest handle and returns the answer.
func (j *janus) offerAnswer(ctx context.Context, h int64, offer string) (string, error) {
	ev, err := j.call(ctx, h, map[string]any{"audio": true, "video": true}, offerJsep(offer), nil, hasJsep("answer"))
	if err != nil {
		return "", err
	}
	return ev.Jsep.SDP, nil
}

// createRoom creates a VideoRoom room for VP8 and Opus with room for publishers, through any of the
// plugin's handles. Like the Kurento scenarios, no bitrate cap and no periodic keyframe requests.
func (j *janus) createRoom(ctx context.Context, h int64, publishers int) (int64, error) {
	room := rand.Int64N(1 << 50)
	_, err := j.post(ctx, fmt.Sprintf("/%d/%d", j.sid, h), map[string]any{"janus": "message", "body": map[string]any{
		"request": "create", "room": room, "publishers": publishers, "bitrate": 0, "fir_freq": 0,
		"audiocodec": "opus", "videocodec": "vp8", "permanent": false, "notify_joining": false}})
	return room, err
}

func (j *janus) destroyRoom(ctx context.Context, h, room int64) {
	j.post(ctx, fmt.Sprintf("/%d/%d", j.sid, h), map[string]any{"janus": "message", "body": map[string]any{
		"request": "destroy", "room": room}})
}

// publish joins a VideoRoom room as a publisher on handle h and publishes p's offer; it returns the
// publisher's feed id.
func (j *janus) publish(ctx context.Context, h, room int64, p *peer) (int64, error) {
	ev, err := j.call(ctx, h, map[string]any{"request": "join", "ptype": "publisher", "room": room}, nil, nil,
		func(ev *janusReply) bool { return ev.PluginData.Data.VideoRoom == "joined" })
	if err != nil {
		return 0, err
	}
	feed := ev.PluginData.Data.ID
	offer, err := p.offer()
	if err != nil {
		return 0, err
	}
	ev, err = j.call(ctx, h, map[string]any{"request": "publish"}, offerJsep(offer), nil,
		hasJsep("answer"))
	if err != nil {
		return 0, err
	}
	p.start.Store(nowNS())
	return feed, p.answer(ev.Jsep.SDP)
}

// subscribe makes handle h a VideoRoom subscriber of feed: Janus offers, p answers. p.start is taken
// when Janus has acknowledged the answer, the moment our server's processOffer would have returned.
func (j *janus) subscribe(ctx context.Context, h, room, feed int64, p *peer) error {
	// A feed can be subscribed to once its publisher's PeerConnection is up in Janus (until then: 428,
	// no such feed): the publishers are not measured, so wait for it here.
	var ev *janusReply
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; {
		ev, err = j.call(ctx, h, map[string]any{"request": "join", "ptype": "subscriber", "room": room, "feed": feed}, nil, nil,
			hasJsep("offer"))
		var pe pluginError
		if !errors.As(err, &pe) || pe.code != 428 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	answer, err := p.answerOffer(ev.Jsep.SDP)
	if err != nil {
		return err
	}
	_, err = j.call(ctx, h, map[string]any{"request": "start"}, map[string]any{"type": "answer", "sdp": answer}, func() { p.start.Store(nowNS()) },
		func(ev *janusReply) bool { return ev.PluginData.Data.Started != "" })
	return err
}

func (j *janus) detach(ctx context.Context, h int64) {
	j.post(ctx, fmt.Sprintf("/%d/%d", j.sid, h), map[string]any{"janus": "detach"})
}

func (j *janus) close() {
	j.post(context.Background(), fmt.Sprintf("/%d", j.sid), map[string]any{"janus": "destroy"})
	close(j.stop)
	<-j.done
}
