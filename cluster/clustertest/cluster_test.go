// Package clustertest runs a whole cluster as operators do: a redis-server, three media nodes and two
// routers, each in a network namespace of its own on one bridge, and the clients (Go Kurento clients
// with pion peers) in another. TestCluster builds the network and starts the processes, then runs
// TestClusterInner inside the clients' namespace.
package clustertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kurento-go/kms/client"
	"github.com/kurento-go/kms/cluster"
	"github.com/kurento-go/kms/cluster/redisstore"
	"github.com/kurento-go/kms/internal/testnetns"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/kurento-go/kms/kerr"
)

// plan is what the outer test tells the inner one.
type plan struct {
	Store      string
	Routers    []string
	RouterPIDs []int
	Nodes      []string
	NodePIDs   []int
	Iface      string // the clients' interface
}

const planEnv = "CLUSTER_TEST_PLAN"

const subnet = "10.231.0."

func TestCluster(t *testing.T) {
	if os.Getenv(planEnv) != "" {
		t.Skip("inner run")
	}
	testnetns.Require(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (scripts/install-deps.sh test)")
	}
	bin := filepath.Join(t.TempDir(), "kurento-media-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/kurento-go/kms/cmd/kurento-media-server").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	n := newNetwork(t)
	logs := t.TempDir()
	p := plan{Store: "redis://" + subnet + "2:6379/0"}

	n.add("rd", subnet+"2")
	n.start("rd", logs, nil, "redis-server", "--port", "6379", "--bind", "0.0.0.0", "--protected-mode", "no",
		"--save", "", "--appendonly", "no")
	conf := filepath.Join(logs, "kurento.conf.json")
	os.WriteFile(conf, []byte(`{"mediaServer":{"net":{"websocket":{"port":8888,"path":"kurento"}}}}`), 0o644)
	for i := range 3 {
		name, ip := fmt.Sprintf("n%d", i), fmt.Sprintf("%s%d", subnet, 20+i)
		iface := n.add(name, ip)
		uri := "ws://" + ip + ":8888/kurento"
		pid := n.start(name, logs, []string{"KMS_CLUSTER_STORE=" + p.Store, "KMS_CLUSTER_ADVERTISE=" + uri,
			"KMS_NETWORK_INTERFACES=" + iface}, bin, "-f", conf)
		p.Nodes, p.NodePIDs = append(p.Nodes, uri), append(p.NodePIDs, pid)
	}
	for i := range 2 {
		name, ip := fmt.Sprintf("r%d", i), fmt.Sprintf("%s%d", subnet, 10+i)
		n.add(name, ip)
		pid := n.start(name, logs, []string{"KMS_CLUSTER_STORE=" + p.Store, "KMS_ROUTER=true"}, bin, "-f", conf)
		p.Routers, p.RouterPIDs = append(p.Routers, "ws://"+ip+":8888/kurento"), append(p.RouterPIDs, pid)
	}
	p.Iface = n.add("c", subnet+"100")

	b, _ := json.Marshal(p)
	cmd := n.Command("c", os.Args[0], "-test.run=^TestClusterInner$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), planEnv+"="+string(b))
	out, err := cmd.CombinedOutput()
	t.Logf("clients:\n%s", out)
	if err != nil {
		for _, name := range []string{"r0", "r1", "n0", "n1", "n2"} {
			b, _ := os.ReadFile(filepath.Join(logs, name+".log"))
			t.Logf("--- %s (last 3000 bytes)\n%s", name, tail(b, 3000))
		}
		t.Fatalf("clients: %v", err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// network is a bridge in a namespace of its own ("h"), and namespaces with one veth on it each.
type network struct {
	*testnetns.Network
	t *testing.T
}

func newNetwork(t *testing.T) *network {
	n := &network{Network: testnetns.New(t, "clu"), t: t}
	n.Add("h")
	n.Bridge("h")
	return n
}

// add makes a namespace on the bridge with the address and returns its interface name.
func (n *network) add(name, addr string) string {
	n.Add(name)
	return n.Attach("h", name, addr+"/24")
}

// start runs a program in a namespace, logging to logDir/name.log, until the test ends; it returns
// the program's pid.
func (n *network) start(name, logDir string, env []string, prog string, args ...string) int {
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		n.t.Fatal(err)
	}
	cmd := n.Command(name, prog, args...)
	cmd.Env = append(os.Environ(), append(env, "GST_DEBUG=1")...)
	cmd.Stdout, cmd.Stderr = f, f
	n.Start(n.t, cmd)
	return cmd.Process.Pid
}

// session is one hello-world application session: a client, a pipeline, a loopback
// WebRtcEndpoint and its pion peer.
type session struct {
	c        *client.Client
	router   int
	pipeline string
	peer     *testpeer.Peer
	nodeDown chan string // data.type of the Error events on the pipeline
}

func TestClusterInner(t *testing.T) {
	raw := os.Getenv(planEnv)
	if raw == "" {
		t.Skip("run by TestCluster inside its clients' network namespace")
	}
	var p plan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	store, err := redisstore.Open(p.Store)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	start := time.Now()
	nodeOf := waitNodes(ctx, t, store, p.Nodes)
	for _, r := range p.Routers {
		waitDial(ctx, t, r)
	}
	t.Logf("cluster up in %v", time.Since(start).Round(time.Millisecond))

	// 30 sessions, alternately on each router; they land on the three nodes by load.
	sessions := openSessions(ctx, t, p, 30, func(i int) int { return i % 2 })
	defer func() {
		for _, s := range sessions {
			s.peer.Close()
			s.c.Close()
		}
	}()
	placement := countPlacement(ctx, t, store, sessions, nodeOf)
	for _, uri := range p.Nodes {
		if n := placement[uri]; n < 8 || n > 12 {
			t.Errorf("node %s got %d of 30 pipelines, want 10 ± 2 (%v)", uri, n, placement)
		}
	}
	waitMedia(ctx, t, sessions, 20, "every session gets its media back")
	t.Logf("30 sessions with media in %v; placement %v", time.Since(start).Round(time.Millisecond), placement)

	// Router 0 dies: its clients reconnect to router 1 with their sessionId and carry on.
	syscall.Kill(p.RouterPIDs[0], syscall.SIGKILL)
	var wg sync.WaitGroup
	for _, s := range sessions {
		if s.router != 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.c.Redial(ctx, p.Routers[1]); err != nil {
				t.Errorf("reconnect to router 1: %v", err)
			}
			s.router = 1
		}()
	}
	wg.Wait()
	for _, s := range sessions {
		var name string
		if err := s.c.Invoke(ctx, s.peer.Endpoint, "getName", nil, &name); err != nil || name != s.peer.Endpoint {
			t.Fatalf("after the router died, getName on %s: %q, %v", s.peer.Endpoint, name, err)
		}
	}
	waitMedia(ctx, t, sessions, 15, "media keeps flowing after the router died")
	t.Logf("router failover done at %v", time.Since(start).Round(time.Millisecond))

	// Node 0 dies: its sessions get NODE_DOWN and 40101; the others keep their media.
	syscall.Kill(p.NodePIDs[0], syscall.SIGKILL)
	var dead, live []*session
	for _, s := range sessions {
		if nodeOf[s.pipeline] == p.Nodes[0] {
			dead = append(dead, s)
		} else {
			live = append(live, s)
		}
	}
	for _, s := range dead {
		select {
		case typ := <-s.nodeDown:
			if typ != "NODE_DOWN" {
				t.Errorf("Error event of type %q, want NODE_DOWN", typ)
			}
		case <-ctx.Done():
			t.Fatalf("no Error event on pipeline %s of the dead node", s.pipeline)
		}
		err := s.c.Invoke(ctx, s.peer.Endpoint, "getName", nil, nil)
		var kerrc *client.Error
		if !errors.As(err, &kerrc) || kerrc.Code != kerr.ObjectNotFound {
			t.Errorf("object of the dead node answered %v, want 40101", err)
		}
		s.peer.Close()
	}
	waitMedia(ctx, t, live, 15, "sessions of the live nodes keep their media")
	t.Logf("node failure handled at %v: %d sessions lost, %d kept", time.Since(start).Round(time.Millisecond), len(dead), len(live))

	// The next 10 sessions land on the live nodes.
	more := openSessions(ctx, t, p, 10, func(int) int { return 1 })
	defer func() {
		for _, s := range more {
			s.peer.Close()
			s.c.Close()
		}
	}()
	after := countPlacement(ctx, t, store, more, nodeOf)
	if after[p.Nodes[0]] != 0 || after[p.Nodes[1]] < 3 || after[p.Nodes[2]] < 3 {
		t.Errorf("new sessions after the node died: %v, want none on %s and about 5 on each other", after, p.Nodes[0])
	}
	waitMedia(ctx, t, more, 20, "new sessions get their media")
	t.Logf("done in %v", time.Since(start).Round(time.Millisecond))
}

// waitNodes waits for the nodes' records and returns a map that countPlacement fills with the node
// URI of each pipeline.
func waitNodes(ctx context.Context, t *testing.T, store cluster.Store, uris []string) map[string]string {
	for {
		nodes, err := store.Nodes(ctx)
		if err == nil && len(nodes) == len(uris) {
			return map[string]string{}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("nodes not registered: %v %v", nodes, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func waitDial(ctx context.Context, t *testing.T, uri string) {
	for {
		c, err := client.Dial(ctx, uri)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("router %s not up: %v", uri, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openSessions opens n hello-world sessions, a few at a time.
func openSessions(ctx context.Context, t *testing.T, p plan, n int, router func(int) int) []*session {
	out := make([]*session, n)
	sem := make(chan struct{}, 5)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := openSession(ctx, p, router(i))
			if err != nil {
				t.Errorf("session %d: %v", i, err)
				return
			}
			out[i] = s
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return out
}

func openSession(ctx context.Context, p plan, router int) (*session, error) {
	c, err := client.Dial(ctx, p.Routers[router])
	if err != nil {
		return nil, err
	}
	s := &session{c: c, router: router, nodeDown: make(chan string, 4)}
	if s.pipeline, err = c.Create(ctx, "MediaPipeline", nil); err != nil {
		return nil, err
	}
	err = c.Subscribe(ctx, s.pipeline, "Error", func(ev client.Event) {
		var d struct {
			Type string `json:"type"`
		}
		json.Unmarshal(ev.Data, &d)
		select {
		case s.nodeDown <- d.Type:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	if s.peer, err = testpeer.New(testpeer.Options{Send: true, Receive: true, Interface: p.Iface}); err != nil {
		return nil, err
	}
	if err := s.peer.Connect(ctx, c, s.pipeline, true); err != nil {
		return nil, err
	}
	s.peer.StartMedia()
	return s, nil
}

// countPlacement reads from the store where each session's pipeline went, by node URI.
func countPlacement(ctx context.Context, t *testing.T, store cluster.Store, sessions []*session, nodeOf map[string]string) map[string]int {
	nodes, err := store.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	uri := map[string]string{}
	for _, n := range nodes {
		uri[n.ID] = n.URI
	}
	out := map[string]int{}
	for _, s := range sessions {
		id, err := store.Route(ctx, s.pipeline)
		if err != nil {
			t.Fatalf("route of %s: %v", s.pipeline, err)
		}
		nodeOf[s.pipeline] = uri[id]
		out[uri[id]]++
	}
	return out
}

// waitMedia waits until every session's peer has received more frames of its own video back.
func waitMedia(ctx context.Context, t *testing.T, sessions []*session, frames int64, what string) {
	base := make([]int64, len(sessions))
	for i, s := range sessions {
		base[i] = s.peer.FramesReceived.Load()
	}
	for {
		missing := 0
		for i, s := range sessions {
			if s.peer.FramesReceived.Load()-base[i] < frames {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %d of %d sessions lack %d new frames", what, missing, len(sessions), frames)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
