// Package browser_test holds the browser end-to-end tests: headless Chromium with a fake
// camera and microphone runs the Kurento tutorials' browser side against the server, through
// a Node application server (testdata/app/server.js) that drives the server with the real
// kurento-client from npm, exactly as the Kurento Node tutorials do.
//
// The tests run in a private network namespace that has only loopback, so that ICE can only
// use 127.0.0.1 (TESTING.md: in the normal namespace Chromium often connects from the
// machine's outside address). TestMain does that itself: outside a namespace it builds the
// server, installs the application server's npm packages (from the lock file, needs the
// network) and re-executes the test binary in a new network namespace (clone with
// CLONE_NEWNET, plus CLONE_NEWUSER when not root: the `unshare -n` recipe without the tool);
// inside, it brings lo up and runs the tests. `go test ./test/browser/` is all it takes.
//
// Skipped (with the reason) when: -short, no chromium, no node/npm, no network namespace
// allowed. Environment: KMS_BIN=<binary> uses that server instead of building
// ./cmd/kurento-media-server; CHROMIUM=<path> picks the browser (default: chromium on PATH).
package browser_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

const envInside = "KMS_BROWSER_TEST_NETNS" // "1" in the re-executed test binary

var (
	skipReason string // why nothing here can run on this machine
	netnsErr   error  // inside: the namespace is not what it must be
	kmsErr     error  // the server binary could not be built
	appErr     error  // the application server's npm packages could not be installed

	chromiumPath string
	nodePath     string
	kmsBin       string
)

var (
	testDir = mustAbs(".")
	appDir  = filepath.Join(testDir, "testdata", "app")
	repo    = filepath.Join(testDir, "..", "..")
)

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		panic(err)
	}
	return a
}

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(envInside) == "1" {
		os.Exit(inside(m))
	}
	os.Exit(outside(m))
}

// inside runs in the private network namespace.
func inside(m *testing.M) int {
	chromiumPath = os.Getenv("CHROMIUM")
	nodePath = os.Getenv("KMS_BROWSER_NODE")
	kmsBin = os.Getenv("KMS_BIN")
	if s := os.Getenv("KMS_BROWSER_KMS_ERR"); s != "" {
		kmsErr = errors.New(s)
	}
	if s := os.Getenv("KMS_BROWSER_APP_ERR"); s != "" {
		appErr = errors.New(s)
	}
	if err := loopbackUp(); err != nil {
		netnsErr = fmt.Errorf("bringing lo up in the private network namespace: %w", err)
	} else if err := onlyLoopback(); err != nil {
		netnsErr = err
	}
	return m.Run()
}

