//go:build !kmsfuzz

package webrtc_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kurento-go/kms/internal/testnetns"
	"github.com/kurento-go/kms/internal/testpeer"
	"github.com/pion/webrtc/v4"
)

// turnPlan is what TestTURNRelay tells TestTURNRelayInner, which it runs in the server's namespace.
type turnPlan struct {
	TurnURL  string // KMS_TURN_URL
	ServerIf string // the server's only interface (KMS_NETWORK_INTERFACES)
	ServerIP string
	PeerNS   string
	PeerIf   string
	RelayIP  string // coturn's relay address, on the peer's side
}

const turnPlanEnv = "KMS_TURN_TEST_PLAN"

// TestTURNRelay runs a real coturn between the media server and a peer that cannot reach the
// server: three namespaces, server ↔ turn ↔ peer, with no route from the peer's link to the
// server's. The server gets KMS_TURN_URL (coturn's REST-API credentials: a user with ':' and a
// base64 password with '/', '+' or '='), and media must flow both ways through its relay
// candidate, with UDP, TCP and TLS to the TURN server (coturn listening on that transport only, so
// the relay cannot have been allocated over another; for TLS a self-signed certificate not valid
// for the address, which KMS's libnice accepts).
func TestTURNRelay(t *testing.T) {
	if os.Getenv(turnPlanEnv) != "" {
		t.Skip("inner run")
	}
	testnetns.Require(t)
	if _, err := exec.LookPath("turnserver"); err != nil {
		t.Skip("needs coturn's turnserver (scripts/install-deps.sh test)")
	}
	n := testnetns.New(t, "turn")
	n.Add("s")
	n.Add("t")
	n.Add("p")
	serverIf, _ := n.Link("s", "10.242.1.2/24", "t", "10.242.1.1/24")
	_, peerIf := n.Link("t", "10.242.2.1/24", "p", "10.242.2.2/24")

	const secret = "kurento-turn-secret"
	for i, transport := range []string{"udp", "tcp", "tls"} {
		t.Run(transport, func(t *testing.T) {
			port := 3478 + i
			dir := t.TempDir()
			// Only the listener of the transport under test, so the relay cannot come through another.
			only := map[string][]string{"udp": {"--no-tcp", "--no-tls"}, "tcp": {"--no-udp", "--no-tls"},
				"tls": {"--no-udp", "--no-tcp", fmt.Sprint("--tls-listening-port=", port),
					"--cert=" + selfSigned(t, dir, "cert.pem", "key.pem"), "--pkey=" + filepath.Join(dir, "key.pem")}}[transport]
			coturn := n.Command("t", "turnserver", append([]string{"-c", "/dev/null", "-n",
				"--listening-ip=10.242.1.1", "--listening-ip=10.242.2.1", "--relay-ip=10.242.2.1",
				fmt.Sprint("--listening-port=", port), fmt.Sprint("--min-port=", 49160+100*i), fmt.Sprint("--max-port=", 49199+100*i),
				"--use-auth-secret", "--static-auth-secret=" + secret, "--realm=kurento", "--fingerprint",
				"--no-dtls", "--no-cli", "--no-multicast-peers",
				"--pidfile=" + filepath.Join(dir, "turnserver.pid"), "--userdb=" + filepath.Join(dir, "turndb"),
				"--log-file=stdout", "--simple-log"}, only...)...)
			var log bytes.Buffer
			coturn.Stdout, coturn.Stderr = &log, &log
			n.Start(t, coturn)
			waitListening(t, coturn.Process.Pid, map[string]string{"udp": "udp", "tcp": "tcp", "tls": "tcp"}[transport], port)

			// coturn's REST API credentials, as deployments hand them out.
			user := fmt.Sprintf("%d:kurento", time.Now().Add(time.Hour).Unix())
			mac := hmac.New(sha1.New, []byte(secret))
			mac.Write([]byte(user))
			url := fmt.Sprintf("%s:%s@10.242.1.1:%d", user, base64.StdEncoding.EncodeToString(mac.Sum(nil)), port)
			if transport != "udp" {
				url += "?transport=" + transport
			}
			plan, _ := json.Marshal(turnPlan{TurnURL: url, ServerIf: serverIf, ServerIP: "10.242.1.2",
				PeerNS: n.NS("p"), PeerIf: peerIf, RelayIP: "10.242.2.1"})
			inner := n.Command("s", os.Args[0], "-test.run=^TestTURNRelayInner$", "-test.v", "-test.count=1")
			inner.Env = append(os.Environ(), turnPlanEnv+"="+string(plan))
			out, err := inner.CombinedOutput()
			t.Logf("server and peer:\n%s", out)
			if err != nil || !strings.Contains(string(out), "--- PASS: TestTURNRelayInner") {
				t.Errorf("inner run: %v\ncoturn:\n%s", err, log.String())
			}
		})
	}
}

