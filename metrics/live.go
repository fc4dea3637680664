package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Snapshot is what is alive in the server at one moment, with the counters of every element. The
// server builds it on demand (SetSource); it is read at each scrape.
type Snapshot struct {
	Sessions, Connections, Pipelines int
	Elements                         map[string]int        // live elements by class
	Endpoints                        map[EndpointState]int // WebRTC endpoints by state
	Transcoders                      map[CodecPair]int     // transcoders running
	RecordingFilesOpen               int                   // recorders writing a file now
	GStreamerErrors                  uint64                // error messages of GStreamer pipelines so far
	GstWorkers                       int                   // live GStreamer worker processes
	GstWorkerCrashes                 map[string]uint64     // workers that died so far, by reason
	GstWorkerRestarts                map[string]uint64     // elements rebuilt in a new worker so far, by kind
	EgressSyscalls                   uint64                // send system calls on media sockets so far
	EgressDatagrams                  uint64                // datagrams those calls carried
	RTPSentDirect, RTPSentPion       uint64                // WebRTC RTP packets by send path so far
	RTPRecvDirect, RTPRecvPion       uint64                // and by receive path
	Figures                          []Figures             // one per element that counts media
}

// EndpointState is the (connection, media) state pair of an endpoint, KMS's names
// (e.g. "CONNECTED", "DISCONNECTED").
type EndpointState struct{ Connection, Media string }

// CodecPair is a transcoder's input and output codec ("VP8", "H264").
type CodecPair struct{ From, To string }

// Media indexes the per-media counters.
type Media int

// The media types counters are kept for.
const (
	Audio Media = iota
	Video
	numMedia
)

var mediaLabels = [numMedia]string{"audio", "video"}

// Counter names one monotonic per-media counter of an element.
type Counter int

// The counters the elements report, as getStats does. "Received" and "sent" are from the server's
// point of view: what its peers send it, what it sends them.
const (
	PacketsReceived Counter = iota
	PacketsLost             // inbound packets that never arrived
	PacketsSent
	BytesReceived
	BytesSent
	NACKsSent             // NACK messages sent to peers that send us media
	NACKsReceived         // NACK messages received from peers we send media to
	Retransmissions       // packets sent again for a peer's NACKs
	KeyframeRequestsSent  // PLIs sent to peers that send us media
	KeyframeRequestsRecvd // PLIs and FIRs received from peers we send media to
	DroppedForBandwidth   // outbound packets dropped because the peer's bandwidth was short
	numCounters
)

var counterDescs = [numCounters]*prometheus.Desc{
	PacketsReceived:       mediaDesc("kms_rtp_packets_received_total", "RTP packets received from peers."),
	PacketsLost:           mediaDesc("kms_rtp_packets_lost_total", "RTP packets from peers that never arrived."),
	PacketsSent:           mediaDesc("kms_rtp_packets_sent_total", "RTP packets sent to peers."),
	BytesReceived:         mediaDesc("kms_rtp_bytes_received_total", "RTP payload bytes received from peers."),
	BytesSent:             mediaDesc("kms_rtp_bytes_sent_total", "RTP payload bytes sent to peers."),
	NACKsSent:             mediaDesc("kms_rtcp_nacks_sent_total", "RTCP NACKs sent to peers that send media."),
	NACKsReceived:         mediaDesc("kms_rtcp_nacks_received_total", "RTCP NACKs received from peers that receive media."),
	Retransmissions:       mediaDesc("kms_rtp_retransmissions_total", "RTP packets sent again for NACKs."),
	KeyframeRequestsSent:  mediaDesc("kms_keyframe_requests_sent_total", "Keyframe requests (PLI) sent to peers."),
	KeyframeRequestsRecvd: mediaDesc("kms_keyframe_requests_received_total", "Keyframe requests (PLI, FIR) received from peers."),
	DroppedForBandwidth:   mediaDesc("kms_rtp_dropped_for_bandwidth_total", "RTP packets not sent because the peer's bandwidth estimate was short."),
}

func mediaDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, []string{"media"}, nil)
}

// Figures are one element's counters since it was created, and its latest quality figures.
type Figures struct {
	ID            string
	Class         string
	Counts        [numMedia][numCounters]uint64
	RecordedBytes uint64
	DroppedForLag uint64            // packets the element dropped because its own work (a writer) lagged
	RTT, Jitter   [numMedia]float64 // seconds; 0 = unknown
}

// Add sets a counter of a media type; elements with several streams of one type add them up.
func (f *Figures) Add(m Media, c Counter, v uint64) { f.Counts[m][c] += v }

