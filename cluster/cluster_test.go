package cluster

import "testing"

func TestPlaceByPipelinesPerCPUSkippingBusyNodes(t *testing.T) {
	nodes := []NodeInfo{
		{ID: "a", CPUs: 2, Pipelines: 4, Ports: 1000, FreePorts: 900},
		{ID: "b", CPUs: 4, Pipelines: 6, Ports: 1000, FreePorts: 900}, // 1.5 per CPU
		{ID: "c", CPUs: 2, Pipelines: 0, Ports: 1000, FreePorts: 5},   // out of ports
		{ID: "d", CPUs: 2, Pipelines: 0, CPU: 0.95, Ports: 1000, FreePorts: 900},
	}
	if n, _ := Place(nodes, nil); n.ID != "b" {
		t.Errorf("placed on %s, want b (fewest pipelines per CPU among nodes with room)", n.ID)
	}
	if n, _ := Place(nodes, map[string]int{"b": 3}); n.ID != "a" {
		t.Errorf("with 3 placements pending on b: placed on %s, want a", n.ID)
	}
	if n, _ := Place(nodes[2:], nil); n.ID != "c" {
		t.Errorf("every node busy: placed on %s, want the least loaded anyway (c)", n.ID)
	}
	if _, ok := Place(nil, nil); ok {
		t.Error("placed with no node")
	}
}

func TestPipelineOf(t *testing.T) {
	for id, want := range map[string]string{
		"p1_kurento.MediaPipeline":                                       "p1_kurento.MediaPipeline",
		"p1_kurento.MediaPipeline/e1_kurento.WebRtcEndpoint":             "p1_kurento.MediaPipeline",
		"p1_kurento.MediaPipeline/h_kurento.Composite/x_kurento.HubPort": "p1_kurento.MediaPipeline",
	} {
		if got := PipelineOf(id); got != want {
			t.Errorf("PipelineOf(%q) = %q, want %q", id, got, want)
		}
	}
}