// selfSigned writes a self-signed certificate and its key, as TURN servers are often given: not
// valid for the IP address a turnURL names. It returns the certificate's path.
func selfSigned(t *testing.T, dir, certFile, keyFile string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "turn.example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"turn.example"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, certFile)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, keyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return cert
}

// waitListening polls the namespace's socket tables (seen through coturn's /proc entry) until
// coturn listens on port.
func waitListening(t *testing.T, pid int, transport string, port int) {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	ok := poll(20*time.Second, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, transport))
		return bytes.Contains(b, []byte(want))
	})
	if !ok {
		t.Fatalf("coturn does not listen on %s port %d", transport, port)
	}
}

func TestTURNRelayInner(t *testing.T) {
	raw := os.Getenv(turnPlanEnv)
	if raw == "" {
		t.Skip("run by TestTURNRelay inside the server's network namespace")
	}
	var p turnPlan
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	peerNet, err := testnetns.PionNet(p.PeerNS)
	if err != nil {
		t.Fatal(err)
	}
	// The premise: from the peer's namespace the server's host address is unreachable.
	if c, err := peerNet.Dial("udp4", p.ServerIP+":9"); err == nil {
		c.Close()
		t.Fatalf("the peer has a route to the server's host address %s", p.ServerIP)
	}

	s := newSession(t, 45*time.Second, "KMS_TURN_URL="+p.TurnURL, "KMS_NETWORK_INTERFACES="+p.ServerIf)
	ep := s.endpoint()
	r := s.recorder()
	r.subscribe(s, ep, "NewCandidatePairSelected")
	s.connect(ep, ep, "")
	peer := s.peer(testpeer.Options{Send: true, Receive: true, Interface: p.PeerIf, Net: peerNet})
	s.negotiate(peer, ep)
	peer.StartMedia()

	// Both ways: what the peer sends reaches the server and comes back through the loopback.
	if !poll(60*time.Second, func() bool {
		return peer.FramesReceived.Load() >= 60 && peer.AudioReceived.Load() >= 100
	}) {
		t.Fatalf("through TURN: %d video frames and %d audio packets came back (sent %d frames)",
			peer.FramesReceived.Load(), peer.AudioReceived.Load(), peer.FramesSent.Load())
	}

	pair, err := peer.PC.GetSenders()[0].Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("peer's selected pair: %v %v", pair, err)
	}
	if pair.Remote.Typ != webrtc.ICECandidateTypeRelay || pair.Remote.Address != p.RelayIP {
		t.Errorf("peer's selected remote candidate %s: want the server's relay candidate on %s", pair.Remote, p.RelayIP)
	}
	ev, err := r.wait(s.ctx, "NewCandidatePairSelected", isEvent(ep, "NewCandidatePairSelected", nil))
	if err != nil {
		t.Fatal(err)
	}
	cp, _ := ev.Data["candidatePair"].(map[string]any)
	local, _ := cp["localCandidate"].(string)
	if !strings.Contains(local, " typ relay") || !strings.Contains(local, " "+p.RelayIP+" ") {
		t.Errorf("server's selected local candidate %q: want a relay candidate on %s", local, p.RelayIP)
	}
	t.Logf("relayed: %d frames, %d audio packets back; pair %s", peer.FramesReceived.Load(), peer.AudioReceived.Load(), local)
}
