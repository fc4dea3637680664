package router

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/kurento-go/kms/kerr"
)

// errLost is the error of a call whose node connection ended before the answer.
var errLost = errors.New("connection to the media node lost")

// callTimeout bounds one request to a node (getUsedCpu with a long interval is the slowest).
const callTimeout = 30 * time.Second

// upstream is one WebSocket connection from the router to a node, carrying one client session (the
// node binds a connection to one session, and sends that session's events on it).
type upstream struct {
	node    string
	ws      *websocket.Conn
	nextID  atomic.Int64
	onEvent func(msg []byte)
	onLost  func() // the connection ended without close
	closing atomic.Bool

	mu      sync.Mutex
	pending map[int64]chan reply
	ended   bool
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

func dial(ctx context.Context, node, uri string, onEvent func([]byte), onLost func()) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, uri, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(16 << 20)
	u := &upstream{node: node, ws: ws, onEvent: onEvent, onLost: onLost, pending: map[int64]chan reply{}}
	go u.readLoop()
	return u, nil
}

func (u *upstream) readLoop() {
	for {
		_, data, err := u.ws.Read(context.Background())
		if err != nil {
			u.mu.Lock()
			u.ended = true
			for id, ch := range u.pending {
				close(ch)
				delete(u.pending, id)
			}
			u.mu.Unlock()
			u.ws.CloseNow()
			if !u.closing.Load() {
				u.onLost()
			}
			return
		}
		var msg struct {
			ID     *int64 `json:"id"`
			Method string `json:"method"`
			reply
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.ID == nil {
			if msg.Method == "onEvent" {
				u.onEvent(data)
			}
			continue
		}
		u.mu.Lock()
		ch := u.pending[*msg.ID]
		delete(u.pending, *msg.ID)
		u.mu.Unlock()
		if ch != nil {
			ch <- msg.reply
		}
	}
}

// call sends a request and returns its result object; a node's error comes back as the *kerr.Error
// the node sent (code, message and data as they were), a lost connection as errLost.
func (u *upstream) call(method string, params map[string]any) (json.RawMessage, error) {
	id := u.nextID.Add(1)
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	ch := make(chan reply, 1)
	u.mu.Lock()
	if u.ended {
		u.mu.Unlock()
		return nil, errLost
	}
	u.pending[id] = ch
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := u.ws.Write(ctx, websocket.MessageText, req); err != nil {
		u.forget(id)
		return nil, errLost
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, errLost
		}
		if r.Error != nil {
			e := &kerr.Error{Code: r.Error.Code, Message: r.Error.Message}
			if len(r.Error.Data) > 0 {
				e.Data = r.Error.Data
			}
			return nil, e
		}
		return r.Result, nil
	case <-ctx.Done():
		u.forget(id)
		return nil, kerr.New(kerr.UnexpectedError, "media node did not answer %s within %s", method, callTimeout)
	}
}

func (u *upstream) forget(id int64) {
	u.mu.Lock()
	delete(u.pending, id)
	u.mu.Unlock()
}

// close ends the connection on purpose (no onLost).
func (u *upstream) close() {
	u.closing.Store(true)
	u.ws.CloseNow()
}
