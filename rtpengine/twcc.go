package rtpengine

import (
	"sync"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// TWCC records the arrival of the packets that carry a transport-wide sequence number and builds
// the transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions)
// that a publisher's send-side estimation needs. The readers of a connection record; its feedback
// loop builds, every 100 ms or so.
type TWCC struct {
	mu   sync.Mutex
	rec  *twcc.Recorder
	base int64 // unix nanos the arrival times count from
	n    int   // packets recorded since the last feedback
}

// NewTWCC starts recording at base (unix nanos).
func NewTWCC(base int64) *TWCC { return &TWCC{rec: twcc.NewRecorder(0), base: base} }

// Record notes that the packet of stream ssrc with transport-wide sequence number seq arrived at
// now (unix nanos).
func (t *TWCC) Record(ssrc uint32, seq uint16, now int64) {
	t.mu.Lock()
	t.rec.Record(ssrc, seq, (now-t.base)/1000)
	t.n++
	t.mu.Unlock()
}

// Feedback is the feedback for what arrived since the last call; nil when nothing did.
func (t *TWCC) Feedback() []rtcp.Packet {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return nil
	}
	t.n = 0
	return t.rec.BuildFeedbackPacket()
}
