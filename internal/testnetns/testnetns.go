// Package testnetns builds small networks of Linux network namespaces for tests: namespaces joined
// by veth pairs (no forwarding between links, so a namespace reaches only its direct neighbours),
// programs started inside them, and pion networks whose sockets live in a namespace while the test
// process stays outside it. Everything is removed when the test ends, also when it fails.
package testnetns

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"golang.org/x/sys/unix"
)

// Require skips the test unless namespaces can be made here (root, iproute2, the right to create
// them: root inside a container may lack it).
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces (CI runs as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) for network namespaces")
	}
	probe := fmt.Sprintf("probe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespaces here: %v %s", err, out)
	}
	exec.Command("ip", "netns", "del", probe).Run()
}

// Network is a set of namespaces named prefix+pid+name, so that parallel test binaries and
// helpers with other prefixes never collide. Interface names are built the same way and have 15
// characters at most: prefix and names are kept short.
type Network struct {
	t      testing.TB
	tag    string
	names  []string
	closed bool
}

// New starts a network whose namespaces and links begin with prefix (keep it short: interface
// names have 15 characters at most). Namespaces left behind by a killed earlier run of the same
// prefix are removed first.
func New(t testing.TB, prefix string) *Network {
	t.Helper()
	removeStale(prefix)
	n := &Network{t: t, tag: fmt.Sprintf("%s%d", prefix, os.Getpid())}
	t.Cleanup(n.close)
	return n
}

// removeStale deletes prefix<pid>... namespaces whose process is gone.
func removeStale(prefix string) {
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		digits := strings.TrimRightFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		pid, err := strconv.Atoi(digits)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			continue // alive
		}
		exec.Command("ip", "netns", "del", name).Run()
	}
}

// NS is the full name of the namespace called name.
func (n *Network) NS(name string) string { return n.tag + name }

// Add makes a namespace with its loopback up and returns its full name.
func (n *Network) Add(name string) string {
	ns := n.NS(name)
	n.ip("netns", "add", ns)
	n.names = append(n.names, ns)
	n.ip("-n", ns, "link", "set", "lo", "up")
	return ns
}

// Link joins namespaces a and b (short names given to Add) with a veth pair, addresses in CIDR
// form, and returns the interface names in a and in b.
func (n *Network) Link(a, aAddr, b, bAddr string) (aIf, bIf string) {
	aIf, bIf = n.tag+a+b, n.tag+b+a
	n.ip("link", "add", aIf, "type", "veth", "peer", "name", bIf)
	n.ip("link", "set", aIf, "netns", n.NS(a))
	n.ip("link", "set", bIf, "netns", n.NS(b))
	n.ip("-n", n.NS(a), "addr", "add", aAddr, "dev", aIf)
	n.ip("-n", n.NS(b), "addr", "add", bAddr, "dev", bIf)
	n.ip("-n", n.NS(a), "link", "set", aIf, "up")
	n.ip("-n", n.NS(b), "link", "set", bIf, "up")
	return aIf, bIf
}

// Bridge makes a bridge (br0) in namespace hub, a short name given to Add, for Attach.
func (n *Network) Bridge(hub string) {
	n.ip("-n", n.NS(hub), "link", "add", "br0", "type", "bridge")
	n.ip("-n", n.NS(hub), "link", "set", "br0", "up")
}

// Attach joins namespace name to the bridge of hub with a veth pair, addr (CIDR) on name's end,
// and returns name's interface.
func (n *Network) Attach(hub, name, addr string) string {
	inside, outside := n.tag+name+hub, n.tag+hub+name
	n.ip("link", "add", inside, "type", "veth", "peer", "name", outside)
	n.ip("link", "set", inside, "netns", n.NS(name))
	n.ip("link", "set", outside, "netns", n.NS(hub))
	n.ip("-n", n.NS(hub), "link", "set", outside, "master", "br0", "up")
	n.ip("-n", n.NS(name), "addr", "add", addr, "dev", inside)
	n.ip("-n", n.NS(name), "link", "set", inside, "up")
	return inside
}

func (n *Network) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Command is prog run inside namespace name (ip netns exec execs it: the pid is the program's),
// killed if the test process dies.
func (n *Network) Command(name, prog string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.NS(name), prog}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Start starts cmd (from Command) and kills it when t ends (a subtest: its own programs are gone
// before the next subtest starts; the namespaces stay until the network's test ends).
func (n *Network) Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Args, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

func (n *Network) close() {
	if n.closed {
		return
	}
	n.closed = true
	for _, ns := range n.names {
		exec.Command("ip", "netns", "del", ns).Run() // also removes its veth ends
	}
}

// inNamespace runs f on a thread moved into namespace ns. The thread stays locked and so ends with
// its goroutine: no other goroutine ever runs in the namespace. Sockets keep the namespace they
// were created in.
func inNamespace(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/var/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}

// PionNet is a pion network (SettingEngine.SetNet) whose interfaces and sockets are those of
// namespace ns, for a peer run by a test process outside it. CreateDialer and CreateListenConfig
// are not moved: ICE's host and relay gathering use the methods below.
func PionNet(ns string) (transport.Net, error) {
	var n *stdnet.Net
	err := inNamespace(ns, func() (err error) {
		n, err = stdnet.NewNet()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &nsNet{Net: n, ns: ns}, nil
}

type nsNet struct {
	*stdnet.Net
	ns string
}

// in runs open inside the namespace and returns what it opened.
func in[C any](n *nsNet, open func() (C, error)) (c C, err error) {
	nerr := inNamespace(n.ns, func() error {
		c, err = open()
		return nil
	})
	if nerr != nil {
		return c, nerr
	}
	return c, err
}

func (n *nsNet) ListenPacket(network, address string) (net.PacketConn, error) {
	return in(n, func() (net.PacketConn, error) { return n.Net.ListenPacket(network, address) })
}

func (n *nsNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	return in(n, func() (transport.UDPConn, error) { return n.Net.ListenUDP(network, laddr) })
}

func (n *nsNet) ListenTCP(network string, laddr *net.TCPAddr) (transport.TCPListener, error) {
	return in(n, func() (transport.TCPListener, error) { return n.Net.ListenTCP(network, laddr) })
}

func (n *nsNet) Dial(network, address string) (net.Conn, error) {
	return in(n, func() (net.Conn, error) { return n.Net.Dial(network, address) })
}

func (n *nsNet) DialUDP(network string, laddr, raddr *net.UDPAddr) (transport.UDPConn, error) {
	return in(n, func() (transport.UDPConn, error) { return n.Net.DialUDP(network, laddr, raddr) })
}

func (n *nsNet) DialTCP(network string, laddr, raddr *net.TCPAddr) (transport.TCPConn, error) {
	return in(n, func() (transport.TCPConn, error) { return n.Net.DialTCP(network, laddr, raddr) })
}
