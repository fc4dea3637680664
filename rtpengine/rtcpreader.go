package rtpengine

import (
	"encoding/binary"
	"errors"

	"github.com/pion/rtcp"
)

// RTCPReader parses compound RTCP into packets it keeps and reuses, so that the reports and
// feedback a peer sends several times a second cost no allocation (rtcp.Unmarshal makes every
// packet and slice anew). It parses the types Feedback serves (SR, RR, PLI, FIR, NACK, REMB, BYE)
// as rtcp.Unmarshal does, errors included, and skips the others. What Read returns is valid until
// the next Read. Not safe for concurrent use: one per reading goroutine.
type RTCPReader struct {
	pkts []rtcp.Packet
	sr   reused[rtcp.SenderReport]
	rr   reused[rtcp.ReceiverReport]
	pli  reused[rtcp.PictureLossIndication]
	fir  reused[rtcp.FullIntraRequest]
	nack reused[rtcp.TransportLayerNack]
	remb reused[rtcp.ReceiverEstimatedMaximumBitrate]
	bye  reused[rtcp.Goodbye]

	rembHead [20]byte
}

var (
	errRTCPTooShort = errors.New("rtpengine: RTCP packet longer than its datagram")
	errREMBLength   = errors.New("rtpengine: REMB length does not match its SSRC count")
)

// Read parses the compound packet b; b must stay unchanged while the packets are used.
func (r *RTCPReader) Read(b []byte) ([]rtcp.Packet, error) {
	r.pkts = r.pkts[:0]
	r.sr.n, r.rr.n, r.pli.n, r.fir.n, r.nack.n, r.remb.n, r.bye.n = 0, 0, 0, 0, 0, 0, 0
	for len(b) > 0 {
		var h rtcp.Header
		if err := h.Unmarshal(b); err != nil {
			return nil, err
		}
		size := (int(h.Length) + 1) * 4
		if size > len(b) {
			return nil, errRTCPTooShort
		}
		raw := b[:size]
		b = b[size:]
		p := r.packet(h)
		if p == nil {
			continue
		}
		var err error
		if remb, ok := p.(*rtcp.ReceiverEstimatedMaximumBitrate); ok {
			err = r.unmarshalREMB(remb, raw)
		} else {
			err = p.Unmarshal(raw)
		}
		if err != nil {
			return nil, err
		}
		r.pkts = append(r.pkts, p)
	}
	return r.pkts, nil
}

// packet is the reused packet for a header's type, emptied (its slices keep their room: the
// packets' Unmarshal appends to them); nil for a type not parsed.
func (r *RTCPReader) packet(h rtcp.Header) rtcp.Packet {
	switch h.Type {
	case rtcp.TypeSenderReport:
		p := r.sr.next()
		*p = rtcp.SenderReport{Reports: p.Reports[:0]}
		return p
	case rtcp.TypeReceiverReport:
		p := r.rr.next()
		*p = rtcp.ReceiverReport{Reports: p.Reports[:0]}
		return p
	case rtcp.TypeGoodbye:
		p := r.bye.next() // its Unmarshal makes its list: rare
		*p = rtcp.Goodbye{}
		return p
	case rtcp.TypeTransportSpecificFeedback:
		if h.Count == rtcp.FormatTLN {
			p := r.nack.next()
			*p = rtcp.TransportLayerNack{Nacks: p.Nacks[:0]}
			return p
		}
	case rtcp.TypePayloadSpecificFeedback:
		switch h.Count {
		case rtcp.FormatPLI:
			p := r.pli.next()
			*p = rtcp.PictureLossIndication{}
			return p
		case rtcp.FormatFIR:
			p := r.fir.next()
			*p = rtcp.FullIntraRequest{FIR: p.FIR[:0]}
			return p
		case rtcp.FormatREMB:
			p := r.remb.next()
			*p = rtcp.ReceiverEstimatedMaximumBitrate{SSRCs: p.SSRCs[:0]}
			return p
		}
	}
	return nil
}

// unmarshalREMB is the REMB's Unmarshal (which makes its SSRC list anew) into the reused list: pion
// checks the fixed part, given as a copy that lists no SSRC; the list's length is checked here.
func (r *RTCPReader) unmarshalREMB(p *rtcp.ReceiverEstimatedMaximumBitrate, raw []byte) error {
	const fixed = 20 // the REMB without its SSRCs
	if len(raw) < fixed {
		return p.Unmarshal(raw) // its error
	}
	num := int(raw[16])
	if len(raw) != fixed+4*num {
		return errREMBLength
	}
	head := r.rembHead
	copy(head[:], raw)
	head[2], head[3], head[16] = 0, fixed/4-1, 0
	ssrcs := p.SSRCs
	if err := p.Unmarshal(head[:]); err != nil {
		return err
	}
	p.SSRCs = ssrcs
	for i := fixed; i < len(raw); i += 4 {
		p.SSRCs = append(p.SSRCs, binary.BigEndian.Uint32(raw[i:]))
	}
	return nil
}

// reused is the packets of one type that a Read has used (n), kept for the next.
type reused[T any] struct {
	items []*T
	n     int
}

func (u *reused[T]) next() *T {
	if u.n == len(u.items) {
		u.items = append(u.items, new(T))
	}
	u.n++
	return u.items[u.n-1]
}
