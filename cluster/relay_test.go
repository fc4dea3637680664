package cluster

import "testing"

// relayPlan is the model of "a pipeline bigger than a node" (docs/CLUSTER.md): a one-to-many whose
// viewers exceed a node continues on edge nodes, each fed by one RTP relay from the origin node. A
// node sends perNode streams at most; a relay costs the origin one outgoing stream and the edge one
// incoming stream, which weighs like one outgoing stream (receive, SRTP, one more fan-out source).
// It returns the nodes used and the relays.
func relayPlan(viewers, perNode int) (nodes, relays int) {
	if viewers <= perNode {
		return 1, 0
	}
	for edges := 1; ; edges++ {
		// The origin keeps perNode-edges viewers; each edge serves perNode-1.
		if perNode-edges+edges*(perNode-1) >= viewers {
			return 1 + edges, edges
		}
	}
}

// The table of docs/CLUSTER.md: nodes, relays and relay overhead for a 500 kb/s stream, nodes of
// 8 cores at the measured 500 subscriber streams per core (bench/results, one2many).
func TestRelayPlanLimits(t *testing.T) {
	const perCore, cores, kbps = 500, 8, 500
	perNode := perCore * cores
	t.Logf("%8s %6s %6s %10s %11s", "viewers", "nodes", "relays", "overhead", "relay Mb/s")
	for _, v := range []int{1000, 4000, 4001, 10000, 50000, 100000} {
		nodes, relays := relayPlan(v, perNode)
		overhead := float64(2*relays) / float64(v) // one stream out at the origin, one in at the edge
		t.Logf("%8d %6d %6d %9.3f%% %11.1f", v, nodes, relays, 100*overhead, float64(relays*kbps)/1000)
		if nodes*perNode < v+2*relays {
			t.Errorf("%d viewers: %d nodes cannot carry them with %d relays", v, nodes, relays)
		}
		if relays > 0 && overhead > 2.0/float64(perNode-1) {
			t.Errorf("%d viewers: relay overhead %.4f above 2/(perNode-1)", v, overhead)
		}
	}
	// One level of relays (the origin feeding up to perNode edges) reaches perNode*(perNode-1)
	// viewers; beyond, edges would relay again.
	if nodes, _ := relayPlan(perNode*(perNode-1), perNode); nodes != perNode+1 {
		t.Errorf("one level of relays should reach %d viewers with %d nodes, needs %d", perNode*(perNode-1), perNode+1, nodes)
	}
}
