package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// rtpPayloadMTU is the largest RTP payload the publishers send: packets of at most 1200 bytes with
// their 12-byte header, as browsers send them. Larger ones would be cut to the server's default mtu
// (1200) on the way, and the receivers' fingerprints match whole payloads only.
const rtpPayloadMTU = 1200 - 12

// clip is the media every publisher sends: a real VP8 stream (packetized once, at start) and Opus
// packets, looped. Each video payload carries its fingerprint, which receivers use to find the send
// time of what they get back (see latency.go).
type clip struct {
	frames []videoFrame
	audio  [][]byte
	kbps   float64 // video bitrate of the clip
}

type videoFrame struct {
	key      bool
	payloads [][]byte
	prints   []uint64
}

var printSeed = maphash.MakeSeed()

func fingerprint(b []byte) uint64 { return maphash.Bytes(printSeed, b) }

// loadClip reads an IVF (VP8) file and an Ogg (Opus, one 20 ms packet per page) file.
func loadClip(ivfPath, oggPath string) (*clip, error) {
	c := &clip{}
	data, err := os.ReadFile(ivfPath)
	if err != nil {
		return nil, err
	}
	r, hdr, err := ivfreader.NewWith(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ivfPath, err)
	}
	if string(hdr.FourCC[:]) != "VP80" {
		return nil, fmt.Errorf("%s: codec %q, want VP80", ivfPath, hdr.FourCC)
	}
	pay := &codecs.VP8Payloader{}
	var total int
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ivfPath, err)
		}
		f := videoFrame{key: len(frame) > 0 && frame[0]&1 == 0, payloads: pay.Payload(rtpPayloadMTU, frame)}
		for _, p := range f.payloads {
			f.prints = append(f.prints, fingerprint(p))
		}
		total += len(frame)
		c.frames = append(c.frames, f)
	}
	if len(c.frames) == 0 || !c.frames[0].key {
		return nil, fmt.Errorf("%s: no frames, or the first is not a keyframe", ivfPath)
	}
	c.kbps = float64(total) * 8 / (float64(len(c.frames)) / 30) / 1000

	data, err = os.ReadFile(oggPath)
	if err != nil {
		return nil, err
	}
	o, _, err := oggreader.NewWith(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", oggPath, err)
	}
	for {
		page, _, err := o.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", oggPath, err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || bytes.HasPrefix(page, []byte("OpusHead")) || len(page) == 0 {
			continue
		}
		c.audio = append(c.audio, page)
	}
	if len(c.audio) == 0 {
		return nil, fmt.Errorf("%s: no Opus packets", oggPath)
	}
	return c, nil
}
