package router

import (
	"encoding/json"
	"errors"
	"sort"
	"sync"

	"github.com/kurento-go/kms/cluster"
	"github.com/kurento-go/kms/kerr"
	"github.com/kurento-go/kms/objects"
)

// nodeResult is one node's answer to a request sent to every node.
type nodeResult struct {
	node cluster.NodeInfo
	res  json.RawMessage
	err  error
}

// fanout sends a request of the session to every live node at once; results are in node id order.
func (r *Router) fanout(sid, method string, params func() map[string]any) ([]nodeResult, error) {
	nodes := r.liveNodes()
	if len(nodes) == 0 {
		return nil, noNode()
	}
	out := make([]nodeResult, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.call(sid, n, method, params())
			out[i] = nodeResult{node: n, res: res, err: err}
		}()
	}
	wg.Wait()
	return out, nil
}

// values are the values of the nodes that answered; the first error when none did.
func values(results []nodeResult) ([]json.RawMessage, error) {
	var vals []json.RawMessage
	var firstErr error
	for _, nr := range results {
		if nr.err != nil {
			if firstErr == nil {
				firstErr = nr.err
			}
			continue
		}
		v, err := value(nr.res)
		if err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	if len(vals) == 0 {
		return nil, firstErr
	}
	return vals, nil
}

// invokeManager answers for the whole cluster: pipelines and sessions of every node, getInfo with
// the nodes, CPU count and memory summed, CPU use averaged; the rest from one node.
func (r *Router) invokeManager(sid, operation string, params map[string]any) (any, error) {
	same := func() map[string]any {
		p := make(map[string]any, len(params))
		for k, v := range params {
			p[k] = v
		}
		return p
	}
	switch operation {
	case "getPipelines", "getSessions", "getCpuCount", "getUsedMemory", "getUsedCpu":
	case "getInfo":
		return r.clusterInfo(sid, same())
	default:
		res, err := r.anyNodeCall(sid, "invoke", same())
		if err != nil {
			return nil, err
		}
		v, err := value(res)
		return asAny(v), err
	}
	results, err := r.fanout(sid, "invoke", same)
	if err != nil {
		return nil, err
	}
	vals, err := values(results)
	if err != nil {
		return nil, err
	}
	switch operation {
	case "getPipelines", "getSessions":
		var all []json.RawMessage
		seen := map[string]bool{}
		for _, v := range vals {
			var list []json.RawMessage
			if err := json.Unmarshal(v, &list); err != nil {
				return nil, kerr.New(kerr.UnexpectedError, "bad answer from a media node: %v", err)
			}
			for _, item := range list {
				if !seen[string(item)] {
					seen[string(item)] = true
					all = append(all, item)
				}
			}
		}
		if operation == "getSessions" {
			sort.Slice(all, func(i, j int) bool { return string(all[i]) < string(all[j]) })
		}
		if all == nil {
			all = []json.RawMessage{}
		}
		return all, nil
	case "getUsedCpu":
		sum := 0.0
		for _, v := range vals {
			var f float64
			json.Unmarshal(v, &f)
			sum += f
		}
		return sum / float64(len(vals)), nil
	}
	var sum int64
	for _, v := range vals {
		var n int64
		json.Unmarshal(v, &n)
		sum += n
	}
	return sum, nil
}

// NodeSummary is how getInfo lists a node ("nodes", our extension of ServerInfo).
type NodeSummary struct {
	ID        string  `json:"id"`
	URI       string  `json:"uri"`
	CPUs      int     `json:"cpus"`
	CPU       float64 `json:"cpu"`
	Pipelines int     `json:"pipelines"`
	Streams   int     `json:"streams"`
	FreePorts int     `json:"freePorts"`
}

func (r *Router) clusterInfo(sid string, params map[string]any) (any, error) {
	res, err := r.anyNodeCall(sid, "invoke", params)
	if err != nil {
		return nil, err
	}
	v, err := value(res)
	if err != nil {
		return nil, err
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(v, &info); err != nil {
		return nil, kerr.New(kerr.UnexpectedError, "bad answer from a media node: %v", err)
	}
	nodes := []NodeSummary{}
	for _, n := range r.liveNodes() {
		nodes = append(nodes, NodeSummary{ID: n.ID, URI: n.URI, CPUs: n.CPUs, CPU: n.CPU,
			Pipelines: n.Pipelines, Streams: n.Streams, FreePorts: n.FreePorts})
	}
	b, _ := json.Marshal(nodes)
	info["nodes"] = b
	return info, nil
}

// subscribeManager subscribes on every node (ObjectCreated and ObjectDestroyed happen on each); the
// client gets the first node's id, which stands for all of them.
func (r *Router) subscribeManager(sid, event string, params func() map[string]any) (string, error) {
	results, err := r.fanout(sid, "subscribe", params)
	if err != nil {
		return "", err
	}
	perNode := map[string]string{}
	first := ""
	var firstErr error
	for _, nr := range results {
		var id string
		if nr.err == nil {
			id, nr.err = valueString(nr.res)
		}
		if nr.err != nil {
			if firstErr == nil {
				firstErr = nr.err
			}
			continue
		}
		perNode[nr.node.ID] = id
		if first == "" {
			first = id
		}
	}
	if first == "" {
		if firstErr == nil {
			firstErr = errors.New("no node answered")
		}
		return "", firstErr
	}
	r.mu.Lock()
	r.sessionLocked(sid).managerSubs[first] = perNode
	r.mu.Unlock()
	r.recordSub(sid, first, cluster.Subscription{Object: objects.ManagerID, Event: event})
	return first, nil
}
