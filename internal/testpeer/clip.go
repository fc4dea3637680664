package testpeer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kurento-go/kms/internal/testmedia"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// ClipOptions name the media files a clip peer sends, looping, in real time. Make them with ffmpeg
// (see TESTING.md): VP8 in IVF, or H.264 Annex-B (".h264", one slice per frame, SPS/PPS repeated at
// every keyframe), and Opus in Ogg. An empty name sends no such track.
type ClipOptions struct {
	Video string
	Audio string
	// AudioOut, when set, makes the peer receive audio too and write what it receives to this Ogg
	// Opus file (complete once the peer is closed), for the test to decode.
	AudioOut string
}

// NewClip makes a peer that sends real, decodable media read from files (the synthetic media of New
// is not decodable). Media starts once the peer is connected and loops until Close.
func NewClip(opts ClipOptions) (*Peer, error) {
	var video [][]byte
	var videoMime string
	var err error
	if opts.Video != "" {
		if strings.HasSuffix(opts.Video, ".h264") {
			videoMime = webrtc.MimeTypeH264
			video, err = readH264(opts.Video)
		} else {
			videoMime = webrtc.MimeTypeVP8
			video, err = testmedia.IVFFrames(opts.Video)
		}
		if err != nil {
			return nil, err
		}
	}
	var audio [][]byte
	if opts.Audio != "" {
		if audio, err = readOgg(opts.Audio); err != nil {
			return nil, err
		}
	}

	pc, err := newPeerConnection(Options{})
	if err != nil {
		return nil, err
	}
	p := &Peer{PC: pc, opts: Options{Send: true}, connected: make(chan struct{}), firstVideo: make(chan struct{}),
		stop: make(chan struct{}), mediaStop: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			p.once.Do(func() { close(p.connected) })
		}
	})
	audioDir := webrtc.RTPTransceiverDirectionSendonly
	if opts.AudioOut != "" {
		audioDir = webrtc.RTPTransceiverDirectionSendrecv
		if err := p.recordAudio(opts.AudioOut); err != nil {
			pc.Close()
			return nil, err
		}
	}
	add := func(c webrtc.RTPCodecCapability, id string, samples [][]byte, d time.Duration) error {
		tr, err := webrtc.NewTrackLocalStaticSample(c, id, "clip")
		if err != nil {
			pc.Close()
			return err
		}
		dir := webrtc.RTPTransceiverDirectionSendonly
		if id == "audio" {
			dir = audioDir
		}
		t, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: dir})
		if err != nil {
			pc.Close()
			return err
		}
		p.wg.Add(2)
		go p.readSenderRTCP(t.Sender())
		go p.sendLoop(tr, samples, d, id == "video")
		return nil
	}
	if audio != nil {
		if err := add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", audio, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}
	if video != nil {
		c := webrtc.RTPCodecCapability{MimeType: videoMime, ClockRate: 90000}
		if videoMime == webrtc.MimeTypeH264 {
			c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		}
		if err := add(c, "video", video, time.Second/30); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// recordAudio writes the audio the peer receives to an Ogg file, until the peer is closed.
func (p *Peer) recordAudio(path string) error {
	w, err := oggwriter.New(path, 48000, 2)
	if err != nil {
		return err
	}
	var mu sync.Mutex // the track reader writes, Close finishes the file
	closed := false
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		<-p.stop
		mu.Lock()
		closed = true
		w.Close()
		mu.Unlock()
	}()
	p.PC.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeAudio {
			return
		}
		for {
			pkt, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			p.AudioReceived.Add(1)
			mu.Lock()
			if !closed {
				err = w.WriteRTP(pkt)
			}
			stop := closed || err != nil
			mu.Unlock()
			if stop {
				return
			}
		}
	})
	return nil
}

// sendLoop writes one sample per period once connected, looping over the clip. It keeps to the
// wall clock as a capturing browser does: a late tick (a loaded machine) sends the samples it missed
// at once, so the media's timestamps do not fall behind the time it was sent for.
func (p *Peer) sendLoop(tr *webrtc.TrackLocalStaticSample, samples [][]byte, period time.Duration, video bool) {
	defer p.wg.Done()
	select {
	case <-p.connected:
	case <-p.stop:
		return
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	start := time.Now()
	for sent := 0; ; {
		select {
		case <-p.stop:
			return
		case <-p.mediaStop:
			return
		case <-tick.C:
		}
		for due := int(time.Since(start) / period); sent < due; sent++ {
			if err := tr.WriteSample(media.Sample{Data: samples[sent%len(samples)], Duration: period}); err != nil && errors.Is(err, io.ErrClosedPipe) {
				return
			}
			if video {
				p.FramesSent.Add(1)
			}
		}
	}
}

func readOgg(name string) ([][]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	r, _, err := oggreader.NewWith(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var packets [][]byte
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) || len(page) == 0 {
			continue
		}
		packets = append(packets, page)
	}
	if len(packets) == 0 {
		return nil, fmt.Errorf("%s: no packets", name)
	}
	return packets, nil
}

// readH264 splits an Annex-B stream into access units (each ends with its one slice), kept in
// Annex-B with 4-byte start codes as pion's H.264 payloader takes them.
func readH264(name string) ([][]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var units [][]byte
	var cur []byte
	for _, nal := range splitAnnexB(b) {
		if len(nal) == 0 {
			continue
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal...)
		if t := nal[0] & 0x1f; t == 1 || t == 5 {
			units = append(units, cur)
			cur = nil
		}
	}
	if len(units) == 0 {
		return nil, fmt.Errorf("%s: no access units", name)
	}
	return units, nil
}

func splitAnnexB(b []byte) [][]byte {
	var nals [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 {
					end--
				}
				nals = append(nals, b[start:end])
			}
			start = i + 3
			i += 2
		}
	}
	if start >= 0 && start < len(b) {
		nals = append(nals, b[start:])
	}
	return nals
}
