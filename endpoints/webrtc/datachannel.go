package webrtc

import (
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/media"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DataChannelOpened reports a data channel of the peer connection that opened (either side made it).
type DataChannelOpened struct{ ChannelID int }

// DataChannelClosed reports a data channel that closed.
type DataChannelClosed struct{ ChannelID int }

// dataState joins the endpoint's data channels to the graph's DATA pads: messages the peer sends on
// any channel come out of the element's DATA source pad; data reaching its DATA sink pad goes to the
// peer on the channel opened last (KMS joins one channel to the graph).
type dataState struct {
	mu          sync.Mutex
	channels    map[uint16]*webrtc.DataChannel
	order       []*webrtc.DataChannel // open channels, oldest first
	placeholder *webrtc.DataChannel   // made by generateOffer only to offer SCTP
	out         atomic.Pointer[webrtc.DataChannel]
	in          dataInput
	dropped     atomic.Uint64 // data that reached the sink pad with no open channel
}

// dataInput is the DATA sink pad.
type dataInput struct {
	e   *Endpoint
	cur atomic.Pointer[media.Source]
}

func (d *dataInput) WriteRTP(*media.Source, *rtp.Packet) {}
func (d *dataInput) SetSource(src *media.Source)         { d.cur.Store(src) }

// WriteData sends a message of the graph to the peer.
func (d *dataInput) WriteData(src *media.Source, m *media.DataMessage) {
	if d.cur.Load() != src {
		return
	}
	dc := d.e.data.out.Load()
	if dc == nil || dc.ReadyState() != webrtc.DataChannelStateOpen {
		d.e.data.dropped.Add(1)
		return
	}
	var err error
	if m.IsString {
		err = dc.SendText(string(m.Data))
	} else {
		err = dc.Send(m.Data)
	}
	if err != nil {
		d.e.data.dropped.Add(1)
	}
}

// onDataChannel takes a channel the peer opened. pion acknowledged it to the peer before calling
// this, and runs OnOpen later on a goroutine of its own, so the peer may see the channel open, and
// messages for it may come from the graph, before OnOpen: the channel joins the graph now, and what
// the graph sends goes out once pion marks it open, right after this returns.
func (e *Endpoint) onDataChannel(dc *webrtc.DataChannel) {
	e.data.join(dc)
	e.setupChannel(dc)
}

// join makes dc one of the endpoint's channels, the one data from the graph goes out on (once only).
func (d *dataState) join(dc *webrtc.DataChannel) {
	id := dc.ID()
	if id == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.channels[*id] == dc {
		return
	}
	if d.channels == nil {
		d.channels = map[uint16]*webrtc.DataChannel{}
	}
	d.channels[*id] = dc
	d.order = append(d.order, dc)
	d.pickOut()
}

// setupChannel follows a channel's life and joins it to the graph once open.
func (e *Endpoint) setupChannel(dc *webrtc.DataChannel) {
	dc.OnOpen(func() {
		id := dc.ID()
		if id == nil {
			return
		}
		e.data.join(dc)
		// KMS 7.x reports each opening twice; applications written against it see the same.
		e.el.Emit(DataChannelOpened{ChannelID: int(*id)})
		e.el.Emit(DataChannelOpened{ChannelID: int(*id)})
	})
	dc.OnClose(func() {
		id := dc.ID()
		if id == nil {
			return
		}
		d := &e.data
		d.mu.Lock()
		_, known := d.channels[*id]
		delete(d.channels, *id)
		for i, x := range d.order {
			if x == dc {
				d.order = append(d.order[:i:i], d.order[i+1:]...)
				break
			}
		}
		d.pickOut()
		d.mu.Unlock()
		if known {
			e.el.Emit(DataChannelClosed{ChannelID: int(*id)})
			e.el.Emit(DataChannelClosed{ChannelID: int(*id)})
		}
	})
	dc.OnMessage(func(msg webrtc.DataChannelMessage) {
		e.dataSource().WriteData(&media.DataMessage{IsString: msg.IsString, Data: msg.Data})
	})
}

// pickOut chooses the channel data from the graph goes out on: the last opened, the offer's
// placeholder only when there is no other. The caller holds d.mu.
func (d *dataState) pickOut() {
	var out *webrtc.DataChannel
	for _, dc := range d.order {
		if dc != d.placeholder || out == nil {
			out = dc
		}
	}
	d.out.Store(out)
}

func (e *Endpoint) dataSource() *media.Source {
	if s := e.dataSrc.Load(); s != nil {
		return s
	}
	s := e.el.Source(media.Data, media.DefaultPad)
	e.dataSrc.Store(s)
	return s
}

// DataChannelOptions are createDataChannel's parameters; negative values are "not set".
type DataChannelOptions struct {
	Label             string
	Ordered           bool
	MaxPacketLifeTime int
	MaxRetransmits    int
	Protocol          string
}

// CreateDataChannel opens a data channel toward the peer; it needs useDataChannels and an SCTP
// association negotiated (40111 otherwise).
func (e *Endpoint) CreateDataChannel(o DataChannelOptions) error {
	e.mu.Lock()
	pc, s, st := e.pc, e.settings, e.state
	e.mu.Unlock()
	if !s.DataChannels {
		return kerr.New(kerr.OperationNotSupported, "Data channels are not enabled on this endpoint (useDataChannels)")
	}
	if pc == nil || st != negotiated || pc.RemoteDescription() == nil || !strings.Contains(pc.RemoteDescription().SDP, "m=application") {
		return kerr.New(kerr.OperationNotSupported, "No SCTP association negotiated for data channels")
	}
	init := &webrtc.DataChannelInit{Ordered: &o.Ordered}
	if o.MaxPacketLifeTime >= 0 {
		v := uint16(o.MaxPacketLifeTime)
		init.MaxPacketLifeTime = &v
	}
	if o.MaxRetransmits >= 0 {
		v := uint16(o.MaxRetransmits)
		init.MaxRetransmits = &v
	}
	if o.Protocol != "" {
		init.Protocol = &o.Protocol
	}
	dc, err := pc.CreateDataChannel(o.Label, init)
	if err != nil {
		return kerr.New(kerr.OperationNotSupported, "Cannot create the data channel: %v", err)
	}
	e.setupChannel(dc)
	return nil
}

// CloseDataChannel closes the channel with the given id; an unknown id is ignored, as KMS does.
func (e *Endpoint) CloseDataChannel(id int) error {
	e.data.mu.Lock()
	dc := e.data.channels[uint16(id)]
	e.data.mu.Unlock()
	if dc != nil {
		return dc.Close()
	}
	return nil
}
