package metrics

import (
	"fmt"
	"testing"
)

// value gathers the registry and returns a sample of a metric with the given label value ("" for none).
func value(t *testing.T, s *Set, name, label string) float64 {
	t.Helper()
	families, err := s.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s{%s}", name, label)
	return 0
}

// TestTotalsSurviveRelease: the server-wide counters keep what released elements counted, and never
// go down when an element's own figure does (a loss estimate shrinking as late packets arrive).
func TestTotalsSurviveRelease(t *testing.T) {
	s := New()
	fig := func(id string, received, lost uint64) Figures {
		f := Figures{ID: id}
		f.Add(Video, PacketsReceived, received)
		f.Add(Video, PacketsLost, lost)
		return f
	}
	live := []Figures{fig("a", 100, 5), fig("b", 10, 0)}
	s.SetSource(func() Snapshot { return Snapshot{Figures: live} })
	if v := value(t, s, "kms_rtp_packets_received_total", "video"); v != 110 {
		t.Fatalf("received = %v, want 110", v)
	}
	live = []Figures{fig("a", 150, 3), fig("b", 20, 0)}
	if v := value(t, s, "kms_rtp_packets_lost_total", "video"); v != 5 {
		t.Fatalf("lost = %v after the estimate shrank, want it kept at 5", v)
	}
	// a goes: released after counting 170 packets, 9 lost.
	live = []Figures{fig("b", 30, 0)}
	s.Retire(fig("a", 170, 9))
	if v := value(t, s, "kms_rtp_packets_received_total", "video"); v != 200 {
		t.Fatalf("received = %v after a release, want 170+30", v)
	}
	if v := value(t, s, "kms_rtp_packets_lost_total", "video"); v != 9 {
		t.Fatalf("lost = %v after a release, want 9", v)
	}
	s.Retire(Figures{ID: "r", Class: "RecorderEndpoint", DroppedForLag: 4})
	if v := value(t, s, "kms_dropped_for_lag_total", "RecorderEndpoint"); v != 4 {
		t.Fatalf("dropped for lag = %v, want 4", v)
	}
}

// TestBoundedSeries: however many endpoints and requests with made-up method names, the number of
// series stays the same (no per-object or per-value labels).
func TestBoundedSeries(t *testing.T) {
	series := func(n int) int {
		s := New()
		var figs []Figures
		elements := map[string]int{"WebRtcEndpoint": n}
		for i := range n {
			f := Figures{ID: fmt.Sprint("ep", i), RTT: [numMedia]float64{0.01, 0.02}}
			f.Add(Audio, PacketsReceived, uint64(i))
			figs = append(figs, f)
			s.ObserveRequest(fmt.Sprint("method", i), 40000+i%3, 0)
		}
		s.SetSource(func() Snapshot {
			return Snapshot{Pipelines: n, Elements: elements, Figures: figs,
				Endpoints: map[EndpointState]int{{"CONNECTED", "CONNECTED"}: n}}
		})
		families, err := s.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, f := range families {
			if len(f.GetName()) > 4 && f.GetName()[:4] == "kms_" {
				total += len(f.GetMetric())
			}
		}
		return total
	}
	small, large := series(3), series(200)
	if small != large {
		t.Fatalf("%d kms_ series with 3 endpoints, %d with 200: labels are not bounded", small, large)
	}
}
