package main

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// pace sends the media of every publisher of the tool.
var pace pacer

// pacerTick is how often the pacer looks for what is due: a frame or an Opus packet leaves up to
// this much after its time, which it records as its send time.
const pacerTick = 2 * time.Millisecond

// pacer sends every publisher's media from one goroutine: each video frame's packets in one burst
// every 33 ms and an Opus packet every 20 ms, as a ticker per publisher and stream did, but with one
// timer waking the tool every pacerTick for all of them instead of 80 wake-ups a second per
// publisher (timers and the scheduler were a tenth of the tool's CPU at 300 sessions). Its
// goroutine runs while there are publishers.
type pacer struct {
	batch   *sendBatch // the direct path's packets of the publisher being served
	mu      sync.Mutex
	pubs    []*publisher
	running bool
}

func (pc *pacer) add(p *publisher) {
	now := time.Now()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	p.nextVideo, p.nextAudio = now, now
	p.vseq, p.aseq = uint16(rand.Uint32()), uint16(rand.Uint32())
	p.vts, p.ats = rand.Uint32(), rand.Uint32()
	pc.pubs = append(pc.pubs, p)
	if pc.batch == nil {
		pc.batch = newSendBatch()
	}
	if !pc.running {
		pc.running = true
		go pc.run()
	}
}

// remove stops p's media; once it returns, the pacer sends none of p's packets.
func (pc *pacer) remove(p *publisher) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if i := slices.Index(pc.pubs, p); i >= 0 {
		pc.pubs = slices.Delete(pc.pubs, i, i+1)
	}
}

func (pc *pacer) run() {
	t := time.NewTicker(pacerTick)
	defer t.Stop()
	for range t.C {
		now := time.Now()
		pc.mu.Lock()
		if len(pc.pubs) == 0 {
			pc.running = false
			pc.mu.Unlock()
			return
		}
		for _, p := range pc.pubs {
			if !now.Before(p.nextVideo) {
				p.sendFrame()
				p.nextVideo = nextDue(p.nextVideo, now, time.Second/30)
			}
			if !now.Before(p.nextAudio) {
				p.sendAudio()
				p.nextAudio = nextDue(p.nextAudio, now, 20*time.Millisecond)
			}
			p.flush() // one sendmmsg for what was due
		}
		pc.mu.Unlock()
	}
}

// nextDue is the time after at, one period on; a pacer later than that skips what it missed, as a
// ticker drops ticks.
func nextDue(at, now time.Time, period time.Duration) time.Time {
	if at = at.Add(period); at.Before(now) {
		return now.Add(period)
	}
	return at
}
