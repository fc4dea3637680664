package media

import (
	"strings"

	"github.com/pion/rtp"
)

// rtpHeaderSize is the fixed RTP header; CSRCs add 4 bytes each.
const rtpHeaderSize = 12

// SetMTU bounds the RTP packets the sender writes to mtu bytes, header included (KMS's mtu, which
// its payloaders count the same way; the SRTP tag comes on top). 0: no bound. Packets of the source
// that are larger are repacketised where the codec's payload format allows it: VP8, and H.264
// single NAL units and FU-A fragments (as FU-A). Other codecs' packets go as they are: Opus and
// G.711 frames cannot be split, and our own encoders already packetise within 1200 bytes.
func (s *Sender) SetMTU(mtu int) {
	s.mu.Lock()
	s.mtu = mtu
	if s.out != nil {
		s.rebind()
	}
	s.mu.Unlock()
}

// fragmentation is how one source packet is cut to fit the MTU: every fragment starts with the
// same prefix (adjusted per fragment) followed by its share of data.
type fragmentation struct {
	n      int // fragments, 1: the packet goes as it is
	chunk  int
	prefix [maxPrefix]byte
	plen   int
	data   []byte
	h264   bool // prefix is a FU-A indicator and header; else a VP8 payload descriptor
	start  bool // the first fragment starts the frame, NAL unit or partition
	end    bool // the last fragment ends the NAL unit (H.264)
}

// maxPrefix covers the longest VP8 payload descriptor (6 bytes) and the FU-A header (2).
const maxPrefix = 6

// planFragments decides how a packet of the source is sent to fit an MTU; the same packet, MTU and
// codec always give the same fragments, so a retransmission can cut the cached packet again.
func planFragments(mtu int, mimeType string, h *rtp.Header, payload []byte, f *fragmentation) {
	f.n = 1
	room := mtu - rtpHeaderSize - 4*len(h.CSRC)
	if mtu <= 0 || len(payload) <= room {
		return
	}
	switch {
	case strings.EqualFold(mimeType, "video/VP8"):
		planVP8(payload, room, f)
	case strings.EqualFold(mimeType, "video/H264"):
		planH264(payload, room, f)
	}
}

func planVP8(p []byte, room int, f *fragmentation) {
	d := 1
	if p[0]&0x80 != 0 { // X: extension byte
		if len(p) < 2 {
			return
		}
		x := p[1]
		d = 2
		if x&0x80 != 0 { // I: picture id, 1 or 2 bytes
			if len(p) > d && p[d]&0x80 != 0 {
				d += 2
			} else {
				d++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			d++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX
			d++
		}
	}
	if d > maxPrefix || d >= len(p) || room-d < 1 {
		return
	}
	f.set(p[:d], p[d:], room-d)
	f.h264, f.start = false, p[0]&0x10 != 0
}

func planH264(p []byte, room int, f *fragmentation) {
	if room < 3 || len(p) < 2 {
		return
	}
	switch typ := p[0] & 0x1f; {
	case typ >= 1 && typ <= 23: // single NAL unit: its header becomes the FU indicator and header
		f.set([]byte{p[0]&0xe0 | 28, p[0] & 0x1f}, p[1:], room-2)
		f.start, f.end = true, true
	case typ == 28: // FU-A: cut further, keeping its start and end bits at the ends
		f.set([]byte{p[0], p[1] & 0x1f}, p[2:], room-2)
		f.start, f.end = p[1]&0x80 != 0, p[1]&0x40 != 0
	default: // STAP-A and others are not cut
		return
	}
	f.h264 = true
}

func (f *fragmentation) set(prefix, data []byte, chunk int) {
	f.plen = copy(f.prefix[:], prefix)
	f.data, f.chunk = data, chunk
	f.n = (len(data) + chunk - 1) / chunk
}

// fragment writes fragment i into buf and returns it.
func (f *fragmentation) fragment(i int, buf []byte) []byte {
	n := copy(buf, f.prefix[:f.plen])
	first, last := i == 0, i == f.n-1
	if f.h264 {
		if first && f.start {
			buf[1] |= 0x80
		}
		if last && f.end {
			buf[1] |= 0x40
		}
	} else if !first || !f.start {
		buf[0] &^= 0x10 // S: only the first fragment starts the partition
	}
	lo := i * f.chunk
	hi := min(lo+f.chunk, len(f.data))
	n += copy(buf[n:], f.data[lo:hi])
	return buf[:n]
}

// writeFragments sends the fragments of a packet whose header h carries the first fragment's
// sequence number; the marker goes on the last one.
func writeFragments(write WriteFunc, h *rtp.Header, f *fragmentation) error {
	var buf [maxSlotPayload]byte
	marker := h.Marker
	for i := 0; i < f.n; i++ {
		h.Marker = marker && i == f.n-1
		if err := write(h, f.fragment(i, buf[:])); err != nil {
			return err
		}
		h.SequenceNumber++
	}
	return nil
}
