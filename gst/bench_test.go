package gst

import (
	"bytes"
	"os"
	"strconv"
	"testing"
	"time"
)

// BenchmarkRoundTrip: one 1200-byte packet into an appsrc and back out of an appsink, one at a time:
// the cost and latency of a hop through the pipeline's process (compare KMS_GST_WORKERS=in-process).
func BenchmarkRoundTrip(b *testing.B) {
	need(b)
	p, err := NewPipeline("appsrc name=in format=time caps=application/x-rtp ! appsink name=out sync=false")
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	back := make(chan struct{}, 1)
	p.HandleSink("out", func([]byte, time.Duration) { back <- struct{}{} })
	src, _ := p.AppSrc("in")
	src.SetBlocking()
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	pkt := make([]byte, 1200)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := src.Push(pkt); err != nil {
			b.Fatal(err)
		}
		<-back
	}
}

// BenchmarkWorkerSpawn: the time from exec to a worker ready to build pipelines, and the memory of a
// worker running a small VP8 pipeline (resident and proportional set sizes).
func BenchmarkWorkerSpawn(b *testing.B) {
	need(b)
	if inProcess() {
		b.Skip("no workers in-process")
	}
	var rss, pss int64
	for i := 0; i < b.N; i++ {
		p, err := NewPipeline("videotestsrc is-live=true ! video/x-raw,width=640,height=480 ! vp8enc deadline=1 ! vp8dec ! fakesink")
		if err != nil {
			b.Fatal(err)
		}
		p.Start()
		b.StopTimer()
		time.Sleep(time.Second)
		rss += rssBytes(p.WorkerPID())
		pss += pssBytes(p.WorkerPID())
		p.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(rss)/float64(b.N)/(1<<20), "RSS-MiB/worker")
	b.ReportMetric(float64(pss)/float64(b.N)/(1<<20), "PSS-MiB/worker")
	b.ReportMetric(float64(LastSpawnTime().Milliseconds()), "ms-last-spawn")
}

func pssBytes(pid int) int64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, l := range bytes.Split(data, []byte("\n")) {
		if f := bytes.Fields(l); len(f) >= 2 && string(f[0]) == "Pss:" {
			n, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return n << 10
		}
	}
	return 0
}
