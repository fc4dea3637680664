package main

import (
	"bytes"
	"context"
	"encoding/json"
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
// IceCandidateFound, processOffer, gatherCandidates. p.start is taken just before processOffer.
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
	p.start = nowNS()
	var answer string
	if err := c.Invoke(ctx, ep, "processOffer", map[string]any{"offer": offer}, &answer); err != nil {
		return fmt.Errorf("processOffer: %w", err)
	}
	k.mu.Lock()
	k.offerMS = append(k.offerMS, float64(nowNS()-p.start)/1e6)
	k.mu.Unlock()
	if err := p.answer(answer); err != nil {
		return err
	}
	return c.Invoke(ctx, ep, "gatherCandidates", nil, nil)
}

// janus is Janus's EchoTest over its HTTP transport: one session, a handle per peer, a long poll
// that delivers the answers.
type janus struct {
	base string
	hc   *http.Client
	sid  int64

	mu      sync.Mutex
	waiters map[int64]chan string // handle -> answer SDP
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
	Jsep *struct {
		Type string `json:"type"`
		SDP  string `json:"sdp"`
	} `json:"jsep"`
}

func dialJanus(ctx context.Context, base string) (*janus, error) {
	j := &janus{base: base, waiters: map[int64]chan string{}, stop: make(chan struct{}), done: make(chan struct{}),
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
	return &r, nil
}

// poll long-polls the session's events (this is also its keepalive) and hands answers to waiters.
func (j *janus) poll() {
	defer close(j.done)
	for {
		select {
		case <-j.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/%d?maxev=20", j.base, j.sid), nil)
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
		var evs []janusReply
		if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
			json.Unmarshal(body, &evs)
		} else {
			var ev janusReply
			if json.Unmarshal(body, &ev) == nil {
				evs = append(evs, ev)
			}
		}
		for _, ev := range evs {
			if ev.Janus == "event" && ev.Jsep != nil && ev.Jsep.Type == "answer" {
				j.mu.Lock()
				ch := j.waiters[ev.Sender]
				delete(j.waiters, ev.Sender)
				j.mu.Unlock()
				if ch != nil {
					ch <- ev.Jsep.SDP
				}
			}
		}
	}
}

// attach makes an EchoTest handle.
func (j *janus) attach(ctx context.Context) (int64, error) {
	r, err := j.post(ctx, fmt.Sprintf("/%d", j.sid), map[string]any{"janus": "attach", "plugin": "janus.plugin.echotest"})
	if err != nil {
		return 0, err
	}
	return r.Data.ID, nil
}

// negotiate sends the offer (candidates included, no trickle) and applies the answer. p.start is
// taken just before the offer is sent.
func (j *janus) negotiate(ctx context.Context, h int64, p *peer) error {
	offer, err := p.offer()
	if err != nil {
		return err
	}
	answer, err := j.offerAnswer(ctx, h, offer, func() { p.start = nowNS() })
	if err != nil {
		return err
	}
	return p.answer(answer)
}

func (j *janus) offerAnswer(ctx context.Context, h int64, offer string, sent func()) (string, error) {
	ch := make(chan string, 1)
	j.mu.Lock()
	j.waiters[h] = ch
	j.mu.Unlock()
	if sent != nil {
		sent()
	}
	_, err := j.post(ctx, fmt.Sprintf("/%d/%d", j.sid, h), map[string]any{"janus": "message",
		"body": map[string]any{"audio": true, "video": true},
		"jsep": map[string]any{"type": "offer", "sdp": offer, "trickle": false}})
	if err != nil {
		return "", err
	}
	select {
	case a := <-ch:
		return a, nil
	case <-ctx.Done():
		return "", fmt.Errorf("janus answer: %w", ctx.Err())
	case <-time.After(20 * time.Second):
		return "", fmt.Errorf("janus: no answer for handle %d", h)
	}
}

func (j *janus) detach(ctx context.Context, h int64) {
	j.post(ctx, fmt.Sprintf("/%d/%d", j.sid, h), map[string]any{"janus": "detach"})
}

func (j *janus) close() {
	j.post(context.Background(), fmt.Sprintf("/%d", j.sid), map[string]any{"janus": "destroy"})
	close(j.stop)
	<-j.done
}
