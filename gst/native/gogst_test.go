package native

import (
	"testing"

	gogst "github.com/go-gst/go-gst/gst"
	"github.com/go-gst/go-gst/gst/app"
)

// TestGoGstPushAllocs measures what pushing through go-gst's own API would cost per packet, the
// reason the bridge pushes through bridge.c instead.
func TestGoGstPushAllocs(t *testing.T) {
	if err := Init(); err != nil {
		t.Skipf("GStreamer unavailable: %v", err)
	}
	p, err := NewPipeline("appsrc name=in format=time caps=application/x-rtp ! fakesink sync=false")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, _ := p.AppSrc("in")
	src := app.SrcFromElement(gogst.FromGstElementUnsafeNone(s.native()))
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 1200)
	allocs := testing.AllocsPerRun(1000, func() { src.PushBuffer(gogst.NewBufferFromBytes(pkt)) })
	t.Logf("go-gst PushBuffer(NewBufferFromBytes): %.1f Go allocations per packet (plus a finalizer: the GstBuffer is released only by the GC)", allocs)
}
