// Package client is a small Kurento Protocol client in Go, for the project's tests and load tool: it
// creates objects, invokes methods and receives events over one WebSocket, as kurento-client does.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Error is an error reply of the server.
type Error struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("kurento error %d: %s", e.Code, e.Message) }

// Event is an onEvent notification.
type Event struct {
	Object string          `json:"object"`
	Type   string          `json:"type"`
	Data   json.RawMessage `json:"data"`
}

// Client is one connection to the server. Its methods may be called from several goroutines.
type Client struct {
	ws      *websocket.Conn
	nextID  atomic.Int64
	timeout time.Duration

	mu        sync.Mutex
	sessionID string
	pending   map[int64]chan reply
	handlers  map[string]func(Event) // object + "/" + type
	closed    bool
	done      chan struct{}
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  *Error          `json:"error"`
}

// Dial connects to a server URL such as ws://127.0.0.1:8888/kurento.
func Dial(ctx context.Context, url string) (*Client, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(16 << 20)
	c := &Client{ws: ws, timeout: 20 * time.Second, pending: map[int64]chan reply{},
		handlers: map[string]func(Event){}, done: make(chan struct{})}
	go c.readLoop(ws, c.done)
	return c, nil
}

// Redial continues the client's session on a new connection to url (another router of a cluster,
// say), as kurento-client does when its socket drops: it sends connect with the sessionId, and
// the subscriptions and event handlers carry on.
func (c *Client) Redial(ctx context.Context, url string) error {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	ws.SetReadLimit(16 << 20)
	c.mu.Lock()
	old, oldDone := c.ws, c.done
	c.ws, c.closed, c.done = ws, false, make(chan struct{})
	go c.readLoop(ws, c.done)
	c.mu.Unlock()
	old.CloseNow()
	<-oldDone
	return c.Call(ctx, "connect", nil, nil)
}

// SessionID is the session the server gave this client.
func (c *Client) SessionID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessionID
}

func (c *Client) readLoop(ws *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, data, err := ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			if c.ws != ws { // replaced by Redial
				c.mu.Unlock()
				return
			}
			c.closed = true
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var msg struct {
			ID     *int64          `json:"id"`
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
			reply
		}
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		if msg.ID == nil {
			if msg.Method == "onEvent" {
				c.dispatchEvent(msg.Params)
			}
			continue
		}
		c.mu.Lock()
		ch := c.pending[*msg.ID]
		delete(c.pending, *msg.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- msg.reply
		}
	}
}

func (c *Client) dispatchEvent(params json.RawMessage) {
	var p struct {
		Value Event `json:"value"`
	}
	if json.Unmarshal(params, &p) != nil {
		return
	}
	c.mu.Lock()
	h := c.handlers[p.Value.Object+"/"+p.Value.Type]
	c.mu.Unlock()
	if h != nil {
		h(p.Value)
	}
}

// Call sends a request and decodes result.value into value (which may be nil).
func (c *Client) Call(ctx context.Context, method string, params map[string]any, value any) error {
	id := c.nextID.Add(1)
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("connection closed")
	}
	c.pending[id] = ch
	ws := c.ws
	if c.sessionID != "" && method != "ping" {
		if params == nil {
			params = map[string]any{}
		}
		params["sessionId"] = c.sessionID
	}
	c.mu.Unlock()
	req, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := ws.Write(ctx, websocket.MessageText, req); err != nil {
		return err
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return errors.New("connection closed")
		}
		if r.Error != nil {
			return r.Error
		}
		var res struct {
			SessionID string          `json:"sessionId"`
			Value     json.RawMessage `json:"value"`
		}
		if len(r.Result) > 0 && string(r.Result) != "null" {
			if err := json.Unmarshal(r.Result, &res); err != nil {
				return err
			}
		}
		if res.SessionID != "" {
			c.mu.Lock()
			c.sessionID = res.SessionID
			c.mu.Unlock()
		}
		if value != nil && len(res.Value) > 0 {
			return json.Unmarshal(res.Value, value)
		}
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return ctx.Err()
	}
}

// Requests is how many requests this client has sent (ids are taken in order from 1).
func (c *Client) Requests() int64 { return c.nextID.Load() }

// Create makes an object and returns its id.
func (c *Client) Create(ctx context.Context, typ string, constructorParams map[string]any) (string, error) {
	var id string
	params := map[string]any{"type": typ, "properties": map[string]any{}}
	if constructorParams != nil {
		params["constructorParams"] = constructorParams
	}
	err := c.Call(ctx, "create", params, &id)
	return id, err
}

// Invoke calls an operation and decodes its return value into value (which may be nil).
func (c *Client) Invoke(ctx context.Context, object, operation string, params map[string]any, value any) error {
	p := map[string]any{"object": object, "operation": operation}
	if params != nil {
		p["operationParams"] = params
	}
	return c.Call(ctx, "invoke", p, value)
}

// Subscribe delivers the object's events of a type to h, on the client's reader goroutine.
func (c *Client) Subscribe(ctx context.Context, object, event string, h func(Event)) error {
	c.mu.Lock()
	c.handlers[object+"/"+event] = h
	c.mu.Unlock()
	return c.Call(ctx, "subscribe", map[string]any{"object": object, "type": event}, nil)
}

// Release destroys an object.
func (c *Client) Release(ctx context.Context, object string) error {
	return c.Call(ctx, "release", map[string]any{"object": object}, nil)
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	ws, done := c.ws, c.done
	c.mu.Unlock()
	err := ws.Close(websocket.StatusNormalClosure, "")
	<-done
	return err
}
