// Package endpoints holds what the RTP-speaking endpoints (WebRTC and plain RTP) share: the events of
// a media session, reported as typed values through the media graph.
package endpoints

// MediaSessionStarted is raised when an SDP negotiation completes.
type MediaSessionStarted struct{}

// MediaSessionTerminated is raised when the media session of a negotiated endpoint ends.
type MediaSessionTerminated struct{}

// ConnectionStateChanged reports the transport state: "CONNECTED" or "DISCONNECTED".
type ConnectionStateChanged struct{ Old, New string }

// MediaStateChanged reports whether media is exchanged with the peer: "CONNECTED" or "DISCONNECTED".
type MediaStateChanged struct{ Old, New string }
