package webrtc

import (
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

// DtlsStateChanged reports the DTLS connection's state as a Kurento DtlsConnectionState name: NEW,
// CONNECTING, CONNECTED, then CLOSED or FAILED.
type DtlsStateChanged struct{ State string }

// dtlsWatch follows pion's DTLS transport into Kurento's DTLS states, each reported once and in
// order. pion reports no NEW (it is where a transport starts) and CLOSED only when we close it;
// watchClose covers the peer's end.
type dtlsWatch struct {
	mu   sync.Mutex // its own lock: pion calls the handler holding the transport's
	last string
	done bool // CLOSED or FAILED reported: nothing follows
}

var dtlsStateNames = map[webrtc.DTLSTransportState]string{
	webrtc.DTLSTransportStateConnecting: "CONNECTING",
	webrtc.DTLSTransportStateConnected:  "CONNECTED",
	webrtc.DTLSTransportStateClosed:     "CLOSED",
	webrtc.DTLSTransportStateFailed:     "FAILED",
}

// watchDTLS reports the DTLS states of pc's transport, and tells the direct writer when DTLS is
// connected or has ended.
func (e *Endpoint) watchDTLS(pc *webrtc.PeerConnection, direct *directSRTP) {
	t := pc.SCTP().Transport()
	t.OnStateChange(func(s webrtc.DTLSTransportState) {
		name, ok := dtlsStateNames[s]
		if !ok {
			return
		}
		if name == "CONNECTING" {
			e.dtlsState("NEW")
		}
		e.dtlsState(name)
		switch name {
		case "CONNECTED":
			// Not here: pion holds the transport's lock while it calls us.
			go e.watchClose(pc)
			go direct.connected(pc)
		case "CLOSED", "FAILED":
			direct.stop()
		}
	})
}

// dtlsState reports a state unless it repeats the last one or the connection has ended.
func (e *Endpoint) dtlsState(name string) {
	w := &e.dtls
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.last == name {
		return
	}
	w.last, w.done = name, name == "CLOSED" || name == "FAILED"
	e.el.Emit(DtlsStateChanged{State: name})
}

// watchClose reports CLOSED when the peer ends the DTLS connection. pion keeps the connection to
// itself: with data channels the SCTP association, which reads it, closes with it; without, the end
// is seen when ICE gives up on the peer (onICEState).
func (e *Endpoint) watchClose(pc *webrtc.PeerConnection) {
	if rd := pc.RemoteDescription(); rd != nil && strings.Contains(rd.SDP, "\nm=application") {
		pc.SCTP().OnClose(func(error) { e.dtlsState("CLOSED") })
	}
}
