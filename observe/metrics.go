package observe

import (
	"github.com/kurento-go/kms/egress"
	"github.com/kurento-go/kms/endpoints"
	"github.com/kurento-go/kms/endpoints/webrtc"
	"github.com/kurento-go/kms/gst"
	"github.com/kurento-go/kms/media"
	"github.com/kurento-go/kms/metrics"
	"github.com/kurento-go/kms/objects"
	"github.com/kurento-go/kms/processing"
)

// Snapshot sums up the server for the metrics collector; connections is the number of open
// WebSocket connections.
func Snapshot(r *objects.Registry, connections int) metrics.Snapshot {
	snap := metrics.Snapshot{
		Sessions:         len(r.Sessions()),
		Connections:      connections,
		Elements:         map[string]int{},
		Endpoints:        map[metrics.EndpointState]int{},
		Transcoders:      map[metrics.CodecPair]int{},
		GStreamerErrors:  gst.Errors(),
		GstWorkers:       gst.Workers(),
		GstWorkerCrashes: gst.WorkerCrashes(),
	}
	snap.GstWorkerRestarts = processing.WorkerRestarts()
	egressed := egress.Sent()
	snap.EgressSyscalls, snap.EgressDatagrams = egressed.Syscalls, egressed.Datagrams
	rtp := webrtc.SentRTP()
	snap.RTPSentDirect, snap.RTPSentPion = rtp.Direct, rtp.Pion
	rtp = webrtc.ReceivedRTP()
	snap.RTPRecvDirect, snap.RTPRecvPion = rtp.Direct, rtp.Pion
	for _, p := range Pipelines(r) {
		snap.Pipelines++
		for _, e := range p.Elements {
			snap.Elements[e.Class]++
			if e.ConnectionState != "" {
				snap.Endpoints[metrics.EndpointState{Connection: e.ConnectionState, Media: e.MediaState}]++
			}
			if e.Recording {
				snap.RecordingFilesOpen++
			}
			snap.Figures = append(snap.Figures, figuresOf(e))
		}
	}
	for _, t := range media.Transcoders() {
		from := ""
		if c := t.From.Codec(); c != nil {
			from = media.CodecName(c.MimeType)
		}
		snap.Transcoders[metrics.CodecPair{From: from, To: media.CodecName(t.To)}]++
	}
	return snap
}

// Figures are the counters of one object, read as it is released (see metrics.Set.Retire); ok is
// false for objects that count nothing.
func Figures(o objects.Object) (f metrics.Figures, ok bool) {
	e := objects.AsElement(o)
	if e == nil {
		return f, false
	}
	return figuresOf(readElement(o, e, nil)), true
}

func figuresOf(e Element) metrics.Figures {
	var f metrics.Figures
	if e.figures != nil {
		f = *e.figures
	}
	f.ID, f.Class, f.DroppedForLag = e.ID, e.Class, e.DroppedForLag
	if e.RecordedBytes > 0 {
		f.RecordedBytes = uint64(e.RecordedBytes)
	}
	return f
}

func mediaOf(kind string) (metrics.Media, bool) {
	switch kind {
	case "audio":
		return metrics.Audio, true
	case "video":
		return metrics.Video, true
	}
	return 0, false
}

func addInbound(f *metrics.Figures, s endpoints.RTPStats) {
	m, ok := mediaOf(s.Kind)
	if !ok {
		return
	}
	f.Add(m, metrics.PacketsReceived, s.Packets)
	f.Add(m, metrics.BytesReceived, s.Bytes)
	f.Add(m, metrics.PacketsLost, uint64(max(s.PacketsLost, 0)))
	f.Add(m, metrics.NACKsSent, s.NACKs)
	f.Add(m, metrics.KeyframeRequestsSent, s.PLIs)
	f.Jitter[m] = max(f.Jitter[m], s.Jitter)
}

func addOutbound(f *metrics.Figures, s endpoints.RTPStats) {
	m, ok := mediaOf(s.Kind)
	if !ok {
		return
	}
	f.Add(m, metrics.PacketsSent, s.Packets)
	f.Add(m, metrics.BytesSent, s.Bytes)
	f.Add(m, metrics.NACKsReceived, s.NACKs)
	f.Add(m, metrics.KeyframeRequestsRecvd, s.PLIs+s.FIRs)
	f.Add(m, metrics.Retransmissions, s.Retransmitted)
	f.Add(m, metrics.DroppedForBandwidth, s.BitrateDropped)
	f.RTT[m] = max(f.RTT[m], s.RoundTripTime)
}