var (
	sessionsDesc    = prometheus.NewDesc("kms_sessions", "Kurento Protocol sessions known.", nil, nil)
	connectionsDesc = prometheus.NewDesc("kms_connections", "WebSocket connections open.", nil, nil)
	pipelinesDesc   = prometheus.NewDesc("kms_pipelines", "MediaPipelines alive.", nil, nil)
	elementsDesc    = prometheus.NewDesc("kms_elements", "Media elements alive, by class.", []string{"class"}, nil)
	endpointsDesc   = prometheus.NewDesc("kms_endpoints", "WebRTC endpoints, by connection state and media state.",
		[]string{"connection_state", "media_state"}, nil)
	transcodersDesc = prometheus.NewDesc("kms_transcoders", "Transcoders running, by input and output codec.",
		[]string{"from", "to"}, nil)
	filesOpenDesc     = prometheus.NewDesc("kms_recording_files_open", "Recordings being written.", nil, nil)
	recordedBytesDesc = prometheus.NewDesc("kms_recording_bytes_written_total", "Bytes written by recorders.", nil, nil)
	droppedDesc       = prometheus.NewDesc("kms_dropped_for_lag_total", "Packets elements dropped because their own work lagged, by class.", []string{"class"}, nil)
	gstErrorsDesc     = prometheus.NewDesc("kms_gstreamer_errors_total", "Error messages posted on the buses of GStreamer pipelines.", nil, nil)
	gstWorkersDesc    = prometheus.NewDesc("kms_gst_workers", "Live GStreamer worker processes.", nil, nil)
	gstCrashesDesc    = prometheus.NewDesc("kms_gst_worker_crashes_total", "GStreamer worker processes that died, by reason (signal, exit, memory_limit, cpu_limit, unresponsive).", []string{"reason"}, nil)
	gstRestartsDesc   = prometheus.NewDesc("kms_gst_worker_restarts_total", "Elements rebuilt in a new GStreamer worker after theirs died (--gst-worker-restart), by kind of element (filter, mixer, player).", []string{"element"}, nil)
	egressCallsDesc   = prometheus.NewDesc("kms_egress_syscalls_total", "Send system calls on the WebRTC media sockets (one sendmmsg carries many datagrams).", nil, nil)
	egressDgramsDesc  = prometheus.NewDesc("kms_egress_datagrams_total", "Datagrams sent on the WebRTC media sockets.", nil, nil)
	rtpPathDesc       = prometheus.NewDesc("kms_webrtc_rtp_sent_total", "RTP packets WebRtcEndpoints sent, by path: direct (own SRTP context on the shared socket) or pion.", []string{"path"}, nil)
	rtpRecvPathDesc   = prometheus.NewDesc("kms_webrtc_rtp_received_total", "RTP packets WebRtcEndpoints received, by path: direct (own SRTP context on the shared socket) or pion.", []string{"path"}, nil)
)

// liveCollector turns snapshots into metrics. The counters it exports are its own running totals:
// every scrape adds what each element counted since the previous one, and a released element's last
// figures are added when it goes (Retire), so the totals never go down when elements are released.
type liveCollector struct {
	mu      sync.Mutex
	source  func() Snapshot
	last    map[string]Figures // counters already added, by element id
	totals  Figures
	dropped map[string]uint64 // DroppedForLag totals by class
	rtt     prometheus.Histogram
	jitter  prometheus.Histogram
}

func newLiveCollector() *liveCollector {
	return &liveCollector{
		last:    map[string]Figures{},
		dropped: map[string]uint64{},
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kms_rtt_seconds",
			Help:    "Round-trip times to peers, one sample per endpoint stream at each scrape.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .3, .5, 1, 2},
		}),
		jitter: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kms_jitter_seconds",
			Help:    "Interarrival jitter of incoming streams, one sample per endpoint stream at each scrape.",
			Buckets: []float64{.001, .0025, .005, .01, .02, .05, .1, .25},
		}),
	}
}

// SetSource sets how to take a snapshot of the server. It is called at every scrape, under the
// collector's lock, so that Retire cannot interleave with it.
func (s *Set) SetSource(f func() Snapshot) {
	s.live.mu.Lock()
	s.live.source = f
	s.live.mu.Unlock()
}

// Retire adds the last figures of an element being released to the totals. Call it once per element,
// after the element left what SetSource's snapshots list.
func (s *Set) Retire(f Figures) {
	c := s.live
	c.mu.Lock()
	c.absorb(f)
	delete(c.last, f.ID)
	c.mu.Unlock()
}