func outside(m *testing.M) int {
	// Pdeathsig belongs to the thread that starts the child: keep it alive until the end.
	runtime.LockOSThread()
	if testing.Short() {
		skipReason = "browser end-to-end tests are skipped in -short mode"
		return m.Run()
	}
	var err error
	if chromiumPath, err = exec.LookPath(envOr("CHROMIUM", "chromium")); err != nil {
		skipReason = fmt.Sprintf("no Chromium (%v): apt-get install chromium (make deps-test), or set CHROMIUM", err)
		return m.Run()
	}
	if nodePath, err = exec.LookPath("node"); err != nil {
		skipReason = fmt.Sprintf("no Node.js for the application server (%v)", err)
		return m.Run()
	}
	attr, err := netnsAttr()
	if err != nil {
		skipReason = fmt.Sprintf("cannot create a network namespace here (%v); the tests need one "+
			"(run as root, or allow unprivileged user namespaces)", err)
		return m.Run()
	}

	tmp, err := os.MkdirTemp("", "kms-browser-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	// Temporary files of the tests (t.TempDir, Chromium's) go under tmp too, so that they are
	// removed even if the re-executed binary gets killed.
	tmpdir := filepath.Join(tmp, "tmp")
	if err := os.Mkdir(tmpdir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env := append(os.Environ(), envInside+"=1", "CHROMIUM="+chromiumPath, "KMS_BROWSER_NODE="+nodePath, "TMPDIR="+tmpdir)
	if bin := os.Getenv("KMS_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			kmsErr = fmt.Errorf("KMS_BIN: %w", err)
		}
		if abs, err := filepath.Abs(bin); err == nil {
			env = append(env, "KMS_BIN="+abs)
		}
	} else {
		bin = filepath.Join(tmp, "kurento-media-server")
		kmsErr = buildServer(bin)
		env = append(env, "KMS_BIN="+bin)
	}
	if kmsErr != nil {
		env = append(env, "KMS_BROWSER_KMS_ERR="+kmsErr.Error())
	}
	if appErr = npmCI(); appErr != nil {
		env = append(env, "KMS_BROWSER_APP_ERR="+appErr.Error())
	}

	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = attr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		fmt.Fprintf(os.Stderr, "re-executing the tests in a network namespace: %v\n", err)
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// netnsAttr finds how to start a process in a new network namespace here: CLONE_NEWNET
// (root), else also CLONE_NEWUSER mapping the user to root in it.
func netnsAttr() (*syscall.SysProcAttr, error) {
	candidates := []*syscall.SysProcAttr{
		{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL},
		{
			Cloneflags:  syscall.CLONE_NEWNET | syscall.CLONE_NEWUSER,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
			Pdeathsig:   syscall.SIGKILL,
		},
	}
	var errs []error
	for _, attr := range candidates {
		cmd := exec.Command("/bin/true")
		cmd.SysProcAttr = attr
		err := cmd.Run()
		if err == nil {
			return attr, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func buildServer(bin string) error {
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kurento-media-server")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build ./cmd/kurento-media-server: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "browser tests: built the server in %.1f s\n", time.Since(start).Seconds())
	return nil
}

// npmCI installs testdata/app's packages from its lock file (`npm ci`, ignore-scripts from its
// .npmrc) unless node_modules was installed from the same files, as test/node/run.sh does.
func npmCI() error {
	h := sha256.New()
	for _, f := range []string{"package-lock.json", "package.json", ".npmrc"} {
		b, err := os.ReadFile(filepath.Join(appDir, f))
		if err != nil {
			return err
		}
		h.Write(b)
	}
	want := hex.EncodeToString(h.Sum(nil))
	stamp := filepath.Join(appDir, "node_modules", ".kms-lock-sha256")
	if got, err := os.ReadFile(stamp); err == nil && strings.TrimSpace(string(got)) == want {
		return nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return fmt.Errorf("no npm to install test/browser/testdata/app: %w", err)
	}
	start := time.Now()
	cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = appDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci in %s: %v\n%s", appDir, err, out)
	}
	fmt.Fprintf(os.Stderr, "browser tests: npm ci in %.1f s\n", time.Since(start).Seconds())
	return os.WriteFile(stamp, []byte(want+"\n"), 0o644)
}

// loopbackUp sets IFF_UP on lo (what `ip link set lo up` does).
func loopbackUp() error {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer syscall.Close(fd)
	var ifr struct {
		name  [syscall.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(ifr.name[:], "lo")
	ioctl := func(req uintptr) error {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), req, uintptr(unsafe.Pointer(&ifr))); e != 0 {
			return e
		}
		return nil
	}
	if err := ioctl(syscall.SIOCGIFFLAGS); err != nil {
		return err
	}
	ifr.flags |= syscall.IFF_UP | syscall.IFF_RUNNING
	return ioctl(syscall.SIOCSIFFLAGS)
}

func onlyLoopback() error {
	ifs, err := net.Interfaces()
	if err != nil {
		return err
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			return fmt.Errorf("not in a private network namespace: interface %s is there", i.Name)
		}
		if i.Flags&net.FlagUp == 0 {
			return fmt.Errorf("interface %s is down", i.Name)
		}
	}
	return nil
}

// need skips or fails the test unless the machine and the set-up allow it; what lists the
// parts the test uses: "kms", "app".
func need(t *testing.T, what ...string) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if os.Getenv(envInside) != "1" {
		t.Fatal("not re-executed in a network namespace")
	}
	if netnsErr != nil {
		t.Fatal(netnsErr)
	}
	for _, w := range what {
		switch w {
		case "kms":
			if kmsErr != nil {
				t.Fatal(kmsErr)
			}
		case "app":
			if appErr != nil {
				t.Fatal(appErr)
			}
		}
	}
}
