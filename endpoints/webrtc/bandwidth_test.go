package webrtc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testpeer"
)

// maxAudioRecvBandwidth and maxVideoRecvBandwidth reach the peer as b=AS in the answer's audio and
// video m-lines; getRembParams shows KMS's defaults under what the application set.
func TestRecvBandwidthAnnounced(t *testing.T) {
	s := newSession(t, 20*time.Second)
	ep := s.endpoint()
	for op, v := range map[string]int{"setMaxAudioRecvBandwidth": 32, "setMaxVideoRecvBandwidth": 700} {
		name := strings.ToLower(op[3:4]) + op[4:]
		if err := s.c.Invoke(s.ctx, ep, op, map[string]any{name: v}, nil); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	p := s.peer(testpeer.Options{Send: true, Receive: true})
	s.negotiate(p, ep)
	remote := p.PC.RemoteDescription().SDP
	for kind, want := range map[string]string{"audio": "b=AS:32", "video": "b=AS:700"} {
		i := strings.Index(remote, "m="+kind)
		end := strings.Index(remote[i+1:], "\nm=")
		section := remote[i:]
		if end >= 0 {
			section = remote[i : i+1+end]
		}
		if !strings.Contains(section, "\n"+want+"\r\n") {
			t.Errorf("%s m-line of the answer the peer applied lacks %s:\n%s", kind, want, section)
		}
	}

	if err := s.c.Invoke(s.ctx, ep, "setRembParams", map[string]any{"rembParams": map[string]any{
		"__module__": "kurento", "__type__": "RembParams", "rembOnConnect": 500000}}, nil); err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	if err := s.c.Invoke(s.ctx, ep, "getRembParams", nil, &raw); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(raw, &got)
	if got["__type__"] != "RembParams" || got["rembOnConnect"] != 500000.0 || got["upLosses"] != 12.0 || got["decrementFactor"] != 0.5 {
		t.Errorf("getRembParams: %s", raw)
	}
}
