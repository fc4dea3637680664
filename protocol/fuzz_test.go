package protocol

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/kurento-go/kms/api"
	"github.com/kurento-go/kms/config"
	"github.com/kurento-go/kms/elements"
	"github.com/kurento-go/kms/internal/fuzzseed"
	"github.com/kurento-go/kms/objects"
)

// panicWatch is the real registry with a witness of panics: the dispatcher turns a panic into a -32603
// answer so that the server survives, which would hide the bug from the fuzzer.
type panicWatch struct {
	*objects.Registry
	mu     sync.Mutex
	panics []string
}

func (p *panicWatch) watch() {
	if r := recover(); r != nil {
		p.mu.Lock()
		p.panics = append(p.panics, fmt.Sprint(r))
		p.mu.Unlock()
		panic(r)
	}
}

func (p *panicWatch) Create(sid, typeName string, params any) (string, error) {
	defer p.watch()
	return p.Registry.Create(sid, typeName, params)
}

func (p *panicWatch) Describe(sid, id string) (map[string]any, error) {
	defer p.watch()
	return p.Registry.Describe(sid, id)
}

func (p *panicWatch) Invoke(sid, id, operation string, params any) (any, error) {
	defer p.watch()
	return p.Registry.Invoke(sid, id, operation, params)
}

func (p *panicWatch) Subscribe(sid, id, event string) (string, error) {
	defer p.watch()
	return p.Registry.Subscribe(sid, id, event)
}

func (p *panicWatch) Release(sid, id string) {
	defer p.watch()
	p.Registry.Release(sid, id)
}

// FuzzRequest sends whole messages through a connection's handler, as they arrive from the
// WebSocket, to a server with every element class. Every message gets a JSON-RPC answer (or none, for
// a notification) and no handler panics.
func FuzzRequest(f *testing.F) {
	for _, m := range fuzzseed.Requests() {
		f.Add(m)
	}
	for _, sdp := range fuzzseed.SDPs() {
		params, _ := json.Marshal(map[string]any{"object": "x_kurento.MediaPipeline/y_kurento.WebRtcEndpoint",
			"operation": "processOffer", "operationParams": map[string]any{"offer": sdp}})
		f.Add([]byte(`{"jsonrpc":"2.0","method":"invoke","id":1,"params":` + string(params) + `}`))
	}
	cfg, err := config.Load([]string{"-f", f.TempDir() + "/none.conf.json"}, func(string) string { return "" })
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := objects.NewRegistry(api.MustLoad(), objects.ServerManagerInfo{Started: time.Now()}, log)
	elements.Define(reg, cfg)
	watch := &panicWatch{Registry: reg}
	srv := NewServer(watch, "kurento", time.Minute, log)
	reg.SetNotifier(srv)
	f.Cleanup(reg.ReleaseAll)
	f.Fuzz(func(t *testing.T, msg []byte) {
		c := &conn{server: srv}
		out := c.handle(msg)
		defer reg.ReleaseAll() // what one message creates must not pile up across executions
		watch.mu.Lock()
		panics := watch.panics
		watch.panics = nil
		watch.mu.Unlock()
		if len(panics) > 0 {
			t.Fatalf("handler panicked on %q: %v", msg, panics)
		}
		if out == nil {
			return
		}
		var resp map[string]any
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("answer is not JSON: %q", out)
		}
		_, isResult := resp["result"]
		_, isError := resp["error"]
		if resp["jsonrpc"] != "2.0" || isResult == isError {
			t.Fatalf("answer is not a JSON-RPC response: %s", out)
		}
	})
}