// absorb adds to the totals what f counted since it was last seen; the caller holds c.mu. A counter
// that went down (loss estimates shrink when late packets arrive) adds nothing until it passes its
// highest value again.
func (c *liveCollector) absorb(f Figures) {
	prev := c.last[f.ID]
	for m := range f.Counts {
		for k, v := range f.Counts[m] {
			if p := prev.Counts[m][k]; v > p {
				c.totals.Counts[m][k] += v - p
			} else {
				f.Counts[m][k] = p
			}
		}
	}
	if f.RecordedBytes > prev.RecordedBytes {
		c.totals.RecordedBytes += f.RecordedBytes - prev.RecordedBytes
	} else {
		f.RecordedBytes = prev.RecordedBytes
	}
	if f.DroppedForLag > prev.DroppedForLag {
		c.dropped[f.Class] += f.DroppedForLag - prev.DroppedForLag
	} else {
		f.DroppedForLag = prev.DroppedForLag
	}
	c.last[f.ID] = f
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range counterDescs {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{sessionsDesc, connectionsDesc, pipelinesDesc, elementsDesc,
		endpointsDesc, transcodersDesc, filesOpenDesc, recordedBytesDesc, droppedDesc, gstErrorsDesc, gstWorkersDesc, gstCrashesDesc,
		gstRestartsDesc, egressCallsDesc, egressDgramsDesc, rtpPathDesc, rtpRecvPathDesc} {
		ch <- d
	}
	c.rtt.Describe(ch)
	c.jitter.Describe(ch)
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	var snap Snapshot
	if c.source != nil {
		snap = c.source()
	}
	for _, f := range snap.Figures {
		c.absorb(f)
	}
	totals := c.totals
	for class, n := range c.dropped {
		ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(n), class)
	}
	c.mu.Unlock()

	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(sessionsDesc, snap.Sessions)
	gauge(connectionsDesc, snap.Connections)
	gauge(pipelinesDesc, snap.Pipelines)
	gauge(filesOpenDesc, snap.RecordingFilesOpen)
	for class, n := range snap.Elements {
		gauge(elementsDesc, n, class)
	}
	for st, n := range snap.Endpoints {
		gauge(endpointsDesc, n, st.Connection, st.Media)
	}
	for p, n := range snap.Transcoders {
		gauge(transcodersDesc, n, p.From, p.To)
	}
	for k, d := range counterDescs {
		for m := range numMedia {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(totals.Counts[m][k]), mediaLabels[m])
		}
	}
	ch <- prometheus.MustNewConstMetric(recordedBytesDesc, prometheus.CounterValue, float64(totals.RecordedBytes))
	ch <- prometheus.MustNewConstMetric(gstErrorsDesc, prometheus.CounterValue, float64(snap.GStreamerErrors))
	ch <- prometheus.MustNewConstMetric(gstWorkersDesc, prometheus.GaugeValue, float64(snap.GstWorkers))
	for reason, n := range snap.GstWorkerCrashes {
		ch <- prometheus.MustNewConstMetric(gstCrashesDesc, prometheus.CounterValue, float64(n), reason)
	}
	for element, n := range snap.GstWorkerRestarts {
		ch <- prometheus.MustNewConstMetric(gstRestartsDesc, prometheus.CounterValue, float64(n), element)
	}
	ch <- prometheus.MustNewConstMetric(egressCallsDesc, prometheus.CounterValue, float64(snap.EgressSyscalls))
	ch <- prometheus.MustNewConstMetric(egressDgramsDesc, prometheus.CounterValue, float64(snap.EgressDatagrams))
	ch <- prometheus.MustNewConstMetric(rtpPathDesc, prometheus.CounterValue, float64(snap.RTPSentDirect), "direct")
	ch <- prometheus.MustNewConstMetric(rtpPathDesc, prometheus.CounterValue, float64(snap.RTPSentPion), "pion")
	ch <- prometheus.MustNewConstMetric(rtpRecvPathDesc, prometheus.CounterValue, float64(snap.RTPRecvDirect), "direct")
	ch <- prometheus.MustNewConstMetric(rtpRecvPathDesc, prometheus.CounterValue, float64(snap.RTPRecvPion), "pion")

	for _, f := range snap.Figures {
		for m := range numMedia {
			if f.RTT[m] > 0 {
				c.rtt.Observe(f.RTT[m])
			}
			if f.Jitter[m] > 0 {
				c.jitter.Observe(f.Jitter[m])
			}
		}
	}
	c.rtt.Collect(ch)
	c.jitter.Collect(ch)
}
